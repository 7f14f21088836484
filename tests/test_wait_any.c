/* test_wait_any.c - pxs_future_wait_any(): bad input changes nothing, the
 * first ready future wins, 64 futures set in random order by 8 processes,
 * a killed owner and an evicted future end the wait with their index, and
 * futures beyond the process's wait records sleep and are woken, not
 * polled, and a watched future's expiry ends the wait. */
#include "internal.h"
#include "pxs_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define NF 64
#define NPROC 8

static void
same_stats(pxs_stats a, pxs_stats b)
{
	ck_assert_uint_eq(a.objects, b.objects);
	ck_assert_uint_eq(a.pending, b.pending);
	ck_assert_uint_eq(a.abandoned, b.abandoned);
	ck_assert_uint_eq(a.pins, b.pins);
	ck_assert_uint_eq(a.waiters, b.waiters);
	ck_assert_uint_eq(a.heap_used, b.heap_used);
	ck_assert_uint_eq(a.puts, b.puts);
	ck_assert_uint_eq(a.gets, b.gets);
}

START_TEST(bad_input_changes_nothing)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 256);
	pxs_key k[PXS_WAIT_ANY_MAX + 1];
	for (size_t i = 0; i <= PXS_WAIT_ANY_MAX; i++)
		ck_assert_int_eq(pxs_future_new(s, &k[i]), 0);
	pxs_view v;
	size_t which = 77;
	pxs_stats before = pxs_test_stat(s);
	ck_assert_int_eq(pxs_future_wait_any(NULL, k, 2, 0, &which, &v),
			 -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, NULL, 2, 0, &which, &v),
			 -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 2, 0, NULL, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 2, 0, &which, NULL),
			 -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 0, 0, &which, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, PXS_WAIT_ANY_MAX + 1, 0,
					     &which, &v),
			 -EINVAL);
	pxs_key z[3] = {k[0], {.hi = 0, .lo = 0}, k[1]};
	ck_assert_int_eq(pxs_future_wait_any(s, z, 3, 0, &which, &v), -EINVAL);
	ck_assert_uint_eq(which, 77);
	pxs_stats after = pxs_test_stat(s);
	same_stats(before, after);
	ck_assert_uint_eq(after.waits, before.waits);

	/* An unknown key ends the call with its index. */
	pxs_key u[3] = {k[0], k[1], ((pxs_key){.hi = 0xdeadbeef, .lo = 1})};
	ck_assert_int_eq(pxs_future_wait_any(s, u, 3, 50, &which, &v), -ENOENT);
	ck_assert_uint_eq(which, 2);
	/* All pending: a timeout, *which = n, nobody left registered. */
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 0, &which, &v),
			 -ETIMEDOUT);
	ck_assert_uint_eq(which, 3);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait_any(s, k, PXS_WAIT_ANY_MAX, 40,
					     &which, &v),
			 -ETIMEDOUT);
	ck_assert_msg(pxs_test_ms() - t0 >= 39.0, "timed out early");
	ck_assert_uint_eq(which, PXS_WAIT_ANY_MAX);
	same_stats(before, pxs_test_stat(s));
	pxs_test_done(s, name);
}
END_TEST

START_TEST(first_ready_wins)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pxs_future_new(s, &k[i]), 0);
	ck_assert_int_eq(pxs_future_set(s, k[2], "two", 3), 0);
	ck_assert_int_eq(pxs_future_set(s, k[3], "three", 5), 0);
	pxs_view v;
	size_t which = 9;
	ck_assert_int_eq(pxs_future_wait_any(s, k, 4, -1, &which, &v), 0);
	ck_assert_uint_eq(which, 2);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_mem_eq(v.data, "two", 3);
	ck_assert_uint_eq(pxs_test_stat(s).pins, 1);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* The same key twice, and a plain object. */
	pxs_key p;
	ck_assert_int_eq(pxs_put(s, "obj", 3, &p), 0);
	pxs_key d[3] = {k[0], k[0], p};
	ck_assert_int_eq(pxs_future_wait_any(s, d, 3, 100, &which, &v), 0);
	ck_assert_uint_eq(which, 2);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 0);
	pxs_test_done(s, name);
}
END_TEST

/* ---- 64 futures, 8 setter processes, random order ------------------- */

static pxs_store *g_s;
static pxs_key g_k[NF];

static int
setter(void *arg)
{
	int id = (int)(intptr_t)arg;
	int mine[NF / NPROC];
	for (int j = 0; j < NF / NPROC; j++)
		mine[j] = id + j * NPROC;
	srand((unsigned)getpid());
	for (int j = NF / NPROC - 1; j > 0; j--) {
		int r = rand() % (j + 1), t = mine[j];
		mine[j] = mine[r];
		mine[r] = t;
	}
	for (int j = 0; j < NF / NPROC; j++) {
		char buf[PXS_TEST_HDR + 64];
		usleep((useconds_t)(rand() % 3000));
		pxs_test_fill(buf, sizeof buf, g_k[mine[j]], (uint64_t)mine[j]);
		if (pxs_future_set(g_s, g_k[mine[j]], buf, sizeof buf) != 0)
			return 1;
	}
	return 0;
}

START_TEST(sixty_four_from_eight_processes)
{
	char name[64];
	g_s = pxs_test_store(name, 8 * MiB, 256);
	for (int i = 0; i < NF; i++)
		ck_assert_int_eq(pxs_future_new(g_s, &g_k[i]), 0);
	pid_t pid[NPROC];
	for (int p = 0; p < NPROC; p++)
		pid[p] = pxs_test_spawn(setter, (void *)(intptr_t)p);
	pxs_key left[NF];
	int orig[NF], seen[NF] = {0};
	memcpy(left, g_k, sizeof left);
	for (int i = 0; i < NF; i++)
		orig[i] = i;
	for (size_t n = NF; n > 0; n--) {
		pxs_view v;
		size_t which = NF + 1;
		ck_assert_int_eq(pxs_future_wait_any(g_s, left, n, 30000,
						     &which, &v),
				 0);
		ck_assert_uint_lt(which, n);
		ck_assert_int_eq(pxs_test_verify(v.data, v.size, left[which]),
				 0);
		seen[orig[which]]++;
		ck_assert_int_eq(pxs_release(g_s, &v), 0);
		left[which] = left[n - 1];
		orig[which] = orig[n - 1];
	}
	for (int i = 0; i < NF; i++)
		ck_assert_int_eq(seen[i], 1);
	for (int p = 0; p < NPROC; p++)
		ck_assert_int_eq(pxs_test_reap(pid[p], 30), 0);
	pxs_stats st = pxs_test_stat(g_s);
	ck_assert_uint_eq(st.waiters, 0);
	ck_assert_uint_eq(st.pins, 0);
	ck_assert_uint_eq(st.objects, NF);
	pxs_test_done(g_s, name);
}
END_TEST

/* ---- a killed owner and an evicted future --------------------------- */

static int g_pipe[2];

static int
owner(void *arg)
{
	(void)arg;
	char c = 0;
	if (pxs_future_new_at(g_s, g_k[NF - 1]) != 0)
		return 1;
	if (write(g_pipe[1], &c, 1) != 1)
		return 2;
	for (;;)
		pause();
}

struct later {
	pid_t kill_pid;
	pxs_key evict;
	pxs_key expire; /* given a 100 ms deadline instead */
};

static void *
later_fn(void *arg)
{
	struct later *l = arg;
	usleep(100 * 1000);
	if (l->kill_pid)
		kill(l->kill_pid, SIGKILL);
	else if (!pxs__key_is_zero(l->expire))
		pxs_expire(g_s, l->expire, 100);
	else
		pxs_evict(g_s, l->evict);
	return NULL;
}

START_TEST(killed_owner_and_evicted_future)
{
	char name[64];
	g_s = pxs_test_store(name, 8 * MiB, 256);
	for (int i = 0; i < NF - 1; i++)
		ck_assert_int_eq(pxs_future_new(g_s, &g_k[i]), 0);
	g_k[NF - 1] = ((pxs_key){.hi = 0x5eed, .lo = 64});
	ck_assert_int_eq(pipe(g_pipe), 0);
	pid_t pid = pxs_test_spawn(owner, NULL);
	char c;
	ck_assert_int_eq(read(g_pipe[0], &c, 1), 1);
	struct later l = {.kill_pid = pid};
	pthread_t th;
	pxs_view v;
	size_t which = 0;
	ck_assert_int_eq(pthread_create(&th, NULL, later_fn, &l), 0);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait_any(g_s, g_k, NF, 30000, &which, &v),
			 -EOWNERDEAD);
	double took = pxs_test_ms() - t0;
	ck_assert_uint_eq(which, NF - 1);
	/* Woken by the liveness slice (250 ms) after the kill, not the
	 * 30 s deadline. */
	ck_assert_msg(took < 10000, "abandonment seen after %.0f ms", took);
	pthread_join(th, NULL);
	ck_assert_int_eq(pxs_test_reap(pid, 10), 128 + SIGKILL);

	/* Evicting a watched future wakes the waiter with -ECANCELED. */
	l = (struct later){.evict = g_k[5]};
	ck_assert_int_eq(pthread_create(&th, NULL, later_fn, &l), 0);
	ck_assert_int_eq(pxs_future_wait_any(g_s, g_k, NF - 1, 30000, &which,
					     &v),
			 -ECANCELED);
	ck_assert_uint_eq(which, 5);
	pthread_join(th, NULL);
	pxs_stats st = pxs_test_stat(g_s);
	ck_assert_uint_eq(st.waiters, 0);
	ck_assert_uint_eq(st.pending, NF - 2);
	close(g_pipe[0]);
	close(g_pipe[1]);
	pxs_test_done(g_s, name);
}
END_TEST

START_TEST(expiry_of_a_watched_future_ends_the_wait)
{
	/* A deadline set before the wait and one set during it both end
	 * the wait with -ECANCELED and the future's index, long before the
	 * call's own timeout. */
	char name[64];
	g_s = pxs_test_store(name, 8 * MiB, 256);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pxs_future_new(g_s, &g_k[i]), 0);
	ck_assert_int_eq(pxs_expire(g_s, g_k[1], 100), 0);
	pxs_view v;
	size_t which = 99;
	ck_assert_int_eq(pxs_future_wait_any(g_s, g_k, 3, 60000, &which, &v),
			 -ECANCELED);
	ck_assert_uint_eq(which, 1);
	ck_assert_int_eq(pxs_exists(g_s, g_k[1]), 0);
	struct later l = {.expire = g_k[2]};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, later_fn, &l), 0);
	pxs_key rest[2] = {g_k[0], g_k[2]};
	ck_assert_int_eq(pxs_future_wait_any(g_s, rest, 2, 60000, &which, &v),
			 -ECANCELED);
	ck_assert_uint_eq(which, 1);
	pthread_join(th, NULL);
	pxs_stats st = pxs_test_stat(g_s);
	ck_assert_uint_eq(st.waiters, 0);
	ck_assert_uint_eq(st.pending, 1);
	pxs_test_done(g_s, name);
}
END_TEST

/* The voluntary context switches of thread tid so far, from /proc. */
static long
switches(pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

struct any_waiter {
	pid_t tid;
	int rc;
	size_t which;
	char got[8];
};

static void *
any_waiter_fn(void *arg)
{
	struct any_waiter *a = arg;
	pxs_view v;
	__atomic_store_n(&a->tid, gettid(), __ATOMIC_RELEASE);
	a->rc = pxs_future_wait_any(g_s, g_k, NF, 60000, &a->which, &v);
	if (a->rc == 0) {
		memcpy(a->got, v.data, v.size < 8 ? v.size : 8);
		pxs_release(g_s, &v);
	}
	return NULL;
}

START_TEST(futures_beyond_the_records_sleep)
{
	/* One thread waits on 64 futures: 24 of them get this process's
	 * wait records, the other 40 are watched uncounted. The thread must
	 * sleep (no 1 ms polling: it switches out a few times a second, at
	 * the liveness slices) and a set of an uncounted future must wake it;
	 * counts and pxs_check see only the counted part. */
	char name[64];
	g_s = pxs_test_store(name, 8 * MiB, 256);
	for (int i = 0; i < NF; i++)
		ck_assert_int_eq(pxs_future_new(g_s, &g_k[i]), 0);
	struct any_waiter a = {0};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, any_waiter_fn, &a), 0);
	while (!__atomic_load_n(&a.tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	double end = pxs_test_ms() + 20000;
	while (pxs_test_stat(g_s).waiters < PXS_PROC_WAITS &&
	       pxs_test_ms() < end)
		usleep(1000);
	ck_assert_int_eq(pxs_test_wait_blocked(a.tid, 20000), 0);
	ck_assert_uint_eq(pxs_test_stat(g_s).waiters, PXS_PROC_WAITS);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(g_s, &r), 0);
	ck_assert_msg(r.errors == 0, "pxs_check: %s", r.first_error);
	long before = switches(a.tid);
	usleep(600 * 1000);
	long slept = switches(a.tid) - before;
	/* 600 ms: about 3 liveness slices; polling every ms made ~600. */
	ck_assert_msg(slept < 60, "%ld context switches in 600 ms", slept);
	ck_assert_int_eq(pxs_future_set(g_s, g_k[NF - 1], "last", 5), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_uint_eq(a.which, NF - 1);
	ck_assert_str_eq(a.got, "last");
	ck_assert_uint_eq(pxs_test_stat(g_s).waiters, 0);
	ck_assert_int_eq(pxs_check(g_s, &r), 0);
	ck_assert_msg(r.errors == 0, "pxs_check: %s", r.first_error);
	pxs_test_done(g_s, name);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("wait_any");
	TCase *tc = tcase_create("wait_any");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bad_input_changes_nothing);
	tcase_add_test(tc, first_ready_wins);
	tcase_add_test(tc, sixty_four_from_eight_processes);
	tcase_add_test(tc, killed_owner_and_evicted_future);
	tcase_add_test(tc, futures_beyond_the_records_sleep);
	tcase_add_test(tc, expiry_of_a_watched_future_ends_the_wait);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
