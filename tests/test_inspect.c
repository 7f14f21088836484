/* test_inspect.c - inspection that never hangs and never writes.
 *
 * A read-only attach (PXS_RDONLY) leaves a segment byte for byte as it
 * was and refuses every change; with four peers SIGSTOPped at random
 * points of their open/close and put/evict loops, and in copies of a used
 * segment whose lock words are scribbled over, pxs_open, pxs_stat,
 * pxs_list, pxs_proc_list, pxs_check and the proxyshm inspection commands
 * (stat, ls, check, ls-segments) each return within a bound.
 *
 * The bound: the library promises about two seconds for each call (a
 * second for the locks of an attach, a second for those of a check, plus
 * the scan); on this shared, loaded two-core machine we allow one second
 * more, so a call is held to BOUND_MS. Times are measured with
 * CLOCK_MONOTONIC and printed.
 *
 * argv[1] is the proxyshm command (meson passes its path).
 */
#include "hostile.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB HX_MiB
#define BOUND_MS 3000.0 /* 2 s promised + 1 s for a loaded machine */
#define PEERS 4
#define ROUNDS 5

static const char *cli_path;
static double worst_ms;

/* Time one call: assert it took less than BOUND_MS. The comma operator
 * reads the clock before the call is evaluated. */
static double t0_;

static int
bounded(const char *what, int rc)
{
	double dt = pxs_test_ms() - t0_;
	if (dt > worst_ms)
		worst_ms = dt;
	ck_assert_msg(dt < BOUND_MS, "%s took %.0f ms (rc %d)", what, dt, rc);
	return rc;
}

#define BOUNDED(what, call) (t0_ = pxs_test_ms(), bounded((what), (call)))

static const pxs_options ro = {.flags = PXS_RDONLY};

/* ---- the read-only attach writes nothing ------------------------------ */

/* Every call that would change the store or pin: -EROFS. */
static void
assert_refused(pxs_store *r, pxs_key k, pxs_key f)
{
	pxs_key out;
	pxs_view v;
	void *buf;
	size_t which;
	ck_assert_int_eq(pxs_put(r, "x", 1, &out), -EROFS);
	ck_assert_int_eq(pxs_put_at(r, (pxs_key){7, 7}, "x", 1), -EROFS);
	ck_assert_int_eq(pxs_get(r, k, &v), -EROFS);
	ck_assert_int_eq(pxs_evict(r, k), -EROFS);
	ck_assert_int_eq(pxs_expire(r, k, 10), -EROFS);
	ck_assert_int_eq(pxs_future_new(r, &out), -EROFS);
	ck_assert_int_eq(pxs_future_new_at(r, (pxs_key){8, 8}), -EROFS);
	ck_assert_int_eq(pxs_future_set(r, f, "y", 1), -EROFS);
	ck_assert_int_eq(pxs_future_reserve(r, f, 4, &buf), -EROFS);
	ck_assert_int_eq(pxs_future_commit(r, f), -EROFS);
	ck_assert_int_eq(pxs_future_claim(r, f), -EROFS);
	ck_assert_int_eq(pxs_future_disown(r, f), -EROFS);
	ck_assert_int_eq(pxs_future_wait(r, f, 0, &v), -EROFS);
	ck_assert_int_eq(pxs_future_wait_spin(r, f, 0, 0, &v), -EROFS);
	ck_assert_int_eq(pxs_future_wait_any(r, &f, 1, 0, &which, &v),
			 -EROFS);
	ck_assert_int_eq(pxs_future_done(r, f), -EROFS);
	ck_assert_int_eq(pxs_reap(r), -EROFS);
	memset(&v, 0, sizeof v);
	ck_assert_int_eq(pxs_release(r, &v), 0); /* an empty view: nothing */
}

/* What a read-only handle sees of a store whose read-write handle's
 * pxs_stat() said @p a. */
static void
assert_inspects(pxs_store *r, const pxs_stats *a, pxs_key k)
{
	pxs_stats b;
	ck_assert_int_eq(pxs_stat(r, &b), 0);
	ck_assert_uint_eq(b.objects, a->objects);
	ck_assert_uint_eq(b.pending, a->pending);
	ck_assert_uint_eq(b.processes, 1); /* rw only: r is not counted */
	ck_assert_uint_eq(b.heap_used, a->heap_used); /* no pin records */
	ck_assert_uint_eq(b.pins, a->pins);
	ck_assert_int_eq(pxs_exists(r, k), 1);
	uint64_t cur = 0;
	pxs_entry e;
	int n = 0;
	while (pxs_list(r, &cur, &e) == 1)
		n++;
	ck_assert_int_eq(n, (int)(a->objects + a->pending));
	pxs_proc_info p;
	cur = 0;
	ck_assert_int_eq(pxs_proc_list(r, &cur, &p), 1);
	ck_assert_int_eq(p.pid, getpid());
	ck_assert_int_eq(pxs_proc_list(r, &cur, &p), 0);
	pxs_check_report cr;
	ck_assert_msg(pxs_check(r, &cr) == 0, "check: %s", cr.first_error);
	ck_assert_uint_eq(cr.slots_live, a->objects + a->pending);
	ck_assert_uint_eq(cr.locks_busy, 0);
	ck_assert_uint_eq(cr.processes, 1);
}

struct ro_child {
	char name[64];
	pxs_store *r;
};

/* A forked child with the parent's read-only handle, and one of its own. */
static int
ro_child(void *arg)
{
	struct ro_child *c = arg;
	pxs_stats st;
	pxs_store *mine;
	uint64_t cur = 0;
	pxs_entry e;
	if (pxs_stat(c->r, &st) != 0 || st.processes != 1)
		return 1;
	if (pxs_list(c->r, &cur, &e) != 1)
		return 2;
	if (pxs_put(c->r, "x", 1, &e.key) != -EROFS)
		return 3;
	if (pxs_open(c->name, &ro, &mine) != 0)
		return 4;
	if (pxs_stat(mine, &st) != 0 || st.processes != 1)
		return 5;
	pxs_close(mine);
	return 0;
}

START_TEST(rdonly_writes_nothing)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64), *r, *bad;
	pxs_key k = {1, 2}, f = {3, 4};
	pxs_view held;
	ck_assert_int_eq(pxs_put_at(s, k, "value", 5), 0);
	ck_assert_int_eq(pxs_future_new_at(s, f), 0);
	ck_assert_int_eq(pxs_get(s, k, &held), 0);
	/* The read-write handle's stat gives back its cached blocks: from
	 * here on only read-only calls touch the store. */
	pxs_stats a = pxs_test_stat(s);
	uint64_t before = hx_shm_hash(name);
	ck_assert_uint_ne(before, 0);

	ck_assert_int_eq(pxs_open(name, &ro, &r), 0);
	ck_assert_uint_eq(hx_shm_hash(name), before);
	assert_inspects(r, &a, k);
	assert_refused(r, k, f);
	struct ro_child c = {.r = r};
	strcpy(c.name, name);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(ro_child, &c), 30), 0);
	ck_assert_uint_eq(hx_shm_hash(name), before);
	ck_assert_int_eq(pxs_close(r), 0);
	ck_assert_uint_eq(hx_shm_hash(name), before);

	/* Options it does not go with; a missing segment. */
	pxs_options o = {.flags = PXS_RDONLY | PXS_CREATE};
	ck_assert_int_eq(pxs_open(name, &o, &bad), -EINVAL);
	ck_assert_ptr_null(bad);
	o.flags = PXS_RDONLY | PXS_CREATE | PXS_EXCL;
	ck_assert_int_eq(pxs_open(name, &o, &bad), -EINVAL);
	o.flags = PXS_RDONLY;
	ck_assert_int_eq(pxs_open("/pxs-no-such-segment-ro", &o, &bad),
			 -ENOENT);
	o.flags = PXS_RDONLY;
	ck_assert_int_eq(pxs_open("redis://127.0.0.1:1/x", &o, &bad), -EINVAL);

	/* The store still works, and the failed calls changed nothing. */
	ck_assert_int_eq(pxs_release(s, &held), 0);
	ck_assert_int_eq(pxs_future_set(s, f, "v", 1), 0);
	pxs_check_report cr;
	ck_assert_int_eq(pxs_check(s, &cr), 0);
	pxs_test_done(s, name);
}
END_TEST

/* A file the caller may only read: a read-only attach works. */
static int
read_only_file(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	pxs_stats st;
	if (geteuid() == 0 && setresuid(65534, 65534, 65534) < 0)
		return 10;
	if (pxs_open(name, NULL, &s) != -EACCES)
		return 1;
	if (pxs_open(name, &ro, &s) != 0)
		return 2;
	int rc = pxs_stat(s, &st) == 0 && st.objects == 1 ? 0 : 3;
	pxs_close(s);
	return rc;
}

START_TEST(rdonly_needs_only_read_permission)
{
	char name[64], path[128];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 1}, "v", 1), 0);
	hx_path(path, sizeof path, name);
	/* Root would pass any mode: the child drops to nobody, who owns it. */
	if (geteuid() == 0)
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
	ck_assert_int_eq(chmod(path, 0400), 0);
	uint64_t before = hx_shm_hash(name);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(read_only_file, name), 30),
			 0);
	ck_assert_uint_eq(hx_shm_hash(name), before);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* ---- traffic ------------------------------------------------------------ */

/* Peer loops. Kind 0: open, put, close; kind 1: put and evict on one
 * handle (with a pending future and a get now and then). Each runs until
 * killed. */
static int
peer(const char *name, int kind, uint64_t seed)
{
	pxs_store *s = NULL;
	char buf[512];
	memset(buf, 'p', sizeof buf);
	while (kind == 1 && pxs_open(name, NULL, &s) != 0)
		; /* a peer stopped in its attach: -ETIMEDOUT, try again */
	for (uint64_t i = 0;; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = (size_t)(seed >> 40) % sizeof buf;
		pxs_key k;
		if (kind == 0) {
			if (pxs_open(name, NULL, &s) != 0)
				continue;
			if (pxs_put(s, buf, n, &k) == 0)
				pxs_evict(s, k);
			pxs_close(s);
			continue;
		}
		if (pxs_put(s, buf, n, &k) == 0) {
			pxs_view v;
			if (i % 3 == 0 && pxs_get(s, k, &v) == 0)
				pxs_release(s, &v);
			pxs_evict(s, k);
		}
		if (i % 16 == 0 && pxs_future_new(s, &k) == 0)
			pxs_evict(s, k);
	}
	return 0; /* not reached: killed */
}

struct peer_arg {
	char name[64];
	int kind;
	uint64_t seed;
};

static int
peer_main(void *arg)
{
	const struct peer_arg *p = arg;
	return peer(p->name, p->kind, p->seed);
}

/* Run argv (the proxyshm command and its arguments) with stdout and stderr
 * to /dev/null; returns its exit status (128+sig if killed), having
 * asserted it took less than BOUND_MS. */
static int
run_cli(const char *sub, const char *name)
{
	double t0 = pxs_test_ms();
	fflush(NULL);
	pid_t p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		if (name)
			execl(cli_path, cli_path, sub, name, (char *)NULL);
		else
			execl(cli_path, cli_path, sub, (char *)NULL);
		_exit(127);
	}
	int rc = pxs_test_reap(p, 10);
	double dt = pxs_test_ms() - t0;
	if (dt > worst_ms)
		worst_ms = dt;
	ck_assert_msg(dt < BOUND_MS, "proxyshm %s %s took %.0f ms (exit %d)",
		      sub, name ? name : "", dt, rc);
	ck_assert_int_ne(rc, 127);
	return rc;
}

/* Everything inspection does, each call bounded, on a read-write and on a
 * read-only attach, then the proxyshm commands. Whatever each returns must
 * be documented; *busy counts reports that named a lock. */
static void
inspect_bounded(const char *name, int *busy)
{
	for (int mode = 0; mode < 2; mode++) {
		pxs_store *s;
		int rc = BOUNDED("pxs_open", pxs_open(name, mode ? &ro : NULL,
						       &s));
		ck_assert_msg(hx_documented(HX_OPEN, rc), "pxs_open: %d", rc);
		if (rc < 0) {
			ck_assert_msg(mode == 0 && (rc == -ETIMEDOUT ||
						   rc == -EPROTO ||
						   rc == -ENOTRECOVERABLE),
				      "open (%s): %s", mode ? "ro" : "rw",
				      pxs_strerror(rc));
			continue;
		}
		pxs_stats st;
		rc = BOUNDED("pxs_stat", pxs_stat(s, &st));
		ck_assert_msg(hx_documented(HX_STAT, rc), "pxs_stat: %d", rc);
		uint64_t cur = 0;
		pxs_entry e;
		double t0 = pxs_test_ms();
		while ((rc = pxs_list(s, &cur, &e)) == 1)
			;
		ck_assert_msg(pxs_test_ms() - t0 < BOUND_MS, "pxs_list");
		ck_assert_msg(hx_documented(HX_LIST, rc), "pxs_list: %d", rc);
		pxs_proc_info p;
		cur = 0;
		while ((rc = pxs_proc_list(s, &cur, &p)) == 1)
			;
		ck_assert_msg(hx_documented(HX_PROC_LIST, rc), "%d", rc);
		pxs_check_report cr;
		rc = BOUNDED("pxs_check", pxs_check(s, &cr));
		ck_assert_msg(hx_documented(HX_CHECK, rc), "pxs_check: %d", rc);
		if (cr.locks_busy)
			(*busy)++;
		/* A read-only check takes no lock: the one thing it may call
		 * busy is a heap a stopped peer left half-changed. */
		ck_assert_msg(!mode || cr.locks_busy == 0 ||
				      strcmp(cr.busy_lock, "heap (changing)") == 0,
			      "read-only check named lock \"%s\"", cr.busy_lock);
		BOUNDED("pxs_close", pxs_close(s));
	}
	run_cli("stat", name);
	run_cli("ls", name);
	run_cli("check", name);
	run_cli("ls-segments", NULL);
}

/* Four peers, SIGSTOPped at random points, several rounds. */
START_TEST(stopped_peers_do_not_hang_inspection)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 256);
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	int busy = 0;
	printf("stopped peers: seed %llu\n", (unsigned long long)seed);
	for (int round = 0; round < ROUNDS; round++) {
		pid_t pid[PEERS];
		struct peer_arg a[PEERS];
		for (int i = 0; i < PEERS; i++) {
			strcpy(a[i].name, name);
			a[i].kind = i % 2;
			a[i].seed = seed + (uint64_t)(round * PEERS + i);
			pid[i] = pxs_test_spawn(peer_main, &a[i]);
		}
		/* Let them run a random while, then stop each at a random
		 * moment: wherever it is, inside a lock or not. */
		for (int i = 0; i < PEERS; i++) {
			seed = seed * 6364136223846793005ull + 1;
			struct timespec d = {0, (long)(seed >> 44) % 40000000L};
			nanosleep(&d, NULL);
			kill(pid[i], SIGSTOP);
		}
		for (int i = 0; i < PEERS; i++) {
			int st;
			ck_assert_int_eq(waitpid(pid[i], &st, WUNTRACED),
					 pid[i]);
			ck_assert(WIFSTOPPED(st));
		}
		inspect_bounded(name, &busy);
		for (int i = 0; i < PEERS; i++) {
			kill(pid[i], SIGKILL);
			kill(pid[i], SIGCONT);
			ck_assert_int_eq(pxs_test_reap(pid[i], 30),
					 128 + SIGKILL);
		}
		/* Nobody is left: the next round starts from a reaped store. */
		ck_assert_int_ge(pxs_reap(s), 0);
	}
	pxs_check_report cr;
	ck_assert_msg(pxs_check(s, &cr) == 0, "after the rounds: %s",
		      cr.first_error);
	printf("stopped peers: %d rounds, %d checks named a busy lock, "
	       "slowest call %.0f ms\n", ROUNDS, busy, worst_ms);
	pxs_test_done(s, name);
}
END_TEST

/* A read-only check under traffic: never a false report (the heap's change
 * counter tells a walk that crossed a change from damage), and a clean one
 * once the traffic stops; and a scribbled block header in a copy of the
 * segment is still found. */
START_TEST(rdonly_under_traffic)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 256), *r;
	pid_t pid[2];
	struct peer_arg a[2];
	for (int i = 0; i < 2; i++) {
		strcpy(a[i].name, name);
		a[i].kind = 1;
		a[i].seed = (uint64_t)i + 1;
		pid[i] = pxs_test_spawn(peer_main, &a[i]);
	}
	ck_assert_int_eq(pxs_open(name, &ro, &r), 0);
	int clean = 0, n = 0, busy = 0;
	for (double end = pxs_test_ms() + 1500; pxs_test_ms() < end; n++) {
		pxs_check_report cr;
		pxs_stats st;
		int rc = pxs_check(r, &cr);
		ck_assert_msg(rc == 0, "check under traffic: %s: %s",
			      pxs_strerror(rc), cr.first_error);
		clean += cr.locks_busy == 0;
		if (cr.locks_busy) {
			busy++;
			ck_assert_str_eq(cr.busy_lock, "heap (changing)");
		}
		ck_assert_int_eq(pxs_stat(r, &st), 0);
		ck_assert_uint_le(st.heap_used, st.heap_size);
	}
	for (int i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		ck_assert_int_eq(pxs_test_reap(pid[i], 30), 128 + SIGKILL);
	}
	ck_assert_int_ge(pxs_reap(s), 0);
	pxs_check_report cr;
	ck_assert_msg(pxs_check(r, &cr) == 0, "at rest: %s", cr.first_error);
	printf("read-only checks under traffic: %d of %d clean, %d busy, 0 "
	       "false reports\n", clean, n, busy);
	ck_assert_int_gt(clean, 0);

	/* Real damage is still damage: a copy of the segment at rest with one
	 * block header scribbled over. */
	pxs_key k = pxs_key_from_name("damaged", 7);
	ck_assert_int_eq(pxs_put_at(s, k, "value", 5), 0);
	uint32_t idx;
	ck_assert_int_eq(pxs__table_find(s, k, &idx), 0);
	uint64_t off = s->slots[idx].off;
	ck_assert_int_eq(pxs_check(r, &cr), 0);
	pxs_close(r);
	size_t len;
	unsigned char *img = hx_shm_read(name, &len);
	ck_assert_ptr_nonnull(img);
	memset(img + off - 16, 0xa5, 16); /* the header before the payload */
	char copy[64];
	pxs_test_name(copy, sizeof copy);
	ck_assert_int_eq(hx_shm_write(copy, img, len, len), 0);
	free(img);
	ck_assert_int_eq(pxs_open(copy, &ro, &r), 0);
	ck_assert_int_eq(pxs_check(r, &cr), -EPROTO);
	ck_assert_uint_eq(cr.locks_busy, 0);
	ck_assert_uint_gt(cr.errors, 0);
	printf("a scribbled block header, read-only: %s\n", cr.first_error);
	pxs_close(r);
	ck_assert_int_eq(pxs_unlink(copy), 0);
	pxs_test_done(s, name);
}
END_TEST

/* ---- scribbled lock words ----------------------------------------------- */

/* Where a lock lives, as an offset in the segment. */
struct lockword {
	const char *what;
	size_t off;
};

START_TEST(scribbled_lock_words)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k = {5, 6}, f = {7, 8};
	ck_assert_int_eq(pxs_put_at(s, k, "used", 4), 0);
	ck_assert_int_eq(pxs_future_new_at(s, f), 0);
	ck_assert_int_eq(pxs_future_disown(s, f), 0); /* outlives s */
	uint32_t ik, iff;
	ck_assert_int_eq(pxs__table_find(s, k, &ik), 0);
	ck_assert_int_eq(pxs__table_find(s, f, &iff), 0);
	const unsigned char *base = s->base;
	const struct lockword locks[] = {
		{"process table", (size_t)((unsigned char *)&s->hdr->proc_lock -
					   base)},
		{"heap", (size_t)((unsigned char *)&s->hdr->heap_lock - base)},
		{"table", (size_t)((unsigned char *)&s->hdr->table_lock - base)},
		{"slot of a value",
		 (size_t)((unsigned char *)&s->slots[ik].lock - base)},
		{"slot of a future",
		 (size_t)((unsigned char *)&s->slots[iff].lock - base)},
		{"doorbell", (size_t)((unsigned char *)&s->hdr->bells[5].lock -
				      base)},
	};
	/* Copy the image with nobody attached (no entry to reap). */
	pxs_close(s);
	size_t len;
	unsigned char *img = hx_shm_read(name, &len);
	ck_assert_ptr_nonnull(img);
	int busy = 0;
	for (size_t l = 0; l < sizeof locks / sizeof *locks; l++) {
		for (int how = 0; how < 2; how++) {
			char copy[64];
			unsigned char *b = malloc(len);
			ck_assert_ptr_nonnull(b);
			memcpy(b, img, len);
			pthread_mutex_t *m = (pthread_mutex_t *)(b + locks[l].off);
			if (how == 0) /* held by a thread that does not exist */
				m->__data.__lock = 0x3ffffff0;
			else /* garbage */
				memset(m, 0xa5, sizeof *m);
			pxs_test_name(copy, sizeof copy);
			ck_assert_int_eq(hx_shm_write(copy, b, len, len), 0);
			free(b);
			printf("scribbled %s lock (%s)\n", locks[l].what,
			       how ? "garbage" : "held");
			inspect_bounded(copy, &busy);
			ck_assert_int_eq(pxs_unlink(copy), 0);
		}
	}
	free(img);
	printf("scribbled locks: %d checks named a busy lock, slowest call "
	       "%.0f ms\n", busy, worst_ms);
	pxs_unlink(name);
}
END_TEST

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PROXYSHM\n", argv[0]);
		return 2;
	}
	cli_path = argv[1];
	Suite *su = suite_create("inspect");
	TCase *tc = tcase_create("rdonly");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rdonly_writes_nothing);
	tcase_add_test(tc, rdonly_needs_only_read_permission);
	tcase_add_test(tc, rdonly_under_traffic);
	suite_add_tcase(su, tc);
	tc = tcase_create("bounded");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, stopped_peers_do_not_hang_inspection);
	tcase_add_test(tc, scribbled_lock_words);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
