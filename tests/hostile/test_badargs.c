/* test_badargs.c - PLAN F1-F5: every public function with bad arguments.
 *
 * F1: NULLs, the zero key, SIZE_MAX and SIZE_MAX - 4096, LONG_MIN and
 * LONG_MAX timeouts, forged, double-released and foreign views: each call
 * returns the exact code the header documents and changes nothing (a
 * snapshot of pxs_stat and every slot, bytes included, before and after).
 * F2/F3: the key and proxy parsers against a reference grammar, on lists
 * of near misses and on 10^6 random inputs, with round trips. F4: proxy
 * formatting into short buffers. F5: pxs_strerror for every code that
 * src/ returns (found by scanning the sources named in argv[1]).
 */
#include "hostile.h"
#include "pxs_test.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB HX_MiB

/* ck_assert marks a point (a write to Check's pipe) every time it passes:
 * too slow for loops of a million. This one costs nothing until it fails. */
#define FAST(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

static const char *src_dir; /* argv[1]: the library's src/ */

/* ---- the fixture: one of everything --------------------------------- */

struct fx {
	char name[64], name2[64];
	pxs_store *s;  /* the store under test */
	pxs_store *h;  /* a second handle on it */
	pxs_store *t;  /* another store */
	pxs_key obj;   /* an object: "object" */
	pxs_key pend;  /* a pending future owned by s */
	pxs_key res;   /* a future reserved by s */
	pxs_key aband; /* an abandoned future */
	pxs_key evp;   /* evicted while pinned */
	pxs_key absent;
	pxs_view pin_obj, pin_evp;
};

static void
fx_setup(struct fx *f)
{
	void *buf;
	pxs_store *gone;
	memset(f, 0, sizeof *f);
	f->s = pxs_test_store(f->name, 4 * MiB, 64);
	f->t = pxs_test_store(f->name2, 2 * MiB, 64);
	ck_assert_int_eq(pxs_open(f->name, NULL, &f->h), 0);
	f->obj = pxs_key_from_name("obj", 3);
	f->pend = pxs_key_from_name("pend", 4);
	f->res = pxs_key_from_name("res", 3);
	f->aband = pxs_key_from_name("aband", 5);
	f->evp = pxs_key_from_name("evp", 3);
	f->absent = pxs_key_from_name("absent", 6);
	ck_assert_int_eq(pxs_put_at(f->s, f->obj, "object", 6), 0);
	ck_assert_int_eq(pxs_future_new_at(f->s, f->pend), 0);
	ck_assert_int_eq(pxs_future_new_at(f->s, f->res), 0);
	ck_assert_int_eq(pxs_future_reserve(f->s, f->res, 4, &buf), 0);
	memcpy(buf, "resv", 4);
	ck_assert_int_eq(pxs_open(f->name, NULL, &gone), 0);
	ck_assert_int_eq(pxs_future_new_at(gone, f->aband), 0);
	ck_assert_int_eq(pxs_close(gone), 0); /* abandons it */
	ck_assert_int_eq(pxs_put_at(f->s, f->evp, "evicted", 7), 0);
	ck_assert_int_eq(pxs_get(f->s, f->evp, &f->pin_evp), 0);
	ck_assert_int_eq(pxs_evict(f->s, f->evp), 0);
	ck_assert_int_eq(pxs_get(f->s, f->obj, &f->pin_obj), 0);
	ck_assert_int_eq(pxs_future_done(f->s, f->aband), -EOWNERDEAD);
}

static void
fx_teardown(struct fx *f)
{
	ck_assert_int_eq(pxs_release(f->s, &f->pin_obj), 0);
	ck_assert_int_eq(pxs_release(f->s, &f->pin_evp), 0);
	pxs_close(f->h);
	pxs_test_done(f->s, f->name);
	pxs_test_done(f->t, f->name2);
}

/* The store is as snapshot @p before shows it (which is freed): @p call
 * changed nothing. */
static void
assert_unchanged(pxs_store *s, struct hx_snap *before, const char *call)
{
	struct hx_snap after;
	char why[256];
	ck_assert_int_eq(hx_snap_take(s, &after), 0);
	ck_assert_msg(hx_snap_cmp(before, &after, why, sizeof why) == 0,
		      "%s changed the store: %s", call, why);
	hx_snap_free(before);
	hx_snap_free(&after);
}

/* Run CALL on fixture f: it must return EXPECT, which the header must
 * document for FN, and leave every slot and stat figure as it was. */
#define BAD(f, FN, EXPECT, CALL)                                               \
	do {                                                                   \
		struct hx_snap a_;                                             \
		ck_assert_int_eq(hx_snap_take((f)->s, &a_), 0);                \
		int rc_ = (CALL);                                              \
		ck_assert_msg(rc_ == (EXPECT), "%s: got %d (%s), want %d",     \
			      #CALL, rc_, pxs_strerror(rc_), (EXPECT));        \
		ck_assert_msg(hx_documented(FN, rc_),                          \
			      "%s: %d is not documented for %s", #CALL, rc_,   \
			      hx_fn_name(FN));                                 \
		assert_unchanged((f)->s, &a_, #CALL);                          \
	} while (0)

static const char data[] = "0123456789abcdef";

START_TEST(f1_objects)
{
	struct fx f;
	fx_setup(&f);
	pxs_store *s = f.s;
	pxs_key zero = {0, 0}, k = {0x1234, 0x5678}, k0 = k;
	pxs_view v, v0;
	memset(&v0, 0xa5, sizeof v0);
	v = v0;

	BAD(&f, HX_PUT, -EINVAL, pxs_put(NULL, data, 1, &k));
	BAD(&f, HX_PUT, -EINVAL, pxs_put(s, NULL, 1, &k));
	BAD(&f, HX_PUT, -EINVAL, pxs_put(s, data, 1, NULL));
	BAD(&f, HX_PUT, -EINVAL, pxs_put(s, NULL, SIZE_MAX, &k));
	BAD(&f, HX_PUT, -ENOSPC, pxs_put(s, data, SIZE_MAX, &k));
	BAD(&f, HX_PUT, -ENOSPC, pxs_put(s, data, SIZE_MAX - 4096, &k));
	BAD(&f, HX_PUT, -ENOSPC, pxs_put(s, data, 4 * MiB, &k));
	ck_assert(pxs_key_equal(k, k0)); /* written only on success */

	BAD(&f, HX_PUT_AT, -EINVAL, pxs_put_at(NULL, f.absent, data, 1));
	BAD(&f, HX_PUT_AT, -EINVAL, pxs_put_at(s, zero, data, 1));
	BAD(&f, HX_PUT_AT, -EINVAL, pxs_put_at(s, zero, NULL, 0));
	BAD(&f, HX_PUT_AT, -EINVAL, pxs_put_at(s, f.absent, NULL, 1));
	BAD(&f, HX_PUT_AT, -EEXIST, pxs_put_at(s, f.obj, data, 1));
	BAD(&f, HX_PUT_AT, -EEXIST, pxs_put_at(s, f.pend, data, 1));
	BAD(&f, HX_PUT_AT, -EEXIST, pxs_put_at(s, f.res, data, 1));
	/* (An abandoned key is taken over by put_at and future_new_at: a
	 * restart, tested in test_lifetimes.c; f.aband stays abandoned here.) */
	BAD(&f, HX_PUT_AT, -ENOSPC, pxs_put_at(s, f.absent, data, SIZE_MAX));
	BAD(&f, HX_PUT_AT, -ENOSPC,
	    pxs_put_at(s, f.absent, data, SIZE_MAX - 4096));
	/* A taken key with an impossible size: -EEXIST or -ENOSPC, never
	 * a wrapped allocation. */
	{
		int rc = pxs_put_at(s, f.obj, data, SIZE_MAX);
		ck_assert(rc == -ENOSPC || rc == -EEXIST);
	}

	BAD(&f, HX_GET, -EINVAL, pxs_get(NULL, f.obj, &v));
	BAD(&f, HX_GET, -EINVAL, pxs_get(s, zero, &v));
	BAD(&f, HX_GET, -EINVAL, pxs_get(s, f.obj, NULL));
	BAD(&f, HX_GET, -ENOENT, pxs_get(s, f.absent, &v));
	BAD(&f, HX_GET, -ENOENT, pxs_get(s, f.evp, &v));
	BAD(&f, HX_GET, -EAGAIN, pxs_get(s, f.pend, &v));
	BAD(&f, HX_GET, -EAGAIN, pxs_get(s, f.res, &v));
	BAD(&f, HX_GET, -EAGAIN, pxs_get(f.h, f.res, &v));
	BAD(&f, HX_GET, -EOWNERDEAD, pxs_get(s, f.aband, &v));
	ck_assert_mem_eq(&v, &v0, sizeof v); /* written only on success */

	BAD(&f, HX_EXISTS, -EINVAL, pxs_exists(NULL, f.obj));
	BAD(&f, HX_EXISTS, -EINVAL, pxs_exists(s, zero));
	BAD(&f, HX_EXISTS, 0, pxs_exists(s, f.absent));
	BAD(&f, HX_EXISTS, 0, pxs_exists(s, f.pend));
	BAD(&f, HX_EXISTS, 0, pxs_exists(s, f.res));
	BAD(&f, HX_EXISTS, 0, pxs_exists(s, f.aband));
	BAD(&f, HX_EXISTS, 0, pxs_exists(s, f.evp));
	BAD(&f, HX_EXISTS, 1, pxs_exists(s, f.obj));

	BAD(&f, HX_EVICT, -EINVAL, pxs_evict(NULL, f.obj));
	BAD(&f, HX_EVICT, -EINVAL, pxs_evict(s, zero));
	BAD(&f, HX_EVICT, -ENOENT, pxs_evict(s, f.absent));
	BAD(&f, HX_EVICT, -ENOENT, pxs_evict(s, f.evp));

	pxs_stats st;
	memset(&st, 0x5a, sizeof st);
	BAD(&f, HX_STAT, -EINVAL, pxs_stat(NULL, &st));
	BAD(&f, HX_STAT, -EINVAL, pxs_stat(s, NULL));

	uint64_t cur = 0;
	pxs_entry e;
	pxs_proc_info pi;
	BAD(&f, HX_LIST, -EINVAL, pxs_list(NULL, &cur, &e));
	BAD(&f, HX_LIST, -EINVAL, pxs_list(s, NULL, &e));
	BAD(&f, HX_LIST, -EINVAL, pxs_list(s, &cur, NULL));
	cur = UINT64_MAX;
	BAD(&f, HX_LIST, 0, pxs_list(s, &cur, &e));
	BAD(&f, HX_PROC_LIST, -EINVAL, pxs_proc_list(NULL, &cur, &pi));
	BAD(&f, HX_PROC_LIST, -EINVAL, pxs_proc_list(s, NULL, &pi));
	BAD(&f, HX_PROC_LIST, -EINVAL, pxs_proc_list(s, &cur, NULL));
	cur = UINT64_MAX;
	BAD(&f, HX_PROC_LIST, 0, pxs_proc_list(s, &cur, &pi));

	pxs_check_report r;
	BAD(&f, HX_CHECK, -EINVAL, pxs_check(NULL, &r));
	BAD(&f, HX_CHECK, -EINVAL, pxs_check(s, NULL));
	BAD(&f, HX_CHECK, 0, pxs_check(s, &r));
	ck_assert_uint_eq(r.errors, 0);
	BAD(&f, HX_REAP, -EINVAL, pxs_reap(NULL));

	ck_assert_int_eq(pxs_close(NULL), 0);
	ck_assert_ptr_null(pxs_store_name(NULL));
	BAD(&f, HX_UNLINK, -EINVAL, pxs_unlink(NULL));
	fx_teardown(&f);
}
END_TEST

START_TEST(f1_futures)
{
	struct fx f;
	fx_setup(&f);
	pxs_store *s = f.s, *h = f.h;
	pxs_key zero = {0, 0}, k = {7, 7}, k0 = k;
	pxs_view v, v0;
	void *buf = (void *)&f, *buf0 = buf;
	memset(&v0, 0xa5, sizeof v0);
	v = v0;

	BAD(&f, HX_FNEW, -EINVAL, pxs_future_new(NULL, &k));
	BAD(&f, HX_FNEW, -EINVAL, pxs_future_new(s, NULL));
	ck_assert(pxs_key_equal(k, k0));
	BAD(&f, HX_FNEW_AT, -EINVAL, pxs_future_new_at(NULL, f.absent));
	BAD(&f, HX_FNEW_AT, -EINVAL, pxs_future_new_at(s, zero));
	BAD(&f, HX_FNEW_AT, -EEXIST, pxs_future_new_at(s, f.obj));
	BAD(&f, HX_FNEW_AT, -EEXIST, pxs_future_new_at(s, f.pend));
	BAD(&f, HX_FNEW_AT, -EEXIST, pxs_future_new_at(s, f.res));

	BAD(&f, HX_FSET, -EINVAL, pxs_future_set(NULL, f.pend, data, 1));
	BAD(&f, HX_FSET, -EINVAL, pxs_future_set(s, zero, data, 1));
	BAD(&f, HX_FSET, -EINVAL, pxs_future_set(s, f.pend, NULL, 1));
	BAD(&f, HX_FSET, -EINVAL, pxs_future_set(s, f.pend, NULL, SIZE_MAX));
	BAD(&f, HX_FSET, -ENOENT, pxs_future_set(s, f.absent, data, 1));
	BAD(&f, HX_FSET, -ENOENT, pxs_future_set(s, f.evp, data, 1));
	BAD(&f, HX_FSET, -EALREADY, pxs_future_set(s, f.obj, data, 1));
	BAD(&f, HX_FSET, -EBUSY, pxs_future_set(s, f.res, data, 1));
	BAD(&f, HX_FSET, -EBUSY, pxs_future_set(h, f.res, data, 1));
	BAD(&f, HX_FSET, -EOWNERDEAD, pxs_future_set(s, f.aband, data, 1));
	BAD(&f, HX_FSET, -ENOSPC, pxs_future_set(s, f.pend, data, SIZE_MAX));
	BAD(&f, HX_FSET, -ENOSPC,
	    pxs_future_set(s, f.pend, data, SIZE_MAX - 4096));
	BAD(&f, HX_FSET, -ENOSPC, pxs_future_set(h, f.pend, data, 8 * MiB));

	BAD(&f, HX_FRESERVE, -EINVAL,
	    pxs_future_reserve(NULL, f.pend, 1, &buf));
	BAD(&f, HX_FRESERVE, -EINVAL, pxs_future_reserve(s, zero, 1, &buf));
	BAD(&f, HX_FRESERVE, -EINVAL, pxs_future_reserve(s, f.pend, 1, NULL));
	BAD(&f, HX_FRESERVE, -ENOENT, pxs_future_reserve(s, f.absent, 1, &buf));
	BAD(&f, HX_FRESERVE, -EALREADY, pxs_future_reserve(s, f.obj, 1, &buf));
	BAD(&f, HX_FRESERVE, -EBUSY, pxs_future_reserve(s, f.res, 1, &buf));
	BAD(&f, HX_FRESERVE, -EBUSY, pxs_future_reserve(h, f.res, 1, &buf));
	BAD(&f, HX_FRESERVE, -EOWNERDEAD,
	    pxs_future_reserve(s, f.aband, 1, &buf));
	BAD(&f, HX_FRESERVE, -ENOSPC,
	    pxs_future_reserve(s, f.pend, SIZE_MAX, &buf));
	BAD(&f, HX_FRESERVE, -ENOSPC,
	    pxs_future_reserve(s, f.pend, SIZE_MAX - 4096, &buf));
	ck_assert_ptr_eq(buf, buf0);

	BAD(&f, HX_FCOMMIT, -EINVAL, pxs_future_commit(NULL, f.res));
	BAD(&f, HX_FCOMMIT, -EINVAL, pxs_future_commit(s, zero));
	BAD(&f, HX_FCOMMIT, -ENOENT, pxs_future_commit(s, f.absent));
	BAD(&f, HX_FCOMMIT, -ENOENT, pxs_future_commit(s, f.evp));
	BAD(&f, HX_FCOMMIT, -EAGAIN, pxs_future_commit(s, f.pend));
	BAD(&f, HX_FCOMMIT, -EALREADY, pxs_future_commit(s, f.obj));
	BAD(&f, HX_FCOMMIT, -EOWNERDEAD, pxs_future_commit(s, f.aband));
	BAD(&f, HX_FCOMMIT, -EPERM, pxs_future_commit(h, f.res));

	BAD(&f, HX_FCLAIM, -EINVAL, pxs_future_claim(NULL, f.pend));
	BAD(&f, HX_FCLAIM, -EINVAL, pxs_future_claim(s, zero));
	BAD(&f, HX_FCLAIM, -ENOENT, pxs_future_claim(s, f.absent));
	BAD(&f, HX_FCLAIM, -EALREADY, pxs_future_claim(s, f.obj));
	BAD(&f, HX_FCLAIM, -EBUSY, pxs_future_claim(h, f.res));
	BAD(&f, HX_FCLAIM, -EOWNERDEAD, pxs_future_claim(s, f.aband));
	BAD(&f, HX_FCLAIM, 0, pxs_future_claim(s, f.pend)); /* already its */
	BAD(&f, HX_FCLAIM, 0, pxs_future_claim(s, f.res));

	BAD(&f, HX_FDONE, -EINVAL, pxs_future_done(NULL, f.pend));
	BAD(&f, HX_FDONE, -EINVAL, pxs_future_done(s, zero));
	BAD(&f, HX_FDONE, -ENOENT, pxs_future_done(s, f.absent));
	BAD(&f, HX_FDONE, -ENOENT, pxs_future_done(s, f.evp));
	BAD(&f, HX_FDONE, -EOWNERDEAD, pxs_future_done(s, f.aband));
	BAD(&f, HX_FDONE, 0, pxs_future_done(s, f.pend));
	BAD(&f, HX_FDONE, 0, pxs_future_done(h, f.res));
	BAD(&f, HX_FDONE, 1, pxs_future_done(s, f.obj));

	BAD(&f, HX_FWAIT, -EINVAL, pxs_future_wait(NULL, f.pend, 0, &v));
	BAD(&f, HX_FWAIT, -EINVAL, pxs_future_wait(s, zero, LONG_MIN, &v));
	BAD(&f, HX_FWAIT, -EINVAL, pxs_future_wait(s, zero, LONG_MAX, &v));
	BAD(&f, HX_FWAIT, -EINVAL, pxs_future_wait(s, f.pend, LONG_MIN, NULL));
	BAD(&f, HX_FWAIT, -EINVAL, pxs_future_wait(s, f.pend, LONG_MAX, NULL));
	/* An absent key is -ENOENT only when checking; a wait waits for it
	 * (LONG_MIN and LONG_MAX would wait for ever). */
	BAD(&f, HX_FWAIT, -ENOENT, pxs_future_wait(s, f.absent, 0, &v));
	BAD(&f, HX_FWAIT, -ETIMEDOUT, pxs_future_wait(s, f.absent, 1, &v));
	BAD(&f, HX_FWAIT, -ENOENT, pxs_future_wait(s, f.evp, 0, &v));
	BAD(&f, HX_FWAIT, -ETIMEDOUT, pxs_future_wait(s, f.pend, 0, &v));
	BAD(&f, HX_FWAIT, -ETIMEDOUT, pxs_future_wait(h, f.res, 0, &v));
	BAD(&f, HX_FWAIT, -EOWNERDEAD,
	    pxs_future_wait(s, f.aband, LONG_MIN, &v));
	BAD(&f, HX_FWAIT, -EOWNERDEAD,
	    pxs_future_wait(s, f.aband, LONG_MAX, &v));
	BAD(&f, HX_FWAIT, -EINVAL,
	    pxs_future_wait_spin(NULL, f.pend, 0, 0, &v));
	BAD(&f, HX_FWAIT, -EINVAL,
	    pxs_future_wait_spin(s, f.pend, 0, PXS_MAX_SPIN_US + 1L, &v));
	BAD(&f, HX_FWAIT, -EINVAL,
	    pxs_future_wait_spin(s, f.pend, LONG_MAX, LONG_MAX, &v));
	BAD(&f, HX_FWAIT, -EINVAL,
	    pxs_future_wait_spin(s, f.pend, LONG_MAX, LONG_MIN, NULL));
	BAD(&f, HX_FWAIT, -ETIMEDOUT,
	    pxs_future_wait_spin(s, f.pend, 0, LONG_MIN, &v));
	BAD(&f, HX_FWAIT, -ETIMEDOUT,
	    pxs_future_wait_spin(s, f.pend, 1, PXS_MAX_SPIN_US, &v));
	BAD(&f, HX_FWAIT, -EOWNERDEAD,
	    pxs_future_wait_spin(s, f.aband, LONG_MAX, PXS_MAX_SPIN_US, &v));
	{
		pxs_key any[PXS_WAIT_ANY_MAX + 1], any0[3] = {f.pend, zero,
							       f.obj};
		size_t w = 5;
		for (size_t i = 0; i <= PXS_WAIT_ANY_MAX; i++)
			any[i] = f.pend;
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(NULL, any, 1, 0, &w, &v));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, NULL, 1, 0, &w, &v));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, any, 1, LONG_MAX, NULL, &v));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, any, 1, LONG_MAX, &w, NULL));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, any, 0, LONG_MAX, &w, &v));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, any, PXS_WAIT_ANY_MAX + 1,
					LONG_MAX, &w, &v));
		BAD(&f, HX_FWAIT_ANY, -EINVAL,
		    pxs_future_wait_any(s, any0, 3, LONG_MIN, &w, &v));
		ck_assert_uint_eq(w, 5);
		BAD(&f, HX_FWAIT_ANY, -ETIMEDOUT,
		    pxs_future_wait_any(s, any, PXS_WAIT_ANY_MAX, 0, &w, &v));
		ck_assert_uint_eq(w, PXS_WAIT_ANY_MAX);
		any[1] = f.absent;
		BAD(&f, HX_FWAIT_ANY, -ENOENT,
		    pxs_future_wait_any(s, any, 3, LONG_MAX, &w, &v));
		ck_assert_uint_eq(w, 1);
		any[1] = f.aband;
		BAD(&f, HX_FWAIT_ANY, -EOWNERDEAD,
		    pxs_future_wait_any(s, any, 3, LONG_MIN, &w, &v));
		ck_assert_uint_eq(w, 1);
		any[0] = f.res;
		BAD(&f, HX_FWAIT_ANY, -ETIMEDOUT,
		    pxs_future_wait_any(h, any, 1, 0, &w, &v));
	}
	ck_assert_mem_eq(&v, &v0, sizeof v);

	/* A value is returned at once whatever the timeout. */
	ck_assert_int_eq(pxs_future_wait(s, f.obj, LONG_MIN, &v), 0);
	ck_assert_mem_eq(v.data, "object", 6);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_future_wait(s, f.obj, LONG_MAX, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	fx_teardown(&f);
}
END_TEST

/* LONG_MIN and LONG_MAX waits on a pending future, set by a thread once
 * the waiter sleeps in the kernel. */
struct setter {
	pxs_store *s;
	pxs_key k;
	pid_t tid;
	int rc;
};

static void *
set_when_blocked(void *arg)
{
	struct setter *st = arg;
	while (!__atomic_load_n(&st->tid, __ATOMIC_ACQUIRE))
		;
	if (pxs_test_wait_blocked(st->tid, 10000) < 0) {
		st->rc = -1;
		return NULL;
	}
	st->rc = pxs_future_set(st->s, st->k, "late", 4);
	return NULL;
}

START_TEST(f1_wait_extreme_timeouts)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	long timeouts[] = {LONG_MIN, -1, LONG_MAX, INT_MAX};
	for (size_t i = 0; i < sizeof timeouts / sizeof *timeouts; i++) {
		struct setter st = {.s = s};
		pthread_t t;
		pxs_view v;
		ck_assert_int_eq(pxs_future_new(s, &st.k), 0);
		ck_assert_int_eq(
			pthread_create(&t, NULL, set_when_blocked, &st), 0);
		__atomic_store_n(&st.tid, (pid_t)gettid(), __ATOMIC_RELEASE);
		int rc = pxs_future_wait(s, st.k, timeouts[i], &v);
		pthread_join(t, NULL);
		ck_assert_int_eq(st.rc, 0);
		ck_assert_msg(rc == 0, "timeout %ld: %s", timeouts[i],
			      pxs_strerror(rc));
		ck_assert_uint_eq(v.size, 4);
		ck_assert_mem_eq(v.data, "late", 4);
		ck_assert_int_eq(pxs_release(s, &v), 0);
	}
	pxs_test_done(s, name);
}
END_TEST

START_TEST(f1_open_options)
{
	char name[64], path[128];
	pxs_store *s = (pxs_store *)&s;
	pxs_options bad[] = {
		{.flags = PXS_CREATE, .size = SIZE_MAX},
		{.flags = PXS_CREATE, .size = SIZE_MAX - 4096},
		{.flags = PXS_CREATE, .size = SIZE_MAX / 2 + 1},
		{.flags = PXS_CREATE, .size = PXS_MIN_SIZE - 1},
		{.flags = PXS_CREATE, .size = 1},
		{.flags = PXS_CREATE, .capacity = UINT32_MAX},
		{.flags = PXS_CREATE, .size = 2 * MiB, .capacity = 1u << 16},
		{.flags = PXS_CREATE, .mode = (mode_t)~0u},
		{.flags = PXS_CREATE, .mode = 04600},
		{.flags = ~0u},
		{.flags = PXS_EXCL},
		{.flags = PXS_CREATE | 0x80000000u},
		{.flags = PXS_CREATE, .spin_us = PXS_MAX_SPIN_US + 1},
		{.flags = PXS_CREATE, .spin_us = UINT32_MAX},
	};
	pxs_test_name(name, sizeof name);
	hx_path(path, sizeof path, name);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s = (pxs_store *)&s;
		int rc = pxs_open(name, &bad[i], &s);
		ck_assert_msg(rc == -EINVAL, "options %zu: %d (%s)", i, rc,
			      pxs_strerror(rc));
		ck_assert_ptr_null(s);
		ck_assert_int_eq(access(path, F_OK), -1);
	}
	s = (pxs_store *)&s;
	ck_assert_int_eq(pxs_open(NULL, NULL, &s), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(pxs_open(name, NULL, NULL), -EINVAL);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* ---- views: forged, foreign, double-released ------------------------- */

START_TEST(f1_release_views)
{
	struct fx f;
	fx_setup(&f);
	pxs_store *s = f.s;
	pxs_view v, w, g, zero_view;
	memset(&zero_view, 0, sizeof zero_view);

	/* Never pinned: a zeroed view is a no-op, garbage is -EINVAL. */
	v = zero_view;
	BAD(&f, HX_RELEASE, 0, pxs_release(s, &v));
	BAD(&f, HX_RELEASE, 0, pxs_release(s, NULL));
	BAD(&f, HX_RELEASE, 0, pxs_release(NULL, NULL));
	BAD(&f, HX_RELEASE, 0, pxs_release(NULL, &v));
	memset(&g, 0xa5, sizeof g);
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &g));
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(NULL, &g));

	ck_assert_int_eq(pxs_get(s, f.obj, &v), 0);
	/* Another store, another handle on the same store, no store. */
	w = v;
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(f.t, &w));
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(f.h, &w));
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(NULL, &w));
	ck_assert_mem_eq(&w, &v, sizeof v); /* a failed release keeps it */

	/* Forged priv[0]: index out of range, wrong generation, a slot
	 * this process does not pin, index of an empty slot. */
	uint64_t forged[] = {
		0xffffffffu | (v.priv[0] & 0xffffffff00000000ull),
		v.priv[0] ^ (1ull << 40),
		v.priv[0] ^ (1ull << 32),
		(v.priv[0] & 0xffffffff00000000ull) |
			((v.priv[0] + 1) & (f.s->g.nslots - 1)),
		(uint64_t)f.s->g.nslots,
		UINT64_MAX,
		0,
	};
	for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
		w = v;
		w.priv[0] = forged[i];
		BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &w));
	}
	/* Forged priv[1] (the handle): another pointer. */
	w = v;
	w.priv[1] = (uintptr_t)f.h;
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &w));
	w.priv[1] = 0;
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &w));

	ck_assert_int_eq(pxs_release(s, &v), 0);

	/* Double release of the only pin: -EINVAL, nothing changes. (With
	 * another view of the same handle on the value it releases that one:
	 * the header documents pins as counted per handle and value.) */
	pxs_key one;
	ck_assert_int_eq(pxs_put(s, "one", 3, &one), 0);
	ck_assert_int_eq(pxs_get(s, one, &v), 0);
	w = v;
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_ptr_null(v.data);
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &w));
	BAD(&f, HX_RELEASE, 0, pxs_release(s, &v)); /* the zeroed one */

	/* A view of a value freed since (evict + last release) must not
	 * touch the slot's next occupant. */
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "tmp", 3, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	w = v;
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_put_at(s, k, "new", 3), 0);
	ck_assert_int_eq(pxs_get(s, k, &g), 0);
	BAD(&f, HX_RELEASE, -EINVAL, pxs_release(s, &w));
	ck_assert_int_eq(pxs_release(s, &g), 0);
	fx_teardown(&f);
}
END_TEST

/* A view pinned through a handle that has since been closed: the pin went
 * with the handle; releasing through another handle is -EINVAL. */
START_TEST(f1_release_after_close)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64), *h;
	pxs_key k;
	pxs_view v;
	pxs_stats st;
	ck_assert_int_eq(pxs_put(s, "x", 1, &k), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &h), 0);
	ck_assert_int_eq(pxs_get(h, k, &v), 0);
	ck_assert_int_eq(pxs_close(h), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.pins, 0); /* dropped with the handle */
	ck_assert_int_eq(pxs_release(s, &v), -EINVAL);
	pxs_test_done(s, name);
}
END_TEST

/* A poisoned segment (a lock's repair failed): every function that takes a
 * store returns exactly -ENOTRECOVERABLE, which its @return lists, and
 * changes nothing. The snapshots are taken unpoisoned (pxs_stat is one of
 * the calls that refuse). */
#define POISONED(f, FN, CALL)                                                  \
	do {                                                                   \
		struct hx_snap a_;                                             \
		ck_assert_int_eq(hx_snap_take((f)->s, &a_), 0);                \
		__atomic_store_n(&(f)->s->hdr->poisoned, 1, __ATOMIC_RELEASE); \
		int rc_ = (CALL);                                              \
		__atomic_store_n(&(f)->s->hdr->poisoned, 0, __ATOMIC_RELEASE); \
		ck_assert_msg(rc_ == -ENOTRECOVERABLE, "%s: got %d (%s)",      \
			      #CALL, rc_, pxs_strerror(rc_));                  \
		ck_assert_msg(hx_doc_lists(FN, ENOTRECOVERABLE),               \
			      "%s does not list -ENOTRECOVERABLE",             \
			      hx_fn_name(FN));                                 \
		assert_unchanged((f)->s, &a_, #CALL);                          \
	} while (0)

START_TEST(f1_poisoned)
{
	struct fx f;
	fx_setup(&f);
	pxs_store *s = f.s;
	pxs_key k = {0x77, 0x77};
	pxs_view v, pinned = f.pin_obj;
	void *buf;
	pxs_stats st;
	uint64_t cur = 0;
	pxs_entry e;
	pxs_proc_info pi;
	pxs_check_report r;

	POISONED(&f, HX_PUT, pxs_put(s, data, 1, &k));
	POISONED(&f, HX_PUT_AT, pxs_put_at(s, f.absent, data, 1));
	POISONED(&f, HX_GET, pxs_get(s, f.obj, &v));
	POISONED(&f, HX_RELEASE, pxs_release(s, &pinned));
	POISONED(&f, HX_EXISTS, pxs_exists(s, f.obj));
	POISONED(&f, HX_EVICT, pxs_evict(s, f.obj));
	POISONED(&f, HX_FNEW, pxs_future_new(s, &k));
	POISONED(&f, HX_FNEW_AT, pxs_future_new_at(s, f.absent));
	POISONED(&f, HX_FSET, pxs_future_set(s, f.pend, data, 1));
	POISONED(&f, HX_FRESERVE, pxs_future_reserve(s, f.pend, 1, &buf));
	POISONED(&f, HX_FCOMMIT, pxs_future_commit(s, f.res));
	POISONED(&f, HX_FCLAIM, pxs_future_claim(s, f.pend));
	POISONED(&f, HX_FWAIT, pxs_future_wait(s, f.pend, 0, &v));
	POISONED(&f, HX_FWAIT, pxs_future_wait_spin(s, f.pend, 0, 0, &v));
	{
		size_t w;
		POISONED(&f, HX_FWAIT_ANY,
			 pxs_future_wait_any(s, &f.pend, 1, 0, &w, &v));
	}
	POISONED(&f, HX_FDONE, pxs_future_done(s, f.pend));
	POISONED(&f, HX_STAT, pxs_stat(s, &st));
	POISONED(&f, HX_LIST, pxs_list(s, &cur, &e));
	POISONED(&f, HX_PROC_LIST, pxs_proc_list(s, &cur, &pi));
	POISONED(&f, HX_CHECK, pxs_check(s, &r));
	POISONED(&f, HX_REAP, pxs_reap(s));
	ck_assert_mem_eq(&pinned, &f.pin_obj, sizeof pinned); /* not cleared */
	fx_teardown(&f);
}
END_TEST

/* ---- streams ------------------------------------------------------------ */

START_TEST(f1_streams)
{
	struct fx f;
	fx_setup(&f);
	pxs_store *s = f.s;
	pxs_key zero = {0, 0}, st_k = pxs_key_from_name("stream", 6);
	pxs_stream_options o = {.window = 4, .flags = PXS_STREAM_BLOCK};
	pxs_stream_options w0 = {.window = 0},
			   wbig = {.window = PXS_STREAM_WINDOW_MAX + 1},
			   fl = {.window = 4, .flags = 2};
	pxs_stream_stats st;
	pxs_view v, v0;
	void *buf = NULL;
	uint64_t seq = 99;
	memset(&v0, 0xa5, sizeof v0);
	v = v0;

	ck_assert_int_eq(pxs_stream_new(s, st_k, &o), 0);
	ck_assert_int_eq(pxs_stream_append(s, st_k, data, 4, 0, &seq), 0);
	ck_assert_int_eq(pxs_stream_join(s, st_k, 0), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pxs_stream_append(s, st_k, data, 4, 0, NULL),
				 0);
	/* The second handle's first pin allocates its pin records (a cost
	 * of pinning, not of the bad calls below): pay it here. */
	ck_assert_int_eq(pxs_stream_stat(f.h, st_k, &st), 0);
	seq = 99;

	BAD(&f, HX_SNEW, -EINVAL, pxs_stream_new(NULL, st_k, NULL));
	BAD(&f, HX_SNEW, -EINVAL, pxs_stream_new(s, zero, NULL));
	BAD(&f, HX_SNEW, -EINVAL, pxs_stream_new(s, f.absent, &w0));
	BAD(&f, HX_SNEW, -EINVAL, pxs_stream_new(s, f.absent, &wbig));
	BAD(&f, HX_SNEW, -EINVAL, pxs_stream_new(s, f.absent, &fl));
	BAD(&f, HX_SNEW, -EEXIST, pxs_stream_new(s, st_k, NULL));
	BAD(&f, HX_SNEW, -EEXIST, pxs_stream_new(s, f.obj, NULL));
	BAD(&f, HX_SNEW, -EEXIST, pxs_stream_new(s, f.pend, NULL));
	BAD(&f, HX_SAPPEND, -EINVAL, pxs_stream_append(NULL, st_k, data, 1, 0,
						       &seq));
	BAD(&f, HX_SAPPEND, -EINVAL, pxs_stream_append(s, st_k, NULL, 1, 0,
						       &seq));
	BAD(&f, HX_SAPPEND, -ENOENT, pxs_stream_append(s, f.absent, data, 1,
						       LONG_MAX, &seq));
	BAD(&f, HX_SAPPEND, -EPROTO, pxs_stream_append(s, f.obj, data, 1,
						       LONG_MAX, &seq));
	BAD(&f, HX_SAPPEND, -EPROTO, pxs_stream_append(s, f.pend, data, 1,
						       LONG_MIN, &seq));
	BAD(&f, HX_SAPPEND, -EPROTO, pxs_stream_append(s, f.aband, data, 1,
						       0, &seq));
	/* A full window behind this process's own position. */
	BAD(&f, HX_SAPPEND, -ETIMEDOUT, pxs_stream_append(s, st_k, data, 1, 0,
							  &seq));
	BAD(&f, HX_SAPPEND, -ETIMEDOUT, pxs_stream_append(s, st_k, data, 1, 1,
							  &seq));
	BAD(&f, HX_SRESERVE, -EINVAL, pxs_stream_reserve(s, st_k, 1, 0, NULL));
	BAD(&f, HX_SRESERVE, -EINVAL, pxs_stream_reserve(s, zero, 1, 0, &buf));
	BAD(&f, HX_SRESERVE, -ETIMEDOUT, pxs_stream_reserve(s, st_k, 1, 0,
							    &buf));
	BAD(&f, HX_SRESERVE, -ENOENT, pxs_stream_reserve(s, f.evp, 1, 0,
							 &buf));
	BAD(&f, HX_SCOMMIT, -EINVAL, pxs_stream_commit(s, st_k, &seq));
	BAD(&f, HX_SCOMMIT, -EINVAL, pxs_stream_commit(f.h, st_k, &seq));
	BAD(&f, HX_SCOMMIT, -ENOENT, pxs_stream_commit(s, f.absent, &seq));
	BAD(&f, HX_SREAD, -EINVAL, pxs_stream_read(s, st_k, 0, 0, NULL));
	BAD(&f, HX_SREAD, -EINVAL, pxs_stream_read(NULL, st_k, 0, 0, &v));
	BAD(&f, HX_SREAD, -ETIMEDOUT, pxs_stream_read(s, st_k, 4, 0, &v));
	BAD(&f, HX_SREAD, -ETIMEDOUT, pxs_stream_read(s, st_k, UINT64_MAX, 1,
						      &v));
	BAD(&f, HX_SREAD, -ENOENT, pxs_stream_read(s, f.absent, 0, LONG_MAX,
						   &v));
	BAD(&f, HX_SREAD, -EPROTO, pxs_stream_read(s, f.res, 0, LONG_MIN,
						   &v));
	BAD(&f, HX_SEND, -EINVAL, pxs_stream_end(NULL, st_k));
	BAD(&f, HX_SEND, -EINVAL, pxs_stream_end(s, zero));
	BAD(&f, HX_SEND, -EPROTO, pxs_stream_end(s, f.obj));
	BAD(&f, HX_SSTAT, -EINVAL, pxs_stream_stat(s, st_k, NULL));
	BAD(&f, HX_SSTAT, -ENOENT, pxs_stream_stat(s, f.absent, &st));
	BAD(&f, HX_SJOIN, -EALREADY, pxs_stream_join(s, st_k, 0));
	BAD(&f, HX_SJOIN, -EPROTO, pxs_stream_join(s, f.pend, 0));
	BAD(&f, HX_SLEAVE, -ENOENT, pxs_stream_leave(f.h, st_k));
	BAD(&f, HX_SLEAVE, -EINVAL, pxs_stream_leave(s, zero));
	BAD(&f, HX_STAKE, -EINVAL, pxs_stream_take(s, st_k, NULL, 0, &seq,
						   &v));
	BAD(&f, HX_STAKE, -EINVAL, pxs_stream_take(s, st_k, "", 0, &seq, &v));
	BAD(&f, HX_STAKE, -EINVAL,
	    pxs_stream_take(s, st_k, "0123456789abcdef0123456789abcdef",
			    LONG_MAX, &seq, &v));
	BAD(&f, HX_STAKE, -EINVAL, pxs_stream_take(s, st_k, "g", 0, NULL,
						   &v));
	BAD(&f, HX_STAKE, -EINVAL, pxs_stream_take(s, st_k, "g", 0, &seq,
						   NULL));
	BAD(&f, HX_STAKE, -EPROTO, pxs_stream_take(s, f.obj, "g", 0, &seq,
						   &v));
	BAD(&f, HX_SACK, -ENOENT, pxs_stream_ack(s, st_k, "g", 0));
	BAD(&f, HX_SACK, -EINVAL, pxs_stream_ack(s, st_k, NULL, 0));
	BAD(&f, HX_SACK, -EINVAL, pxs_stream_ack(NULL, st_k, "g", 0));
	BAD(&f, HX_SDELETE, -EINVAL, pxs_stream_delete(NULL, st_k));
	BAD(&f, HX_SDELETE, -EINVAL, pxs_stream_delete(s, zero));
	BAD(&f, HX_SDELETE, -ENOENT, pxs_stream_delete(s, f.absent));
	BAD(&f, HX_SDELETE, -EPROTO, pxs_stream_delete(s, f.obj));
	BAD(&f, HX_SDELETE, -EPROTO, pxs_stream_delete(s, f.pend));
	BAD(&f, HX_SDELETE, -EPROTO, pxs_stream_delete(s, f.res));
	ck_assert_uint_eq(seq, 99);
	ck_assert_mem_eq(&v, &v0, sizeof v);
	ck_assert_ptr_null(buf);

	/* Poisoned: every call says so and changes nothing. */
	POISONED(&f, HX_SNEW, pxs_stream_new(s, f.absent, NULL));
	POISONED(&f, HX_SAPPEND, pxs_stream_append(s, st_k, data, 1, 0, &seq));
	POISONED(&f, HX_SRESERVE, pxs_stream_reserve(s, st_k, 1, 0, &buf));
	POISONED(&f, HX_SCOMMIT, pxs_stream_commit(s, st_k, &seq));
	POISONED(&f, HX_SREAD, pxs_stream_read(s, st_k, 0, 0, &v));
	POISONED(&f, HX_SEND, pxs_stream_end(s, st_k));
	POISONED(&f, HX_SSTAT, pxs_stream_stat(s, st_k, &st));
	POISONED(&f, HX_SJOIN, pxs_stream_join(f.h, st_k, 0));
	POISONED(&f, HX_SLEAVE, pxs_stream_leave(s, st_k));
	POISONED(&f, HX_STAKE, pxs_stream_take(s, st_k, "g", 0, &seq, &v));
	POISONED(&f, HX_SACK, pxs_stream_ack(s, st_k, "g", 0));
	POISONED(&f, HX_SDELETE, pxs_stream_delete(s, st_k));

	/* The stream still works. */
	ck_assert_int_eq(pxs_stream_read(s, st_k, 0, 0, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_leave(s, st_k), 0);
	ck_assert_int_eq(pxs_stream_append(s, st_k, data, 4, 0, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	fx_teardown(&f);
}
END_TEST

/* ---- keys and names --------------------------------------------------- */

START_TEST(f1_keys_and_names)
{
	char buf[PXS_KEY_STRLEN];
	pxs_key k = {1, 2}, out = {9, 9};
	ck_assert_int_eq(pxs_key_format(k, NULL), -EINVAL);
	ck_assert_int_eq(pxs_key_parse(NULL, &out), -EINVAL);
	ck_assert_int_eq(pxs_key_parse("0000000000000001"
				       "0000000000000002",
				       NULL),
			 -EINVAL);
	ck_assert_uint_eq(out.hi, 9);
	pxs_key e = pxs_key_from_name("", 0);
	ck_assert(pxs_key_equal(pxs_key_from_name(NULL, 0), e));
	ck_assert(pxs_key_equal(pxs_key_from_name(NULL, SIZE_MAX), e));
	ck_assert(!pxs__key_is_zero(e));
	ck_assert_int_eq(pxs_key_format((pxs_key){0, 0}, buf), 0);
	ck_assert_str_eq(buf, "00000000000000000000000000000000");
	ck_assert_int_eq(pxs_key_equal(k, k), 1);
	ck_assert_int_eq(pxs_key_equal(k, (pxs_key){2, 1}), 0);
	ck_assert_ptr_nonnull(pxs_version());
}
END_TEST

/* Strings that end exactly at a page boundary (the NUL is the last
 * readable byte): the parsers must not read past it. */
START_TEST(parsers_stop_at_the_nul)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
	const char *inputs[] = {"",
				"a",
				"/",
				"/x",
				"pxs://",
				"pxs://a",
				"pxs://a/",
				"pxs://a/0123",
				"0123456789abcdef",
				"0123456789abcdef0123"};
	for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
		size_t n = strlen(inputs[i]);
		char *p = m + pg - (long)n - 1;
		memcpy(p, inputs[i], n + 1);
		pxs_key k;
		pxs_proxy *px = (pxs_proxy *)&k;
		pxs_store *s = (pxs_store *)&k;
		int rc;
		ck_assert_int_eq(pxs_key_parse(p, &k), -EINVAL);
		ck_assert_int_eq(pxs_proxy_parse(p, &px), -EINVAL);
		ck_assert_ptr_null(px);
		rc = pxs_proxy_new(p, (pxs_key){1, 1}, &px);
		ck_assert_int_eq(rc == 0, pxs__name_check(p) == 0);
		pxs_proxy_free(px);
		rc = pxs_open(p, NULL, &s);
		ck_assert(rc == -EINVAL || rc == -ENOENT);
		rc = pxs_unlink(p);
		ck_assert(rc == -EINVAL || rc == -ENOENT);
	}
	munmap(m, 2 * (size_t)pg);
}
END_TEST

/* ---- F2: the key parser ------------------------------------------------ */

/* The reference grammar is hostile.c's (hx_ref_key, hx_ref_pxs_proxy). */

START_TEST(f2_key_rejects)
{
	const char *good = "0123456789abcdef0123456789abcdef";
	const char *bad[] = {
		"",
		"0123456789abcdef0123456789abcde",   /* 31 */
		"0123456789abcdef0123456789abcdef0", /* 33 */
		"0123456789ABCDEF0123456789abcdef",  /* uppercase */
		"0123456789abcdef0123456789abcdeF",
		"0123456789abcdeg0123456789abcdef", /* non-hex */
		"0123456789abcdef 123456789abcdef",
		" 0123456789abcdef0123456789abcdef", /* leading space */
		"0123456789abcdef0123456789abcdef ", /* trailing space */
		"0123456789abcdef0123456789abcdef\n",
		"\t0123456789abcdef0123456789abcdef",
		"0x0123456789abcdef0123456789abcd", /* 0x prefix */
		"0x0123456789abcdef0123456789abcdef",
		"00000000000000000000000000000000", /* the zero key */
		"+123456789abcdef0123456789abcdef",
		"-123456789abcdef0123456789abcdef",
		"0123456789abcdef-0123456789abcdef",
		"0123456789abcdef\377123456789abcdef",
	};
	pxs_key k = {5, 5};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(pxs_key_parse(bad[i], &k) == -EINVAL,
			      "accepted \"%s\"", bad[i]);
		ck_assert(k.hi == 5 && k.lo == 5);
	}
	/* An embedded NUL anywhere: the string ends there. */
	for (int at = 0; at < 33; at++) {
		char b[40];
		memcpy(b, good, 33);
		memcpy(b + 33, "abcdef", 7);
		b[at] = '\0';
		ck_assert_int_eq(pxs_key_parse(b, &k) == 0, at == 32);
	}
	ck_assert_int_eq(pxs_key_parse(good, &k), 0);
	ck_assert_uint_eq(k.hi, 0x0123456789abcdefull);
}
END_TEST

START_TEST(f2_key_roundtrip_1e6)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	char buf[PXS_KEY_STRLEN], s[40];
	static const char alphabet[] = "0123456789abcdefABCDEFgx \t0";
	for (int i = 0; i < 1000000; i++) {
		pxs_key k = {hx_rand(&rng), hx_rand(&rng)}, back;
		if (i % 7 == 0)
			k.hi = 0; /* leading zeros */
		if (pxs__key_is_zero(k))
			k.lo = 1;
		FAST(pxs_key_format(k, buf) == 0, "format");
		FAST((strlen(buf)) == (32), "strlen(buf) == 32");
		FAST(pxs_key_parse(buf, &back) == 0, "parse(%s)", buf);
		FAST(pxs_key_equal(k, back), "pxs_key_equal(k, back)");
		/* parse agrees with the grammar on near misses, and when it
		 * accepts, format gives the same string back */
		size_t n = 30 + hx_rand(&rng) % 5;
		for (size_t j = 0; j < n; j++)
			s[j] = hx_rand(&rng) % 4
				       ? buf[j % 32]
				       : alphabet[hx_rand(&rng) %
						  (sizeof alphabet - 1)];
		s[n] = '\0';
		int rc = pxs_key_parse(s, &back);
		FAST((rc == 0) == hx_ref_key(s, n), "parse(\"%s\") = %d", s,
		     rc);
		if (rc == 0) {
			FAST(pxs_key_format(back, buf) == 0, "format");
			FAST(strcmp(buf, s) == 0, "format(parse(%s)) = %s", s,
			     buf);
		}
	}
}
END_TEST

/* ---- F3/F4: the proxy parser and formatter ---------------------------- */

/* Copy pattern to out, with "@" replaced by key and "%.31" by key minus
 * its last digit. */
static void
expand(char *out, size_t len, const char *pattern, const char *key)
{
	size_t n = 0;
	for (const char *p = pattern; *p && n + 40 < len; p++) {
		if (*p == '@') {
			memcpy(out + n, key, 32);
			n += 32;
		} else if (!strncmp(p, "%.31", 4)) {
			memcpy(out + n, key, 31);
			n += 31;
			p += 3;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

START_TEST(f3_proxy_rejects)
{
	const char *key = "0123456789abcdef0123456789abcdef";
	char b[1024];
	/* "@" stands for a valid key, "%.31" for a key one digit short. */
	const char *bad[] = {
		"pxs:/a/@",     "PXS://a/@",     "pxs:///@",
		"pxs:///a/@",   "pxs://a@",      "pxs://a//@",
		"pxs://a/@/",   "pxs://a/b/@",   "pxs://a/@?x",
		"pxs://a/@#f",  "pxs://%41/@",   "pxs://a%2f/@",
		"pxs://./@",    "pxs://../@",    "pxs://a b/@",
		" pxs://a/@",   "pxs://a/@ ",    "pxs://\xc3\xa9/@",
		"pxs://a\t/@",  "pxs://a/@\n",   "pxs://a/0x@",
		"pxs://a/%.31", "pxs://a/@0",    "pxs:a/@",
		"xpxs://a/@",   "pxs://a:1/@",   "pxs://a\x01/@",
		"pxs://\\/@",   "pxs://a/@\x7f", "pxs:///",
		"pxs://",       "pxs://a/",
	};
	pxs_proxy *p = (pxs_proxy *)b;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		expand(b, sizeof b, bad[i], key);
		p = (pxs_proxy *)b;
		ck_assert_msg(pxs_proxy_parse(b, &p) == -EINVAL,
			      "accepted \"%s\"", b);
		ck_assert_ptr_null(p);
		ck_assert(!hx_ref_pxs_proxy(b, strlen(b)));
	}
	/* The zero key, uppercase key, short and long keys. */
	const char *keys[] = {"00000000000000000000000000000000",
			      "0123456789ABCDEF0123456789abcdef",
			      "0123456789abcdef0123456789abcde",
			      "0123456789abcdef0123456789abcdef0", ""};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		snprintf(b, sizeof b, "pxs://a/%s", keys[i]);
		ck_assert_int_eq(pxs_proxy_parse(b, &p), -EINVAL);
	}
	/* Names of 200 (accepted) and 201 characters. */
	char name[PXS_NAME_MAX + 2];
	memset(name, 'n', sizeof name);
	name[PXS_NAME_MAX] = '\0';
	snprintf(b, sizeof b, "pxs://%s/%s", name, key);
	ck_assert_int_eq(pxs_proxy_parse(b, &p), 0);
	char out[PXS_PROXY_STRLEN];
	ck_assert_int_eq(pxs_proxy_format(p, out, sizeof out), (int)strlen(b));
	ck_assert_str_eq(out, b);
	pxs_proxy_free(p);
	name[PXS_NAME_MAX] = 'n';
	name[PXS_NAME_MAX + 1] = '\0';
	snprintf(b, sizeof b, "pxs://%s/%s", name, key);
	ck_assert_int_eq(pxs_proxy_parse(b, &p), -EINVAL);
	/* Embedded NULs: the string ends there. */
	snprintf(b, sizeof b, "pxs://a/%s", key);
	size_t n = strlen(b);
	for (size_t at = 0; at < n; at++) {
		char c[128];
		memcpy(c, b, n + 1);
		c[at] = '\0';
		ck_assert_int_eq(pxs_proxy_parse(c, &p), -EINVAL);
	}
	/* A 1 MiB input. */
	char *big = malloc(MiB + 64);
	memcpy(big, "pxs://", 6);
	memset(big + 6, 'a', MiB);
	snprintf(big + 6 + MiB, 58, "/%s", key);
	ck_assert_int_eq(pxs_proxy_parse(big, &p), -EINVAL);
	ck_assert_ptr_null(p);
	memset(big, 'p', MiB);
	big[MiB] = '\0';
	ck_assert_int_eq(pxs_proxy_parse(big, &p), -EINVAL);
	free(big);
	ck_assert_int_eq(pxs_proxy_parse(NULL, &p), -EINVAL);
	ck_assert_int_eq(pxs_proxy_parse(b, NULL), -EINVAL);
}
END_TEST

START_TEST(f3_proxy_roundtrip_random)
{
	uint64_t rng = 0x51ed270b27a3c6f1ull;
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJK"
					 "LMNOPQRSTUVWXYZ0123456789._-";
	static const char noise[] = "pxs:/.PXS%?# \t\\0123456789abcdefABCDEFé";
	char s[PXS_PROXY_STRLEN + 16], out[PXS_PROXY_STRLEN],
		kb[PXS_KEY_STRLEN];
	int accepted = 0;
	for (int i = 0; i < 1000000; i++) {
		/* A valid proxy string... */
		size_t nl = 1 + hx_rand(&rng) % (i % 50 ? 12 : PXS_NAME_MAX);
		char name[PXS_NAME_MAX + 2];
		name[0] = '/';
		for (size_t j = 0; j < nl; j++)
			name[1 + j] = name_chars[hx_rand(&rng) %
						 (sizeof name_chars - 1)];
		name[1 + nl] = '\0';
		pxs_key k = {hx_rand(&rng), hx_rand(&rng) | 1};
		pxs_proxy *p, *q;
		int rc = pxs_proxy_new(name, k, &p);
		if (!strcmp(name, "/.") || !strcmp(name, "/..") ||
		    !strncmp(name, "/.pxs-", 6)) {
			FAST((rc) == (-EINVAL), "rc == -EINVAL");
			continue;
		}
		FAST((rc) == (0), "rc == 0");
		int n = pxs_proxy_format(p, s, sizeof s);
		FAST((n) > (0), "n > 0");
		/* ... parses back to the same proxy (parse(format(p)) == p) */
		FAST(pxs_proxy_parse(s, &q) == 0, "parse(%s)", s);
		FAST(pxs_key_equal(pxs_proxy_key(q), k),
		     "pxs_key_equal(pxs_proxy_key(q), k)");
		FAST(pxs_proxy_format(q, out, sizeof out) == n, "format");
		FAST(strcmp(out, s) == 0, "format(parse(%s)) = %s", s, out);
		pxs_proxy_free(q);
		pxs_proxy_free(p);
		/* A mutated copy: accepted exactly when the grammar says so,
		 * and then format(parse(s)) == s. */
		size_t len = (size_t)n, edits = 1 + hx_rand(&rng) % 3;
		for (size_t e = 0; e < edits; e++) {
			size_t at = hx_rand(&rng) % (len + 1);
			char c = noise[hx_rand(&rng) % (sizeof noise - 1)];
			switch (hx_rand(&rng) % 3) {
			case 0: /* replace */
				if (at < len)
					s[at] = c;
				break;
			case 1: /* insert */
				if (len + 1 < sizeof s - 1) {
					memmove(s + at + 1, s + at, len - at);
					s[at] = c;
					len++;
				}
				break;
			default: /* delete */
				if (at < len) {
					memmove(s + at, s + at + 1,
						len - at - 1);
					len--;
				}
			}
		}
		s[len] = '\0';
		len = strlen(
			s); /* a '0' noise char is not a NUL, but be safe */
		rc = pxs_proxy_parse(s, &q);
		FAST((rc == 0) == hx_ref_pxs_proxy(s, len),
		     "parse(\"%s\") = %d", s, rc);
		if (rc == 0) {
			accepted++;
			ck_assert_int_eq(pxs_proxy_format(q, out, sizeof out),
					 (int)len);
			FAST(strcmp(out, s) == 0, "format(parse(%s)) = %s", s,
			     out);
			pxs_key_format(pxs_proxy_key(q), kb);
			FAST(strstr(s, kb) != NULL, "strstr(s, kb) != NULL");
			pxs_proxy_free(q);
		}
	}
	FAST((accepted) > (1000),
	     "accepted > 1000"); /* the mutations kept some valid */
}
END_TEST

START_TEST(f4_proxy_format_buffers)
{
	pxs_proxy *p = NULL;
	pxs_key k = {0x0123456789abcdefull, 0xfedcba9876543210ull};
	ck_assert_int_eq(pxs_proxy_new("/store", k, &p), 0);
	const char *want = "pxs://store/0123456789abcdeffedcba9876543210";
	int n = (int)strlen(want);
	char buf[PXS_PROXY_STRLEN + 8];

	ck_assert_int_eq(pxs_proxy_format(NULL, buf, sizeof buf), -EINVAL);
	ck_assert_int_eq(pxs_proxy_format(p, NULL, sizeof buf), -EINVAL);
	ck_assert_int_eq(pxs_proxy_format(p, NULL, 0), -EINVAL);
	ck_assert_int_eq(pxs_proxy_format(NULL, NULL, 0), -EINVAL);
	memset(buf, 'Z', sizeof buf);
	ck_assert_int_eq(pxs_proxy_format(p, buf, 0), -ENOSPC);
	ck_assert_int_eq(buf[0], 'Z'); /* len 0: untouched */
	for (size_t len = 1; len <= (size_t)n; len++) {
		memset(buf, 'Z', sizeof buf);
		ck_assert_int_eq(pxs_proxy_format(p, buf, len), -ENOSPC);
		ck_assert_int_eq(buf[0], '\0');
		for (size_t j = 1; j < sizeof buf; j++)
			ck_assert_int_eq(buf[j], 'Z'); /* nothing else */
	}
	memset(buf, 'Z', sizeof buf);
	ck_assert_int_eq(pxs_proxy_format(p, buf, (size_t)n + 1), n);
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(buf[n + 1], 'Z');
	ck_assert_int_eq(pxs_proxy_format(p, buf, SIZE_MAX), n);
	ck_assert_str_eq(buf, want);

	/* The other proxy functions with NULLs and bad arguments. */
	pxs_proxy *q = (pxs_proxy *)buf;
	ck_assert_int_eq(pxs_proxy_new(NULL, k, &q), -EINVAL);
	ck_assert_ptr_null(q);
	q = (pxs_proxy *)buf;
	ck_assert_int_eq(pxs_proxy_new("/store", (pxs_key){0, 0}, &q), -EINVAL);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(pxs_proxy_new("store", k, &q), -EINVAL);
	ck_assert_int_eq(pxs_proxy_new("/store", k, NULL), -EINVAL);
	ck_assert(pxs__key_is_zero(pxs_proxy_key(NULL)));
	const void *d = buf;
	size_t sz = 77;
	ck_assert_int_eq(pxs_proxy_resolve(NULL, 0, &d, &sz), -EINVAL);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, NULL, &sz), -EINVAL);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, &d, NULL), -EINVAL);
	ck_assert_ptr_eq(d, buf);
	ck_assert_uint_eq(sz, 77);
	pxs_proxy_free(NULL);
	pxs_proxy_free(p);
}
END_TEST

/* pxs_proxy_resolve with extreme timeouts: a value at once, an absent
 * store at once, never a hang; an absent key at once only when checking
 * (timeout 0), else waited for within the timeout. */
START_TEST(f1_resolve_extreme_timeouts)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k, pend;
	ck_assert_int_eq(pxs_put(s, "val", 3, &k), 0);
	ck_assert_int_eq(pxs_future_new(s, &pend), 0);
	ck_assert_int_eq(pxs_close(s), 0); /* abandons pend */
	long t[] = {LONG_MIN, LONG_MAX, -1, 0};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		pxs_proxy *p;
		const void *d;
		size_t n;
		ck_assert_int_eq(pxs_proxy_new(name, k, &p), 0);
		ck_assert_int_eq(pxs_proxy_resolve(p, t[i], &d, &n), 0);
		ck_assert_uint_eq(n, 3);
		ck_assert_mem_eq(d, "val", 3);
		pxs_proxy_free(p);
		ck_assert_int_eq(
			pxs_proxy_new(name, pxs_key_from_name("no", 2), &p), 0);
		long wait = t[i] == 0 ? 0 : 20; /* an absent key: no hang */
		int rc = pxs_proxy_resolve(p, wait, &d, &n);
		ck_assert_int_eq(rc, wait ? -ETIMEDOUT : -ENOENT);
		ck_assert(hx_documented(HX_PROXY_RESOLVE, rc));
		pxs_proxy_free(p);
		ck_assert_int_eq(pxs_proxy_new(name, pend, &p), 0);
		ck_assert_int_eq(pxs_proxy_resolve(p, t[i], &d, &n),
				 -EOWNERDEAD);
		pxs_proxy_free(p);
		ck_assert_int_eq(pxs_proxy_new("/pxs-hx-no-such-store", k, &p),
				 0);
		ck_assert_int_eq(pxs_proxy_resolve(p, t[i], &d, &n), -ENOENT);
		pxs_proxy_free(p);
	}
	ck_assert_int_eq(pxs__proxy_registry_count(), 0);
	pxs_unlink(name);
}
END_TEST

/* ---- F5: pxs_strerror ------------------------------------------------- */

#define ERRNAME(x)                                                             \
	{                                                                      \
#x, x                                                          \
	}
static const struct {
	const char *name;
	int code;
} errnames[] = {
	ERRNAME(EPERM),
	ERRNAME(EPROTONOSUPPORT),
	ERRNAME(ECONNREFUSED),
	ERRNAME(EHOSTUNREACH),
	ERRNAME(ECONNRESET),
	ERRNAME(ENETUNREACH),
	ERRNAME(EADDRNOTAVAIL),
	ERRNAME(ENOENT),
	ERRNAME(ESRCH),
	ERRNAME(EINTR),
	ERRNAME(EIO),
	ERRNAME(ENXIO),
	ERRNAME(E2BIG),
	ERRNAME(ENOEXEC),
	ERRNAME(EBADF),
	ERRNAME(ECHILD),
	ERRNAME(EAGAIN),
	ERRNAME(ENOMEM),
	ERRNAME(EACCES),
	ERRNAME(EFAULT),
	ERRNAME(EBUSY),
	ERRNAME(EEXIST),
	ERRNAME(EXDEV),
	ERRNAME(ENODEV),
	ERRNAME(ENOTDIR),
	ERRNAME(EISDIR),
	ERRNAME(EINVAL),
	ERRNAME(ENFILE),
	ERRNAME(EMFILE),
	ERRNAME(ENOTTY),
	ERRNAME(EFBIG),
	ERRNAME(ENOSPC),
	ERRNAME(ESPIPE),
	ERRNAME(EROFS),
	ERRNAME(EMLINK),
	ERRNAME(EPIPE),
	ERRNAME(EIDRM),
	ERRNAME(EDOM),
	ERRNAME(ERANGE),
	ERRNAME(EDEADLK),
	ERRNAME(ENAMETOOLONG),
	ERRNAME(ENOLCK),
	ERRNAME(ENOSYS),
	ERRNAME(ENOTEMPTY),
	ERRNAME(ELOOP),
	ERRNAME(EWOULDBLOCK),
	ERRNAME(EPROTO),
	ERRNAME(EOVERFLOW),
	ERRNAME(EUSERS),
	ERRNAME(ENOTSUP),
	ERRNAME(EOPNOTSUPP),
	ERRNAME(ETIMEDOUT),
	ERRNAME(EALREADY),
	ERRNAME(ECANCELED),
	ERRNAME(EOWNERDEAD),
	ERRNAME(ENOTRECOVERABLE),
	ERRNAME(ENODATA),
	ERRNAME(EBADMSG),
	ERRNAME(EILSEQ),
	ERRNAME(EDQUOT),
	ERRNAME(ESTALE),
	ERRNAME(ETXTBSY),
	ERRNAME(EINPROGRESS),
};

static int
errno_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof errnames / sizeof *errnames; i++)
		if (!strcmp(errnames[i].name, name))
			return errnames[i].code;
	return 0;
}

/* Every "-EXXX" token in src/ (comments included: they name codes the
 * code passes through). */
START_TEST(f5_strerror_every_code_in_src)
{
	ck_assert_msg(src_dir != NULL, "pass the src/ directory as argv[1]");
	DIR *d = opendir(src_dir);
	ck_assert_msg(d != NULL, "opendir(%s)", src_dir);
	struct dirent *de;
	int files = 0, codes = 0;
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		if (nl < 3 || (strcmp(de->d_name + nl - 2, ".c") &&
			       strcmp(de->d_name + nl - 2, ".h")))
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", src_dir, de->d_name);
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		files++;
		char line[4096];
		while (fgets(line, sizeof line, f)) {
			for (char *p = line; (p = strstr(p, "-E")) != NULL;
			     p += 2) {
				char tok[32];
				size_t n = 0;
				const char *q = p + 1;
				while (n < sizeof tok - 1 &&
				       (isupper((unsigned char)q[n]) ||
					isdigit((unsigned char)q[n])))
					tok[n] = q[n], n++;
				tok[n] = '\0';
				if (n < 3)
					continue;
				int code = errno_by_name(tok);
				ck_assert_msg(code != 0,
					      "%s: unknown errno name %s",
					      de->d_name, tok);
				const char *t = pxs_strerror(-code);
				ck_assert_ptr_nonnull(t);
				ck_assert_msg(strcmp(t, "unknown error") != 0,
					      "%s returns -%s: no text",
					      de->d_name, tok);
				codes++;
			}
		}
		fclose(f);
	}
	closedir(d);
	ck_assert_int_gt(files, 5);
	ck_assert_int_gt(codes, 20);
}
END_TEST

START_TEST(f5_strerror_extremes)
{
	int codes[] = {0,
		       1,
		       -1,
		       INT_MIN,
		       INT_MAX,
		       INT_MIN + 1,
		       -4096,
		       4096,
		       -1000000,
		       1000000,
		       -EPROTO,
		       EPROTO,
		       -ENOTRECOVERABLE,
		       -134,
		       -200,
		       -255,
		       -256,
		       -65536};
	for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
		const char *t = pxs_strerror(codes[i]);
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_gt(strlen(t), 0);
	}
	for (int e = -5000; e <= 5000; e++)
		ck_assert_ptr_nonnull(pxs_strerror(e));
	ck_assert_str_eq(pxs_strerror(-EPROTO), pxs_strerror(EPROTO));
}
END_TEST

int
main(int argc, char **argv)
{
	src_dir = argc > 1 ? argv[1] : NULL;
	Suite *s = suite_create("hostile-badargs");
	TCase *tc = tcase_create("f1");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, f1_objects);
	tcase_add_test(tc, f1_futures);
	tcase_add_test(tc, f1_wait_extreme_timeouts);
	tcase_add_test(tc, f1_open_options);
	tcase_add_test(tc, f1_release_views);
	tcase_add_test(tc, f1_release_after_close);
	tcase_add_test(tc, f1_poisoned);
	tcase_add_test(tc, f1_streams);
	tcase_add_test(tc, f1_keys_and_names);
	tcase_add_test(tc, f1_resolve_extreme_timeouts);
	tcase_add_test(tc, parsers_stop_at_the_nul);
	suite_add_tcase(s, tc);
	tc = tcase_create("parsers");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, f2_key_rejects);
	tcase_add_test(tc, f2_key_roundtrip_1e6);
	tcase_add_test(tc, f3_proxy_rejects);
	tcase_add_test(tc, f3_proxy_roundtrip_random);
	tcase_add_test(tc, f4_proxy_format_buffers);
	tcase_add_test(tc, f5_strerror_every_code_in_src);
	tcase_add_test(tc, f5_strerror_extremes);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
