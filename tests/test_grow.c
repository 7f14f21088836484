/* test_grow.c - a slot table that grows inside the heap (chain.c,
 * table.c GROWING): several processes inserting, looking up and evicting
 * while the chain grows through several tables; views pinned across
 * growth; lookups, expiry, the reaper, listing, checking and read-only
 * handles over every table.
 */
#include "internal.h"
#include "pxs_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define WORKERS 4
#define PER_WORKER 3000

static char seg[64];

static pxs_key
wkey(int w, int i)
{
	char n[32];
	snprintf(n, sizeof n, "grow/%d/%d", w, i);
	return pxs_key_from_name(n, strlen(n));
}

/* Keys of worker w with i % 3 == 0 are evicted again; the rest stay. */
static bool
kept(int i)
{
	return i % 3 != 0;
}

static int
worker(void *arg)
{
	int w = (int)(intptr_t)arg;
	pxs_store *s;
	if (pxs_open(seg, NULL, &s))
		return 2;
	for (int i = 0; i < PER_WORKER; i++) {
		pxs_key k = wkey(w, i);
		int v = w * 100000 + i;
		if (pxs_put_at(s, k, &v, sizeof v))
			return 3;
		/* A key of our own, and one of a neighbour's, looked up while
		 * the chain grows under both. */
		pxs_view view;
		if (pxs_get(s, k, &view) || *(const int *)view.data != v ||
		    pxs_release(s, &view))
			return 4;
		int j = i / 2, rc = pxs_get(s, wkey((w + 1) % WORKERS, j), &view);
		if (rc == 0 &&
		    (*(const int *)view.data != ((w + 1) % WORKERS) * 100000 + j ||
		     pxs_release(s, &view)))
			return 5;
		if (rc != 0 && rc != -ENOENT)
			return 6;
		if (pxs_put_at(s, k, &v, sizeof v) != -EEXIST)
			return 7; /* a live key is unique across the chain */
		if (!kept(i) && pxs_evict(s, k))
			return 8;
	}
	pxs_close(s);
	return 0;
}

/* Every key found exactly once; the list has no duplicate. */
static void
assert_all_keys(pxs_store *s)
{
	uint32_t want = 0;
	for (int w = 0; w < WORKERS; w++)
		for (int i = 0; i < PER_WORKER; i++) {
			pxs_view v;
			int rc = pxs_get(s, wkey(w, i), &v);
			if (!kept(i)) {
				ck_assert_int_eq(rc, -ENOENT);
				continue;
			}
			want++;
			ck_assert_int_eq(rc, 0);
			ck_assert_int_eq(*(const int *)v.data, w * 100000 + i);
			ck_assert_int_eq(pxs_release(s, &v), 0);
		}
	uint64_t cur = 0;
	pxs_entry e;
	uint32_t n = 0;
	pxs_key *seen = calloc(want + 1, sizeof *seen);
	while (pxs_list(s, &cur, &e) == 1) {
		ck_assert_uint_lt(n, want + 1);
		seen[n++] = e.key;
	}
	ck_assert_uint_eq(n, want);
	for (uint32_t a = 0; a < n; a++)
		for (uint32_t b = a + 1; b < n; b++)
			ck_assert(!pxs_key_equal(seen[a], seen[b]));
	free(seen);
}

START_TEST(concurrent_growth_loses_and_duplicates_nothing)
{
	pxs_store *s = pxs_test_store(seg, 64 * MiB, 0);
	pid_t p[WORKERS];
	for (int w = 0; w < WORKERS; w++)
		p[w] = pxs_test_spawn(worker, (void *)(intptr_t)w);
	for (int w = 0; w < WORKERS; w++)
		ck_assert_int_eq(pxs_test_reap(p[w], 120), 0);
	pxs_stats st = pxs_test_stat(s);
	printf("%d processes, %d keys each: %u tables, %u objects, capacity "
	       "%u\n",
	       WORKERS, PER_WORKER, st.tables, st.objects, st.capacity);
	ck_assert_uint_ge(st.tables, 4);
	ck_assert_uint_eq(st.slots_used, st.objects);
	ck_assert_uint_ge(st.capacity, st.objects);
	assert_all_keys(s);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.slots_live, st.objects);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	pxs_test_done(s, seg);
}
END_TEST

/* Put keys until the chain has @p tables tables; returns how many. */
static int
fill_to(pxs_store *s, uint32_t tables, int from)
{
	int i = from;
	while (pxs_test_stat(s).tables < tables) {
		ck_assert_int_eq(pxs_put_at(s, wkey(9, i), &i, sizeof i), 0);
		i++;
	}
	return i;
}

static int
reader_dies_pinning(void *arg)
{
	pxs_store *s;
	pxs_view v;
	(void)arg;
	if (pxs_open(seg, NULL, &s) || pxs_get(s, wkey(9, 0), &v) ||
	    pxs_get(s, wkey(9, 5000), &v))
		return 1;
	raise(SIGKILL);
	return 2;
}

START_TEST(old_tables_serve_lookups_pins_waits_and_walks)
{
	pxs_store *s = pxs_test_store(seg, 32 * MiB, 0);
	/* A view and a future in table 0, pinned and waited on across two
	 * growths. */
	int zero = 0;
	ck_assert_int_eq(pxs_put_at(s, wkey(9, 0), &zero, sizeof zero), 0);
	pxs_view held;
	ck_assert_int_eq(pxs_get(s, wkey(9, 0), &held), 0);
	pxs_key fut = wkey(8, 0), ttl = wkey(8, 1);
	ck_assert_int_eq(pxs_future_new_at(s, fut), 0);
	ck_assert_int_eq(pxs_put_at(s, ttl, "t", 1), 0);
	ck_assert_int_eq(pxs_expire(s, ttl, 1), 0);
	int n = fill_to(s, 3, 1);
	ck_assert_uint_eq(pxs__idx_tab(s, (uint32_t)held.priv[0]), 0);
	ck_assert_int_eq(pxs_evict(s, wkey(9, 0)), 0); /* kept for the pin */
	ck_assert_int_eq(*(const int *)held.data, 0);
	ck_assert_int_eq(pxs_release(s, &held), 0);
	/* The future of table 0 is set and seen by a waiter. */
	ck_assert_int_eq(pxs_future_set(s, fut, "done", 4), 0);
	pxs_view v;
	ck_assert_int_eq(pxs_future_wait(s, fut, 1000, &v), 0);
	ck_assert_mem_eq(v.data, "done", 4);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* The expired key of table 0 is absent, and reclaimed by a reap. */
	usleep(5000);
	ck_assert_int_eq(pxs_get(s, ttl, &v), -ENOENT);
	ck_assert_int_ge(pxs_reap(s), 0);
	/* A reader killed holding pins in table 0 and in a newer table. */
	n = fill_to(s, 4, n);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(reader_dies_pinning, NULL),
				       30),
			 1); /* wkey(9, 0) was evicted */
	ck_assert_int_eq(pxs_put_at(s, wkey(9, 0), &zero, sizeof zero), 0);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(reader_dies_pinning, NULL),
				       30),
			 128 + SIGKILL);
	ck_assert_uint_eq(pxs_test_stat(s).pins, 2);
	ck_assert_int_ge(pxs_reap(s), 1);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.pins, 0);
	ck_assert_uint_eq(st.tables, 4);
	/* A read-only handle sees the keys of every table; the list walks
	 * them all. */
	pxs_options ro = {.flags = PXS_RDONLY};
	pxs_store *r;
	ck_assert_int_eq(pxs_open(seg, &ro, &r), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pxs_exists(r, wkey(9, i)), 1);
	uint64_t cur = 0;
	pxs_entry e;
	uint32_t listed = 0;
	while (pxs_list(r, &cur, &e) == 1)
		listed++;
	ck_assert_uint_eq(listed, (uint32_t)n + 1); /* and the future */
	pxs_check_report rep;
	ck_assert_int_eq(pxs_check(r, &rep), 0);
	ck_assert_int_eq(pxs_stat(r, &st), 0);
	ck_assert_uint_eq(st.tables, 4);
	pxs_close(r);
	ck_assert_int_eq(pxs_check(s, &rep), 0);
	ck_assert_uint_eq(rep.leaked_blocks, 0);
	ck_assert_uint_eq(rep.slots_live, (uint32_t)n + 1);
	pxs_test_done(s, seg);
}
END_TEST

/* A fixed capacity keeps its meaning: one table, a hard limit. */
START_TEST(a_fixed_capacity_does_not_grow)
{
	pxs_store *s = pxs_test_store(seg, 8 * MiB, 100);
	int i = 0, rc;
	while ((rc = pxs_put_at(s, wkey(7, i), &i, sizeof i)) == 0)
		i++;
	ck_assert_int_eq(rc, -ENOSPC);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_int_eq(i, 100);
	ck_assert_uint_eq(st.capacity, 100);
	ck_assert_uint_eq(st.slots_used, 100);
	ck_assert_uint_eq(st.tables, 1);
	ck_assert_uint_eq(st.table_grows, 0);
	pxs_test_done(s, seg);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("grow");
	TCase *tc = tcase_create("grow");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, concurrent_growth_loses_and_duplicates_nothing);
	tcase_add_test(tc, old_tables_serve_lookups_pins_waits_and_walks);
	tcase_add_test(tc, a_fixed_capacity_does_not_grow);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
