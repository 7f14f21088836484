/* test_cost.c - what a store costs in /dev/shm: a large store when it is
 * created, and as processes attach and pin; what refuses first when it
 * fills. The figures are printed; the asserts hold the cost to what
 * docs/design.md says it is ("What a store costs"), so that a change that
 * makes it grow fails here.
 */
#include "internal.h"
#include "pxs_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static uint64_t
backed(const char *name)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof path, "/dev/shm%s", name);
	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512u;
}

/* Attaching, and reading the statistics as `proxyshm stat` does, takes a
 * process entry and nothing from the heap: only a handle's first pin
 * allocates its pin records. */
START_TEST(attaching_a_large_store_costs_a_few_kib)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 64 * GiB, 0);
	const uint64_t meta = s->g.heap_off,
		       pins = (uint64_t)s->g.nslots * sizeof(uint16_t) +
			      PXS_MAX_TABLES * sizeof(uint64_t);
	const uint64_t fresh = backed(name);
	const pxs_stats st0 = pxs_test_stat(s);
	printf("64 GiB store: capacity %u (grows), %u slots in table 0; "
	       "metadata %.2f MiB, pin records %.1f KiB for a handle that "
	       "pins\n",
	       st0.capacity, s->g.nslots, (double)meta / MiB,
	       (double)pins / KiB);
	printf("fresh: %.1f MiB backed, heap used %llu B\n",
	       (double)fresh / MiB, (unsigned long long)st0.heap_used);
	pxs_store *t[10];
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(pxs_open(name, NULL, &t[i]), 0);
		(void)pxs_test_stat(t[i]);
	}
	const uint64_t after = backed(name);
	const pxs_stats st1 = pxs_test_stat(s);
	printf("after 10 attaches and stats: %.1f MiB backed "
	       "(%.1f KiB per attach), heap used %llu B\n",
	       (double)after / MiB, (double)(after - fresh) / 10 / KiB,
	       (unsigned long long)st1.heap_used);
	/* Creation backs the metadata (header, process table, table 0 of
	 * the slot table) and nothing of the heap: a few MiB whatever the
	 * size. */
	ck_assert_uint_le(meta, 1 * MiB);
	ck_assert_uint_le(fresh, 4 * MiB);
	ck_assert_uint_le(after, 4 * MiB);
	ck_assert_uint_eq(st0.tables, 1);
	ck_assert_uint_ne(st0.table_grows, 0);
	ck_assert_uint_le(after - fresh, 10 * 16 * KiB);
	ck_assert_uint_eq(st1.heap_used, st0.heap_used);
	ck_assert_uint_eq(st1.processes, 11);

	/* A handle that pins pays for its records then, and only it. */
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_put(t[0], "x", 1, &k), 0);
	ck_assert_int_eq(pxs_get(t[1], k, &v), 0);
	const pxs_stats st2 = pxs_test_stat(s);
	ck_assert_uint_ge(st2.heap_used, st1.heap_used + pins);
	ck_assert_uint_le(st2.heap_used, st1.heap_used + pins + 4 * KiB);
	ck_assert_uint_eq(st2.pins, 1);
	ck_assert_int_eq(pxs_release(t[1], &v), 0);
	for (int i = 0; i < 10; i++)
		pxs_close(t[i]);
	/* The closing handle's records go back to the heap. */
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_uint_eq(pxs_test_stat(s).heap_used, st0.heap_used);
	pxs_test_done(s, name);
}
END_TEST

static int
pin_and_die(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	pxs_view v;
	pxs_key k;
	if (pxs_open(name, NULL, &s) < 0 || pxs_put(s, "y", 1, &k) < 0 ||
	    pxs_get(s, k, &v) < 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

/* A process killed holding a pin leaves its pin records behind; the reap
 * frees them and its pin, and the value stays readable. */
START_TEST(a_killed_readers_pin_records_are_reclaimed)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 1024);
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "v", 1, &k), 0);
	const pxs_stats st0 = pxs_test_stat(s);
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(pin_and_die, name), 30),
			 128 + SIGKILL);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.pins, 1); /* counted until it is reaped */
	ck_assert_uint_gt(st.heap_used, st0.heap_used);
	ck_assert_int_ge(pxs_reap(s), 1);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	st = pxs_test_stat(s);
	ck_assert_uint_eq(st.objects, 2); /* its put stays: committed */
	ck_assert_uint_eq(st.pins, 0);
	ck_assert_uint_lt(st.heap_used, st0.heap_used + 4 * KiB);
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(((const char *)v.data)[0], 'v');
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_test_done(s, name);
}
END_TEST

/* A heap too full for a handle's first pin records refuses the get with
 * -ENOSPC and changes nothing; the statistics tell a full heap from a full
 * table; once room is made, the same get succeeds. */
START_TEST(a_full_heap_refuses_a_first_pin_and_says_it_is_the_heap)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 40 * MiB, 65536);
	static char big[64 * 1024];
	pxs_key k[1024];
	uint32_t n = 0;
	int rc;
	while (n < 1024 && (rc = pxs_put(s, big, sizeof big, &k[n])) == 0)
		n++;
	ck_assert_int_eq(rc, -ENOSPC);
	const pxs_stats full = pxs_test_stat(s);
	printf("40 MiB store: -ENOSPC after %u values of 64 KiB, %u of %u "
	       "slots used\n", n, full.slots_used, full.capacity);
	ck_assert_uint_eq(full.slots_used, n);
	ck_assert_uint_lt(full.slots_used, full.capacity); /* the heap, then */
	ck_assert_uint_lt(full.heap_largest_free, sizeof big);
	pxs_store *t;
	pxs_view v;
	ck_assert_int_eq(pxs_open(name, NULL, &t), 0);
	ck_assert_int_eq(pxs_get(t, k[n / 2], &v), -ENOSPC);
	const pxs_stats after = pxs_test_stat(s);
	ck_assert_uint_eq(after.heap_used, full.heap_used);
	ck_assert_uint_eq(after.pins, 0);
	ck_assert_uint_eq(after.objects, n);
	for (uint32_t i = 0; i < 8; i++) /* adjacent blocks: 512 KiB free */
		ck_assert_int_eq(pxs_evict(s, k[i]), 0);
	ck_assert_int_eq(pxs_get(t, k[n / 2], &v), 0);
	ck_assert_uint_eq(v.size, sizeof big);
	ck_assert_int_eq(pxs_release(t, &v), 0);
	pxs_close(t);
	pxs_test_done(s, name);
}
END_TEST

/* A default store filled with 64 B objects: what refuses first, and the
 * fraction of the segment in use when -ENOSPC comes (printed). The slot
 * table grows in the heap as it fills, so the heap is what runs out: at
 * least half of the segment is in use by then, and the table is the
 * crowded last one its heap had room for. */
START_TEST(a_default_store_filled_with_small_objects)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 0, 0);
	static const char obj[64];
	uint32_t n = 0;
	int rc;
	pxs_key k;
	while ((rc = pxs_put(s, obj, sizeof obj, &k)) == 0)
		n++;
	ck_assert_int_eq(rc, -ENOSPC);
	pxs_stats st = pxs_test_stat(s);
	printf("default store (%.0f MiB): -ENOSPC after %u objects of 64 B, "
	       "%u of %u slots used, heap %.2f%% used, segment %.2f%% in "
	       "objects' blocks\n",
	       (double)st.segment_size / MiB, n, st.slots_used, st.capacity,
	       100.0 * (double)st.heap_used / (double)st.heap_size,
	       100.0 * (double)st.heap_used / (double)st.segment_size);
	printf("  %u tables, %u objects; %.1f%% of the segment in use\n",
	       st.tables, st.objects,
	       100.0 * (double)st.heap_used / (double)st.segment_size);
	ck_assert_uint_eq(st.objects, n);
	ck_assert_uint_gt(st.tables, 1);
	ck_assert_uint_ge(2 * st.heap_used, st.segment_size);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, name);
}
END_TEST

/* One value of 90% of the segment. */
START_TEST(a_store_holds_one_value_of_ninety_percent)
{
	char name[64];
	const size_t size = 64 * MiB, big = size / 10 * 9;
	pxs_store *s = pxs_test_store(name, size, 0);
	char *buf = malloc(big);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 0x5a, big);
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, buf, big, &k), 0);
	pxs_view v;
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(memcmp(v.data, buf, big), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	printf("64 MiB store: one value of %.1f MiB stored; metadata %.2f MiB\n",
	       (double)big / MiB, (double)s->g.heap_off / MiB);
	ck_assert_uint_eq(pxs_test_stat(s).tables, 1);
	free(buf);
	pxs_test_done(s, name);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("cost");
	TCase *tc = tcase_create("cost");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, attaching_a_large_store_costs_a_few_kib);
	tcase_add_test(tc, a_killed_readers_pin_records_are_reclaimed);
	tcase_add_test(tc, a_full_heap_refuses_a_first_pin_and_says_it_is_the_heap);
	tcase_add_test(tc, a_default_store_filled_with_small_objects);
	tcase_add_test(tc, a_store_holds_one_value_of_ninety_percent);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
