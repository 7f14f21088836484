/* test_future.c - futures within one process (threads and handles): new,
 * set, reserve/commit, claim, wait, done, cancellation by evict, and
 * abandonment when the owning handle goes away. */
#include "internal.h"
#include "pxs_test.h"

#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

START_TEST(pending_then_set)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_done(s, k), 0);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), -EAGAIN);
	ck_assert_int_eq(pxs_future_wait(s, k, 0, &v), -ETIMEDOUT);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait(s, k, 60, &v), -ETIMEDOUT);
	double waited = pxs_test_ms() - t0;
	ck_assert_msg(waited >= 59.0, "timed out early: %.1f ms", waited);
	ck_assert_int_eq(pxs_future_new_at(s, k), -EEXIST);
	ck_assert_int_eq(pxs_put_at(s, k, "x", 1), -EEXIST);
	ck_assert_int_eq(pxs_future_set(s, k, "value", 5), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "other", 5), -EALREADY);
	ck_assert_int_eq(pxs_future_done(s, k), 1);
	ck_assert_int_eq(pxs_exists(s, k), 1);
	ck_assert_int_eq(pxs_future_wait(s, k, -1, &v), 0);
	ck_assert_uint_eq(v.size, 5);
	ck_assert_mem_eq(v.data, "value", 5);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.timeouts, 2);
	ck_assert_uint_eq(st.waits, 3);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.objects, 1);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(future_errors)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key zero = {0, 0}, none = pxs_key_from_name("none", 4), k;
	pxs_view v;
	void *buf;
	ck_assert_int_eq(pxs_future_new(NULL, &k), -EINVAL);
	ck_assert_int_eq(pxs_future_new(s, NULL), -EINVAL);
	ck_assert_int_eq(pxs_future_new_at(s, zero), -EINVAL);
	ck_assert_int_eq(pxs_future_set(s, none, "x", 1), -ENOENT);
	ck_assert_int_eq(pxs_future_set(s, zero, "x", 1), -EINVAL);
	ck_assert_int_eq(pxs_future_reserve(s, none, 1, &buf), -ENOENT);
	ck_assert_int_eq(pxs_future_commit(s, none), -ENOENT);
	ck_assert_int_eq(pxs_future_claim(s, none), -ENOENT);
	/* An absent key: only checking is -ENOENT; a wait waits for it. */
	ck_assert_int_eq(pxs_future_wait(s, none, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_future_wait(s, none, 10, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_future_wait(s, zero, 10, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_done(s, none), -ENOENT);
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_wait(s, k, 10, NULL), -EINVAL);
	ck_assert_int_eq(pxs_future_set(s, k, NULL, 1), -EINVAL);
	ck_assert_int_eq(pxs_future_reserve(s, k, 1, NULL), -EINVAL);
	ck_assert_int_eq(pxs_future_commit(s, k), -EAGAIN);
	pxs_stats a, b;
	ck_assert_int_eq(pxs_stat(s, &a), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "x", SIZE_MAX), -ENOSPC);
	ck_assert_int_eq(pxs_future_reserve(s, k, 64 * MiB, &buf), -ENOSPC);
	ck_assert_int_eq(pxs_stat(s, &b), 0);
	ck_assert_uint_eq(a.heap_used, b.heap_used);
	ck_assert_uint_eq(b.pending, 1);
	ck_assert_int_eq(pxs_future_done(s, k), 0); /* still pending */
	/* Timeouts at the extremes. */
	ck_assert_int_eq(pxs_future_wait(s, k, 0, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_future_set(s, k, "ok", 2), 0);
	ck_assert_int_eq(pxs_future_wait(s, k, LONG_MIN, &v),
			 0); /* < 0: forever, but it is set */
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_future_wait(s, k, LONG_MAX, &v), 0);
	ck_assert_mem_eq(v.data, "ok", 2);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* A plain object: wait and done return at once. */
	ck_assert_int_eq(pxs_put(s, "obj", 3, &k), 0);
	ck_assert_int_eq(pxs_future_done(s, k), 1);
	ck_assert_int_eq(pxs_future_wait(s, k, -1, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "x", 1), -EALREADY);
	ck_assert_int_eq(pxs_future_claim(s, k), -EALREADY);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(reserve_commit)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 64);
	pxs_store *other;
	ck_assert_int_eq(pxs_open(name, NULL, &other), 0);
	pxs_key k;
	pxs_view v;
	void *buf;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_reserve(s, k, MiB, &buf), 0);
	ck_assert_uint_eq((uintptr_t)buf % 16, 0);
	memset(buf, 0x5a, MiB);
	ck_assert_int_eq(pxs_future_wait(other, k, 0, &v),
			 -ETIMEDOUT); /* not visible yet */
	ck_assert_int_eq(pxs_get(other, k, &v), -EAGAIN);
	ck_assert_int_eq(pxs_future_done(other, k), 0);
	void *buf2;
	ck_assert_int_eq(pxs_future_reserve(other, k, 10, &buf2), -EBUSY);
	ck_assert_int_eq(pxs_future_set(other, k, "x", 1), -EBUSY);
	ck_assert_int_eq(pxs_future_claim(other, k), -EBUSY);
	ck_assert_int_eq(pxs_future_commit(other, k), -EPERM);
	ck_assert_int_eq(pxs_future_claim(s, k), 0); /* already ours */
	ck_assert_int_eq(pxs_future_commit(s, k), 0);
	ck_assert_int_eq(pxs_future_commit(s, k), -EALREADY);
	ck_assert_int_eq(pxs_future_wait(other, k, -1, &v), 0);
	ck_assert_uint_eq(v.size, MiB);
	ck_assert_uint_eq(((const unsigned char *)v.data)[MiB - 1], 0x5a);
	ck_assert_int_eq(pxs_release(other, &v), 0);
	/* Zero-size reservation. */
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_reserve(s, k, 0, &buf), 0);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pxs_future_commit(s, k), 0);
	ck_assert_int_eq(pxs_get(other, k, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	ck_assert_int_eq(pxs_release(other, &v), 0);
	pxs_close(other);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(evict_reserved_frees_on_commit)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 64);
	pxs_stats base, st;
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	pxs_key k;
	void *buf;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_reserve(s, k, 100000, &buf), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_future_done(s, k), -ENOENT);
	memset(buf, 1,
	       100000); /* the producer may still write: the block is kept */
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_gt(st.heap_used, base.heap_used);
	ck_assert_int_eq(pxs_future_commit(s, k), -ENOENT);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.heap_used, base.heap_used);
	ck_assert_uint_eq(st.evicted_pinned, 0);
	pxs_test_done(s, name);
}
END_TEST

struct waiter {
	pxs_store *s;
	pxs_key k;
	long timeout;
	long spin; /**< pxs_future_wait_spin's spin_us; <0: pxs_future_wait */
	int rc;
	char got[16];
	pid_t tid;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;
	pxs_view v;
	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	w->rc = w->spin < 0 ? pxs_future_wait(w->s, w->k, w->timeout, &v)
			    : pxs_future_wait_spin(w->s, w->k, w->timeout,
						   w->spin, &v);
	if (w->rc == 0) {
		memcpy(w->got, v.data, v.size < 15 ? v.size : 15);
		pxs_release(w->s, &v);
	}
	return NULL;
}

static pid_t
started_tid(struct waiter *w)
{
	pid_t t;
	while (!(t = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE)))
		sched_yield();
	return t;
}

START_TEST(threads_wake_on_set)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	struct waiter w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){.s = s, .k = k, .timeout = -1};
		pthread_create(&th[i], NULL, wait_thread, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(
			pxs_test_wait_blocked(started_tid(&w[i]), 10000), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "woken", 6), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].rc, 0);
		ck_assert_str_eq(w[i].got, "woken");
	}
	pxs_test_assert_idle(s);
	pxs_test_done(s, name);
}
END_TEST

/* One wait through handle h, spinning spin_us (<0: pxs_future_wait), on
 * a new future of s, set to val once the waiter is found asleep and
 * registered, or (asleep false) 20 ms into its spin and not registered. */
static void
wait_round(pxs_store *s, pxs_store *h, long spin_us, bool asleep,
	   const char *val)
{
	pxs_key k;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	struct waiter w = {.s = h, .k = k, .timeout = -1, .spin = spin_us};
	pthread_t th;
	pthread_create(&th, NULL, wait_thread, &w);
	pid_t tid = started_tid(&w);
	if (asleep)
		ck_assert_int_eq(pxs_test_wait_blocked(tid, 500), 0);
	else
		usleep(20000);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, asleep ? 1 : 0);
	ck_assert_int_eq(pxs_future_set(s, k, val, strlen(val) + 1), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_str_eq(w.got, val);
}

START_TEST(spin_before_sleep)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_wait_spin(s, k, 10, PXS_MAX_SPIN_US + 1L,
					      &v),
			 -EINVAL);
	/* The timeout bounds the spin. */
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait_spin(s, k, 50, PXS_MAX_SPIN_US, &v),
			 -ETIMEDOUT);
	double took = pxs_test_ms() - t0;
	ck_assert_msg(took >= 49.0 && took < 900.0, "took %.1f ms", took);
	/* Set during the spin: the spinner never registered as a sleeper. */
	wait_round(s, s, PXS_MAX_SPIN_US, false, "spun");
	/* A short spin, then the usual sleep until the set. */
	wait_round(s, s, 1000, true, "slept");
	pxs_test_done(s, name);
}
END_TEST

START_TEST(spin_set_per_handle)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64), *h;
	pxs_options o = {.spin_us = PXS_MAX_SPIN_US + 1};
	ck_assert_int_eq(pxs_open(name, &o, &h), -EINVAL);
	ck_assert_ptr_null(h);
	o.spin_us = PXS_MAX_SPIN_US;
	ck_assert_int_eq(pxs_open(name, &o, &h), 0);
	/* pxs_future_wait on h spins first; 0 on a wait overrides that. */
	wait_round(s, h, -1, false, "handle");
	wait_round(s, h, 0, true, "asleep");
	ck_assert_int_eq(pxs_close(h), 0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(evict_cancels_waiters)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	struct waiter w = {.s = s, .k = k, .timeout = 30000};
	pthread_t th;
	pthread_create(&th, NULL, wait_thread, &w);
	ck_assert_int_eq(pxs_test_wait_blocked(started_tid(&w), 10000), 0);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_evict(s, k), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, -ECANCELED);
	ck_assert_double_lt(pxs_test_ms() - t0, 5000);
	/* The key is free again: a new future under it works. */
	ck_assert_int_eq(pxs_future_new_at(s, k), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "again", 5), 0);
	pxs_test_done(s, name);
}
END_TEST

/* A waiter in another process, woken by an evict, that only runs again
 * after the key has a new future in the same slot: its leaving must not
 * touch the new future's waiter count (it wrapped to 2^32-1). */
struct late {
	const char *name;
	pxs_key k;
};

static int
late_waiter(void *arg)
{
	struct late *l = arg;
	pxs_store *h;
	pxs_view v;
	if (pxs_open(l->name, NULL, &h) != 0)
		return 1;
	int rc = pxs_future_wait(h, l->k, 20000, &v);
	pxs_close(h);
	return rc == -ECANCELED ? 0 : 2;
}

START_TEST(late_waiter_leaves_new_future_alone)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	struct late l = {name, pxs_key_from_name("late", 4)};
	ck_assert_int_eq(pxs_future_new_at(s, l.k), 0);
	pid_t pid = pxs_test_spawn(late_waiter, &l);
	ck_assert_int_eq(pxs_test_wait_blocked(pid, 10000), 0);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 1);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(pxs_evict(s, l.k), 0);
	ck_assert_int_eq(pxs_future_new_at(s, l.k), 0);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	ck_assert_int_eq(pxs_test_reap(pid, 30), 0);
	ck_assert_uint_eq(pxs_test_stat(s).waiters, 0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(closing_the_owner_abandons)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_store *owner, *claimer;
	ck_assert_int_eq(pxs_open(name, NULL, &owner), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &claimer), 0);
	pxs_key k, k2;
	pxs_view v;
	ck_assert_int_eq(pxs_future_new(owner, &k), 0);
	ck_assert_int_eq(pxs_future_new(owner, &k2), 0);
	ck_assert_int_eq(pxs_future_claim(claimer, k2),
			 0); /* k2 now belongs to claimer */
	struct waiter w = {.s = s, .k = k, .timeout = 30000};
	pthread_t th;
	pthread_create(&th, NULL, wait_thread, &w);
	ck_assert_int_eq(pxs_test_wait_blocked(started_tid(&w), 10000), 0);
	double t0 = pxs_test_ms();
	pxs_close(owner);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, -EOWNERDEAD);
	ck_assert_double_lt(pxs_test_ms() - t0, 5000);
	ck_assert_int_eq(pxs_get(s, k, &v), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_done(s, k), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_set(s, k, "late", 4), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_wait(s, k, -1, &v), -EOWNERDEAD);
	/* The claimed one is unaffected by the creator's departure. */
	ck_assert_int_eq(pxs_future_done(s, k2), 0);
	ck_assert_int_eq(pxs_future_set(claimer, k2, "fine", 4), 0);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.abandoned, 1);
	/* Evict frees the abandoned future; the key can be used again. */
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_future_new_at(s, k), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "new", 3), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_mem_eq(v.data, "new", 3);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_close(claimer);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(abandoned_reservation_returns_memory)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 64);
	pxs_store *producer;
	pxs_stats base, st;
	ck_assert_int_eq(pxs_stat(s, &base), 0); /* before the producer's handle */
	ck_assert_int_eq(pxs_open(name, NULL, &producer), 0);
	pxs_key k;
	void *buf;
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_reserve(producer, k, 3 * MiB, &buf), 0);
	pxs_close(producer); /* the reserver, now the owner, goes away */
	ck_assert_int_eq(pxs_future_done(s, k), -EOWNERDEAD);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.heap_used, base.heap_used);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(disown_outlives_the_creator)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 64);
	pxs_store *creator, *other;
	ck_assert_int_eq(pxs_open(name, NULL, &creator), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &other), 0);
	pxs_key zero = {0, 0}, none = pxs_key_from_name("none", 4);
	pxs_key k, obj, res, dead, later;
	pxs_view v;
	void *buf;
	/* Bad input and wrong states: an error, and nothing changes. */
	ck_assert_int_eq(pxs_future_new(creator, &k), 0);
	ck_assert_int_eq(pxs_put(s, "o", 1, &obj), 0);
	ck_assert_int_eq(pxs_future_new(s, &res), 0);
	ck_assert_int_eq(pxs_future_reserve(s, res, 64, &buf), 0);
	pxs_stats a = pxs_test_stat(s);
	ck_assert_int_eq(pxs_future_disown(NULL, k), -EINVAL);
	ck_assert_int_eq(pxs_future_disown(s, zero), -EINVAL);
	ck_assert_int_eq(pxs_future_disown(s, none), -ENOENT);
	ck_assert_int_eq(pxs_future_disown(other, k), -EPERM);
	ck_assert_int_eq(pxs_future_disown(s, obj), -EALREADY);
	ck_assert_int_eq(pxs_future_disown(s, res), -EBUSY);
	ck_assert_int_eq(pxs_future_disown(other, res), -EBUSY);
	pxs_stats b = pxs_test_stat(s);
	ck_assert_uint_eq(a.pending, b.pending);
	ck_assert_uint_eq(a.objects, b.objects);
	ck_assert_uint_eq(a.heap_used, b.heap_used);
	ck_assert_uint_eq(a.abandoned, b.abandoned);
	ck_assert_int_eq(pxs_future_commit(s, res), 0);
	ck_assert_int_eq(pxs_future_disown(s, res), -EALREADY);
	/* Disowned, the creator's handle can go: the future stays pending,
	 * and disowning it again (by anyone) is a no-op. */
	ck_assert_int_eq(pxs_future_disown(creator, k), 0);
	ck_assert_int_eq(pxs_future_disown(creator, k), 0);
	ck_assert_int_eq(pxs_future_disown(other, k), 0);
	ck_assert_int_eq(pxs_future_new(creator, &dead), 0);
	pxs_close(creator);
	ck_assert_int_eq(pxs_future_done(s, k), 0);
	ck_assert_int_eq(pxs_future_disown(s, dead), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_set(other, k, "late", 4), 0);
	ck_assert_int_eq(pxs_future_wait(s, k, 1000, &v), 0);
	ck_assert_mem_eq(v.data, "late", 4);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_future_disown(s, k), -EALREADY);
	/* Claiming an ownerless future makes its claimer's death count again. */
	ck_assert_int_eq(pxs_future_new(s, &later), 0);
	ck_assert_int_eq(pxs_future_disown(s, later), 0);
	ck_assert_int_eq(pxs_future_claim(other, later), 0);
	ck_assert_int_eq(pxs_future_disown(s, later), -EPERM);
	pxs_close(other);
	ck_assert_int_eq(pxs_future_done(s, later), -EOWNERDEAD);
	pxs_stats c = pxs_test_stat(s);
	ck_assert_uint_eq(c.abandoned, 2); /* dead and later, not k */
	pxs_test_done(s, name);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("future");
	TCase *tc = tcase_create("future");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pending_then_set);
	tcase_add_test(tc, future_errors);
	tcase_add_test(tc, reserve_commit);
	tcase_add_test(tc, evict_reserved_frees_on_commit);
	tcase_add_test(tc, threads_wake_on_set);
	tcase_add_test(tc, spin_before_sleep);
	tcase_add_test(tc, spin_set_per_handle);
	tcase_add_test(tc, evict_cancels_waiters);
	tcase_add_test(tc, late_waiter_leaves_new_future_alone);
	tcase_add_test(tc, closing_the_owner_abandons);
	tcase_add_test(tc, abandoned_reservation_returns_memory);
	tcase_add_test(tc, disown_outlives_the_creator);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
