/* test_bugs.c - library bugs found by the hostile-input work, one Check
 * case each, written to PASS when the bug is fixed.
 *
 * tests/hostile/meson.build registers every case as its own test (the
 * case is chosen with CK_RUN_CASE). Fixed bugs are regressions in suite
 * 'hostile' ('hostile-bug-<case>'). Open bugs are in suite
 * 'hostile-known-bugs' ('hostile-known-bug-<case>', should_fail: true), so
 * the main suite stays green while one is open and the test turns into an
 * UNEXPECTEDPASS the day it is fixed: then move the case to the fixed list
 * in meson.build. Each case says what the bug was, its cause and the fix;
 * docs/reliability.md has the table.
 */
#include "hostile.h"
#include "pxs_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB HX_MiB

/* KB-FORGED-TOKEN (fixed in 31dcfc5). A view whose priv[2] (the pinning
 * handle's owner token) is forged is "released" with 0 and zeroed, leaking
 * the pin until the process exits, instead of -EINVAL. Cause:
 * store.c:pxs_release() treats *any* token other than the current one as
 * "pinned by the parent before a fork". Fix: remember the tokens this handle
 * held before a fork (pxs__refork saves the previous s->token in
 * s->parent_tokens, a short list) and return 0 only for those; -EINVAL
 * otherwise. */
START_TEST(forged_token)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k;
	pxs_view v, f;
	pxs_stats st;
	ck_assert_int_eq(pxs_put(s, "value", 5, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	f = v;
	f.priv[2] ^= 0x5a5a;
	int rc = pxs_release(s, &f);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_msg(rc == -EINVAL, "forged token: %d", rc);
	ck_assert_uint_eq(st.pins, 1);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_test_done(s, name);
}
END_TEST

/* KB-ELOOP / KB-EISDIR (fixed in 31dcfc5). pxs_open on a name that is a
 * symlink returns -ELOOP (glibc's shm_open adds O_NOFOLLOW): not documented
 * for pxs_open, and pxs_strerror() has no text for it ("unknown error"). On
 * a directory it returns -EINVAL (glibc maps EISDIR to EINVAL), documented
 * but meaning "bad name or options": misleading; PLAN C5 wants -EPROTO for
 * both. Cause: segment.c:pxs__segment_open() returns -errno from shm_open
 * unfiltered. Fix: map ELOOP, EISDIR, ENXIO, ENODEV, ENOTDIR (anything that
 * means "not a regular file") to -EPROTO, which the header documents as "not
 * a proxyshm segment"; keep EACCES, ENOENT, EMFILE, ENFILE, ENAMETOOLONG as
 * they are. */
static void
not_a_file(bool dir)
{
	char name[64], path[128];
	pxs_test_name(name, sizeof name);
	hx_path(path, sizeof path, name);
	if (dir)
		ck_assert_int_eq(mkdir(path, 0700), 0);
	else
		ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	pxs_store *s;
	pxs_options o = {.flags = PXS_CREATE, .size = 2 * MiB};
	int a = pxs_open(name, NULL, &s), c = pxs_open(name, &o, &s);
	if (dir)
		rmdir(path);
	else
		unlink(path);
	/* PLAN C5: -EPROTO ("not a proxyshm segment") */
	ck_assert_msg(a == -EPROTO && c == -EPROTO,
		      "%s: pxs_open gave %d (%s) and %d", dir ? "dir" : "link",
		      a, pxs_strerror(a), c);
}

START_TEST(symlink_code)
{
	not_a_file(false);
}
END_TEST

START_TEST(directory_code)
{
	not_a_file(true);
}
END_TEST

/* KB-TMPNAME (fixed in 31dcfc5). The creator's private object is named
 * "/.pxs-tmp-<name>-<pid>-<counter>": predictable, and a valid store
 * name. Anyone who can write /dev/shm (every local user: it is
 * world-writable and sticky) can pre-create those names: then
 * pxs_open(CREATE|EXCL) of a name that does not exist fails with -EEXIST,
 * and pxs_open(CREATE) fails with -EAGAIN (undocumented) after 64 tries.
 * And pxs_open("/.pxs-tmp-...") attaches to another creator's private,
 * possibly half-built object. Cause: segment.c:create() (the name, and
 * returning -errno of the private O_EXCL shm_open as if the public name
 * existed) and keys.c:pxs__name_check (accepts the prefix). Fix: random
 * private names (getrandom, 64 bits, hex) retried on EEXIST, never
 * reported as EEXIST; reject names that begin with "/.pxs-" in
 * pxs__name_check (documented as reserved). */
static int
squat_counters(const char *name, pid_t pid, int n)
{
	int made = 0;
	for (int i = 0; i < n; i++) {
		char tmp[300];
		snprintf(tmp, sizeof tmp, "/.pxs-tmp-%s-%ld-%d", name + 1,
			 (long)pid, i);
		int fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			close(fd);
			made++;
		}
	}
	return made;
}

static void
unsquat(const char *name, pid_t pid, int n)
{
	for (int i = 0; i < n; i++) {
		char tmp[300];
		snprintf(tmp, sizeof tmp, "/.pxs-tmp-%s-%ld-%d", name + 1,
			 (long)pid, i);
		shm_unlink(tmp);
	}
}

static int
excl_child(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL, .size = 2 * MiB};
	int rc = pxs_open(name, &o, &s);
	if (rc == 0) {
		pxs_close(s);
		pxs_unlink(name);
	}
	return -rc;
}

START_TEST(private_name_squatting)
{
	char name[64];
	pxs_test_name(name, sizeof name);
	/* A child creates; we squat its predictable private names first.
	 * (The counter starts at whatever the parent's was: squat 0..255.) */
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		char c;
		if (read(pfd[0], &c, 1) != 1)
			_exit(100);
		_exit(excl_child(name));
	}
	ck_assert_int_eq(squat_counters(name, p, 256), 256);
	ck_assert_int_eq(write(pfd[1], "g", 1), 1);
	int rc = pxs_test_reap(p, 30);
	unsquat(name, p, 256);
	ck_assert_msg(rc == 0, "CREATE|EXCL of a name nobody has: -%d (%s)", rc,
		      pxs_strerror(-rc));
}
END_TEST

START_TEST(private_names_are_reserved)
{
	char name[64];
	pxs_store *s;
	pxs_test_name(name, sizeof name);
	char tmp[128];
	snprintf(tmp, sizeof tmp, "/.pxs-tmp-%s-1-0", name + 1);
	ck_assert_int_eq(pxs_open(tmp, NULL, &s), -EINVAL);
}
END_TEST

/* KB-POISON-DOC (fixed in 31dcfc5: documented). On a poisoned segment (a
 * repair failed) pxs__enter() makes every call return -ENOTRECOVERABLE, but
 * pxs_exists, pxs_future_done, pxs_release, pxs_stat, pxs_list and
 * pxs_proc_list do not list it. Fix: document it for them (or say once, in
 * the header's Errors section, that every call taking a store may return
 * it). */
START_TEST(poisoned_codes_documented)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_put(s, "v", 1, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	s->hdr->poisoned = 1; /* what a failed repair leaves */
	pxs_stats st;
	uint64_t cur = 0;
	pxs_entry e;
	pxs_proc_info pi;
	struct {
		enum hx_fn fn;
		int rc;
	} calls[] = {
		{HX_EXISTS, pxs_exists(s, k)},
		{HX_FDONE, pxs_future_done(s, k)},
		{HX_RELEASE, pxs_release(s, &v)},
		{HX_STAT, pxs_stat(s, &st)},
		{HX_LIST, pxs_list(s, &cur, &e)},
		{HX_PROC_LIST, pxs_proc_list(s, &cur, &pi)},
	};
	s->hdr->poisoned = 0;
	pxs_release(s, &v);
	pxs_test_done(s, name);
	for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
		ck_assert_msg(hx_documented(calls[i].fn, calls[i].rc),
			      "%s on a poisoned segment: %d, undocumented",
			      hx_fn_name(calls[i].fn), calls[i].rc);
}
END_TEST

/* KB-CHECK-DOUBLE-REF and KB-CHECK-FORGED (fixed in 31dcfc5; they were
 * regressions of a working copy of src/check.c). reference()
 * now validates a slot's block with pxs__heap_block(), which accepts any
 * header whose check word matches (a peer can compute it) and keeps no
 * count: two slots naming one block, and a slot naming a forged header
 * inside another payload, pass pxs_check. Fix: in reference(), also look
 * the offset up in the walk snapshot (find_block): not found -> "not a
 * block on the chain"; b->refs++ > 0 -> "referenced twice". */
START_TEST(check_double_reference)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key a = {1, 1}, b = {2, 2};
	char buf[100] = {0};
	uint32_t ia, ib;
	ck_assert_int_eq(pxs_put_at(s, a, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_put_at(s, b, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs__table_find(s, a, &ia), 0);
	ck_assert_int_eq(pxs__table_find(s, b, &ib), 0);
	s->slots[ia].off = s->slots[ib].off;
	pxs_check_report r;
	int rc = pxs_check(s, &r);
	s->slots[ia].off = 0;
	s->slots[ia].size = 0;
	pxs_test_done(s, name);
	ck_assert_msg(rc == -EPROTO && r.errors > 0,
		      "two slots share one block: pxs_check %d", rc);
}
END_TEST

START_TEST(check_forged_header)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key a = {1, 1}, b = {2, 2};
	static char buf[4096];
	uint32_t ia, ib;
	ck_assert_int_eq(pxs_put_at(s, a, buf, 100), 0);
	ck_assert_int_eq(pxs_put_at(s, b, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs__table_find(s, a, &ia), 0);
	ck_assert_int_eq(pxs__table_find(s, b, &ib), 0);
	uint64_t at = s->slots[ib].off + 64; /* inside b's payload */
	uint64_t hdr[2] = {1024, (uint64_t)pxs__heap_check_word(at) << 32};
	memcpy(s->base + at, hdr, 16);
	s->slots[ia].off = at + 16;
	pxs_check_report r;
	int rc = pxs_check(s, &r);
	pxs_test_done(s, name);
	ck_assert_msg(rc == -EPROTO && r.errors > 0,
		      "a slot names a forged block: pxs_check %d", rc);
}
END_TEST

/* KB-TOP-ROLLBACK (fixed in 7e96599). A peer that moves the heap's top back
 * to the heap start (a valid, aligned value) makes the next allocations
 * carve memory that live objects use: two values now share bytes (PLAN E3:
 * "returned memory never overlaps a live object"). Cause: alloc.c:carve()
 * trusts that [top, top + s) is free. Fix (cheap, catches this case): in
 * carve() refuse with -EPROTO when the 16 bytes at top hold a valid header
 * (check word of top) that is not F_FREE: in a consistent heap the header at
 * top is either absent, wiped, or a free block that was merged into the
 * wilderness. A full fix keeps a process-local high-water mark of top per
 * handle and refuses a top below the start of any block this process knows
 * to be live. */
START_TEST(top_rollback)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key a = {1, 1}, b = {2, 2};
	static char one[1000], two[1000];
	memset(one, 1, sizeof one);
	memset(two, 2, sizeof two);
	ck_assert_int_eq(pxs_put_at(s, a, one, sizeof one), 0);
	__atomic_store_n(&s->hdr->heap.top, s->hdr->heap.start,
			 __ATOMIC_RELAXED);
	int rc = pxs_put_at(s, b, two, sizeof two);
	pxs_view v;
	int g = pxs_get(s, a, &v);
	bool intact = g == 0 && memcmp(v.data, one, sizeof one) == 0;
	if (g == 0)
		pxs_release(s, &v);
	pxs_test_done(s, name);
	ck_assert_msg(rc < 0 || intact,
		      "put after a top rollback returned %d and overwrote a "
		      "live value (its get now gives %d)",
		      rc, g);
}
END_TEST

/* KB-COMMIT-AFTER-REUSE (fixed in 31dcfc5). Header: pxs_future_commit
 * returns -ENOENT when the key was "evicted since the reservation: the
 * reserved memory is freed". If the key has been used again meanwhile (a put
 * or a new future under it), commit finds the *new* slot: it returns
 * -EALREADY (or -EAGAIN), and the reserved block stays allocated until the
 * reserving handle closes. Cause: future.c:pxs_future_commit() looks up the
 * live slot first and only falls back to commit_evicted() on -ENOENT. Fix:
 * try commit_evicted() (an EVICTED slot of this key owned by this token)
 * first, or whenever the live slot is not RESERVED by the caller. */
START_TEST(commit_after_key_reuse)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k = {9, 9};
	void *buf;
	pxs_stats before, after;
	ck_assert_int_eq(pxs_future_new_at(s, k), 0);
	ck_assert_int_eq(pxs_stat(s, &before), 0);
	ck_assert_int_eq(pxs_future_reserve(s, k, 1000, &buf), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_put_at(s, k, "new", 3), 0);
	int rc = pxs_future_commit(s, k);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_stat(s, &after), 0);
	pxs_test_done(s, name);
	ck_assert_msg(rc == -ENOENT, "commit after the key was reused: %d", rc);
	ck_assert_msg(after.heap_used == before.heap_used,
		      "the reservation's block is still allocated (%llu "
		      "bytes more)",
		      (unsigned long long)(after.heap_used - before.heap_used));
}
END_TEST

/* KB-SET-REAP-DEADLOCK (hang; fixed in 16a05ec). pxs_future_set and
 * pxs_future_reserve allocate the value's block while holding the future's
 * slot lock; when the heap is full, store.c:block_alloc() reaps dead
 * processes before failing, and the reaper (reap.c:drop_ownership) locks
 * every slot the dead process owned, including the one already held: the
 * setter deadlocks on itself, holding the slot lock and the process-table
 * lock, so every later pxs_open and every reap hangs as well. The same call
 * chain (slot lock, then proc_lock, then other slot locks) is also an ABBA
 * deadlock with an attacher that reaps (proc_lock, then slot locks).
 * Trigger: a producer dies with a pending future while the heap is full,
 * then anyone sets it. Fix: never reap (nor take proc_lock) while holding a
 * slot lock: allocate and fill the block before lock_key() as pxs_put_at
 * does, free it if the state turns out wrong; or give block_alloc a "no
 * reap" flag for callers that hold a slot lock and, on -ENOSPC, unlock,
 * pxs__reap(), and retry the whole call once. The first-pin allocation in
 * pxs__view_pin has the same shape and needs the same flag. */
static int
set_deadlock_child(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	pxs_key f = {5, 5}, k;
	static char buf[65536];
	pxs_options o = {.flags = PXS_CREATE, .size = 2 * MiB, .capacity = 64};
	hx_deadline(10); /* a hang ends as SIGALRM */
	if (pxs_open(name, &o, &s) != 0)
		return 10;
	for (size_t n = sizeof buf; n >= 16; n /= 4) /* fill the heap */
		while (pxs_put(s, buf, n, &k) == 0)
			;
	pid_t d = fork(); /* the producer: creates F and dies */
	if (d == 0) {
		pxs_store *t;
		_exit(pxs_open(name, NULL, &t) || pxs_future_new_at(t, f));
	}
	if (pxs_test_reap(d, 10) != 0)
		return 11;
	int rc = pxs_future_set(s, f, buf, 60000);
	pxs_close(s);
	pxs_unlink(name);
	return rc == -ENOSPC || rc == -EOWNERDEAD ? 0 : 12;
}

START_TEST(set_reaps_under_slot_lock)
{
	char name[64];
	hx_name(name, sizeof name, "deadlock");
	pid_t p = pxs_test_spawn(set_deadlock_child, name);
	int rc = pxs_test_reap(p, 30);
	pxs_unlink(name); /* the child may have died holding it */
	ck_assert_msg(rc == 0,
		      "pxs_future_set on a dead producer's future, "
		      "heap full: child ended with %d (%s)",
		      rc, rc == 128 + SIGALRM ? "deadlock" : "error");
}
END_TEST

/* KB-SWEEP-RACE (fixed in df13c31; a stress test: 5 s by default).
 * pxs_unlink() sweeps private creation objects "whose creator died",
 * judged by their OFD lock being free (segment.c:pxs__segment_sweep). But
 * create() takes that lock only after shm_open(O_EXCL) has made the object
 * visible: an unlink of the same name (or of a prefix of it: ".pxs-tmp-a-"
 * also matches the objects of "/a-b") in that window removes a *live*
 * creator's object, whose renameat2() then fails with ENOENT, and
 * pxs_open(PXS_CREATE) returns -ENOENT, which the header reserves for "no
 * such segment and no PXS_CREATE". Seen here in 7 of 3000 rounds. Fix:
 * create the private object with O_TMPFILE in /dev/shm and publish it
 * with linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW), which fails with
 * EEXIST like RENAME_NOREPLACE: no name, no squatting, no sweep, nothing
 * left by a dead creator. Minimal fix: in open_mapped(), treat -ENOENT
 * from create() like -EEXIST (retry, bounded, then -EAGAIN), and match
 * the sweep prefix exactly (".pxs-tmp-<name>-" followed by 16 hex digits
 * and nothing else). Run: CK_RUN_CASE=create_vs_unlink_race
 * test-hostile-bugs (PXS_RACE_SECONDS, default 5). */
START_TEST(create_vs_unlink_race)
{
	const char *env = getenv("PXS_RACE_SECONDS");
	double end = pxs_test_ms() + 1000.0 * (env ? atoi(env) : 5);
	int rounds = 0, enoent = 0;
	while (pxs_test_ms() < end && !enoent) {
		char name[64];
		int p[2];
		hx_name(name, sizeof name, "race");
		ck_assert_int_eq(pipe(p), 0);
		fflush(NULL);
		pid_t u = fork();
		if (u == 0) {
			char c;
			close(p[1]);
			if (read(p[0], &c, 1) != 1)
				_exit(1);
			for (int i = 0; i < 50; i++)
				pxs_unlink(name);
			_exit(0);
		}
		close(p[0]);
		pxs_options o = {.flags = PXS_CREATE | PXS_EXCL, .size = MiB};
		pxs_store *s;
		ck_assert_int_eq(write(p[1], "g", 1), 1);
		int rc = pxs_open(name, &o, &s);
		if (rc == 0)
			pxs_close(s);
		else if (rc == -ENOENT)
			enoent++;
		else
			ck_assert_msg(hx_documented(HX_OPEN, rc), "%d", rc);
		pxs_test_reap(u, 10);
		close(p[1]);
		pxs_unlink(name);
		rounds++;
	}
	ck_assert_msg(enoent == 0,
		      "pxs_open(CREATE|EXCL) returned -ENOENT after %d rounds "
		      "racing pxs_unlink",
		      rounds);
}
END_TEST

/* ---- root only ---------------------------------------------------------- */

static int
private_shm(const char *opts)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return 77;
	return 0;
}

/* KB-SPARSE-SIGBUS (root; fixed in 31dcfc5: now -ENOSPC or -EPROTO).
 * Attaching reads the header through the new mapping; when the file's pages
 * are holes and /dev/shm is full, the read fault cannot allocate a page and
 * the attacher dies of SIGBUS, where PLAN G8 wants -EPROTO. A foreign file
 * is enough (any local user can make one, and a creator killed between
 * ftruncate and its writes leaves one). Cause: segment.c:attach_fd()
 * validates through mmap. Fix: pread() the header into a local buffer and
 * validate that before mapping, and refuse (-EPROTO) a file whose metadata
 * [0, heap_off) has holes (lseek(fd, 0, SEEK_HOLE) < heap_off): a real
 * segment has it fallocate'd. */
static int
sparse_child(void *arg)
{
	int rc = private_shm("size=2m");
	if (rc)
		return rc;
	hx_deadline(30);
	int fd = open("/dev/shm/filler", O_RDWR | O_CREAT, 0600);
	static char junk[65536];
	while (write(fd, junk, sizeof junk) == (ssize_t)sizeof junk)
		;
	close(fd);
	char name[64];
	hx_name(name, sizeof name, "sparse");
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 2 * MiB) < 0)
		return 20;
	close(fd);
	pxs_store *s;
	rc = pxs_open(name, NULL, &s);
	return rc == -EPROTO || rc == -ENOSPC ? 0 : 21;
}

/* KB-COMMIT-CHUNK (root, minor; fixed in 7e96599). The heap commits memory
 * in 2 MiB steps (alloc.c:grow, COMMIT_CHUNK): on a /dev/shm with less than
 * a step left but enough for the request, the allocation fails with -ENOSPC.
 * Fix: in grow(), when commit(want) fails and need < want, retry with need
 * rounded up to a page. */
static int
chunk_child(void *arg)
{
	int rc = private_shm("size=3m");
	if (rc)
		return rc;
	hx_deadline(30);
	char name[64];
	hx_name(name, sizeof name, "chunk");
	pxs_store *s;
	pxs_options o = {.flags = PXS_CREATE, .size = 16 * MiB, .capacity = 64};
	if (pxs_open(name, &o, &s) != 0)
		return 30;
	static unsigned char buf[1536 * 1024];
	pxs_key k;
	if (pxs_put(s, buf, sizeof buf, &k) != 0) /* inside the first step */
		return 31;
	/* ~1.7 MiB committed so far; this one needs ~2.2 MiB of the 3 */
	rc = pxs_put(s, buf, 512 * 1024, &k);
	return rc == 0 ? 0 : 32;
}

static int
run_root(int (*fn)(void *), const char *id)
{
	pid_t p = pxs_test_spawn(fn, NULL);
	int rc = pxs_test_reap(p, 60);
	if (rc == 77)
		printf("SKIP %s: cannot mount a private tmpfs\n", id);
	return rc;
}

START_TEST(sparse_file_on_full_shm)
{
	int rc = run_root(sparse_child, "KB-SPARSE-SIGBUS");
	ck_assert_msg(rc == 0 || rc == 77, "attach ended with %d (%s)", rc,
		      rc == 128 + SIGBUS ? "SIGBUS" : "wrong code");
}
END_TEST

START_TEST(commit_chunk)
{
	int rc = run_root(chunk_child, "KB-COMMIT-CHUNK");
	ck_assert_msg(rc == 0 || rc == 77, "put that fits: child %d", rc);
}
END_TEST

static const struct {
	const char *name;
	const TTest *const *test;
	bool root;
} cases[] = {
	{"forged_token", &forged_token, false},
	{"symlink_code", &symlink_code, false},
	{"directory_code", &directory_code, false},
	{"private_name_squatting", &private_name_squatting, false},
	{"private_names_are_reserved", &private_names_are_reserved, false},
	{"poisoned_codes_documented", &poisoned_codes_documented, false},
	{"check_double_reference", &check_double_reference, false},
	{"check_forged_header", &check_forged_header, false},
	{"top_rollback", &top_rollback, false},
	{"commit_after_key_reuse", &commit_after_key_reuse, false},
	{"set_reaps_under_slot_lock", &set_reaps_under_slot_lock, false},
	{"create_vs_unlink_race", &create_vs_unlink_race, false},
	{"sparse_file_on_full_shm", &sparse_file_on_full_shm, true},
	{"commit_chunk", &commit_chunk, true},
};

int
main(void)
{
	const char *only = getenv("CK_RUN_CASE");
	hx_strict = true;
	Suite *s = suite_create("hostile-known-bugs");
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		if (only && strcmp(only, cases[i].name))
			continue;
		if (cases[i].root && geteuid() != 0) {
			printf("SKIP %s: needs root\n", cases[i].name);
			if (only)
				return 77;
			continue;
		}
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, *cases[i].test);
		suite_add_tcase(s, tc);
	}
	return pxs_test_run(s);
}
