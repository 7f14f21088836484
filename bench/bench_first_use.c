/* bench_first_use.c - what a segment costs before it does anything.
 *
 * Case (case 7) "first-use", for a 256 MiB and a 4 GiB segment:
 *   create          pxs_open(PXS_CREATE|PXS_EXCL) of a new segment
 *   attach          pxs_open(name, NULL) by another process
 *   close+unlink    pxs_close + pxs_unlink by the creator
 *   reserve-first   pxs_future_reserve of 64 MiB in fresh heap: the heap
 *                   commits it with posix_fallocate (tmpfs zeroes pages)
 *   write-first     writing those 64 MiB: page faults on fresh pages
 *   write-again     the same after evict + reserve of the same block
 *   read-first      another process gets the object and reads all of it:
 *                   page faults on pages it has never mapped
 *   read-again      the same process reading it a second time
 * The difference between a first and an again row is the price of the
 * first touch; us_per_page divides it by the 4 KiB pages touched.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOUCH ((size_t)64 << 20)
#define TIMEOUT_S 120

enum op {
	O_CREATE, O_ATTACH, O_CLOSE, O_RESERVE, O_WFIRST, O_WAGAIN,
	O_RFIRST, O_RAGAIN, O_N
};

static const char *const op_name[O_N] = {
	"create", "attach", "close+unlink", "reserve-first", "write-first",
	"write-again", "read-first", "read-again",
};

struct shared {
	char name[80];
	pxs_key key;
	size_t touch;
	double us[O_N]; /* the child's figures for this repetition */
	uint64_t sink;
};

static double
us_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e3;
}

static uint64_t
read_all(const void *p, size_t len)
{
	const volatile uint64_t *w = p;
	uint64_t sum = 0;

	for (size_t i = 0; i < len / 8; i += 8)
		sum += w[i]; /* one load per 64-byte line */
	return sum;
}

static int
attacher(void *arg)
{
	struct shared *sh = arg;
	pxs_store *s;
	pxs_view v;
	uint64_t t0 = bench_now_ns();
	int rc = pxs_open(sh->name, NULL, &s);

	sh->us[O_ATTACH] = us_since(t0);
	if (rc < 0)
		bench_die("attach %s: %s", sh->name, pxs_strerror(rc));
	if ((rc = pxs_get(s, sh->key, &v)) < 0)
		bench_die("get: %s", pxs_strerror(rc));
	t0 = bench_now_ns();
	sh->sink += read_all(v.data, v.size);
	sh->us[O_RFIRST] = us_since(t0);
	t0 = bench_now_ns();
	sh->sink += read_all(v.data, v.size);
	sh->us[O_RAGAIN] = us_since(t0);
	pxs_release(s, &v);
	pxs_close(s);
	return 0;
}

static void
run(const struct bench_opts *o, size_t size, size_t reps, size_t touch)
{
	struct shared *sh = bench_shared(sizeof(*sh));
	double *v[O_N];

	for (int k = 0; k < O_N; k++)
		if (!(v[k] = calloc(reps, sizeof(double))))
			bench_die("out of memory");
	sh->touch = touch;
	for (size_t r = 0; r < reps; r++) {
		pxs_options opt = {.size = size,
				   .flags = PXS_CREATE | PXS_EXCL};
		pxs_store *s;
		pxs_key k;
		void *buf;
		uint64_t t0;
		pid_t pid;
		int rc;

		bench_name(sh->name, sizeof(sh->name), "first");
		t0 = bench_now_ns();
		rc = pxs_open(sh->name, &opt, &s);
		v[O_CREATE][r] = us_since(t0);
		if (rc < 0)
			bench_die("create %zu MiB: %s", size >> 20,
				  pxs_strerror(rc));

		if ((rc = pxs_future_new(s, &k)) < 0)
			bench_die("future_new: %s", pxs_strerror(rc));
		t0 = bench_now_ns();
		rc = pxs_future_reserve(s, k, touch, &buf);
		v[O_RESERVE][r] = us_since(t0);
		if (rc < 0)
			bench_die("reserve: %s", pxs_strerror(rc));
		t0 = bench_now_ns();
		memset(buf, 0x11, touch);
		v[O_WFIRST][r] = us_since(t0);
		pxs_future_commit(s, k);
		pxs_evict(s, k);

		if ((rc = pxs_future_new(s, &k)) < 0 ||
		    (rc = pxs_future_reserve(s, k, touch, &buf)) < 0)
			bench_die("reserve again: %s", pxs_strerror(rc));
		t0 = bench_now_ns();
		memset(buf, 0x22, touch);
		v[O_WAGAIN][r] = us_since(t0);
		if ((rc = pxs_future_commit(s, k)) < 0)
			bench_die("commit: %s", pxs_strerror(rc));

		sh->key = k;
		pid = bench_spawn(attacher, sh);
		if (bench_reap(pid, TIMEOUT_S) != 0)
			bench_die("attacher failed");
		v[O_ATTACH][r] = sh->us[O_ATTACH];
		v[O_RFIRST][r] = sh->us[O_RFIRST];
		v[O_RAGAIN][r] = sh->us[O_RAGAIN];

		pxs_evict(s, k);
		t0 = bench_now_ns();
		pxs_close(s);
		rc = pxs_unlink(sh->name);
		v[O_CLOSE][r] = us_since(t0);
		if (rc < 0)
			bench_die("unlink: %s", pxs_strerror(rc));
	}
	for (int k = 0; k < O_N; k++) {
		struct bench_stats st;
		double p50;

		bench_stats(v[k], reps, &st);
		p50 = st.p50;
		if (k >= O_WFIRST) {
			/* first-touch rows: also bandwidth, and per page */
			bench_emit("case=first-use mech=pxs op=%s size=%zu "
				   "touched=%zu n=%zu p50_us=%.1f "
				   "p99_us=%.1f gb_s=%.3f us_per_page=%.4f",
				   op_name[k], size, touch, st.n, p50, st.p99,
				   p50 > 0 ? (double)touch / p50 / 1e3 : 0,
				   p50 / (double)(touch / 4096));
		} else {
			bench_emit("case=first-use mech=pxs op=%s size=%zu "
				   "touched=%zu n=%zu p50_us=%.1f "
				   "p99_us=%.1f",
				   op_name[k], size,
				   k == O_RESERVE ? touch : 0, st.n, p50,
				   st.p99);
		}
		free(v[k]);
	}
	bench_unshare(sh, sizeof(*sh));
	(void)o;
}

int
main(int argc, char **argv)
{
	struct bench_opts o;

	bench_parse(argc, argv, "first_use", &o);
	if (!bench_want(&o, "first-use"))
		return 0;
	if (o.quick) {
		run(&o, (size_t)16 << 20, 2, (size_t)4 << 20);
		run(&o, (size_t)64 << 20, 2, (size_t)4 << 20);
	} else {
		run(&o, (size_t)256 << 20, bench_iters(&o, 10, 2, 3), TOUCH);
		run(&o, (size_t)4 << 30, bench_iters(&o, 4, 2, 3), TOUCH);
	}
	return 0;
}
