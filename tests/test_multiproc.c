/* test_multiproc.c - futures and objects across processes: waiters that
 * start before the producer, fan-out, timeouts, views surviving a remote
 * evict, killed waiters and producers, an exec'd consumer resolving a
 * proxy string, and a concurrent put/get/evict run with every byte checked.
 *
 * argv[1] is the path of the pxs-consumer helper program.
 */
#include "internal.h"
#include "pxs_test.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static const char *consumer_path;
static char seg[64];

/* Children open their own handle: as independent processes would. */
static pxs_store *
child_open(void)
{
	pxs_store *s;
	return pxs_open(seg, NULL, &s) == 0 ? s : NULL;
}

struct job {
	pxs_key k;
	long timeout;
	size_t size;
	int expect;
	int fd;
};

/* Wait for k; 0 if the value verifies (or the expected error came). */
static int
child_wait(void *arg)
{
	struct job *j = arg;
	pxs_store *s = child_open();
	pxs_view v;
	if (!s)
		return 20;
	int rc = pxs_future_wait(s, j->k, j->timeout, &v);
	if (rc != j->expect)
		return 21;
	if (rc == 0 && (pxs_test_verify(v.data, v.size, j->k) != 0 ||
			pxs_release(s, &v) != 0))
		return 22;
	pxs_close(s);
	return 0;
}

static int
child_set(void *arg)
{
	struct job *j = arg;
	pxs_store *s = child_open();
	if (!s)
		return 30;
	void *buf;
	if (pxs_future_reserve(s, j->k, j->size, &buf) != 0)
		return 31;
	pxs_test_fill(buf, j->size, j->k, 42);
	return pxs_future_commit(s, j->k) == 0 ? 0 : 32;
}

static pxs_store *
fresh(size_t size, uint32_t cap)
{
	return pxs_test_store(seg, size, cap);
}

START_TEST(waiter_before_producer_exists)
{
	pxs_store *s = fresh(8 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("sim/step/1", 10),
			.timeout = -1,
			.size = 4096};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	pid_t c = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(c, 10000),
			 0); /* asleep in the kernel */
	pid_t p = pxs_test_spawn(child_set, &j);
	ck_assert_int_eq(pxs_test_reap(p, 30), 0);
	ck_assert_int_eq(pxs_test_reap(c, 30), 0);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(many_waiters_all_wake)
{
	pxs_store *s = fresh(8 * MiB, 64);
	struct job j = {
		.k = pxs_key_from_name("fan", 3), .timeout = -1, .size = 1000};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	pid_t w[16];
	for (int i = 0; i < 16; i++)
		w[i] = pxs_test_spawn(child_wait, &j);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(pxs_test_wait_blocked(w[i], 10000), 0);
	void *buf;
	ck_assert_int_eq(pxs_future_reserve(s, j.k, j.size, &buf), 0);
	pxs_test_fill(buf, j.size, j.k, 1);
	ck_assert_int_eq(pxs_future_commit(s, j.k), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 30), 0);
	pxs_test_assert_idle(s);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(timeouts_fire_in_other_processes)
{
	pxs_store *s = fresh(4 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("never", 5),
			.timeout = 300,
			.expect = -ETIMEDOUT};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	double t0 = pxs_test_ms();
	pid_t c = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_reap(c, 30), 0);
	ck_assert_double_ge(pxs_test_ms() - t0, 300);
	pxs_test_done(s, seg);
}
END_TEST

static int
child_evict(void *arg)
{
	pxs_store *s = child_open();
	return s && pxs_evict(s, *(pxs_key *)arg) == 0 ? 0 : 1;
}

START_TEST(view_survives_remote_evict)
{
	pxs_store *s = fresh(8 * MiB, 64);
	pxs_key k = pxs_key_from_name("pinned", 6);
	char buf[200000];
	pxs_test_fill(buf, sizeof buf, k, 7);
	ck_assert_int_eq(pxs_put_at(s, k, buf, sizeof buf), 0);
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_evict, &k), 30), 0);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	/* Reuse the memory as hard as possible: the pinned block must not move. */
	for (int i = 0; i < 30; i++) {
		pxs_key t;
		char junk[100000];
		memset(junk, i, sizeof junk);
		if (pxs_put(s, junk, sizeof junk, &t) != 0)
			break;
	}
	ck_assert_int_eq(pxs_test_verify(v.data, v.size, k), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(killed_waiters_do_not_wedge_the_slot)
{
	pxs_store *s = fresh(8 * MiB, 64);
	struct job j = {
		.k = pxs_key_from_name("wedge", 5), .timeout = -1, .size = 128};
	/* 20 rounds on the same slot: a waiter is killed while asleep, then a
     * live waiter and a set must still complete. */
	for (int r = 0; r < 20; r++) {
		ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
		pid_t victim = pxs_test_spawn(child_wait, &j);
		ck_assert_int_eq(pxs_test_wait_blocked(victim, 10000), 0);
		kill(victim, SIGKILL);
		ck_assert_int_eq(pxs_test_reap(victim, 10), 128 + SIGKILL);
		pid_t live = pxs_test_spawn(child_wait, &j);
		ck_assert_int_eq(pxs_test_wait_blocked(live, 10000), 0);
		double t0 = pxs_test_ms();
		ck_assert_int_eq(
			pxs_test_reap(pxs_test_spawn(child_set, &j), 30), 0);
		ck_assert_double_lt(pxs_test_ms() - t0, 5000);
		ck_assert_int_eq(pxs_test_reap(live, 30), 0);
		ck_assert_int_eq(pxs_evict(s, j.k), 0);
	}
	/* Then 3 killed and 2 alive at once. */
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	pid_t w[5];
	for (int i = 0; i < 5; i++) {
		w[i] = pxs_test_spawn(child_wait, &j);
		ck_assert_int_eq(pxs_test_wait_blocked(w[i], 10000), 0);
	}
	for (int i = 0; i < 3; i++) {
		kill(w[i], SIGKILL);
		pxs_test_reap(w[i], 10);
	}
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_set, &j), 30), 0);
	for (int i = 3; i < 5; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 30), 0);
	pxs_test_done(s, seg);
}
END_TEST

static int
child_owns_then_hangs(void *arg)
{
	struct job *j = arg;
	pxs_store *s = child_open();
	if (!s || pxs_future_claim(s, j->k) != 0)
		return 40;
	if (write(j->fd, "c", 1) != 1) /* tell the parent: claimed */
		return 42;
	pause(); /* killed by the parent */
	return 41;
}

START_TEST(dead_owner_is_reported_not_hung)
{
	pxs_store *s = fresh(4 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("orphan", 6),
			.timeout = -1,
			.expect = -EOWNERDEAD};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	j.fd = p[1];
	pid_t owner = pxs_test_spawn(child_owns_then_hangs, &j);
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1); /* claimed */
	close(p[0]);
	close(p[1]);
	pid_t w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = pxs_test_spawn(child_wait, &j);
		ck_assert_int_eq(pxs_test_wait_blocked(w[i], 10000), 0);
	}
	double t0 = pxs_test_ms();
	kill(owner, SIGKILL);
	pxs_test_reap(owner, 10);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 30), 0);
	double detect = pxs_test_ms() - t0;
	printf("dead owner detected by 3 waiters in %.1f ms\n", detect);
	ck_assert_double_lt(detect, 5000);
	/* A waiter arriving later learns it at once (checked on entry). */
	pxs_view v;
	ck_assert_int_eq(pxs_future_wait(s, j.k, -1, &v), -EOWNERDEAD);
	pxs_test_done(s, seg);
}
END_TEST

/* Create j->k, disown it, say so on j->fd, then leave: by pxs_close and
 * exit when j->expect is 0, else by waiting for the parent's SIGKILL. */
static int
child_creates_and_disowns(void *arg)
{
	struct job *j = arg;
	pxs_store *s = child_open();
	if (!s || pxs_future_new_at(s, j->k) != 0 ||
	    pxs_future_disown(s, j->k) != 0)
		return 50;
	if (write(j->fd, "d", 1) != 1)
		return 51;
	if (j->expect == 0) {
		pxs_close(s);
		return 0;
	}
	pause();
	return 52;
}

/* ProxyStore's model: a client creates a future, hands it on and goes
 * away, by exit and by SIGKILL; a second process sets it and a third,
 * asleep since before the creator left, reads it. */
START_TEST(disowned_future_outlives_its_creator)
{
	pxs_store *s = fresh(8 * MiB, 64);
	for (int killed = 0; killed < 2; killed++) {
		struct job c = {.k = pxs_key_from_name(killed ? "k1" : "k0", 2),
				.expect = killed};
		struct job w = {.k = c.k, .timeout = -1, .size = 4096};
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		c.fd = p[1];
		pid_t creator = pxs_test_spawn(child_creates_and_disowns, &c);
		char ch;
		ck_assert_int_eq(read(p[0], &ch, 1), 1);
		close(p[0]);
		close(p[1]);
		pid_t waiter = pxs_test_spawn(child_wait, &w);
		ck_assert_int_eq(pxs_test_wait_blocked(waiter, 10000), 0);
		if (killed)
			kill(creator, SIGKILL);
		ck_assert_int_eq(pxs_test_reap(creator, 30), killed ? 128 + SIGKILL : 0);
		ck_assert_int_ge(pxs_reap(s), 0);
		ck_assert_int_eq(pxs_future_done(s, c.k), 0); /* not abandoned */
		ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_set, &w), 30), 0);
		ck_assert_int_eq(pxs_test_reap(waiter, 30), 0);
		ck_assert_int_eq(pxs_future_done(s, c.k), 1);
	}
	ck_assert_uint_eq(pxs_test_stat(s).abandoned, 0);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(exec_consumer_resolves_proxy_string)
{
	pxs_store *s = fresh(8 * MiB, 64);
	pxs_key k;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	pxs_proxy *p;
	char str[PXS_PROXY_STRLEN];
	ck_assert_int_eq(pxs_proxy_new(seg, k, &p), 0);
	ck_assert_int_gt(pxs_proxy_format(p, str, sizeof str), 0);
	pxs_proxy_free(p);
	fflush(NULL);
	pid_t c = fork();
	if (c == 0) {
		execl(consumer_path, consumer_path, str, "30000", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(pxs_test_wait_blocked(c, 10000), 0);
	size_t n = 50000;
	void *buf;
	ck_assert_int_eq(pxs_future_reserve(s, k, n, &buf), 0);
	pxs_test_fill(buf, n, k, 3);
	ck_assert_int_eq(pxs_future_commit(s, k), 0);
	ck_assert_int_eq(pxs_test_reap(c, 30), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* Concurrent put/get/evict: each worker writes self-verifying objects
 * under its own keys, reads its own and the others' keys, evicts some. */
#define WORKERS 3
#define KEYS_PER 64

static pxs_key
wkey(int w, int i)
{
	int id[2] = {w, i};
	return pxs_key_from_name(id, sizeof id);
}

static int
churn_worker(void *arg)
{
	int me = *(int *)arg;
	pxs_store *s = child_open();
	if (!s)
		return 50;
	static char buf[70000];
	unsigned x = (unsigned)me * 2654435761u + 1;
	double end = pxs_test_ms() + 3000;
	long ops = 0;
	while (pxs_test_ms() < end) {
		x = x * 1103515245u + 12345u;
		int i = (int)(x >> 8) % KEYS_PER,
		    other = (int)(x >> 20) % WORKERS;
		pxs_key k = wkey(me, i);
		pxs_view v;
		int rc;
		switch ((x >> 4) % 4) {
		case 0: {
			size_t n = PXS_TEST_HDR +
				   (x >> 12) % (sizeof buf - PXS_TEST_HDR);
			pxs_test_fill(buf, n, k, x);
			rc = pxs_put_at(s, k, buf, n);
			if (rc != 0 && rc != -EEXIST && rc != -ENOSPC) {
				fprintf(stderr, "worker %d: put: %s\n", me,
					pxs_strerror(rc));
				return 51;
			}
			break;
		}
		case 1:
		case 2:
			k = wkey(other, i);
			rc = pxs_get(s, k, &v);
			if (rc == 0) {
				if (pxs_test_verify(v.data, v.size, k) != 0)
					return 52;
				if (pxs_release(s, &v) != 0)
					return 53;
			} else if (rc != -ENOENT) {
				fprintf(stderr, "worker %d: get: %s\n", me,
					pxs_strerror(rc));
				return 54;
			}
			break;
		default:
			rc = pxs_evict(s, k);
			if (rc != 0 && rc != -ENOENT)
				return 55;
		}
		ops++;
	}
	/* Leave every key present, for the parent's final check. */
	for (int i = 0; i < KEYS_PER; i++) {
		pxs_key k = wkey(me, i);
		size_t n = PXS_TEST_HDR + (size_t)i * 100;
		pxs_test_fill(buf, n, k, (uint64_t)i);
		pxs_evict(s, k);
		if (pxs_put_at(s, k, buf, n) != 0)
			return 56;
	}
	printf("worker %d: %ld operations\n", me, ops);
	pxs_close(s);
	return 0;
}

START_TEST(concurrent_put_get_evict_verified)
{
	pxs_store *s = fresh(32 * MiB, 1024);
	int ids[WORKERS];
	pid_t w[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		ids[i] = i;
		w[i] = pxs_test_spawn(churn_worker, &ids[i]);
	}
	for (int i = 0; i < WORKERS; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 60), 0);
	for (int me = 0; me < WORKERS; me++)
		for (int i = 0; i < KEYS_PER; i++) {
			pxs_view v;
			pxs_key k = wkey(me, i);
			ck_assert_int_eq(pxs_get(s, k, &v), 0);
			ck_assert_uint_eq(v.size,
					  PXS_TEST_HDR + (size_t)i * 100);
			ck_assert_int_eq(pxs_test_verify(v.data, v.size, k), 0);
			ck_assert_int_eq(pxs_release(s, &v), 0);
		}
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.objects, WORKERS * KEYS_PER);
	ck_assert_uint_eq(st.pins, 0);
	pxs_test_done(s, seg);
}
END_TEST

/* Insertions without a global lock (insert.c): a crowded little table
 * (64 live at most, 128 slots), so that probe sequences are long, wrap
 * around its end and cross runs of tombstones that other processes'
 * evictions are sweeping. Each worker races the others for shared keys
 * and checks that a put it won reads back as its own value (a duplicate
 * insertion would show another worker's); a private key must be found
 * right after its put. Worker 0 runs pxs_check() meanwhile, which holds
 * insertions at the gate and must find the table consistent. */
#define CROWD_BACKGROUND 40
#define CROWD_SHARED 20

static pxs_key
crowd_key(int space, int i)
{
	int id[3] = {0x63726f77, space, i};
	return pxs_key_from_name(id, sizeof id);
}

static int
crowd_worker(void *arg)
{
	int me = *(int *)arg;
	pxs_store *s = child_open();
	if (!s)
		return 60;
	char mine[64], seen[64];
	unsigned x = (unsigned)me * 2654435761u + 7;
	double end = pxs_test_ms() + 2000, next_check = 0;
	long won = 0, lost = 0, checks = 0;
	while (pxs_test_ms() < end) {
		x = x * 1103515245u + 12345u;
		bool shared = (x >> 9) & 1;
		pxs_key k = shared ? crowd_key(1, (int)(x >> 12) % CROWD_SHARED)
				   : crowd_key(2 + me, (int)(x >> 12) % 8);
		snprintf(mine, sizeof mine, "worker %d op %u", me, x);
		int rc = pxs_put_at(s, k, mine, sizeof mine);
		if (rc == -EEXIST && shared) {
			lost++;
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "crowd %d: put: %s\n", me,
				pxs_strerror(rc));
			return 61;
		}
		won++;
		pxs_view v;
		if ((rc = pxs_get(s, k, &v)) != 0) {
			fprintf(stderr, "crowd %d: get after put: %s\n", me,
				pxs_strerror(rc));
			return 62;
		}
		memcpy(seen, v.data, sizeof seen);
		if (pxs_release(s, &v) != 0)
			return 63;
		if (memcmp(seen, mine, sizeof mine) != 0) {
			fprintf(stderr, "crowd %d: put \"%s\", read \"%s\"\n",
				me, mine, seen);
			return 64;
		}
		if ((rc = pxs_evict(s, k)) != 0) {
			fprintf(stderr, "crowd %d: evict: %s\n", me,
				pxs_strerror(rc));
			return 65;
		}
		if (me == 0 && pxs_test_ms() > next_check) {
			pxs_check_report r;
			if ((rc = pxs_check(s, &r)) != 0) {
				fprintf(stderr, "crowd: check: %s: %s\n",
					pxs_strerror(rc), r.first_error);
				return 66;
			}
			checks++;
			next_check = pxs_test_ms() + 20;
		}
	}
	printf("crowd worker %d: %ld puts won, %ld lost to a peer, %ld checks\n",
	       me, won, lost, checks);
	fflush(stdout);
	pxs_close(s);
	return won > 0 && (me != 0 || checks > 0) ? 0 : 67;
}

START_TEST(crowded_table_inserts_stay_unique_and_findable)
{
	pxs_store *s = fresh(4 * MiB, 64);
	char bg[32];
	for (int i = 0; i < CROWD_BACKGROUND; i++)
		ck_assert_int_eq(pxs_put_at(s, crowd_key(0, i), bg, sizeof bg),
				 0);
	int ids[WORKERS];
	pid_t w[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		ids[i] = i;
		w[i] = pxs_test_spawn(crowd_worker, &ids[i]);
	}
	for (int i = 0; i < WORKERS; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 60), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.slots_live, CROWD_BACKGROUND);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.objects, CROWD_BACKGROUND);
	for (int i = 0; i < CROWD_SHARED; i++)
		ck_assert_int_eq(pxs_evict(s, crowd_key(1, i)), -ENOENT);
	pxs_test_done(s, seg);
}
END_TEST

/* Pins without the slot lock (store.c, PINS): readers in two processes
 * pin the same few values over and over while a third evicts and replaces
 * them and churns the heap with same-sized blocks, so that a block freed
 * too early would soon hold someone else's bytes. A view must verify
 * before and after the reader yields; at the end nothing is pinned or
 * kept for a pin. */
#define PIN_KEYS 8
#define PIN_SIZE 2000

static pxs_key
pin_key(int i)
{
	int id[2] = {0x70696e73, i};
	return pxs_key_from_name(id, sizeof id);
}

static int
pin_writer(void *arg)
{
	(void)arg;
	pxs_store *s = child_open();
	if (!s)
		return 70;
	static char buf[PIN_SIZE];
	double end = pxs_test_ms() + 2000;
	for (uint64_t n = 1; pxs_test_ms() < end; n++) {
		int i = (int)(n % PIN_KEYS);
		pxs_key k = pin_key(i), f;
		int rc = pxs_evict(s, k);
		if (rc != 0 && rc != -ENOENT)
			return 71;
		pxs_test_fill(buf, PIN_SIZE, k, n);
		if ((rc = pxs_put_at(s, k, buf, PIN_SIZE)) != 0 &&
		    rc != -ENOSPC)
			return 72;
		memset(buf, (int)n, sizeof buf);
		if (pxs_put(s, buf, PIN_SIZE, &f) == 0 && pxs_evict(s, f) != 0)
			return 73;
	}
	pxs_close(s);
	return 0;
}

static int
pin_reader(void *arg)
{
	(void)arg;
	pxs_store *s = child_open();
	if (!s)
		return 80;
	long views = 0;
	double end = pxs_test_ms() + 2000;
	for (int n = 0; pxs_test_ms() < end; n++) {
		pxs_key k = pin_key(n % PIN_KEYS);
		pxs_view v;
		int rc = pxs_get(s, k, &v);
		if (rc == -ENOENT)
			continue;
		if (rc != 0)
			return 81;
		if (pxs_test_verify(v.data, v.size, k) != 0)
			return 82;
		sched_yield();
		if (pxs_test_verify(v.data, v.size, k) != 0)
			return 83;
		if (pxs_release(s, &v) != 0)
			return 84;
		views++;
	}
	printf("pin reader: %ld views verified\n", views);
	fflush(stdout);
	pxs_close(s);
	return views > 0 ? 0 : 85;
}

START_TEST(lock_free_pins_hold_values_through_evictions)
{
	pxs_store *s = fresh(1 * MiB, 64);
	pid_t w = pxs_test_spawn(pin_writer, NULL), r[2];
	for (int i = 0; i < 2; i++)
		r[i] = pxs_test_spawn(pin_reader, NULL);
	ck_assert_int_eq(pxs_test_reap(w, 60), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pxs_test_reap(r[i], 60), 0);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.pins, 0);
	ck_assert_uint_eq(st.evicted_pinned, 0);
	pxs_check_report rep;
	ck_assert_int_eq(pxs_check(s, &rep), 0);
	ck_assert_uint_eq(rep.leaked_blocks, 0);
	pxs_test_done(s, seg);
}
END_TEST

struct pinner {
	pxs_key *keys;
	int n;
	int fd;
};

/* Pin every key, say so, then wait to be killed. */
static int
child_pins_and_hangs(void *arg)
{
	struct pinner *p = arg;
	pxs_store *s = child_open();
	if (!s)
		return 60;
	for (int i = 0; i < p->n; i++) {
		pxs_view v;
		if (pxs_get(s, p->keys[i], &v) != 0)
			return 61;
	}
	if (write(p->fd, "p", 1) != 1)
		return 62;
	pause();
	return 63;
}

static void
assert_check_clean(pxs_store *s, pxs_check_report *r)
{
	int rc = pxs_check(s, r);
	ck_assert_msg(rc == 0, "pxs_check: %s (%u errors: %s)",
		      pxs_strerror(rc), r->errors, r->first_error);
	ck_assert_uint_eq(r->bytes_free + r->bytes_used, r->heap_size);
}

START_TEST(dead_readers_pins_are_reclaimed)
{
	pxs_store *s = fresh(4 * MiB, 256);
	pxs_key keys[50];
	static char buf[50000];
	pxs_stats base, st;
	pxs_check_report r;
	for (int i = 0; i < 50; i++) {
		keys[i] = pxs_key_from_name(&i, sizeof i);
		pxs_test_fill(buf, sizeof buf, keys[i], (uint64_t)i);
		ck_assert_int_eq(pxs_put_at(s, keys[i], buf, sizeof buf), 0);
	}
	/* A live reader of our own holds 5 of them. */
	pxs_view mine[5];
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pxs_get(s, keys[i], &mine[i]), 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct pinner pn = {keys, 50, p[1]};
	pid_t reader = pxs_test_spawn(child_pins_and_hangs, &pn);
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	kill(reader, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(reader, 10), 128 + SIGKILL);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(pxs_evict(s, keys[i]), 0);
	/* The dead reader's pins still hold 45 blocks; check counts them. */
	assert_check_clean(s, &r);
	ck_assert_uint_eq(r.dead_pins, 50);
	ck_assert_uint_eq(r.dead_processes, 1);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.evicted_pinned, 50);
	/* A put that needs that memory succeeds: the allocator reaps first. */
	static char big
		[1800 << 10]; /* more than is free until the reader is reaped */
	pxs_key bk;
	ck_assert_int_eq(pxs_put(s, big, sizeof big, &bk), 0);
	ck_assert_int_eq(pxs_reap(s), 0); /* already done by the allocation */
	assert_check_clean(s, &r);
	ck_assert_uint_eq(r.dead_pins, 0);
	ck_assert_uint_eq(r.dead_processes, 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.evicted_pinned, 5);
	/* Our 5 views are intact, and releasing them frees the rest. */
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(
			pxs_test_verify(mine[i].data, mine[i].size, keys[i]),
			0);
		ck_assert_int_eq(pxs_release(s, &mine[i]), 0);
	}
	ck_assert_int_eq(pxs_evict(s, bk), 0);
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	ck_assert_uint_eq(base.evicted_pinned, 0);
	ck_assert_uint_eq(base.pins, 0);
	assert_check_clean(s, &r);
	/* Our pin records (directory and table 0's array), nothing else. */
	ck_assert_uint_eq(r.blocks_used, 2);
	pxs_test_done(s, seg);
}
END_TEST

static int
child_reserves_and_hangs(void *arg)
{
	struct job *j = arg;
	pxs_store *s = child_open();
	void *buf;
	if (!s || pxs_future_reserve(s, j->k, j->size, &buf) != 0)
		return 70;
	memset(buf, 1, j->size / 2); /* half written */
	if (write(j->fd, "r", 1) != 1)
		return 71;
	pause();
	return 72;
}

START_TEST(producer_killed_between_reserve_and_commit)
{
	pxs_store *s = fresh(8 * MiB, 64);
	pxs_check_report r;
	struct job j = {.k = pxs_key_from_name("half", 4),
			.timeout = -1,
			.size = MiB,
			.expect = -EOWNERDEAD};
	pxs_stats base, st;
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	pid_t w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = pxs_test_spawn(child_wait, &j);
		ck_assert_int_eq(pxs_test_wait_blocked(w[i], 10000), 0);
	}
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	j.fd = p[1];
	pid_t prod = pxs_test_spawn(child_reserves_and_hangs, &j);
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	double t0 = pxs_test_ms();
	kill(prod, SIGKILL);
	pxs_test_reap(prod, 10);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 30), 0);
	printf("abandoned reservation detected in %.1f ms\n",
	       pxs_test_ms() - t0);
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, j.k, &v), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_done(s, j.k), -EOWNERDEAD);
	/* The block came back (the dead waiters' pin records after reaping). */
	ck_assert_int_ge(pxs_reap(s), 1);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.heap_used, base.heap_used);
	assert_check_clean(s, &r);
	/* Evict, recreate, and a new producer completes it. */
	ck_assert_int_eq(pxs_evict(s, j.k), 0);
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	j.expect = 0;
	pid_t w2 = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_set, &j), 30), 0);
	ck_assert_int_eq(pxs_test_reap(w2, 30), 0);
	pxs_test_done(s, seg);
}
END_TEST

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-OF-pxs-consumer\n", argv[0]);
		return 2;
	}
	consumer_path = argv[1];
	Suite *s = suite_create("multiproc");
	TCase *tc = tcase_create("multiproc");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, waiter_before_producer_exists);
	tcase_add_test(tc, many_waiters_all_wake);
	tcase_add_test(tc, timeouts_fire_in_other_processes);
	tcase_add_test(tc, view_survives_remote_evict);
	tcase_add_test(tc, killed_waiters_do_not_wedge_the_slot);
	tcase_add_test(tc, dead_owner_is_reported_not_hung);
	tcase_add_test(tc, disowned_future_outlives_its_creator);
	tcase_add_test(tc, exec_consumer_resolves_proxy_string);
	tcase_add_test(tc, concurrent_put_get_evict_verified);
	tcase_add_test(tc, crowded_table_inserts_stay_unique_and_findable);
	tcase_add_test(tc, lock_free_pins_hold_values_through_evictions);
	tcase_add_test(tc, dead_readers_pins_are_reclaimed);
	tcase_add_test(tc, producer_killed_between_reserve_and_commit);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
