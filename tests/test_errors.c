/* test_errors.c - unit tests for errors.c: pxs_strerror() texts for every
 * code the library returns, unknown and extreme codes, and pxs_version().
 */
#include "internal.h"
#include "pxs_test.h"

#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Every code named in the header's @return lists and Errors section. */
static const int library_codes[] = {
	EPROTO, EOWNERDEAD, ECANCELED, EALREADY, EAGAIN, ENOTRECOVERABLE,
	ETIMEDOUT, ENOSPC, EEXIST, ENOENT, EINVAL, EBUSY, EPERM, EACCES,
	EOVERFLOW, EUSERS, EMFILE, ENFILE, ENOMEM, ENAMETOOLONG,
};
#define N_CODES (sizeof(library_codes) / sizeof(library_codes[0]))

static const char *const unknown = "unknown error";

START_TEST(success)
{
	ck_assert_str_eq(pxs_strerror(0), "success");
}
END_TEST

START_TEST(library_codes_have_own_texts)
{
	for (size_t i = 0; i < N_CODES; i++) {
		const char *t = pxs_strerror(-library_codes[i]);

		ck_assert_ptr_nonnull(t);
		ck_assert_msg(strlen(t) >= 8, "text for %d too short: \"%s\"",
			      library_codes[i], t);
		ck_assert_msg(strcmp(t, unknown) != 0 &&
			      strcmp(t, "success") != 0,
			      "code %d has no text of its own",
			      library_codes[i]);
		/* One sentence fragment, no trailing period or newline. */
		ck_assert(strchr(t, '\n') == NULL);
		ck_assert(t[strlen(t) - 1] != '.');
		/* For people: short, and no flag or function names. */
		ck_assert_msg(strlen(t) <= 72, "text for %d too long: \"%s\"",
			      library_codes[i], t);
		ck_assert_msg(strstr(t, "PXS_") == NULL &&
				      strstr(t, "pxs_") == NULL,
			      "text for %d names the API: \"%s\"",
			      library_codes[i], t);
	}
}
END_TEST

START_TEST(all_known_texts_distinct)
{
	/* No two codes with a text of their own (the library's, and the
	 * syscall codes outside the header's lists) may read the same. */
	enum { MAX_CODE = 4096 };
	static const char *seen[MAX_CODE];
	int n = 0;

	for (int e = 1; e < MAX_CODE; e++) {
		const char *t = pxs_strerror(-e);

		if (strcmp(t, unknown) == 0)
			continue;
		for (int i = 0; i < n; i++)
			if (strcmp(seen[i], t) == 0)
				ck_abort_msg("code %d repeats \"%s\"", e, t);
		seen[n++] = t;
	}
	ck_assert_int_ge(n, (int)N_CODES);
}
END_TEST

START_TEST(wording_matches_meaning)
{
	/* The codes with a meaning of our own say so, not the kernel's
	 * generic text ("Protocol error", "Owner died"). */
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-EPROTO), "segment"));
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-EOWNERDEAD), "abandoned"));
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-ECANCELED), "evicted"));
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-EALREADY), "already set"));
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-EAGAIN), "pending"));
	ck_assert_ptr_nonnull(strstr(pxs_strerror(-ENOTRECOVERABLE),
				     "recreate"));
}
END_TEST

START_TEST(positive_codes_are_negated)
{
	for (size_t i = 0; i < N_CODES; i++)
		ck_assert_str_eq(pxs_strerror(library_codes[i]),
				 pxs_strerror(-library_codes[i]));
}
END_TEST

START_TEST(unknown_codes)
{
	static const int codes[] = {
		INT_MIN, INT_MIN + 1, INT_MAX, -INT_MAX, -9999, 9999, -4096,
		-1000, 1000, -EHWPOISON - 1,
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *t = pxs_strerror(codes[i]);

		ck_assert_ptr_nonnull(t);
		ck_assert_str_eq(t, unknown);
	}
}
END_TEST

START_TEST(never_null)
{
	for (int e = -5000; e <= 5000; e++) {
		const char *t = pxs_strerror(e);

		if (t == NULL || t[0] == '\0')
			ck_abort_msg("no text for %d", e);
	}
}
END_TEST

static void *
strerror_thread(void *arg)
{
	const char **expect = arg;

	for (int round = 0; round < 10000; round++)
		for (size_t i = 0; i < N_CODES; i++)
			if (pxs_strerror(-library_codes[i]) != expect[i])
				return (void *)1;
	return NULL;
}

START_TEST(thread_safe)
{
	const char *expect[N_CODES];
	pthread_t t[4];

	for (size_t i = 0; i < N_CODES; i++)
		expect[i] = pxs_strerror(-library_codes[i]);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, strerror_thread,
						(void *)expect), 0);
	for (int i = 0; i < 4; i++) {
		void *ret;

		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
}
END_TEST

START_TEST(version)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", PXS_VERSION_MAJOR,
		 PXS_VERSION_MINOR, PXS_VERSION_PATCH);
	ck_assert_ptr_nonnull(pxs_version());
	ck_assert_str_eq(pxs_version(), want);
	ck_assert_str_eq(pxs_version(), "0.1.0");
}
END_TEST

static Suite *
errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("strerror");

	tcase_add_test(tc, success);
	tcase_add_test(tc, library_codes_have_own_texts);
	tcase_add_test(tc, all_known_texts_distinct);
	tcase_add_test(tc, wording_matches_meaning);
	tcase_add_test(tc, positive_codes_are_negated);
	tcase_add_test(tc, unknown_codes);
	tcase_add_test(tc, never_null);
	tcase_add_test(tc, thread_safe);
	suite_add_tcase(s, tc);

	tc = tcase_create("version");
	tcase_add_test(tc, version);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pxs_test_run(errors_suite());
}
