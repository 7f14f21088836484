/* test_keys.c - unit tests for keys.c: key hex form, name-derived keys,
 * store-name validation and the random key generator (across threads and
 * fork()).
 *
 * Children never call ck_*: they report through pipes and _exit() codes,
 * and the parent asserts.
 */
#include "internal.h"
#include "pxs_test.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#define N_ROUNDTRIP 1000000
#define N_THREADS 4
#define N_PER_THREAD (1000000 / N_THREADS)
#define N_FORK 1000

static int
key_cmp(const void *a, const void *b)
{
	const pxs_key *x = a, *y = b;

	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

/* Sort @p keys and fail if any two are equal or any is zero.
 * (Loops of a million use `if` + ck_abort_msg: every passing ck_assert
 * costs Check a write to its results pipe.) */
static void
assert_unique(pxs_key *keys, size_t n)
{
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (size_t i = 0; i < n; i++) {
		if (pxs__key_is_zero(keys[i]))
			ck_abort_msg("zero key at %zu", i);
		if (i > 0 && pxs_key_equal(keys[i - 1], keys[i]))
			ck_abort_msg("duplicate key %016" PRIx64 "%016" PRIx64,
				     keys[i].hi, keys[i].lo);
	}
}

/* ---- format and parse ------------------------------------------------- */

START_TEST(format_known)
{
	pxs_key k = {0x0123456789abcdefu, 0xfedcba9876543210u};
	pxs_key zero = {0, 0};
	char buf[PXS_KEY_STRLEN];

	ck_assert_int_eq(pxs_key_format(k, buf), 0);
	ck_assert_str_eq(buf, "0123456789abcdeffedcba9876543210");
	ck_assert_int_eq(pxs_key_format(zero, buf), 0);
	ck_assert_str_eq(buf, "00000000000000000000000000000000");
	ck_assert_int_eq(pxs_key_format(k, NULL), -EINVAL);
}
END_TEST

START_TEST(roundtrip_random)
{
	char buf[PXS_KEY_STRLEN], want[PXS_KEY_STRLEN + 8];

	for (int i = 0; i < N_ROUNDTRIP; i++) {
		pxs_key k = pxs__key_random(), back = {0, 0};

		if (pxs_key_format(k, buf) != 0)
			ck_abort_msg("format failed");
		snprintf(want, sizeof(want), "%016" PRIx64 "%016" PRIx64,
			 k.hi, k.lo);
		if (strcmp(buf, want) != 0)
			ck_abort_msg("format %s, want %s", buf, want);
		if (pxs_key_parse(buf, &back) != 0 || !pxs_key_equal(k, back))
			ck_abort_msg("round trip failed for %s", buf);
	}
}
END_TEST

START_TEST(parse_accepts)
{
	pxs_key k;

	ck_assert_int_eq(pxs_key_parse("ffffffffffffffffffffffffffffffff", &k),
			 0);
	ck_assert(k.hi == UINT64_MAX && k.lo == UINT64_MAX);
	ck_assert_int_eq(pxs_key_parse("00000000000000000000000000000001", &k),
			 0);
	ck_assert(k.hi == 0 && k.lo == 1);
	ck_assert_int_eq(pxs_key_parse("10000000000000000000000000000000", &k),
			 0);
	ck_assert(k.hi == (uint64_t)1 << 60 && k.lo == 0);
}
END_TEST

static const char *const bad_keys[] = {
	"",
	"0",
	"0123456789abcdef0123456789abcde",   /* 31 digits */
	"0123456789abcdef0123456789abcdef0", /* 33 digits */
	"0123456789ABCDEF0123456789abcdef",  /* uppercase */
	"0123456789abcdef0123456789abcdeF",
	"0x23456789abcdef0123456789abcdef",  /* prefix, 32 chars */
	"0x0123456789abcdef0123456789abcdef",
	" 0123456789abcdef0123456789abcdef", /* whitespace */
	"0123456789abcdef0123456789abcdef ",
	"0123456789abcdef0123456789abcdef\n",
	"0123456789abcdef\t123456789abcdef",
	"0123456789abcdef 123456789abcdef",
	"0123456789abcdeg0123456789abcdef",  /* not hex */
	"-123456789abcdef0123456789abcdef",
	"+123456789abcdef0123456789abcdef",
	"0123456789abcdef-0123456789abcdef",
	"00000000000000000000000000000000",  /* the zero key */
};

START_TEST(parse_rejects)
{
	const pxs_key sentinel = {0x5555, 0xaaaa};
	pxs_key k = sentinel;

	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		ck_assert_msg(pxs_key_parse(bad_keys[i], &k) == -EINVAL,
			      "accepted \"%s\"", bad_keys[i]);
		ck_assert_msg(pxs_key_equal(k, sentinel),
			      "\"%s\" wrote the key", bad_keys[i]);
	}
	ck_assert_int_eq(pxs_key_parse(NULL, &k), -EINVAL);
	ck_assert_int_eq(pxs_key_parse("0123456789abcdef0123456789abcdef",
				       NULL), -EINVAL);
	ck_assert(pxs_key_equal(k, sentinel));
}
END_TEST

START_TEST(parse_embedded_nul)
{
	/* 32 hex digits in the array, but a NUL after the 10th: the string
	 * is 10 digits long, and nothing past the NUL may be read as key. */
	char s[] = "0123456789abcdef0123456789abcdef";
	pxs_key k = {7, 7};

	for (size_t at = 0; at < 32; at++) {
		char c = s[at];

		s[at] = '\0';
		ck_assert_msg(pxs_key_parse(s, &k) == -EINVAL,
			      "NUL at %zu accepted", at);
		s[at] = c;
	}
	ck_assert(k.hi == 7 && k.lo == 7);
}
END_TEST

START_TEST(key_equal)
{
	pxs_key a = {1, 2}, b = {1, 2}, c = {1, 3}, d = {0, 2};

	ck_assert_int_eq(pxs_key_equal(a, b), 1);
	ck_assert_int_eq(pxs_key_equal(a, c), 0);
	ck_assert_int_eq(pxs_key_equal(a, d), 0);
}
END_TEST

/* ---- keys from names -------------------------------------------------- */

START_TEST(from_name_known_answer)
{
	static const char *const names[] = {
		"sim/step/42", "a", "", "a much longer name that takes the "
		"XXH3 path for inputs over 128 bytes, which is a different "
		"code path from the short ones, so test it as well too",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i]);
		XXH128_hash_t h = XXH3_128bits(names[i], len);
		pxs_key k = pxs_key_from_name(names[i], len);

		ck_assert_msg(k.hi == h.high64 && k.lo == h.low64,
			      "\"%s\" differs from XXH3_128bits", names[i]);
		ck_assert(!pxs__key_is_zero(k));
	}
}
END_TEST

START_TEST(from_name_properties)
{
	const char *name = "sim/step/42";
	pxs_key a = pxs_key_from_name(name, strlen(name));
	pxs_key b = pxs_key_from_name(name, strlen(name));
	pxs_key empty = pxs_key_from_name("", 0);

	ck_assert(pxs_key_equal(a, b));
	ck_assert(!pxs_key_equal(a, pxs_key_from_name("sim/step/43", 11)));
	/* Only len bytes count, and the name need not be a C string. */
	ck_assert(pxs_key_equal(pxs_key_from_name("abc", 2),
				pxs_key_from_name("abx", 2)));
	ck_assert(pxs_key_equal(pxs_key_from_name(NULL, 0), empty));
	ck_assert(!pxs__key_is_zero(empty));
}
END_TEST

/* ---- store names ------------------------------------------------------ */

START_TEST(name_check)
{
	static const char *const good[] = {
		"/a", "/A", "/0", "/-", "/_", "/...", "/.a", "/a.",
		"/pxs-test-1234-0", "/Az09._-",
	};
	static const char *const bad[] = {
		"", "/", "a", "//", "//a", "/a/", "/a/b", "/.", "/..",
		"/a b", "/a%20", "/a?b", "/a\n", "/\xc3\xa9", "/a:b", "/a\\b",
	};
	char name[PXS_NAME_MAX + 3];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(pxs__name_check(good[i]) == 0, "rejected %s",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pxs__name_check(bad[i]) == -EINVAL,
			      "accepted \"%s\"", bad[i]);
	ck_assert_int_eq(pxs__name_check(NULL), -EINVAL);

	/* Longest valid name, then one character too long. */
	name[0] = '/';
	memset(name + 1, 'x', PXS_NAME_MAX + 1);
	name[PXS_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(pxs__name_check(name), 0);
	name[PXS_NAME_MAX + 1] = 'x';
	name[PXS_NAME_MAX + 2] = '\0';
	ck_assert_int_eq(pxs__name_check(name), -EINVAL);
}
END_TEST

/* ---- random keys ------------------------------------------------------ */

static void *
random_thread(void *arg)
{
	pxs_key *out = arg;

	for (int i = 0; i < N_PER_THREAD; i++)
		out[i] = pxs__key_random();
	return NULL;
}

START_TEST(random_unique_threads)
{
	pxs_key *keys = malloc(sizeof(*keys) * N_THREADS * N_PER_THREAD);
	pthread_t t[N_THREADS];

	ck_assert_ptr_nonnull(keys);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, random_thread,
						keys + i * N_PER_THREAD), 0);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	assert_unique(keys, (size_t)N_THREADS * N_PER_THREAD);
	free(keys);
}
END_TEST

/* Child side: write @p n fresh keys to @p fd. Never returns. */
static void
child_write_keys(int fd, int n)
{
	for (int i = 0; i < n; i++) {
		pxs_key k = pxs__key_random();
		const char *p = (const char *)&k;
		size_t left = sizeof(k);

		while (left > 0) {
			ssize_t w = write(fd, p, left);

			if (w <= 0)
				_exit(2);
			p += w;
			left -= (size_t)w;
		}
	}
	_exit(0);
}

/* Parent side: read @p n keys from @p fd into @p out. */
static void
read_keys(int fd, pxs_key *out, int n)
{
	char *p = (char *)out;
	size_t left = sizeof(*out) * (size_t)n;

	while (left > 0) {
		ssize_t r = read(fd, p, left);

		ck_assert_msg(r > 0, "short read from child");
		p += r;
		left -= (size_t)r;
	}
}

/* Fork @p nchild children that each write N_FORK keys; then draw N_FORK in
 * the parent. Without the atfork reseed each child would produce exactly
 * the parent's sequence. With @p nested, each child first forks a
 * grandchild of its own, which writes into the same pipe. */
static void
fork_and_compare(int nchild, bool nested)
{
	int per_child = nested ? 2 : 1;
	int total = (1 + nchild * per_child) * N_FORK;
	pxs_key *keys = malloc(sizeof(*keys) * (size_t)total);
	int fds[2];

	ck_assert_ptr_nonnull(keys);
	(void)pxs__key_random(); /* the parent is seeded before forking */
	for (int c = 0; c < nchild; c++) {
		pid_t pid;

		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			if (nested) {
				pid_t g = fork();
				int st;

				if (g < 0)
					_exit(3);
				if (g == 0)
					child_write_keys(fds[1], N_FORK);
				if (waitpid(g, &st, 0) != g || !WIFEXITED(st) ||
				    WEXITSTATUS(st) != 0)
					_exit(4);
			}
			child_write_keys(fds[1], N_FORK);
		}
		close(fds[1]);
		read_keys(fds[0], keys + (1 + c * per_child) * N_FORK,
			  per_child * N_FORK);
		close(fds[0]);
		ck_assert_int_eq(pxs_test_reap(pid, 30), 0);
	}
	for (int i = 0; i < N_FORK; i++)
		keys[i] = pxs__key_random();
	assert_unique(keys, (size_t)total);
	free(keys);
}

START_TEST(random_differs_after_fork)
{
	fork_and_compare(1, false);
}
END_TEST

START_TEST(random_siblings_and_grandchildren)
{
	fork_and_compare(3, true);
}
END_TEST

static Suite *
keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("format");

	tcase_add_test(tc, format_known);
	tcase_add_test(tc, roundtrip_random);
	tcase_add_test(tc, parse_accepts);
	tcase_add_test(tc, parse_rejects);
	tcase_add_test(tc, parse_embedded_nul);
	tcase_add_test(tc, key_equal);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, from_name_known_answer);
	tcase_add_test(tc, from_name_properties);
	tcase_add_test(tc, name_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_test(tc, random_unique_threads);
	tcase_add_test(tc, random_differs_after_fork);
	tcase_add_test(tc, random_siblings_and_grandchildren);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pxs_test_run(keys_suite());
}
