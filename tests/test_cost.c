/* test_cost.c - what a store costs in /dev/shm: a large store when it is
 * created, and as processes attach. The figures are printed; the asserts
 * hold the cost to what docs/design.md says it is ("What a store costs"),
 * so that a change that makes it grow fails here.
 */
#include "internal.h"
#include "pxs_test.h"

#include <stdio.h>
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

int
main(void)
{
	Suite *su = suite_create("cost");
	TCase *tc = tcase_create("cost");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_large_store_costs_its_metadata_and_a_pin_array_per_attach);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
