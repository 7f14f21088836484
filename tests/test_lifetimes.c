/* test_lifetimes.c - keys across their lifetimes, between processes:
 * consumers that wait for keys (and stores) that do not exist yet, a
 * restarted producer taking its abandoned keys back, waiter counts that
 * stay exact when waiters are killed, and expiry.
 */
#include "internal.h"
#include "pxs_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define NSTEPS 100

static char seg[64];

static pxs_key
named(const char *prefix, int i)
{
	char n[64];
	snprintf(n, sizeof n, "%s/%d", prefix, i);
	return pxs_key_from_name(n, strlen(n));
}

/* ---- waiting for what is not there yet -------------------------------- */

/* The analysis: waits for every step in turn, none of which exists yet. */
static int
analysis(void *arg)
{
	(void)arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < NSTEPS; i++) {
		pxs_view v;
		char want[32];
		int n = snprintf(want, sizeof want, "step %d", i);
		if (pxs_future_wait(s, named("sim/step", i), 30000, &v))
			return 3;
		if (v.size != (size_t)n || memcmp(v.data, want, (size_t)n))
			return 4;
		pxs_release(s, &v);
	}
	pxs_close(s);
	return 0;
}

/* The simulation, started later: futures for odd steps, puts for even. */
static int
simulation(void *arg)
{
	(void)arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < NSTEPS; i++) {
		pxs_key k = named("sim/step", i);
		char val[32];
		int n = snprintf(val, sizeof val, "step %d", i);
		if (i % 2 ? pxs_future_new_at(s, k) ||
				    pxs_future_set(s, k, val, (size_t)n)
			  : pxs_put_at(s, k, val, (size_t)n))
			return 3;
	}
	pxs_close(s);
	return 0;
}

START_TEST(consumer_starts_before_the_producer)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	pid_t a = pxs_test_spawn(analysis, NULL);
	ck_assert_int_eq(pxs_test_wait_blocked(a, 10000), 0);
	/* Asleep on a key nobody has created: counted, and consistent. */
	pxs_check_report r;
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 1);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.waiters, 1);
	pid_t p = pxs_test_spawn(simulation, NULL);
	ck_assert_int_eq(pxs_test_reap(p, 60), 0);
	ck_assert_int_eq(pxs_test_reap(a, 60), 0);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 0);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.waiters, 0);
	pxs_test_done(s, seg);
}
END_TEST

START_TEST(a_wait_that_gives_up_leaves_nothing)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	pxs_key k = named("never", 0);
	pxs_view v;
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait(s, k, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_future_wait(s, k, 30, &v), -ETIMEDOUT);
	ck_assert_double_ge(pxs_test_ms() - t0, 30.0);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.waiters, 0);
	ck_assert_uint_eq(st.timeouts, 1);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.waiters, 0);
	pxs_test_done(s, seg);
}
END_TEST

static int
late_creator(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	pxs_options o = {.size = 8 * MiB, .flags = PXS_CREATE | PXS_EXCL};
	pxs_store *s;
	if (pxs_open(seg, &o, &s) || pxs_put_at(s, named("hello", 0), "hi", 2))
		return 2;
	pxs_close(s); /* the segment stays */
	return 0;
}

START_TEST(open_waits_for_the_segment)
{
	pxs_test_name(seg, sizeof seg);
	pxs_store *s;
	pxs_options o = {.wait_ms = 50};
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_open(seg, &o, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_double_ge(pxs_test_ms() - t0, 50.0);
	pid_t c = pxs_test_spawn(late_creator, NULL);
	o.wait_ms = 10000;
	t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_open(seg, &o, &s), 0);
	double waited = pxs_test_ms() - t0;
	printf("pxs_open waited %.0f ms for a segment created after 300 ms\n",
	       waited);
	ck_assert_double_ge(waited, 250.0);
	pxs_view v;
	ck_assert_int_eq(pxs_future_wait(s, named("hello", 0), 10000, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_test_reap(c, 30), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* ---- restarts --------------------------------------------------------- */

/* Creates job/0..9, sets 0..4, then is killed (step 5). */
static int
first_producer(void *arg)
{
	(void)arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < 10; i++)
		if (pxs_future_new_at(s, named("job", i)))
			return 3;
	for (int i = 0; i < 5; i++)
		if (pxs_future_set(s, named("job", i), "old", 3))
			return 4;
	raise(SIGKILL);
	return 5;
}

/* The restart: creates every job again; the set ones stay. */
static int
second_producer(void *arg)
{
	(void)arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < 10; i++) {
		int rc = pxs_future_new_at(s, named("job", i));
		if (rc != (i < 5 ? -EEXIST : 0))
			return 10 + i;
	}
	for (int i = 5; i < 10; i++)
		if (pxs_future_set(s, named("job", i), "new", 3))
			return 3;
	if (pxs_future_new_at(s, named("live", 0)) != -EEXIST ||
	    pxs_put_at(s, named("live", 0), "x", 1) != -EEXIST)
		return 4;
	pxs_close(s);
	return 0;
}

START_TEST(restarted_producer_replaces_abandoned_keys)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	ck_assert_int_eq(pxs_future_new_at(s, named("live", 0)), 0);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(first_producer, NULL), 30),
			 128 + SIGKILL);
	ck_assert_int_eq(pxs_future_done(s, named("job", 7)), -EOWNERDEAD);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(second_producer, NULL), 30),
			 0);
	for (int i = 0; i < 10; i++) {
		pxs_view v;
		ck_assert_int_eq(pxs_get(s, named("job", i), &v), 0);
		ck_assert_int_eq(memcmp(v.data, i < 5 ? "old" : "new", 3), 0);
		ck_assert_int_eq(pxs_release(s, &v), 0);
	}
	/* pxs_put_at takes an abandoned key over too. */
	pxs_store *t;
	ck_assert_int_eq(pxs_open(seg, NULL, &t), 0);
	ck_assert_int_eq(pxs_future_new_at(t, named("put", 0)), 0);
	pxs_close(t); /* abandons it */
	ck_assert_int_eq(pxs_future_done(s, named("put", 0)), -EOWNERDEAD);
	ck_assert_int_eq(pxs_put_at(s, named("put", 0), "value", 5), 0);
	ck_assert_int_eq(pxs_exists(s, named("put", 0)), 1);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.abandoned, 0);
	ck_assert_uint_eq(st.objects, 11);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* ---- exact waiter counts ---------------------------------------------- */

static int
sleeper(void *arg)
{
	pxs_store *s;
	pxs_view v;
	if (pxs_open(seg, NULL, &s))
		return 2;
	pxs_future_wait(s, *(pxs_key *)arg, -1, &v);
	return 3;
}

static uint32_t
entry_waiters(pxs_store *s, pxs_key k)
{
	uint64_t cur = 0;
	pxs_entry e;
	while (pxs_list(s, &cur, &e) == 1)
		if (e.key.hi == k.hi && e.key.lo == k.lo)
			return e.waiters;
	ck_abort_msg("no entry");
	return 0;
}

START_TEST(killed_waiters_are_not_counted)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	pxs_key f = named("f", 0), absent = named("absent", 0);
	ck_assert_int_eq(pxs_future_new_at(s, f), 0);
	pid_t w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = pxs_test_spawn(sleeper, i < 3 ? &f : &absent);
		ck_assert_int_eq(pxs_test_wait_blocked(w[i], 10000), 0);
	}
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 4);
	ck_assert_uint_eq(entry_waiters(s, f), 3);
	for (int i = 0; i < 4; i++) {
		kill(w[i], SIGKILL);
		ck_assert_int_eq(pxs_test_reap(w[i], 30), 128 + SIGKILL);
	}
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.dead_waiters, 4);
	ck_assert_int_eq(pxs_reap(s), 4);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 0);
	ck_assert_uint_eq(entry_waiters(s, f), 0);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.waiters, 0);
	ck_assert_uint_eq(r.dead_waiters, 0);
	/* The set wakes nobody, and still works. */
	ck_assert_int_eq(pxs_future_set(s, f, "v", 1), 0);
	/* A forged count is flagged, in a slot and in a doorbell. */
	uint32_t idx;
	ck_assert_int_eq(pxs__table_find(s, f, &idx), 0);
	s->slots[idx].waiters = 4;
	ck_assert_int_eq(pxs_check(s, &r), -EPROTO);
	ck_assert_ptr_nonnull(strstr(r.first_error, "waiters"));
	s->slots[idx].waiters = 0;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	s->hdr->bells[3].waiters = 2;
	ck_assert_int_eq(pxs_check(s, &r), -EPROTO);
	ck_assert_ptr_nonnull(strstr(r.first_error, "doorbells"));
	s->hdr->bells[3].waiters = 0;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* ---- expiry ------------------------------------------------------------ */

static int64_t
entry_ttl(pxs_store *s, pxs_key k)
{
	uint64_t cur = 0;
	pxs_entry e;
	while (pxs_list(s, &cur, &e) == 1)
		if (e.key.hi == k.hi && e.key.lo == k.lo)
			return e.ttl_ms;
	return -2; /* not listed */
}

START_TEST(objects_expire)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	pxs_key k = named("obj", 0), keep = named("obj", 1);
	pxs_stats base = pxs_test_stat(s);
	static char big[1 << 20];
	memset(big, 7, sizeof big);
	ck_assert_int_eq(pxs_expire(s, k, 100), -ENOENT);
	ck_assert_int_eq(pxs_put_at(s, k, big, sizeof big), 0);
	ck_assert_int_eq(pxs_put_at(s, keep, "keep", 4), 0);
	ck_assert_int_eq(entry_ttl(s, k), -1);
	ck_assert_int_eq(pxs_expire(s, k, 200), 0);
	int64_t ttl = entry_ttl(s, k);
	ck_assert(ttl > 0 && ttl <= 200);
	/* an expiry removed is no expiry */
	ck_assert_int_eq(pxs_expire(s, keep, 50), 0);
	ck_assert_int_eq(pxs_expire(s, keep, -1), 0);
	ck_assert_int_eq(entry_ttl(s, keep), -1);
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	/* That first pin allocated this handle's pin records: they stay. */
	base.heap_used += (uint64_t)s->g.nslots * sizeof(uint16_t);
	usleep(250 * 1000);
	/* absent to every lookup, the lock-free get included */
	pxs_view w;
	ck_assert_int_eq(pxs_get(s, k, &w), -ENOENT);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_future_wait(s, k, 0, &w), -ENOENT);
	ck_assert_int_eq(pxs_expire(s, k, 100), -ENOENT);
	ck_assert_int_eq(entry_ttl(s, k), -2);
	ck_assert_int_eq(pxs_exists(s, keep), 1);
	/* the pinned view survives */
	ck_assert_uint_eq(v.size, sizeof big);
	ck_assert_int_eq(memcmp(v.data, big, sizeof big), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* reclaimed by the reaper */
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_ge(st.heap_used, base.heap_used + sizeof big);
	ck_assert_int_eq(pxs_reap(s), 0);
	st = pxs_test_stat(s);
	ck_assert_uint_lt(st.heap_used, base.heap_used + 4096);
	ck_assert_uint_eq(st.objects, 1);
	/* an insertion of the same key meets the expired one and reclaims it */
	ck_assert_int_eq(pxs_put_at(s, k, big, sizeof big), 0);
	ck_assert_int_eq(pxs_expire(s, k, 1), 0);
	usleep(5 * 1000);
	ck_assert_int_eq(pxs_put_at(s, k, "again", 5), 0);
	ck_assert_int_eq(pxs_get(s, k, &w), 0);
	ck_assert_uint_eq(w.size, 5);
	ck_assert_int_eq(pxs_release(s, &w), 0);
	st = pxs_test_stat(s);
	ck_assert_uint_lt(st.heap_used, base.heap_used + 4096);
	ck_assert_uint_eq(st.objects, 2);
	/* 0 evicts at once */
	ck_assert_int_eq(pxs_expire(s, k, 0), 0);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_int_eq(pxs_expire(NULL, k, 1), -EINVAL);
	ck_assert_int_eq(pxs_expire(s, (pxs_key){0, 0}, 1), -EINVAL);
	pxs_test_done(s, seg);
}
END_TEST

struct waiter {
	pxs_store *s;
	pxs_key k;
	int rc;
};

static void *
wait_thread(void *p)
{
	struct waiter *w = p;
	pxs_view v;
	w->rc = pxs_future_wait(w->s, w->k, -1, &v);
	if (w->rc == 0)
		pxs_release(w->s, &v);
	return NULL;
}

START_TEST(pending_futures_expire)
{
	pxs_store *s = pxs_test_store(seg, 16 * MiB, 0);
	pxs_key f = named("pend", 0);
	ck_assert_int_eq(pxs_future_new_at(s, f), 0);
	ck_assert_int_eq(pxs_future_disown(s, f), 0);
	struct waiter w = {s, f, 1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, wait_thread, &w), 0);
	while (pxs_test_stat(s).waiters == 0)
		usleep(1000);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_expire(s, f, 100), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.rc, -ECANCELED);
	ck_assert_double_ge(pxs_test_ms() - t0, 90.0);
	ck_assert_int_eq(pxs_future_set(s, f, "late", 4), -ENOENT);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.waiters, 0);
	/* the key may be used again */
	ck_assert_int_eq(pxs_future_new_at(s, f), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, seg);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("lifetimes");
	TCase *tc = tcase_create("lifetimes");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, consumer_starts_before_the_producer);
	tcase_add_test(tc, a_wait_that_gives_up_leaves_nothing);
	tcase_add_test(tc, open_waits_for_the_segment);
	tcase_add_test(tc, restarted_producer_replaces_abandoned_keys);
	tcase_add_test(tc, killed_waiters_are_not_counted);
	tcase_add_test(tc, objects_expire);
	tcase_add_test(tc, pending_futures_expire);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
