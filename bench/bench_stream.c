/* bench_stream.c - streams: steps to readers, append-to-read latency,
 * group take+ack, each against baselines in the same run.
 *
 * Cases:
 *   steps    one producer appends items of 1 KiB, 1 MiB and 64 MiB to a
 *            PXS_STREAM_BLOCK stream (window 4) read by 1 and 4 joined
 *            reader processes, each of which reads every item in place and
 *            touches one byte per 4 KiB page of it. Result: ns per step,
 *            from the first append to the last reader's last release,
 *            against one memcpy of the same bytes in this process and (1
 *            KiB, 1 reader) a pipe carrying the bytes.
 *   latency  a reader asleep in pxs_stream_read() for the next item, the
 *            producer appends 64 bytes: time from just before the append to
 *            the reader's return, against a future's set -> wait in the
 *            same run (interleaved). The producer waits until the reader is
 *            asleep (state S) plus 500 us before each sample.
 *   group    4 worker processes take and ack N 64-byte items of a stream
 *            (group "g"), against 4 workers reading 8-byte records of the
 *            same items from one pipe: items per second.
 * Placement: unpinned (the scheduler's choice on a shared machine).
 */
#include "bench.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMO 30000L

struct shared {
	struct bench_barrier bar;
	_Alignas(64) uint32_t ready; /* latency: reader waits for seq+1 */
	_Alignas(64) uint32_t ack;
	_Alignas(64) uint64_t t0, t1;
	_Alignas(64) uint64_t done_ns[8];
};

static struct shared *sh;
static pxs_store *g_s;
static pxs_key g_k;
static size_t g_n, g_size;
static int g_pipe[2];

static pxs_key
fresh_key(const char *what)
{
	char buf[64];
	static unsigned n;
	int len = snprintf(buf, sizeof buf, "%s/%ld/%u", what, (long)getpid(),
			   n++);
	return pxs_key_from_name(buf, (size_t)len);
}

/* ---- steps -------------------------------------------------------------- */

static int
step_reader(void *arg)
{
	size_t id = (size_t)(uintptr_t)arg;
	volatile unsigned char sink = 0;
	if (pxs_stream_join(g_s, g_k, 0) < 0 ||
	    bench_barrier_wait(&sh->bar, TMO) < 0)
		return 1;
	for (uint64_t seq = 0; seq < g_n; seq++) {
		pxs_view v;
		if (pxs_stream_read(g_s, g_k, seq, TMO, &v) < 0)
			return 2;
		const unsigned char *p = v.data;
		for (size_t i = 0; i < v.size; i += 4096)
			sink ^= p[i];
		pxs_release(g_s, &v);
	}
	sh->done_ns[id] = bench_now_ns();
	(void)sink;
	return 0;
}

static double
steps_pxs(const struct bench_opts *o, size_t size, int readers, size_t n)
{
	char name[80];
	size_t store = (size + (64u << 10)) * 12 + (16u << 20);
	g_s = bench_store(name, "stream", store, 1024);
	g_k = fresh_key("steps");
	g_n = n;
	pxs_stream_options so = {.window = 4, .flags = PXS_STREAM_BLOCK};
	if (pxs_stream_new(g_s, g_k, &so) < 0)
		bench_die("pxs_stream_new");
	unsigned char *src = malloc(size);
	if (!src)
		bench_die("malloc");
	memset(src, 0x5a, size);
	bench_barrier_init(&sh->bar, (uint32_t)readers + 1);
	pid_t pid[4];
	for (int i = 0; i < readers; i++)
		pid[i] = bench_spawn(step_reader, (void *)(uintptr_t)i);
	if (bench_barrier_wait(&sh->bar, TMO) < 0)
		bench_die("readers did not join");
	uint64_t t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		int rc = pxs_stream_append(g_s, g_k, src, size, TMO, NULL);
		if (rc < 0)
			bench_die("append: %s", pxs_strerror(rc));
	}
	uint64_t last = 0;
	for (int i = 0; i < readers; i++) {
		if (bench_reap(pid[i], 120) != 0)
			bench_die("a reader failed");
		if (sh->done_ns[i] > last)
			last = sh->done_ns[i];
	}
	free(src);
	pxs_close(g_s);
	pxs_unlink(name);
	(void)o;
	return (double)(last - t0) / (double)n;
}

static double
memcpy_ns(size_t size, size_t n)
{
	unsigned char *a = malloc(size), *b = malloc(size);
	if (!a || !b)
		bench_die("malloc");
	memset(a, 1, size);
	memset(b, 2, size);
	uint64_t t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		a[i % size] = (unsigned char)i;
		memcpy(b, a, size);
		__asm__ __volatile__("" : : "r"(b) : "memory");
	}
	double r = (double)(bench_now_ns() - t0) / (double)n;
	free(a);
	free(b);
	return r;
}

static int
pipe_reader(void *arg)
{
	(void)arg;
	unsigned char *buf = malloc(g_size);
	if (!buf)
		return 1;
	for (size_t i = 0; i < g_n; i++) {
		size_t got = 0;
		while (got < g_size) {
			ssize_t r = read(g_pipe[0], buf + got, g_size - got);
			if (r <= 0)
				return 2;
			got += (size_t)r;
		}
	}
	sh->done_ns[0] = bench_now_ns();
	free(buf);
	return 0;
}

static double
pipe_ns(size_t size, size_t n)
{
	unsigned char *src = calloc(1, size);
	if (!src || pipe(g_pipe) < 0)
		bench_die("pipe");
	g_size = size;
	g_n = n;
	pid_t pid = bench_spawn(pipe_reader, NULL);
	uint64_t t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++)
		if (write(g_pipe[1], src, size) != (ssize_t)size)
			bench_die("pipe write");
	if (bench_reap(pid, 120) != 0)
		bench_die("pipe reader failed");
	close(g_pipe[0]);
	close(g_pipe[1]);
	free(src);
	return (double)(sh->done_ns[0] - t0) / (double)n;
}

static void
case_steps(const struct bench_opts *o)
{
	static const size_t sizes[] = {1024, 1u << 20, 64u << 20};
	for (size_t z = 0; z < 3; z++) {
		size_t size = sizes[z];
		if (o->quick && size > (1u << 20))
			continue; /* a 64 MiB step is no smoke test */
		size_t n = bench_iters(o, size <= 1024 ? 20000
					  : size <= (1u << 20) ? 400 : 12,
				       size <= 1024 ? 200 : 8, 4);
		double mc = memcpy_ns(size, n);
		for (int readers = 1; readers <= 4; readers += 3) {
			double px = steps_pxs(o, size, readers, n);
			bench_emit("case=steps size=%zu readers=%d mech=pxs "
				   "ns_per_step=%.0f memcpy_ns=%.0f "
				   "ratio_memcpy=%.2f n=%zu",
				   size, readers, px, mc, px / mc, n);
		}
		if (size == 1024) {
			double pp = pipe_ns(size, n);
			bench_emit("case=steps size=%zu readers=1 mech=pipe "
				   "ns_per_step=%.0f memcpy_ns=%.0f "
				   "ratio_memcpy=%.2f n=%zu",
				   size, pp, mc, pp / mc, n);
		}
	}
}

/* ---- latency ------------------------------------------------------------ */

static pxs_key *g_fut;

/* Sample i: a stream item (even) or a future (odd), the mechanisms
 * interleaved so that noise hurts both alike. */
static int
lat_reader(void *arg)
{
	(void)arg;
	uint64_t seq = 0;
	for (size_t i = 0; i < g_n; i++) {
		pxs_view v;
		bench_post(&sh->ready, (uint32_t)i + 1);
		int rc = i % 2 == 0
				 ? pxs_stream_read(g_s, g_k, seq++, TMO, &v)
				 : pxs_future_wait(g_s, g_fut[i], TMO, &v);
		if (rc < 0) {
			fprintf(stderr, "latency reader, sample %zu: %s\n", i,
				pxs_strerror(rc));
			return 1;
		}
		sh->t1 = bench_now_ns();
		pxs_release(g_s, &v);
		bench_post(&sh->ack, (uint32_t)i + 1);
	}
	return 0;
}

static void
case_latency(const struct bench_opts *o)
{
	char name[80];
	size_t n = bench_iters(o, 2000, 40, 4) * 2;
	g_s = bench_store(name, "slat", 64u << 20, 8192);
	g_k = fresh_key("lat");
	g_n = n;
	pxs_stream_options so = {.window = 64};
	if (pxs_stream_new(g_s, g_k, &so) < 0)
		bench_die("pxs_stream_new");
	g_fut = calloc(n, sizeof *g_fut);
	double *ls = calloc(n, sizeof(double)), *lf = calloc(n, sizeof(double));
	if (!g_fut || !ls || !lf)
		bench_die("calloc");
	for (size_t i = 1; i < n; i += 2)
		if (pxs_future_new(g_s, &g_fut[i]) < 0)
			bench_die("pxs_future_new");
	sh->ready = sh->ack = 0;
	pid_t pid = bench_spawn(lat_reader, NULL);
	size_t ns = 0, nf = 0;
	char item[64] = {0};
	for (size_t i = 0; i < n; i++) {
		if (bench_wait_ge(&sh->ready, (uint32_t)i + 1, TMO) < 0)
			bench_die("reader did not get ready");
		if (bench_wait_asleep(pid, TMO) < 0)
			bench_die("reader not asleep");
		bench_sleep_us(o->settle_us);
		uint64_t t0 = bench_now_ns();
		int rc = i % 2 == 0
				 ? pxs_stream_append(g_s, g_k, item, sizeof item,
						     0, NULL)
				 : pxs_future_set(g_s, g_fut[i], item, sizeof item);
		if (rc < 0)
			bench_die("append/set: %s", pxs_strerror(rc));
		if (bench_wait_ge(&sh->ack, (uint32_t)i + 1, TMO) < 0)
			bench_die("reader did not return");
		double us = (double)(sh->t1 - t0) / 1000.0;
		if (i >= 4) { /* the first samples are a warm-up */
			if (i % 2 == 0)
				ls[ns++] = us;
			else
				lf[nf++] = us;
		}
	}
	if (bench_reap(pid, 60) != 0)
		bench_die("latency reader failed");
	struct bench_stats a, b;
	bench_stats(ls, ns, &a);
	bench_stats(lf, nf, &b);
	bench_emit("case=latency mech=pxs-stream p50_us=%.2f p99_us=%.2f "
		   "ratio_future=%.2f n=%zu",
		   a.p50, a.p99, a.p50 / b.p50, a.n);
	bench_emit("case=latency mech=pxs-future p50_us=%.2f p99_us=%.2f "
		   "ratio_future=1.00 n=%zu",
		   b.p50, b.p99, b.n);
	free(ls);
	free(lf);
	free(g_fut);
	pxs_close(g_s);
	pxs_unlink(name);
}

/* ---- group -------------------------------------------------------------- */

static int
group_worker(void *arg)
{
	(void)arg;
	if (bench_barrier_wait(&sh->bar, TMO) < 0)
		return 1;
	for (;;) {
		uint64_t seq;
		pxs_view v;
		int rc = pxs_stream_take(g_s, g_k, "g", TMO, &seq, &v);
		if (rc == -EPIPE)
			return 0;
		if (rc < 0)
			return 2;
		pxs_release(g_s, &v);
		if (pxs_stream_ack(g_s, g_k, "g", seq) < 0)
			return 3;
	}
}

static int
pipe_worker(void *arg)
{
	(void)arg;
	if (bench_barrier_wait(&sh->bar, TMO) < 0)
		return 1;
	uint64_t rec;
	while (read(g_pipe[0], &rec, sizeof rec) == sizeof rec)
		if (rec == UINT64_MAX)
			return 0;
	return 2;
}

static double
group_run(size_t n, bool use_pipe)
{
	char name[80];
	pid_t pid[4];
	char item[64] = {0};
	if (use_pipe) {
		if (pipe(g_pipe) < 0)
			bench_die("pipe");
	} else {
		g_s = bench_store(name, "sgrp", 64u << 20, 8192);
		g_k = fresh_key("grp");
		pxs_stream_options so = {.window = 1024,
					 .flags = PXS_STREAM_BLOCK};
		if (pxs_stream_new(g_s, g_k, &so) < 0)
			bench_die("pxs_stream_new");
	}
	bench_barrier_init(&sh->bar, 5);
	for (int i = 0; i < 4; i++)
		pid[i] = bench_spawn(use_pipe ? pipe_worker : group_worker, NULL);
	if (bench_barrier_wait(&sh->bar, TMO) < 0)
		bench_die("workers did not start");
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (use_pipe) {
			if (write(g_pipe[1], &i, sizeof i) != sizeof i)
				bench_die("pipe write");
		} else if (pxs_stream_append(g_s, g_k, item, sizeof item, TMO,
					     NULL) < 0) {
			bench_die("append");
		}
	}
	if (use_pipe) {
		uint64_t end = UINT64_MAX;
		for (int i = 0; i < 4; i++)
			if (write(g_pipe[1], &end, sizeof end) != sizeof end)
				bench_die("pipe write");
	} else if (pxs_stream_end(g_s, g_k) < 0) {
		bench_die("end");
	}
	for (int i = 0; i < 4; i++)
		if (bench_reap(pid[i], 120) != 0)
			bench_die("a worker failed");
	double rate = (double)n * 1e9 / (double)(bench_now_ns() - t0);
	if (use_pipe) {
		close(g_pipe[0]);
		close(g_pipe[1]);
	} else {
		pxs_close(g_s);
		pxs_unlink(name);
	}
	return rate;
}

static void
case_group(const struct bench_opts *o)
{
	size_t n = bench_iters(o, 50000, 500, 10);
	double pr = group_run(n, true);
	double gr = group_run(n, false);
	bench_emit("case=group workers=4 mech=pxs-group items_per_s=%.0f "
		   "ratio_pipe=%.2f n=%zu",
		   gr, gr / pr, n);
	bench_emit("case=group workers=4 mech=pipe items_per_s=%.0f "
		   "ratio_pipe=1.00 n=%zu",
		   pr, n);
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	bench_parse(argc, argv, "stream", &o);
	sh = bench_shared(sizeof *sh);
	if (bench_want(&o, "steps"))
		case_steps(&o);
	if (bench_want(&o, "latency"))
		case_latency(&o);
	if (bench_want(&o, "group"))
		case_group(&o);
	bench_unshare(sh, sizeof *sh);
	return 0;
}
