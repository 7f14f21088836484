/* test_names.c - PLAN C1, C2, C6, C7: segment names, creation races,
 * unlink while attached, creation parameters.
 *
 * C1: every function that takes a store name applies our rule ('/' then
 * 1..200 of [A-Za-z0-9._-], not "/." or "/..") and not glibc's (which
 * strips leading slashes and accepts "//x" and "x"), and an invalid name
 * creates nothing in /dev/shm. C2: processes released at once through a
 * pipe all create-or-attach one segment; with PXS_EXCL exactly one wins.
 */
#include "hostile.h"
#include "pxs_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB HX_MiB

/* How many /dev/shm entries contain @p needle. */
static int
shm_entries_with(const char *needle)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, needle) != NULL;
	closedir(d);
	return n;
}

START_TEST(c1_name_table)
{
	char tag[48], b[5000];
	snprintf(tag, sizeof tag, "pxs-hx-c1-%ld", (long)getpid());
	/* "@" stands for the unique tag, so that whatever glibc would have
	 * created can be looked for. */
	const char *bad[] = {
		"",
		"/",
		"@",
		"//@",
		"///@",
		"/@/b",
		"/./@",
		"/@/",
		"/.",
		"/..",
		"/@ sp",
		"/@\t",
		"/@\n",
		"/@\xc3\xbc",
		"/@%41",
		"/@?",
		"/@*",
		"/@\\",
		"/@:",
		"/@\x7f",
		" /@",
		"\\@",
		"/@\x01",
		"/@~",
		"/@+",
		"/@\xff",
		"/@,",
		"/@;",
		"/@'",
		"/@\"",
		/* reserved for unfinished segments */
		"/.pxs-@",
		"/.pxs-tmp-@",
	};
	pxs_options o = {.flags = PXS_CREATE, .size = 2 * MiB};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		size_t n = 0;
		for (const char *p = bad[i]; *p; p++) {
			if (*p == '@') {
				n += (size_t)snprintf(b + n, sizeof b - n, "%s",
						      tag);
			} else {
				b[n++] = *p;
			}
		}
		b[n] = '\0';
		pxs_store *s = (pxs_store *)&s;
		pxs_proxy *p = (pxs_proxy *)&p;
		ck_assert_msg(pxs_open(b, &o, &s) == -EINVAL, "open(\"%s\")",
			      b);
		ck_assert_ptr_null(s);
		ck_assert_int_eq(pxs_open(b, NULL, &s), -EINVAL);
		ck_assert_int_eq(pxs_unlink(b), -EINVAL);
		ck_assert_int_eq(pxs_proxy_new(b, (pxs_key){1, 1}, &p),
				 -EINVAL);
		ck_assert_ptr_null(p);
		ck_assert_int_eq(shm_entries_with(tag), 0);
	}
	/* Tails of 201 and 4096 characters. */
	size_t lens[] = {PXS_NAME_MAX + 1, 4096};
	for (size_t i = 0; i < 2; i++) {
		b[0] = '/';
		memset(b + 1, 'x', lens[i]);
		memcpy(b + 1, tag, strlen(tag));
		b[1 + lens[i]] = '\0';
		pxs_store *s;
		ck_assert_int_eq(pxs_open(b, &o, &s), -EINVAL);
		ck_assert_int_eq(pxs_unlink(b), -EINVAL);
		ck_assert_int_eq(shm_entries_with(tag), 0);
	}
	/* Accepted: the whole alphabet, a 200-character tail. */
	const char *good[] = {"/a", "/A-Z_a.z-09", "/...", "/.a", "/-", "/_"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		snprintf(b, sizeof b, "%s%s", good[i], tag);
		pxs_store *s;
		ck_assert_int_eq(pxs_open(b, &o, &s), 0);
		ck_assert_str_eq(pxs_store_name(s), b);
		ck_assert_int_eq(pxs_close(s), 0);
		ck_assert_int_eq(pxs_unlink(b), 0);
	}
	b[0] = '/';
	memset(b + 1, 'y', PXS_NAME_MAX);
	memcpy(b + 1, tag, strlen(tag));
	b[1 + PXS_NAME_MAX] = '\0';
	pxs_store *s;
	ck_assert_int_eq(pxs_open(b, &o, &s), 0);
	ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 1}, "x", 1), 0);
	pxs_close(s);
	ck_assert_int_eq(pxs_open(b, NULL, &s), 0);
	ck_assert_int_eq(pxs_exists(s, (pxs_key){1, 1}), 1);
	pxs_close(s);
	ck_assert_int_eq(pxs_unlink(b), 0);
	ck_assert_int_eq(shm_entries_with(tag), 0);
}
END_TEST

/* ---- C2: creation races ------------------------------------------------ */

#define RACERS 8
#define ROUNDS 200

struct race {
	int go[RACERS][2]; /* the barrier: one byte per racer and round */
	int res[2];        /* each racer writes one struct result per round */
	bool excl;
	char base[64];
};

struct result {
	int racer, round, rc;
	uint64_t size;
};

static void
round_name(char *buf, size_t len, const char *base, int round)
{
	snprintf(buf, len, "%s-r%d", base, round);
}

static int
racer(struct race *r, int id)
{
	for (int i = 0; i < RACERS; i++) {
		close(r->go[i][1]);
		if (i != id)
			close(r->go[i][0]);
	}
	close(r->res[0]);
	for (int round = 0; round < ROUNDS; round++) {
		char c, name[96];
		if (read(r->go[id][0], &c, 1) != 1)
			return 10;
		round_name(name, sizeof name, r->base, round);
		/* Racers ask for different sizes; the winner's is kept. */
		pxs_options o = {.size = (size_t)(2 + id) * MiB,
				 .capacity = 64,
				 .flags =
					 PXS_CREATE | (r->excl ? PXS_EXCL : 0)};
		pxs_store *s;
		struct result res = {.racer = id, .round = round};
		res.rc = pxs_open(name, &o, &s);
		if (res.rc == 0) {
			pxs_stats st;
			pxs_key k = {(uint64_t)round + 1, (uint64_t)id + 1};
			if (pxs_put_at(s, k, &id, sizeof id) != 0 ||
			    pxs_stat(s, &st) != 0)
				res.rc = 1000;
			res.size = st.segment_size;
			pxs_close(s);
		}
		if (write(r->res[1], &res, sizeof res) != sizeof res)
			return 11;
	}
	return 0;
}

static void
run_race(bool excl)
{
	struct race r = {.excl = excl};
	pid_t pids[RACERS];
	snprintf(r.base, sizeof r.base, "/pxs-hx-race-%ld-%d", (long)getpid(),
		 (int)excl);
	for (int i = 0; i < RACERS; i++)
		ck_assert_int_eq(pipe(r.go[i]), 0);
	ck_assert_int_eq(pipe(r.res), 0);
	fflush(NULL);
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(racer(&r, i));
	}
	for (int i = 0; i < RACERS; i++)
		close(r.go[i][0]);
	close(r.res[1]);
	int winners_total = 0;
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < RACERS; i++)
			ck_assert_int_eq(write(r.go[i][1], "g", 1), 1);
		struct result res[RACERS];
		int ok = 0, exist = 0;
		uint64_t size = 0;
		for (int i = 0; i < RACERS; i++) {
			size_t got = 0;
			while (got < sizeof res[i]) {
				ssize_t n =
					read(r.res[0], (char *)&res[i] + got,
					     sizeof res[i] - got);
				ck_assert_int_gt(n, 0);
				got += (size_t)n;
			}
			ck_assert_int_eq(res[i].round, round);
			ck_assert(res[i].racer >= 0 && res[i].racer < RACERS);
			if (res[i].rc == 0) {
				ok++;
				if (size == 0)
					size = res[i].size;
				ck_assert_uint_eq(res[i].size, size);
			} else {
				ck_assert_msg(res[i].rc == -EEXIST && excl,
					      "round %d racer %d: %d (%s)",
					      round, res[i].racer, res[i].rc,
					      pxs_strerror(res[i].rc));
				exist++;
			}
		}
		if (excl)
			ck_assert_msg(ok == 1, "round %d: %d winners", round,
				      ok);
		else
			ck_assert_int_eq(ok, RACERS);
		winners_total += ok;
		/* A fresh attacher sees every winner's key, on one segment. */
		char name[96];
		round_name(name, sizeof name, r.base, round);
		pxs_store *s;
		ck_assert_int_eq(pxs_open(name, NULL, &s), 0);
		pxs_stats st;
		ck_assert_int_eq(pxs_stat(s, &st), 0);
		ck_assert_uint_eq(st.objects, (unsigned)ok);
		ck_assert_uint_eq(st.segment_size, size);
		for (int i = 0; i < RACERS; i++) {
			pxs_key k = {(uint64_t)round + 1,
				     (uint64_t)res[i].racer + 1};
			pxs_view v;
			if (res[i].rc != 0)
				continue;
			ck_assert_int_eq(pxs_get(s, k, &v), 0);
			ck_assert_uint_eq(v.size, sizeof(int));
			ck_assert_int_eq(*(const int *)v.data, res[i].racer);
			ck_assert_int_eq(pxs_release(s, &v), 0);
		}
		pxs_check_report cr;
		ck_assert_int_eq(pxs_check(s, &cr), 0);
		pxs_test_done(s, name);
	}
	for (int i = 0; i < RACERS; i++) {
		close(r.go[i][1]);
		ck_assert_int_eq(pxs_test_reap(pids[i], 60), 0);
	}
	printf("C2 %s: %d rounds x %d racers, %d successful opens\n",
	       excl ? "CREATE|EXCL" : "CREATE", ROUNDS, RACERS, winners_total);
	/* No private creation objects left behind. */
	ck_assert_int_eq(shm_entries_with(r.base + 1), 0);
}

START_TEST(c2_create_race)
{
	run_race(false);
}
END_TEST

START_TEST(c2_create_excl_race)
{
	run_race(true);
}
END_TEST

/* ---- C6: unlink while attached ----------------------------------------- */

START_TEST(c6_unlink_while_attached)
{
	char name[64];
	pxs_store *p1 = pxs_test_store(name, 2 * MiB, 64), *p2, *n;
	pxs_key k = pxs_key_from_name("k", 1), k2 = pxs_key_from_name("k2", 2);
	pxs_view v;
	ck_assert_int_eq(pxs_open(name, NULL, &p2), 0);
	ck_assert_int_eq(pxs_put_at(p1, k, "old", 3), 0);
	ck_assert_int_eq(pxs_unlink(name), 0);
	ck_assert_int_eq(pxs_unlink(name), -ENOENT);
	ck_assert_int_eq(pxs_open(name, NULL, &n), -ENOENT);
	/* Both keep working on the unlinked segment. */
	ck_assert_int_eq(pxs_get(p2, k, &v), 0);
	ck_assert_mem_eq(v.data, "old", 3);
	ck_assert_int_eq(pxs_release(p2, &v), 0);
	ck_assert_int_eq(pxs_put_at(p2, k2, "p2", 2), 0);
	ck_assert_int_eq(pxs_exists(p1, k2), 1);
	/* A new CREATE gets a new, empty segment that p1 cannot see. */
	pxs_options o = {.flags = PXS_CREATE, .size = 2 * MiB};
	ck_assert_int_eq(pxs_open(name, &o, &n), 0);
	ck_assert_int_eq(pxs_exists(n, k), 0);
	ck_assert_int_eq(pxs_put_at(n, k, "new", 3), 0);
	ck_assert_int_eq(pxs_get(p1, k, &v), 0);
	ck_assert_mem_eq(v.data, "old", 3);
	ck_assert_int_eq(pxs_release(p1, &v), 0);
	pxs_key k3 = pxs_key_from_name("k3", 2);
	ck_assert_int_eq(pxs_put_at(n, k3, "n", 1), 0);
	ck_assert_int_eq(pxs_exists(p1, k3), 0);
	pxs_close(p1);
	pxs_close(p2);
	pxs_test_done(n, name);
}
END_TEST

/* ---- C7: creation parameters ------------------------------------------ */

START_TEST(c7_create_parameters)
{
	char name[64];
	pxs_store *s;
	pxs_stats st;
	pxs_test_name(name, sizeof name);
	/* Below the minimum: -EINVAL, nothing created. */
	pxs_options o = {.flags = PXS_CREATE, .size = PXS_MIN_SIZE - 4096};
	ck_assert_int_eq(pxs_open(name, &o, &s), -EINVAL);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -ENOENT);
	/* Not a page multiple: rounded up to one. */
	o.size = PXS_MIN_SIZE + 1;
	ck_assert_int_eq(pxs_open(name, &o, &s), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.segment_size, PXS_MIN_SIZE + 4096);
	/* Capacity 0: one table that may grow, whatever the size. */
	ck_assert_uint_eq(st.tables, 1);
	ck_assert_uint_ne(st.table_grows, 0);
	ck_assert_uint_ge(st.capacity, 64);
	uint32_t small = st.capacity;
	pxs_test_done(s, name);
	o.size = 64 * MiB;
	ck_assert_int_eq(pxs_open(name, &o, &s), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.tables, 1);
	ck_assert_uint_ne(st.table_grows, 0);
	ck_assert_uint_eq(st.capacity, small);
	pxs_test_done(s, name);
	/* Capacity larger than fits, and the largest that fits: the table
	 * leaves at least 16 pages of heap. */
	o.size = 4 * MiB;
	o.capacity = 1u << 14;
	ck_assert_int_eq(pxs_open(name, &o, &s), -EINVAL);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -ENOENT);
	uint32_t lo = 1, hi = 1u << 14;
	while (lo + 1 < hi) { /* largest capacity accepted for 4 MiB */
		uint32_t mid = lo + (hi - lo) / 2;
		struct pxs_geom g;
		if (pxs__geometry(4 * MiB, mid, &g) == 0)
			lo = mid;
		else
			hi = mid;
	}
	o.capacity = lo;
	ck_assert_int_eq(pxs_open(name, &o, &s), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.capacity, lo);
	ck_assert_uint_ge(st.heap_size, 16 * 4096);
	ck_assert_int_eq(pxs_put(s, "x", 1, &(pxs_key){0, 0}), 0);
	pxs_test_done(s, name);
	o.capacity = lo + 1;
	ck_assert_int_eq(pxs_open(name, &o, &s), lo + 1 >= hi ? -EINVAL : 0);
	pxs_unlink(name);
	/* Capacity 1: one live slot. */
	o.capacity = 1;
	ck_assert_int_eq(pxs_open(name, &o, &s), 0);
	ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 1}, "a", 1), 0);
	ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 2}, "b", 1), -ENOSPC);
	ck_assert_int_eq(pxs_future_new_at(s, (pxs_key){1, 3}), -ENOSPC);
	pxs_test_done(s, name);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hostile-names");
	TCase *tc = tcase_create("names");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, c1_name_table);
	tcase_add_test(tc, c2_create_race);
	tcase_add_test(tc, c2_create_excl_race);
	tcase_add_test(tc, c6_unlink_while_attached);
	tcase_add_test(tc, c7_create_parameters);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
