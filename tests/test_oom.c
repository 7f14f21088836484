/* test_oom.c - every allocating call fails cleanly when malloc does (B6).
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc: while armed,
 * the nth allocation of the call under test returns NULL. Like SQLite's
 * OOM loop, each call is run with n = 1, 2, ... until it succeeds; every
 * failure must be -ENOMEM, change nothing (no segment created, no
 * descriptor leaked, the store's statistics unchanged) and leak nothing
 * (LeakSanitizer, in the sanitizer build). Only the call under test is
 * armed: Check's own allocations go through the same wrappers.
 */
#include "internal.h"
#include "pxs_test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static int armed, fail_at, seen;

static bool
should_fail(void)
{
	return armed && ++seen == fail_at;
}

void *
__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

static int
count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* Run op with the nth allocation failing, n = 1, 2, ...; after each run,
 * disarmed, post(rc) checks and undoes it. Returns how many failures were
 * injected before op succeeded with nothing failing. */
static int
oom_loop(int (*op)(void), void (*post)(int))
{
	for (int n = 1; n < 100; n++) {
		int fds = count_fds();
		seen = 0;
		fail_at = n;
		armed = 1;
		int rc = op();
		armed = 0;
		ck_assert_msg(rc == -ENOMEM || rc == 0,
			      "allocation %d failed: %s", n, pxs_strerror(rc));
		if (rc < 0)
			ck_assert_int_eq(count_fds(), fds);
		post(rc); /* 0 also when a best-effort allocation failed */
		if (seen < n)
			return n - 1; /* nothing failed any more */
	}
	ck_abort_msg("never succeeded");
	return -1;
}

static char seg[64];
static pxs_store *opened;

static int
op_create(void)
{
	pxs_options o = {.size = 2 << 20, .flags = PXS_CREATE | PXS_EXCL};
	opened = (pxs_store *)1;
	return pxs_open(seg, &o, &opened);
}

static void
post_create(int rc)
{
	if (rc < 0) {
		pxs_store *s;
		ck_assert_ptr_null(opened);
		ck_assert_int_eq(pxs_open(seg, NULL, &s), -ENOENT); /* none made */
		return;
	}
	pxs_close(opened);
	pxs_unlink(seg);
}

START_TEST(open_create)
{
	pxs_test_name(seg, sizeof seg);
	ck_assert_int_ge(oom_loop(op_create, post_create), 1);
}
END_TEST

static int
op_attach(void)
{
	opened = (pxs_store *)1;
	return pxs_open(seg, NULL, &opened);
}

static void
post_attach(int rc)
{
	if (rc < 0)
		ck_assert_ptr_null(opened);
	else
		pxs_close(opened);
}

START_TEST(open_attach)
{
	pxs_store *s = pxs_test_store(seg, 2 << 20, 64);
	ck_assert_int_ge(oom_loop(op_attach, post_attach), 1);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.processes, 1); /* no entry left behind */
	pxs_test_done(s, seg);
}
END_TEST

static pxs_proxy *proxy;
static char proxy_str[PXS_PROXY_STRLEN];

static int
op_proxy_parse(void)
{
	proxy = (pxs_proxy *)1;
	return pxs_proxy_parse(proxy_str, &proxy);
}

static int
op_proxy_new(void)
{
	proxy = (pxs_proxy *)1;
	return pxs_proxy_new(seg, pxs_key_from_name("p", 1), &proxy);
}

static void
post_proxy(int rc)
{
	if (rc < 0)
		ck_assert_ptr_null(proxy);
	else
		pxs_proxy_free(proxy);
}

static const void *resolved;

static int
op_proxy_resolve(void)
{
	size_t size;
	return pxs_proxy_resolve(proxy, 1000, &resolved, &size);
}

static void
post_resolve(int rc)
{
	if (rc == 0)
		ck_assert_mem_eq(resolved, "value", 5);
}

START_TEST(proxies)
{
	pxs_store *s = pxs_test_store(seg, 2 << 20, 64);
	pxs_key k = pxs_key_from_name("p", 1);
	ck_assert_int_eq(pxs_put_at(s, k, "value", 5), 0);
	ck_assert_int_ge(oom_loop(op_proxy_new, post_proxy), 1);
	ck_assert_int_eq(pxs_proxy_new(seg, k, &proxy), 0);
	ck_assert_int_gt(pxs_proxy_format(proxy, proxy_str, sizeof proxy_str), 0);
	pxs_proxy_free(proxy);
	ck_assert_int_ge(oom_loop(op_proxy_parse, post_proxy), 1);
	ck_assert_int_eq(pxs_proxy_parse(proxy_str, &proxy), 0);
	ck_assert_int_ge(oom_loop(op_proxy_resolve, post_resolve), 1);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.pins, 1); /* exactly one resolve held */
	ck_assert_uint_eq(pxs__proxy_registry_count(), 1);
	pxs_proxy_free(proxy);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.pins, 0);
	pxs_test_done(s, seg);
}
END_TEST

static pxs_store *checked;

static int
op_check(void)
{
	pxs_check_report r;
	return pxs_check(checked, &r);
}

static void
post_nothing(int rc)
{
}

START_TEST(check_and_reap)
{
	checked = pxs_test_store(seg, 4 << 20, 256);
	for (int i = 0; i < 300; i++) { /* enough blocks to grow lists */
		pxs_key k;
		if (pxs_put(checked, "x", 1, &k) == -ENOSPC)
			break;
	}
	ck_assert_int_ge(oom_loop(op_check, post_nothing), 1);
	pxs_test_done(checked, seg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("oom");
	TCase *tc = tcase_create("oom");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, open_create);
	tcase_add_test(tc, open_attach);
	tcase_add_test(tc, proxies);
	tcase_add_test(tc, check_and_reap);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
