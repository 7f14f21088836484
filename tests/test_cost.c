/* test_cost.c - what a store costs in /dev/shm: a large store when it is
 * created, and as processes attach. The figures are printed; the asserts
 * hold the cost to what docs/design.md says it is ("What a store costs"),
 * so that a change that makes it grow fails here.
 */
#include "internal.h"
#include "pxs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

START_TEST(a_large_store_costs_its_metadata_and_a_pin_array_per_attach)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 64 * GiB, 0);
	const uint64_t meta = s->g.heap_off,
		       pins = (uint64_t)s->g.nslots * sizeof(uint16_t);
	uint64_t fresh = backed(name);
	printf("64 GiB store: capacity %u, %u slots; metadata %.1f MiB, "
	       "pin array %.1f MiB per attach\n",
	       s->g.capacity, s->g.nslots, (double)meta / MiB,
	       (double)pins / MiB);
	printf("fresh: %.1f MiB backed\n", (double)fresh / MiB);
	pxs_store *t[10];
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(pxs_open(name, NULL, &t[i]), 0);
	uint64_t after = backed(name);
	printf("after 10 attaches: %.1f MiB backed (%.1f MiB per attach)\n",
	       (double)after / MiB, (double)(after - fresh) / 10 / MiB);
	/* The metadata (header, process table, slot table) is backed at
	 * creation, the heap as it fills (2 MiB steps): a pin array for each
	 * handle, the creator's included. */
	ck_assert_uint_le(fresh, meta + pins + 4 * MiB);
	ck_assert_uint_le(after, fresh + 10 * (pins + 2 * MiB) + 2 * MiB);
	for (int i = 0; i < 10; i++)
		pxs_close(t[i]);
	pxs_test_done(s, name);
}
END_TEST

/* A default store filled with 64 B objects: what refuses first. The
 * fraction of the segment in use when -ENOSPC comes is printed; today it
 * is the table (capacity size / 16 KiB), long before the heap. */
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
	       "heap %.2f%% used, segment %.2f%% in objects' blocks\n",
	       (double)st.segment_size / MiB, n,
	       100.0 * (double)st.heap_used / (double)st.heap_size,
	       100.0 * (double)st.heap_used / (double)st.segment_size);
	ck_assert_uint_eq(n, st.capacity); /* the table refused, not the heap */
	ck_assert_uint_gt(st.heap_free, st.heap_size / 2);
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
	printf("64 MiB store: one value of %.1f MiB stored; metadata %.1f MiB\n",
	       (double)big / MiB, (double)s->g.heap_off / MiB);
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
	tcase_add_test(tc, a_large_store_costs_its_metadata_and_a_pin_array_per_attach);
	tcase_add_test(tc, a_default_store_filled_with_small_objects);
	tcase_add_test(tc, a_store_holds_one_value_of_ninety_percent);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
