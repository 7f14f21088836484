/* test_fault.c - crash injection (built only with -Dfailpoints=true).
 *
 * A victim process runs a workload with PXS_FAILPOINT=<point>:kill and dies
 * exactly there, inside a critical section or between the steps of a
 * change. The survivors must then find every committed object intact, every
 * call on the victim's keys completing with a documented code, and, after
 * the reaper, a segment that pxs_check() finds exact (no leaked block, no
 * dead pin). Scenarios A1, A2, A6-A9 of the reliability plan; every point
 * must be hit by some test (the last test checks the union).
 */
#include "internal.h"
#include "pxs_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define NOBJ 100

static char seg[64];
static bool hit[PXS_FP_COUNT];

static pxs_key
fixture_key(int i)
{
	char n[32];
	snprintf(n, sizeof n, "fixture/%d", i);
	return pxs_key_from_name(n, strlen(n));
}

static size_t
fixture_size(int i)
{
	return PXS_TEST_HDR + (size_t)(i * 2654435761u % (256u << 10));
}

/* The canonical fixture: a 16 MiB store with 100 committed objects. */
static pxs_store *
fixture(void)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 1024);
	char *buf = malloc(300 << 10);
	for (int i = 0; i < NOBJ; i++) {
		pxs_test_fill(buf, fixture_size(i), fixture_key(i), (uint64_t)i);
		ck_assert_int_eq(
			pxs_put_at(s, fixture_key(i), buf, fixture_size(i)), 0);
	}
	free(buf);
	return s;
}

static void
assert_fixture_intact(pxs_store *s)
{
	for (int i = 0; i < NOBJ; i++) {
		pxs_view v;
		ck_assert_int_eq(pxs_get(s, fixture_key(i), &v), 0);
		ck_assert_int_eq(pxs_test_verify(v.data, v.size, fixture_key(i)),
				 0);
		ck_assert_int_eq(pxs_release(s, &v), 0);
	}
}

/* After the reaper: nothing leaked, nothing pinned by the dead. */
static void
assert_exact(pxs_store *s)
{
	pxs_check_report r;
	ck_assert_int_ge(pxs_reap(s), 0);
	int rc = pxs_check(s, &r);
	ck_assert_msg(rc == 0, "pxs_check: %s: %s", pxs_strerror(rc),
		      r.first_error);
	ck_assert_uint_eq(r.bytes_free + r.bytes_used, r.heap_size);
	ck_assert_uint_eq(r.dead_pins, 0);
	ck_assert_uint_eq(r.dead_processes, 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	/* Waiter counts are exact: the victim's sleeping threads died with
	 * it, and nobody else waits. */
	ck_assert_uint_eq(r.waiters, 0);
	ck_assert_uint_eq(r.dead_waiters, 0);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 0);
	/* Nobody pins anything now: an evicted value the victim was the
	 * last to release (killed between its unpin and the free) is gone. */
	ck_assert_uint_eq(pxs_test_stat(s).evicted_pinned, 0);
}

/* Keys the victim works on. */
static pxs_key
vkey(int i)
{
	char n[32];
	snprintf(n, sizeof n, "victim/%d", i);
	return pxs_key_from_name(n, strlen(n));
}

struct waiter_arg {
	pxs_store *s;
	pxs_key k;
	pid_t tid;
	int rc;
};

static void *
waiter(void *p)
{
	struct waiter_arg *w = p;
	pxs_view v;
	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	w->rc = pxs_future_wait(w->s, w->k, -1, &v);
	if (w->rc == 0)
		pxs_release(w->s, &v);
	return NULL;
}

/* One round of everything the library does at run time; returns nonzero
 * if a call failed (then the victim exits with that code, not killed). */
static int
workload_round(pxs_store *s, int r)
{
	static char buf[200000];
	pxs_key k = vkey(10 * r), f = vkey(10 * r + 1), g = vkey(10 * r + 2);
	pxs_view v;
	void *p;
	memset(buf, r, sizeof buf);
	/* put (carve), get/release, evict unpinned: back to top */
	if (pxs_put_at(s, k, buf, 150000) || pxs_get(s, k, &v) ||
	    pxs_release(s, &v) || pxs_evict(s, k))
		return 10;
	/* a pinned evict, freed by the release; a split from a free block */
	if (pxs_put_at(s, k, buf, 1000) || pxs_put_at(s, g, buf, 5000) ||
	    pxs_get(s, k, &v) || pxs_evict(s, k) || pxs_release(s, &v) ||
	    pxs_put_at(s, k, buf, 100) || pxs_evict(s, k) || pxs_evict(s, g))
		return 11;
	/* a future set, a future reserved and committed */
	if (pxs_future_new_at(s, f) || pxs_future_set(s, f, buf, 3000) ||
	    pxs_evict(s, f) || pxs_future_new_at(s, f) ||
	    pxs_future_reserve(s, f, 7000, &p))
		return 12;
	memset(p, 7, 7000);
	if (pxs_future_commit(s, f) || pxs_evict(s, f))
		return 13;
	/* a waiter thread woken by a set */
	struct waiter_arg w = {.s = s, .k = f};
	pthread_t t;
	if (pxs_future_new_at(s, f) ||
	    pthread_create(&t, NULL, waiter, &w))
		return 14;
	while (!__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE))
		sched_yield();
	if (pxs_test_wait_blocked(w.tid, 10000) ||
	    pxs_future_set(s, f, buf, 10))
		return 15;
	pthread_join(t, NULL);
	if (w.rc || pxs_evict(s, f))
		return 16;
	/* a waiter for a key that does not exist yet, woken by its put */
	struct waiter_arg a = {.s = s, .k = vkey(10 * r + 6)};
	if (pthread_create(&t, NULL, waiter, &a))
		return 19;
	while (!__atomic_load_n(&a.tid, __ATOMIC_ACQUIRE))
		sched_yield();
	if (pxs_test_wait_blocked(a.tid, 10000) ||
	    pxs_put_at(s, a.k, buf, 10))
		return 20;
	pthread_join(t, NULL);
	if (a.rc || pxs_expire(s, a.k, 0))
		return 21;
	/* a named future, set; one left pending a moment (killed in it:
	 * abandoned, its name block referenced or reaped) */
	char nm[32];
	pxs_key nk;
	snprintf(nm, sizeof nm, "victim/%d", 10 * r + 8);
	if (pxs_future_new_named(s, nm, &nk) ||
	    pxs_future_set(s, nk, buf, 500) || pxs_evict(s, nk))
		return 24;
	/* a future abandoned (by a second handle's close) and taken over */
	pxs_store *other;
	pxs_key ab = vkey(10 * r + 7);
	if (pxs_open(seg, NULL, &other) || pxs_future_new_at(other, ab))
		return 22;
	pxs_close(other);
	if (pxs_future_new_at(s, ab) || pxs_expire(s, ab, 60000) ||
	    pxs_evict(s, ab))
		return 23;
	/* a run of same-class puts: the block cache takes a run of blocks */
	for (int i = 0; i < 6; i++)
		if (pxs_put_at(s, vkey(10 * r + 3 + i % 3), buf, 100) ||
		    pxs_evict(s, vkey(10 * r + 3 + i % 3)))
			return 18;
	/* a whole-table scan, with insertions held at the gate */
	pxs_check_report cr;
	if (pxs_check(s, &cr))
		return 17;
	return 0;
}

/* arg: the PXS_FAILPOINT spec to arm. */
static int
victim(void *arg)
{
	const char *spec = arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", spec, 1); /* armed after attaching */
	for (int r = 0; r < 3; r++) {
		int rc = workload_round(s, r);
		if (rc)
			return rc;
	}
	return 0; /* never hit */
}

/* Point -> index, or -1. */
static int
fp_index(const char *name)
{
	const char *const *names = pxs__failpoint_names();
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* Run the victim until the nth hit of point; true if it died there. */
static bool
kill_at_nth(const char *point, int nth)
{
	char spec[96];
	snprintf(spec, sizeof spec, "%s:kill:%d", point, nth);
	pid_t p = pxs_test_spawn(victim, spec);
	int rc = pxs_test_reap(p, 60);
	ck_assert_msg(rc == 0 || rc == 128 + SIGKILL,
		      "victim for %s: exit %d", point, rc);
	if (rc == 128 + SIGKILL)
		hit[fp_index(point)] = true;
	return rc == 128 + SIGKILL;
}

static bool
kill_at(const char *point)
{
	return kill_at_nth(point, 1);
}

/* After a victim died anywhere: the survivors' view. */
static void
survive(pxs_store *s)
{
	/* Every call on the victim's keys completes with a documented
	 * code; pending futures it owned are reported abandoned. */
	for (int i = 0; i < 30; i++) {
		pxs_view v;
		int rc = pxs_get(s, vkey(i), &v);
		ck_assert_msg(rc == 0 || rc == -ENOENT || rc == -EOWNERDEAD ||
				      rc == -EAGAIN,
			      "get victim/%d: %s", i, pxs_strerror(rc));
		if (rc == 0)
			ck_assert_int_eq(pxs_release(s, &v), 0);
		rc = pxs_future_wait(s, vkey(i), 100, &v);
		ck_assert_msg(rc == 0 || rc == -ENOENT || rc == -EOWNERDEAD ||
				      rc == -ETIMEDOUT,
			      "wait victim/%d: %s", i, pxs_strerror(rc));
		if (rc == 0)
			ck_assert_int_eq(pxs_release(s, &v), 0);
		rc = pxs_evict(s, vkey(i));
		ck_assert(rc == 0 || rc == -ENOENT);
	}
	assert_fixture_intact(s);
	assert_exact(s);
	/* ... and the store keeps working, including for a 90% object. */
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "after", 5, &k), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
}

/* The points that the victim workload reaches (the others are reached
 * by their own scenarios below). */
static bool
runtime_point(const char *name)
{
	return strncmp(name, "init.", 5) != 0 &&
	       strncmp(name, "recover.", 8) != 0 &&
	       strncmp(name, "reap.", 5) != 0 &&
	       strncmp(name, "grow.", 5) != 0 &&
	       strcmp(name, "proc.register_locked") != 0;
}

/* A1, A2, A6, A7: every run-time point, killed at its first hit. */
START_TEST(kill_at_every_runtime_point)
{
	const char *const *names = pxs__failpoint_names();
	int n = 0;
	for (int i = 0; names[i]; i++) {
		if (!runtime_point(names[i]))
			continue;
		pxs_store *s = fixture();
		bool died = kill_at(names[i]);
		printf("%-28s %s\n", names[i], died ? "killed, recovered" : "not reached");
		survive(s);
		pxs_test_done(s, seg);
		n += died;
	}
	ck_assert_int_gt(n, 20);
}
END_TEST

/* The nth hit of the busiest points, later in the workload; with
 * PXS_FAULT_MATRIX set (the long suite), every run-time point at hits
 * 2 to 9. */
START_TEST(kill_at_later_hits)
{
	const char *busiest[] = {"heap.locked", "insert.slot_locked",
				 "pin.between_counts", "free.coalesce",
				 "set.after_alloc", "release.between_counts",
				 NULL};
	const char *const *points = busiest;
	bool matrix = getenv("PXS_FAULT_MATRIX") != NULL;
	if (matrix)
		points = pxs__failpoint_names();
	int runs = 0, killed = 0;
	for (size_t i = 0; points[i]; i++) {
		if (!runtime_point(points[i]))
			continue;
		for (int nth = 2; nth <= 9; nth += matrix ? 1 : 5) {
			runs++;
			pxs_store *s = fixture();
			bool died = kill_at_nth(points[i], nth);
			killed += died;
			printf("%-28s hit %d: %s\n", points[i], nth,
			       died ? "killed, recovered" : "not reached");
			survive(s);
			pxs_test_done(s, seg);
		}
	}
	printf("fault matrix: %d runs, %d kills, every one recovered\n", runs,
	       killed);
}
END_TEST

/* A9: the creator dies at each step of initialisation. */
static int
creator(void *arg)
{
	char spec[64];
	snprintf(spec, sizeof spec, "%s:kill", (const char *)arg);
	setenv("PXS_FAILPOINT", spec, 1);
	pxs_store *s;
	pxs_options o = {.size = 8 * MiB, .flags = PXS_CREATE};
	return pxs_open(seg, &o, &s) == 0 ? 0 : 1;
}

static int
count_leftovers(const char *name)
{
	char prefix[96];
	int n = snprintf(prefix, sizeof prefix, ".pxs-tmp-%s-", name + 1), c = 0;
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d)))
		c += strncmp(e->d_name, prefix, (size_t)n) == 0;
	if (d)
		closedir(d);
	return c;
}

START_TEST(creator_killed_mid_initialisation)
{
	const char *points[] = {"init.after_create", "init.after_size",
				"init.mid_table", "init.before_publish"};
	for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
		pxs_test_name(seg, sizeof seg);
		pid_t p = pxs_test_spawn(creator, (void *)points[i]);
		ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
		hit[fp_index(points[i])] = true;
		pxs_store *s;
		/* Never published: absent, not half-made. */
		ck_assert_int_eq(pxs_open(seg, NULL, &s), -ENOENT);
		ck_assert_int_eq(count_leftovers(seg), 1);
		pxs_options o = {.size = 8 * MiB, .flags = PXS_CREATE};
		ck_assert_int_eq(pxs_open(seg, &o, &s), 0);
		pxs_key k;
		pxs_view v;
		ck_assert_int_eq(pxs_put(s, "fresh", 5, &k), 0);
		ck_assert_int_eq(pxs_get(s, k, &v), 0);
		ck_assert_mem_eq(v.data, "fresh", 5);
		ck_assert_int_eq(pxs_release(s, &v), 0);
		pxs_test_done(s, seg);
		/* pxs_unlink removed the dead creator's private object. */
		ck_assert_int_eq(count_leftovers(seg), 0);
	}
}
END_TEST

struct repair_job {
	const char *recover_point;
	int op;
};

/* A repairer: arms a recover.* point, then touches what the victim left. */
static int
repairer(void *arg)
{
	struct repair_job *j = arg;
	pxs_store *s;
	char spec[64];
	snprintf(spec, sizeof spec, "%s:kill", j->recover_point);
	setenv("PXS_FAILPOINT", spec, 1); /* attaching reaps: armed before */
	if (pxs_open(seg, NULL, &s))
		return 2;
	pxs_key k;
	switch (j->op) {
	case 0:
		pxs_future_done(s, vkey(1)); /* the victim's slot */
		break;
	case 1:
		pxs_put(s, "x", 1, &k); /* the heap */
		break;
	case 2:
		pxs_future_new(s, &k); /* the table */
		break;
	case 4: { /* the bell of the victim's absent key */
		pxs_view v;
		pxs_future_wait(s, vkey(6), 10, &v);
		break;
	}
	default:
		pxs_reap(s);
		break;
	}
	return 0;
}

/* A8: the first process to find a dead holder's mess is itself killed in
 * the middle of repairing it, three times; the fourth completes it. */
START_TEST(repairer_killed_mid_repair)
{
	struct {
		const char *victim_point, *recover_point;
		int op;
	} cases[] = {
		{"set.after_alloc", "recover.slot", 0},
		{"alloc.carve", "recover.heap", 1},
		{"table.gate_closed", "recover.table", 2},
		{"bell.recorded", "recover.bell", 4},
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		pxs_store *s = fixture();
		ck_assert(kill_at(cases[c].victim_point));
		struct repair_job j = {cases[c].recover_point, cases[c].op};
		for (int i = 0; i < 3; i++) {
			pid_t p = pxs_test_spawn(repairer, &j);
			ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
		}
		hit[fp_index(cases[c].recover_point)] = true;
		pxs_stats st;
		ck_assert_int_eq(pxs_stat(s, &st), 0);
		uint64_t before = st.recoveries;
		survive(s);
		ck_assert_int_eq(pxs_stat(s, &st), 0);
		ck_assert_uint_ge(st.recoveries, before);
		pxs_test_done(s, seg);
	}
}
END_TEST

/* A victim that pins, reserves and leaks, then dies; reapers are killed
 * in the middle of reaping it. */
static int
messy_victim(void *arg)
{
	int fd = *(int *)arg;
	pxs_store *s;
	pxs_view v;
	void *p;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < 10; i++)
		if (pxs_get(s, fixture_key(i), &v))
			return 3;
	if (pxs_future_new_at(s, vkey(1)) ||
	    pxs_future_reserve(s, vkey(1), 50000, &p))
		return 4;
	/* two threads asleep: on its own future, and on an absent key */
	static struct waiter_arg w[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (struct waiter_arg){.s = s, .k = vkey(1 + 2 * i)};
		if (pthread_create(&t[i], NULL, waiter, &w[i]))
			return 7;
		while (!__atomic_load_n(&w[i].tid, __ATOMIC_ACQUIRE))
			sched_yield();
		if (pxs_test_wait_blocked(w[i].tid, 10000))
			return 8;
	}
	if (write(fd, "m", 1) != 1)
		return 5;
	setenv("PXS_FAILPOINT", "put.after_alloc:kill", 1);
	pxs_put_at(s, vkey(2), "leak", 4); /* dies with a block unpublished */
	return 6;
}

START_TEST(reaper_killed_mid_reap)
{
	pxs_store *s = fixture();
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t v = pxs_test_spawn(messy_victim, &pfd[1]);
	char c;
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	ck_assert_int_eq(pxs_test_reap(v, 30), 128 + SIGKILL);
	close(pfd[0]);
	close(pfd[1]);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.dead_pins, 10);
	ck_assert_uint_eq(r.dead_processes, 1);
	ck_assert_uint_ge(r.leaked_blocks, 1);
	ck_assert_uint_eq(r.waiters, 2);
	ck_assert_uint_eq(r.dead_waiters, 2);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 2);
	const char *points[] = {"reap.mid_waits", "reap.mid_pins",
				"reap.mid_ownership", "reap.mid_leaks"};
	for (size_t i = 0; i < 4; i++) {
		struct repair_job j = {points[i], 3};
		pid_t p = pxs_test_spawn(repairer, &j);
		ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
		hit[fp_index(points[i])] = true;
	}
	ck_assert_int_eq(pxs_future_done(s, vkey(1)), -EOWNERDEAD);
	survive(s);
	pxs_test_done(s, seg);
}
END_TEST

/* The process-table lock's holder dies: attaching still works. */
static int
attacher(void *arg)
{
	setenv("PXS_FAILPOINT", "proc.register_locked:kill", 1);
	pxs_store *s;
	return pxs_open(seg, NULL, &s) == 0 ? 0 : 1;
}

/* Spawn a victim that stops itself at a failpoint; return once it has. */
static pid_t
spawn_stopped(int (*fn)(void *), void *arg)
{
	pid_t p = pxs_test_spawn(fn, arg);
	int st;
	ck_assert_int_eq(waitpid(p, &st, WUNTRACED), p);
	ck_assert(WIFSTOPPED(st));
	return p;
}

/* Stops itself holding the process-table lock (attaching). */
static int
stopped_attacher(void *arg)
{
	setenv("PXS_FAILPOINT", "proc.register_locked:stop", 1);
	pxs_store *s;
	return pxs_open(seg, NULL, &s) == 0 ? 0 : 1;
}

/* A process stopped while it holds the process-table lock: a reap gives
 * up after its second instead of hanging, a full heap still says -ENOSPC,
 * and once the peer is gone everything is reaped and exact. */
START_TEST(reap_beside_a_stopped_process_table_holder)
{
	pxs_store *s = fixture();
	pid_t p = spawn_stopped(stopped_attacher, NULL);
	hit[fp_index("proc.register_locked")] = true;
	pxs_stats before = pxs_test_stat(s);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_reap(s), -ETIMEDOUT);
	double t_reap = pxs_test_ms() - t0;
	/* the reap before -ENOSPC: bounded too, and the put fails cleanly */
	pxs_key k = pxs_key_from_name("too big", 7);
	t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_put_at(s, k, "x", 32 * MiB), -ENOSPC);
	double t_put = pxs_test_ms() - t0;
	ck_assert_int_eq(pxs_exists(s, k), 0);
	pxs_test_same_store(before, pxs_test_stat(s));
	assert_fixture_intact(s);
	printf("beside a stopped process-table holder: pxs_reap %.0f ms, "
	       "a put that needs a reap %.0f ms\n", t_reap, t_put);
	kill(p, SIGKILL);
	kill(p, SIGCONT);
	ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
	survive(s);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(attacher_killed_holding_the_process_table)
{
	pxs_store *s = fixture();
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(attacher, NULL), 30),
			 128 + SIGKILL);
	hit[fp_index("proc.register_locked")] = true;
	pxs_store *t;
	ck_assert_int_eq(pxs_open(seg, NULL, &t), 0);
	pxs_close(t);
	survive(s);
	pxs_test_done(s, seg);
}
END_TEST

/* Sets vkey(1) with a failpoint armed to stop inside the slot lock. */
static int
stalled_setter(void *arg)
{
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", "set.slot_locked:stop", 1);
	return pxs_future_set(s, vkey(1), "value", 5) == 0 ? 0 : 3;
}

static int
timed_waiter(void *arg)
{
	pxs_store *s;
	pxs_view v;
	if (pxs_open(seg, NULL, &s))
		return 2;
	double t0 = pxs_test_ms();
	int rc = pxs_future_wait(s, vkey(1), 500, &v);
	double took = pxs_test_ms() - t0;
	printf("wait(500 ms) on a slot held by a stopped process: %s after "
	       "%.0f ms\n", pxs_strerror(rc), took);
	fflush(stdout);
	return rc == -ETIMEDOUT && took >= 500 && took < 2500 ? 0 : 4;
}

/* A14, G13: a process stopped inside a critical section stalls only that
 * slot, and only for calls without a timeout. */
START_TEST(stopped_holder_does_not_break_timeouts)
{
	pxs_store *s = fixture();
	ck_assert_int_eq(pxs_future_new_at(s, vkey(1)), 0);
	pid_t v = spawn_stopped(stalled_setter, NULL);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(timed_waiter, NULL), 30),
			 0);
	/* Everything else keeps working, including a new attach. */
	assert_fixture_intact(s);
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "other", 5, &k), 0);
	pxs_store *t;
	ck_assert_int_eq(pxs_open(seg, NULL, &t), 0);
	pxs_close(t);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0); /* skips the held slot */
	kill(v, SIGCONT);
	ck_assert_int_eq(pxs_test_reap(v, 30), 0);
	pxs_view view;
	ck_assert_int_eq(pxs_future_wait(s, vkey(1), 1000, &view), 0);
	ck_assert_mem_eq(view.data, "value", 5);
	ck_assert_int_eq(pxs_release(s, &view), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* Keys whose home is slot h: the n-th one probes from h too. */
static pxs_key
homed_key(const pxs_store *s, uint32_t h, uint32_t n)
{
	return (pxs_key){0, h + (uint64_t)n * s->g.nslots};
}

struct paused {
	pxs_key k;
	int fd; /* written to just before the put */
};

static int
paused_inserter(void *arg)
{
	struct paused *p = arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", "insert.scanned:sleep=1000", 1);
	if (write(p->fd, "r", 1) != 1)
		return 3;
	return pxs_put_at(s, p->k, "late", 4) == 0 ? 0 : 4;
}

/* insert.c: an inserter rereads its probe path under the target's lock.
 * Keys a and b share home h (slots h, h+1); k's inserter, also homed at
 * h, picks h+2 and pauses; meanwhile b is evicted and its sweep empties
 * h+1. Published at h+2, k would lie beyond an EMPTY slot, where lookups
 * never look. */
START_TEST(insert_rechecks_its_path_after_a_sweep)
{
	pxs_store *s = pxs_test_store(seg, 4 << 20, 64);
	uint32_t h = 5;
	pxs_key a = homed_key(s, h, 1), b = homed_key(s, h, 2),
		k = homed_key(s, h, 3);
	ck_assert_int_eq(pxs_put_at(s, a, "a", 1), 0);
	ck_assert_int_eq(pxs_put_at(s, b, "b", 1), 0);
	int fd[2];
	char c;
	ck_assert_int_eq(pipe(fd), 0);
	struct paused job = {k, fd[1]};
	pid_t p = pxs_test_spawn(paused_inserter, &job);
	ck_assert_int_eq(read(fd[0], &c, 1), 1);
	usleep(200000); /* it scanned, chose h+2 and sleeps for a second */
	ck_assert_int_eq(pxs_evict(s, b), 0);
	ck_assert_int_eq(waitpid(p, NULL, WNOHANG), 0); /* still paused */
	ck_assert_uint_eq(s->slots[h + 1].state, PXS_SLOT_EMPTY); /* swept */
	ck_assert_uint_eq(s->slots[h + 2].state, PXS_SLOT_EMPTY);
	ck_assert_int_eq(pxs_test_reap(p, 30), 0);
	hit[fp_index("insert.scanned")] = true;
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_mem_eq(v.data, "late", 4);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_evict(s, a), 0);
	close(fd[0]);
	close(fd[1]);
	pxs_test_done(s, seg);
}
END_TEST

static int
stopped_inserter(void *arg)
{
	pxs_store *s;
	pxs_key k;
	if (pxs_open(seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", "insert.home_locked:stop", 1);
	return pxs_put(s, "stopped", 7, &k) == 0 ? 0 : 3;
}

/* A process stopped in the middle of an insertion (counted at the gate,
 * holding its key's home slot): pxs_check() waits for it a bounded time,
 * then reports a snapshot; other insertions go on. */
START_TEST(stopped_inserter_does_not_wedge_check)
{
	pxs_store *s = fixture();
	pid_t v = spawn_stopped(stopped_inserter, NULL);
	double t0 = pxs_test_ms();
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	double took = pxs_test_ms() - t0;
	printf("check beside a stopped inserter: %.0f ms\n", took);
	ck_assert(took < 10000);
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "other", 5, &k), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	kill(v, SIGCONT);
	ck_assert_int_eq(pxs_test_reap(v, 30), 0);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* A producer killed inside the stream lock, before or after its item's
 * commit: the next locker's repair appends a committed item exactly once
 * and drops one that was not, and the stream goes on. */
static char stream_seg[64];

static int
stream_victim(void *arg)
{
	pxs_store *s;
	if (pxs_open(stream_seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", arg, 1);
	pxs_stream_append(s, pxs_key_from_name("st", 2), "victim", 6, 0, NULL);
	return 3; /* not killed */
}

START_TEST(stream_committer_killed_holding_the_stream_lock)
{
	static const char *const points[] = {"stream.before_commit",
					     "stream.after_commit"};
	for (int i = 0; i < 2; i++) {
		pxs_store *s = pxs_test_store(stream_seg, 8 * MiB, 64);
		pxs_key k = pxs_key_from_name("st", 2);
		pxs_stream_options o = {.window = 4, .flags = PXS_STREAM_BLOCK};
		ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
		char spec[64];
		snprintf(spec, sizeof spec, "%s:kill", points[i]);
		pid_t p = pxs_test_spawn(stream_victim, spec);
		ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
		hit[fp_index(points[i])] = true;

		pxs_stream_stats st;
		ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0); /* repairs */
		ck_assert_uint_eq(st.next, (uint64_t)i);
		ck_assert_uint_eq(st.reserved, 0);
		pxs_view v;
		uint64_t seq;
		if (i == 1) { /* committed: appended once, readable */
			ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), 0);
			ck_assert_mem_eq(v.data, "victim", 6);
			ck_assert_int_eq(pxs_release(s, &v), 0);
		}
		ck_assert_int_eq(pxs_stream_append(s, k, "next", 4, 0, &seq), 0);
		ck_assert_uint_eq(seq, (uint64_t)i);
		ck_assert_int_eq(pxs_stream_read(s, k, seq, 0, &v), 0);
		ck_assert_mem_eq(v.data, "next", 4);
		ck_assert_int_eq(pxs_release(s, &v), 0);
		ck_assert_int_ge(pxs_reap(s), 0);
		pxs_stats ss = pxs_test_stat(s);
		ck_assert_uint_eq(ss.pending, 0);
		ck_assert_uint_eq(ss.abandoned, 0);
		ck_assert_uint_eq(ss.objects, 1 + (uint32_t)i + 1);
		ck_assert_uint_ge(ss.recoveries, 1);
		pxs_check_report r;
		ck_assert_int_eq(pxs_check(s, &r), 0);
		ck_assert_uint_eq(r.leaked_blocks, 0);
		pxs_test_done(s, stream_seg);
	}
}
END_TEST

/* A deleter killed half way through its evictions: the next locker's
 * repair finishes the delete, so no item is left behind unnamed, the
 * pinned view of an item stays valid, and the key can be used again. */
static int
delete_victim(void *arg)
{
	pxs_store *s;
	if (pxs_open(stream_seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", arg, 1);
	pxs_stream_delete(s, pxs_key_from_name("st", 2));
	return 3; /* not killed */
}

START_TEST(stream_deleter_killed_mid_delete)
{
	pxs_store *s = pxs_test_store(stream_seg, 8 * MiB, 64);
	pxs_key k = pxs_key_from_name("st", 2);
	pxs_stream_options o = {.window = 8};
	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(pxs_stream_append(s, k, "item", 4, 0, NULL), 0);
	pxs_view held;
	ck_assert_int_eq(pxs_stream_read(s, k, 4, 0, &held), 0);
	static char spec[] = "stream.mid_delete:kill:3";
	pid_t p = pxs_test_spawn(delete_victim, spec);
	ck_assert_int_eq(pxs_test_reap(p, 30), 128 + SIGKILL);
	hit[fp_index("stream.mid_delete")] = true;

	/* The victim died with 3 of 6 items evicted and the key still there:
	 * the next locker repairs, finishing the delete (-EIDRM: it had
	 * pinned the block), and the key is gone after it. */
	pxs_stream_stats st;
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), -EIDRM);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), -ENOENT);
	ck_assert_mem_eq(held.data, "item", 4);
	ck_assert_int_ge(pxs_reap(s), 0);
	pxs_stats ss = pxs_test_stat(s);
	ck_assert_uint_eq(ss.objects, 0);
	ck_assert_uint_eq(ss.pending, 0);
	ck_assert_uint_eq(ss.evicted_pinned, 1);
	ck_assert_uint_ge(ss.recoveries, 1);
	ck_assert_int_eq(pxs_release(s, &held), 0);
	ck_assert_uint_eq(pxs_test_stat(s).evicted_pinned, 0);
	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	uint64_t seq;
	ck_assert_int_eq(pxs_stream_append(s, k, "next", 4, 0, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(pxs_stream_delete(s, k), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	ck_assert_uint_eq(pxs_test_stat(s).objects, 0);
	pxs_test_done(s, stream_seg);
}
END_TEST

/* A store whose table grows, filled to just below table 0's limit. */
static char grow_seg[64];
#define GROW_KEYS 760

static pxs_key
gkey(int i)
{
	return (pxs_key){.hi = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1),
			 .lo = 0xc2b2ae3d27d4eb4full * (uint64_t)(i + 1)};
}

/* arg: the spec; puts keys from GROW_KEYS on until it is killed. */
static int
grower(void *arg)
{
	pxs_store *s;
	if (pxs_open(grow_seg, NULL, &s))
		return 2;
	setenv("PXS_FAILPOINT", arg, 1);
	for (int i = GROW_KEYS; i < GROW_KEYS + 2000; i++)
		if (pxs_put_at(s, gkey(i), &i, sizeof i))
			return 3;
	return 0; /* never grew */
}

static void
assert_grow_keys(pxs_store *s, int from, int to)
{
	for (int i = from; i < to; i++) {
		pxs_view v;
		ck_assert_int_eq(pxs_get(s, gkey(i), &v), 0);
		ck_assert_int_eq(*(const int *)v.data, i);
		ck_assert_int_eq(pxs_release(s, &v), 0);
	}
}

/* A grower killed after allocating the next table, or with it formatted
 * and the gate closed but not published: the survivors' keys stay, the
 * store is consistent (no block leaked: the unpublished table is freed),
 * and the next growth works. */
START_TEST(grower_killed_mid_growth)
{
	static const char *const specs[] = {"grow.allocated:kill",
					    "grow.before_publish:kill"};
	for (size_t n = 0; n < sizeof specs / sizeof *specs; n++) {
		pxs_store *s = pxs_test_store(grow_seg, 16 * MiB, 0);
		for (int i = 0; i < GROW_KEYS; i++)
			ck_assert_int_eq(pxs_put_at(s, gkey(i), &i, sizeof i),
					 0);
		int rc = pxs_test_reap(pxs_test_spawn(grower, (void *)specs[n]),
				       60);
		ck_assert_msg(rc == 128 + SIGKILL, "%s: grower exit %d",
			      specs[n], rc);
		char point[32];
		snprintf(point, sizeof point, "%.*s",
			 (int)(strchr(specs[n], ':') - specs[n]), specs[n]);
		hit[fp_index(point)] = true;
		ck_assert_int_ge(pxs_reap(s), 1);
		assert_exact(s);
		pxs_stats st = pxs_test_stat(s);
		ck_assert_uint_eq(st.tables, 1);
		/* The keys the grower put before it died are committed. */
		ck_assert_uint_ge(st.objects, GROW_KEYS);
		assert_grow_keys(s, 0, GROW_KEYS);
		/* The next growth works, twice over. */
		for (int i = GROW_KEYS + 2000; i < GROW_KEYS + 6000; i++)
			ck_assert_int_eq(pxs_put_at(s, gkey(i), &i, sizeof i),
					 0);
		st = pxs_test_stat(s);
		ck_assert_uint_ge(st.tables, 3);
		assert_grow_keys(s, 0, GROW_KEYS);
		assert_grow_keys(s, GROW_KEYS + 2000, GROW_KEYS + 6000);
		assert_exact(s);
		pxs_test_done(s, grow_seg);
	}
}
END_TEST

START_TEST(every_point_was_hit)
{
	const char *const *names = pxs__failpoint_names();
	int missing = 0;
	for (int i = 0; names[i]; i++)
		if (!hit[i]) {
			printf("failpoint never hit: %s\n", names[i]);
			missing++;
		}
	ck_assert_int_eq(missing, 0);
}
END_TEST

int
main(void)
{
	/* One process for the whole suite (CK_FORK=no) so that `hit` adds up
	 * across tests; every child is still a fresh fork. */
	setenv("CK_FORK", "no", 1);
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("fault");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, kill_at_every_runtime_point);
	tcase_add_test(tc, grower_killed_mid_growth);
	tcase_add_test(tc, kill_at_later_hits);
	tcase_add_test(tc, creator_killed_mid_initialisation);
	tcase_add_test(tc, repairer_killed_mid_repair);
	tcase_add_test(tc, reaper_killed_mid_reap);
	tcase_add_test(tc, attacher_killed_holding_the_process_table);
	tcase_add_test(tc, reap_beside_a_stopped_process_table_holder);
	tcase_add_test(tc, stopped_holder_does_not_break_timeouts);
	tcase_add_test(tc, insert_rechecks_its_path_after_a_sweep);
	tcase_add_test(tc, stopped_inserter_does_not_wedge_check);
	tcase_add_test(tc, stream_committer_killed_holding_the_stream_lock);
	tcase_add_test(tc, stream_deleter_killed_mid_delete);
	tcase_add_test(tc, every_point_was_hit);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
