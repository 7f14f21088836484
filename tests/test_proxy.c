/* test_proxy.c - unit tests for proxy.c.
 *
 * tcase "string": the pure parts (new, key, format, the strict parser and
 * round trips over random names and keys); no store is touched.
 * tcase "resolve": attaching through the registry, waiting, sharing one
 * attachment and one pin, timeouts and retries, threads and fork().
 * Children never call ck_*: they _exit() with a code the parent asserts.
 */
#include "internal.h"
#include "pxs_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define KEY_HEX "0123456789abcdef0123456789abcdef"
#define N_RANDOM 20000
#define N_THREADS 8

static const pxs_key key1 = {0x0123456789abcdefu, 0x0123456789abcdefu};

/* A proxy pointer that no call may leave behind on failure. */
#define POISON ((pxs_proxy *)(uintptr_t)0x1)

/* ---- the string form ------------------------------------------------- */

START_TEST(new_and_key)
{
	pxs_key zero = {0, 0};
	pxs_proxy *p = POISON;

	ck_assert_int_eq(pxs_proxy_new("/store", key1, &p), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert(pxs_key_equal(pxs_proxy_key(p), key1));
	ck_assert(pxs_key_equal(pxs_proxy_key(NULL), zero));
	pxs_proxy_free(p);
	pxs_proxy_free(NULL);

	/* Nothing is attached: a store that does not exist is fine. */
	ck_assert_int_eq(pxs_proxy_new("/pxs-no-such-store-anywhere", key1, &p),
			 0);
	pxs_proxy_free(p);
}
END_TEST

START_TEST(new_rejects)
{
	static const char *const bad_names[] = {
		"", "/", "store", "/.", "/..", "/a/b", "/a b", "/a%41",
	};
	pxs_key zero = {0, 0};
	pxs_proxy *p;

	ck_assert_int_eq(pxs_proxy_new("/store", key1, NULL), -EINVAL);
	p = POISON;
	ck_assert_int_eq(pxs_proxy_new(NULL, key1, &p), -EINVAL);
	ck_assert_ptr_null(p);
	p = POISON;
	ck_assert_int_eq(pxs_proxy_new("/store", zero, &p), -EINVAL);
	ck_assert_ptr_null(p);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		p = POISON;
		ck_assert_msg(pxs_proxy_new(bad_names[i], key1, &p) == -EINVAL,
			      "accepted name \"%s\"", bad_names[i]);
		ck_assert_ptr_null(p);
	}
}
END_TEST

START_TEST(format_known)
{
	pxs_key k = {0x0123456789abcdefu, 0xfedcba9876543210u};
	const char *want = "pxs://sim.Store_1-x/"
			   "0123456789abcdeffedcba9876543210";
	char buf[PXS_PROXY_STRLEN];
	pxs_proxy *p;

	ck_assert_int_eq(pxs_proxy_new("/sim.Store_1-x", k, &p), 0);
	ck_assert_int_eq(pxs_proxy_format(p, buf, sizeof(buf)),
			 (int)strlen(want));
	ck_assert_str_eq(buf, want);
	pxs_proxy_free(p);
}
END_TEST

START_TEST(format_buffer_sizes)
{
	char buf[PXS_PROXY_STRLEN + 8];
	size_t n = strlen("pxs://store/" KEY_HEX);
	pxs_proxy *p;

	ck_assert_int_eq(pxs_proxy_new("/store", key1, &p), 0);

	/* Exactly enough, then one byte short. */
	ck_assert_int_eq(pxs_proxy_format(p, buf, n + 1), (int)n);
	ck_assert_str_eq(buf, "pxs://store/" KEY_HEX);
	memset(buf, 'z', sizeof(buf));
	ck_assert_int_eq(pxs_proxy_format(p, buf, n), -ENOSPC);
	ck_assert_str_eq(buf, "");
	memset(buf, 'z', sizeof(buf));
	ck_assert_int_eq(pxs_proxy_format(p, buf, 1), -ENOSPC);
	ck_assert_str_eq(buf, "");

	/* len 0: nothing may be written, not even a NUL. */
	memset(buf, 'z', sizeof(buf));
	ck_assert_int_eq(pxs_proxy_format(p, buf, 0), -ENOSPC);
	ck_assert_int_eq(buf[0], 'z');

	ck_assert_int_eq(pxs_proxy_format(p, NULL, 0), -EINVAL);
	ck_assert_int_eq(pxs_proxy_format(p, NULL, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(pxs_proxy_format(NULL, buf, sizeof(buf)), -EINVAL);
	pxs_proxy_free(p);
}
END_TEST

START_TEST(format_longest_name_fits)
{
	char name[PXS_NAME_MAX + 2], buf[PXS_PROXY_STRLEN];
	pxs_proxy *p, *q;

	name[0] = '/';
	memset(name + 1, 'n', PXS_NAME_MAX);
	name[PXS_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(pxs_proxy_new(name, key1, &p), 0);
	ck_assert_int_eq(pxs_proxy_format(p, buf, sizeof(buf)),
			 6 + PXS_NAME_MAX + 1 + 32);
	ck_assert_int_eq(pxs_proxy_parse(buf, &q), 0);
	pxs_proxy_free(q);
	pxs_proxy_free(p);

	/* The longest Redis store name fills PXS_PROXY_STRLEN exactly. */
	char url[PXS_STORE_NAME_MAX + 1];
	int n = snprintf(url, sizeof url, "redis://");
	memset(url + n, 'h', 253);
	n += 253;
	n += snprintf(url + n, sizeof url - (size_t)n, ":65535/");
	memset(url + n, 'n', PXS_NAME_MAX);
	url[n + PXS_NAME_MAX] = '\0';
	ck_assert_int_eq((int)strlen(url), PXS_STORE_NAME_MAX);
	ck_assert_int_eq(pxs_proxy_new(url, key1, &p), 0);
	ck_assert_int_eq(pxs_proxy_format(p, buf, sizeof(buf)),
			 PXS_PROXY_STRLEN - 1);
	ck_assert_int_eq(pxs_proxy_parse(buf, &q), 0);
	pxs_proxy_free(q);
	ck_assert_int_eq(pxs_proxy_format(p, buf, sizeof(buf) - 1), -ENOSPC);
	pxs_proxy_free(p);
}
END_TEST

START_TEST(parse_accepts)
{
	char buf[PXS_PROXY_STRLEN];
	pxs_proxy *p;

	ck_assert_int_eq(pxs_proxy_parse("pxs://store/" KEY_HEX, &p), 0);
	ck_assert(pxs_key_equal(pxs_proxy_key(p), key1));
	ck_assert_int_gt(pxs_proxy_format(p, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "pxs://store/" KEY_HEX);
	pxs_proxy_free(p);

	/* Dots are fine inside names, only "." and ".." are not. */
	ck_assert_int_eq(pxs_proxy_parse("pxs://.../" KEY_HEX, &p), 0);
	pxs_proxy_free(p);
	ck_assert_int_eq(pxs_proxy_parse("pxs://.x/" KEY_HEX, &p), 0);
	pxs_proxy_free(p);
}
END_TEST

static const char *const bad_proxies[] = {
	"",
	"pxs",
	"pxs:",
	"pxs:/",
	"pxs://",
	"pxs:/store/" KEY_HEX,
	"pxs:store/" KEY_HEX,
	"PXS://store/" KEY_HEX,
	"Pxs://store/" KEY_HEX,
	"http://store/" KEY_HEX,
	" pxs://store/" KEY_HEX,
	"pxs:///" KEY_HEX,                 /* empty name */
	"pxs:///store/" KEY_HEX,           /* name with its '/' */
	"pxs://./" KEY_HEX,
	"pxs://../" KEY_HEX,
	"pxs://sto re/" KEY_HEX,
	"pxs://sto%72e/" KEY_HEX,          /* percent-escape */
	"pxs://st:ore/" KEY_HEX,
	"pxs://st\xc3\xb6re/" KEY_HEX,
	"pxs://store",
	"pxs://store/",
	"pxs://store//" KEY_HEX,
	"pxs://a/b/" KEY_HEX,              /* extra segment */
	"pxs://store/" KEY_HEX "/",        /* trailing slash */
	"pxs://store/" KEY_HEX "/x",
	"pxs://store/" KEY_HEX "?x=1",     /* query */
	"pxs://store/" KEY_HEX "#f",
	"pxs://store/" KEY_HEX " ",
	"pxs://store/" KEY_HEX "\n",
	"pxs://store/" KEY_HEX "0",        /* 33 digits */
	"pxs://store/0123456789abcdef0123456789abcde", /* 31 */
	"pxs://store/0123456789ABCDEF0123456789abcdef", /* uppercase */
	"pxs://store/0x23456789abcdef0123456789abcdef",
	"pxs://store/%30123456789abcdef0123456789abcde",
	"pxs://store/00000000000000000000000000000000", /* zero key */
	"pxs://store?/" KEY_HEX,
};

/* Parse must fail with -EINVAL and leave NULL in *out. */
static void
assert_rejected(const char *s, const char *what)
{
	pxs_proxy *p = POISON;
	int rc = pxs_proxy_parse(s, &p);

	ck_assert_msg(rc == -EINVAL, "%s: accepted (rc %d)", what, rc);
	ck_assert_msg(p == NULL, "%s: *out not NULL", what);
}

START_TEST(parse_rejects)
{
	for (size_t i = 0; i < sizeof(bad_proxies) / sizeof(bad_proxies[0]);
	     i++)
		assert_rejected(bad_proxies[i], bad_proxies[i]);
	assert_rejected(NULL, "NULL string");
	ck_assert_int_eq(pxs_proxy_parse("pxs://store/" KEY_HEX, NULL),
			 -EINVAL);
}
END_TEST

START_TEST(parse_rejects_long)
{
	size_t big = 1 << 20;
	char *s = malloc(big + 64);
	char *exact;

	ck_assert_ptr_nonnull(s);

	/* A name one character over the limit. */
	memcpy(s, "pxs://", 6);
	memset(s + 6, 'n', PXS_NAME_MAX + 1);
	strcpy(s + 6 + PXS_NAME_MAX + 1, "/" KEY_HEX);
	assert_rejected(s, "201-character name");

	/* A megabyte-long name, and a long tail after a valid proxy. */
	memset(s + 6, 'n', big);
	strcpy(s + 6 + big, "/" KEY_HEX);
	assert_rejected(s, "1 MiB name");
	strcpy(s, "pxs://store/" KEY_HEX);
	memset(s + strlen(s), '0', big);
	s[big + 40] = '\0';
	assert_rejected(s, "1 MiB key");
	free(s);

	/* PXS_PROXY_STRLEN bytes and no NUL: the parser must stop inside the
	 * buffer (AddressSanitizer reports any read past it). */
	exact = malloc(PXS_PROXY_STRLEN);
	ck_assert_ptr_nonnull(exact);
	memcpy(exact, "pxs://", 6);
	memset(exact + 6, 'n', PXS_PROXY_STRLEN - 6);
	assert_rejected(exact, "unterminated");
	free(exact);
}
END_TEST

START_TEST(parse_embedded_nul)
{
	char s[] = "pxs://store/" KEY_HEX;
	size_t n = strlen(s);

	for (size_t at = 0; at < n; at++) {
		char c = s[at], what[32];

		s[at] = '\0';
		snprintf(what, sizeof(what), "NUL at %zu", at);
		assert_rejected(s, what);
		s[at] = c;
	}
}
END_TEST

static uint64_t
next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A random valid name: '/' then 1..PXS_NAME_MAX name characters. */
static void
random_name(char name[PXS_NAME_MAX + 2], uint64_t *rng)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	size_t len;

	do {
		len = 1 + next_rand(rng) % PXS_NAME_MAX;
		/* Short names often, so that "." and ".." come up. */
		if (next_rand(rng) % 4 == 0)
			len = 1 + len % 3;
		name[0] = '/';
		for (size_t i = 0; i < len; i++) {
			uint64_t c = next_rand(rng) % (sizeof(chars) - 1);

			name[1 + i] = chars[c];
		}
		name[1 + len] = '\0';
	} while (strcmp(name, "/.") == 0 || strcmp(name, "/..") == 0);
}

START_TEST(roundtrip_random)
{
	uint64_t seed = pxs__key_random().lo | 1, rng = seed;
	char name[PXS_NAME_MAX + 2], want[PXS_PROXY_STRLEN + 8];
	char s1[PXS_PROXY_STRLEN], s2[PXS_PROXY_STRLEN];

	for (int i = 0; i < N_RANDOM; i++) {
		pxs_key k = pxs__key_random();
		char hex[PXS_KEY_STRLEN];
		pxs_proxy *p, *q;
		int n;

		random_name(name, &rng);
		pxs_key_format(k, hex);
		snprintf(want, sizeof(want), "pxs://%s/%s", name + 1, hex);

		/* parse(format(p)) == p */
		if (pxs_proxy_new(name, k, &p) != 0)
			ck_abort_msg("new %s (seed %" PRIu64 ")", name, seed);
		n = pxs_proxy_format(p, s1, sizeof(s1));
		if (n != (int)strlen(want) || strcmp(s1, want) != 0)
			ck_abort_msg("format %s, want %s", s1, want);
		if (pxs_proxy_parse(s1, &q) != 0)
			ck_abort_msg("parse %s (seed %" PRIu64 ")", s1, seed);
		if (!pxs_key_equal(pxs_proxy_key(q), k))
			ck_abort_msg("key lost in %s", s1);

		/* format(parse(s)) == s */
		if (pxs_proxy_format(q, s2, sizeof(s2)) != n ||
		    strcmp(s1, s2) != 0)
			ck_abort_msg("%s came back as %s", s1, s2);
		pxs_proxy_free(p);
		pxs_proxy_free(q);
	}
}
END_TEST

START_TEST(parse_rejects_random_mutations)
{
	/* Change one byte of a valid proxy to a byte outside what its
	 * position allows: every such string must be rejected. */
	uint64_t seed = pxs__key_random().lo | 1, rng = seed;
	const char *good = "pxs://sim.Store_1-x/" KEY_HEX;
	size_t n = strlen(good), name_end = strlen("pxs://sim.Store_1-x");
	char s[128];

	for (int i = 0; i < N_RANDOM; i++) {
		size_t at = next_rand(&rng) % n;
		unsigned char c = (unsigned char)(1 + next_rand(&rng) % 255);
		bool ok_name = (c >= 'a' && c <= 'z') ||
			       (c >= 'A' && c <= 'Z') ||
			       (c >= '0' && c <= '9') || c == '.' ||
			       c == '_' || c == '-';
		bool ok_key = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		pxs_proxy *p = POISON;

		if (at >= 6 && at < name_end && ok_name)
			continue;
		if (at > name_end && ok_key)
			continue;
		if ((unsigned char)good[at] == c)
			continue;
		strcpy(s, good);
		s[at] = (char)c;
		if (pxs_proxy_parse(s, &p) != -EINVAL || p != NULL)
			ck_abort_msg("accepted \"%s\" (seed %" PRIu64 ")", s,
				     seed);
	}
}
END_TEST

/* ---- resolve --------------------------------------------------------- */

/* A fresh store with a (set) object under a fresh key, and its proxy. */
struct fixture {
	char name[64];
	pxs_store *s;
	pxs_key k;
	pxs_proxy *p;
};

static void
fixture_open(struct fixture *f, bool set)
{
	f->s = pxs_test_store(f->name, 4 * MiB, 64);
	ck_assert_int_eq(pxs_future_new(f->s, &f->k), 0);
	if (set)
		ck_assert_int_eq(pxs_future_set(f->s, f->k, "hello", 6), 0);
	ck_assert_int_eq(pxs_proxy_new(f->name, f->k, &f->p), 0);
}

static void
fixture_close(struct fixture *f)
{
	pxs_proxy_free(f->p);
	pxs_test_done(f->s, f->name);
}

static uint32_t
pins(pxs_store *s)
{
	return pxs_test_stat(s).pins;
}

START_TEST(resolve_twice_same_pointer)
{
	struct fixture f;
	const void *d1, *d2;
	size_t z1, z2;

	fixture_open(&f, true);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &d1, &z1), 0);
	ck_assert_uint_eq(z1, 6);
	ck_assert_str_eq(d1, "hello");
	ck_assert_uint_eq(pins(f.s), 1);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, -1, &d2, &z2), 0);
	ck_assert_ptr_eq(d1, d2);
	ck_assert_uint_eq(z2, 6);
	ck_assert_uint_eq(pins(f.s), 1);

	/* The pin keeps the bytes valid after the key is evicted. */
	ck_assert_int_eq(pxs_evict(f.s, f.k), 0);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &d2, &z2), 0);
	ck_assert_ptr_eq(d1, d2);
	ck_assert_str_eq(d2, "hello");

	pxs_proxy_free(f.p);
	f.p = NULL;
	ck_assert_uint_eq(pins(f.s), 0);
	fixture_close(&f);
}
END_TEST

START_TEST(resolve_shares_one_attachment)
{
	int base = pxs__proxy_registry_count();
	struct fixture a, b;
	pxs_proxy *a2, *a3;
	pxs_key k2;
	const void *d1, *d2, *d3, *db;
	size_t z;

	fixture_open(&a, true);
	fixture_open(&b, true);
	ck_assert_int_eq(pxs_put(a.s, "second", 7, &k2), 0);
	ck_assert_int_eq(pxs_proxy_new(a.name, k2, &a2), 0);
	ck_assert_int_eq(pxs_proxy_new(a.name, a.k, &a3), 0);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);

	ck_assert_int_eq(pxs_proxy_resolve(a.p, -1, &d1, &z), 0);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 1);
	ck_assert_int_eq(pxs_proxy_resolve(a2, -1, &d2, &z), 0);
	ck_assert_str_eq(d2, "second");
	ck_assert_int_eq(pxs_proxy_resolve(a3, -1, &d3, &z), 0);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 1);
	/* One attachment means one mapping: the same key, the same bytes. */
	ck_assert_ptr_eq(d1, d3);
	ck_assert_uint_eq(pins(a.s), 3);

	ck_assert_int_eq(pxs_proxy_resolve(b.p, -1, &db, &z), 0);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 2);

	pxs_proxy_free(a.p);
	a.p = NULL;
	pxs_proxy_free(a2);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 2);
	ck_assert_uint_eq(pins(a.s), 1);
	pxs_proxy_free(a3);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 1);
	ck_assert_uint_eq(pins(a.s), 0);
	pxs_proxy_free(b.p);
	b.p = NULL;
	ck_assert_int_eq(pxs__proxy_registry_count(), base);
	fixture_close(&a);
	fixture_close(&b);
}
END_TEST

START_TEST(resolve_timeout_then_retry)
{
	int base = pxs__proxy_registry_count();
	const void *data = "untouched";
	size_t size = 12345;
	struct fixture f;
	double t0, waited;

	fixture_open(&f, false);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &data, &size), -ETIMEDOUT);
	t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 50, &data, &size),
			 -ETIMEDOUT);
	waited = pxs_test_ms() - t0;
	ck_assert_msg(waited >= 49.0, "timed out early: %.1f ms", waited);
	/* Outputs untouched; the failed resolves kept no attachment. */
	ck_assert_str_eq(data, "untouched");
	ck_assert_uint_eq(size, 12345);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);

	ck_assert_int_eq(pxs_future_set(f.s, f.k, "late", 5), 0);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &data, &size), 0);
	ck_assert_str_eq(data, "late");
	ck_assert_uint_eq(size, 5);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 1);
	fixture_close(&f);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);
}
END_TEST

START_TEST(resolve_errors)
{
	int base = pxs__proxy_registry_count();
	pxs_key absent = pxs_key_from_name("absent", 6);
	struct fixture f;
	const void *data;
	size_t size;
	pxs_proxy *p;

	fixture_open(&f, true);
	ck_assert_int_eq(pxs_proxy_resolve(NULL, 0, &data, &size), -EINVAL);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, NULL, &size), -EINVAL);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &data, NULL), -EINVAL);

	/* No such store: pxs_open's error, and nothing attached. */
	ck_assert_int_eq(pxs_proxy_new("/pxs-test-no-such-store", f.k, &p), 0);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, &data, &size), -ENOENT);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);
	pxs_proxy_free(p);

	/* No such key: pxs_future_wait's error; a retry after the key
	 * appears succeeds. */
	ck_assert_int_eq(pxs_proxy_new(f.name, absent, &p), 0);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, &data, &size), -ENOENT);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);
	ck_assert_int_eq(pxs_put_at(f.s, absent, "now", 4), 0);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, &data, &size), 0);
	ck_assert_str_eq(data, "now");
	pxs_proxy_free(p);
	fixture_close(&f);
}
END_TEST

struct resolver {
	pxs_proxy *p;
	pthread_barrier_t *start;
	int rc;
	const void *data;
	size_t size;
};

static void *
resolver_thread(void *arg)
{
	struct resolver *r = arg;

	pthread_barrier_wait(r->start);
	r->rc = pxs_proxy_resolve(r->p, -1, &r->data, &r->size);
	return NULL;
}

START_TEST(resolve_from_threads)
{
	int base = pxs__proxy_registry_count();
	struct resolver r[N_THREADS];
	pthread_t t[N_THREADS];
	pthread_barrier_t start;
	struct fixture f;

	fixture_open(&f, false);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, N_THREADS + 1), 0);
	for (int i = 0; i < N_THREADS; i++) {
		r[i] = (struct resolver){.p = f.p, .start = &start, .rc = 1};
		ck_assert_int_eq(pthread_create(&t[i], NULL, resolver_thread,
						&r[i]), 0);
	}
	pthread_barrier_wait(&start);
	ck_assert_int_eq(pxs_future_set(f.s, f.k, "shared", 7), 0);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);

	for (int i = 0; i < N_THREADS; i++) {
		ck_assert_int_eq(r[i].rc, 0);
		ck_assert_ptr_eq(r[i].data, r[0].data);
		ck_assert_uint_eq(r[i].size, 7);
	}
	ck_assert_str_eq(r[0].data, "shared");
	/* The threads that lost the race released their pins. */
	ck_assert_uint_eq(pins(f.s), 1);
	ck_assert_int_eq(pxs__proxy_registry_count(), base + 1);
	fixture_close(&f);
	ck_assert_int_eq(pxs__proxy_registry_count(), base);
}
END_TEST

/* Child of resolve_in_forked_child: an unrelated consumer that only has
 * the proxy string. */
static int
child_resolve(void *arg)
{
	const char *str = arg;
	const void *d1, *d2;
	size_t z1, z2;
	int rc = 0, base = pxs__proxy_registry_count();
	pxs_proxy *p;

	if (pxs_proxy_parse(str, &p) != 0)
		return 10;
	if (pxs_proxy_resolve(p, -1, &d1, &z1) != 0)
		rc = 11;
	else if (pxs_test_verify(d1, z1, pxs_proxy_key(p)) != 0)
		rc = 12;
	else if (pxs_proxy_resolve(p, 0, &d2, &z2) != 0 || d2 != d1 ||
		 z2 != z1)
		rc = 13;
	pxs_proxy_free(p);
	if (rc == 0 && pxs__proxy_registry_count() != base)
		rc = 14;
	return rc;
}

START_TEST(resolve_in_forked_child)
{
	char str[PXS_PROXY_STRLEN];
	size_t n = 100000;
	struct fixture f;
	void *buf;
	pid_t pid;

	fixture_open(&f, false);
	ck_assert_int_gt(pxs_proxy_format(f.p, str, sizeof(str)), 0);
	pid = pxs_test_spawn(child_resolve, str);
	/* Set the value once the child sleeps in its wait, so the test
	 * covers the wake-up (not just a value already there). */
	ck_assert_int_eq(pxs_test_wait_blocked(pid, 10000), 0);
	ck_assert_int_eq(pxs_future_reserve(f.s, f.k, n, &buf), 0);
	pxs_test_fill(buf, n, f.k, 7);
	ck_assert_int_eq(pxs_future_commit(f.s, f.k), 0);
	ck_assert_int_eq(pxs_test_reap(pid, 30), 0);
	fixture_close(&f);
}
END_TEST

/* What resolve_then_fork's child gets: a proxy resolved before the fork. */
struct reuse {
	pxs_proxy *p;
	const void *data;
	size_t size;
	int registered; /* registry entries while p is resolved */
};

static int
child_reuse(void *arg)
{
	struct reuse *r = arg;
	const void *d;
	size_t z;

	if (pxs_proxy_resolve(r->p, 0, &d, &z) != 0)
		return 20;
	if (d != r->data || z != r->size || strcmp(d, "hello") != 0)
		return 21;
	pxs_proxy_free(r->p);
	return pxs__proxy_registry_count() == r->registered - 1 ? 0 : 22;
}

START_TEST(resolve_then_fork)
{
	struct reuse r;
	struct fixture f;
	const void *d;
	size_t z;

	fixture_open(&f, true);
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &r.data, &r.size), 0);
	r.p = f.p;
	r.registered = pxs__proxy_registry_count();
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_reuse, &r), 30),
			 0);
	/* The child's free touched only its copy. */
	ck_assert_int_eq(pxs_proxy_resolve(f.p, 0, &d, &z), 0);
	ck_assert_ptr_eq(d, r.data);
	ck_assert_uint_eq(pins(f.s), 1);
	fixture_close(&f);
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("string");

	tcase_add_test(tc, new_and_key);
	tcase_add_test(tc, new_rejects);
	tcase_add_test(tc, format_known);
	tcase_add_test(tc, format_buffer_sizes);
	tcase_add_test(tc, format_longest_name_fits);
	tcase_add_test(tc, parse_accepts);
	tcase_add_test(tc, parse_rejects);
	tcase_add_test(tc, parse_rejects_long);
	tcase_add_test(tc, parse_embedded_nul);
	tcase_add_test(tc, roundtrip_random);
	tcase_add_test(tc, parse_rejects_random_mutations);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	/* Needs the store: every test makes (and unlinks) its own segments. */
	tc = tcase_create("resolve");
	tcase_add_test(tc, resolve_twice_same_pointer);
	tcase_add_test(tc, resolve_shares_one_attachment);
	tcase_add_test(tc, resolve_timeout_then_retry);
	tcase_add_test(tc, resolve_errors);
	tcase_add_test(tc, resolve_from_threads);
	tcase_add_test(tc, resolve_in_forked_child);
	tcase_add_test(tc, resolve_then_fork);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pxs_test_run(proxy_suite());
}
