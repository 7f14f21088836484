/* bench_put_get.c - objects: put, get+release, evict; zero-copy reads.
 *
 * Cases (cases 4 and 5):
 *   objects   batches of pxs_put, then pxs_get+pxs_release of each, then
 *             pxs_evict of each, for 64 B .. 64 MiB, by one process and by
 *             two at once (pinned to different CPUs). The limit: memcpy of
 *             the same sizes into touched shared memory. The alternative:
 *             Redis SET/GET/DEL of the same sizes (hiredis, one request at
 *             a time). Every batch after the first (a warm-up that also
 *             touches the memory) is one sample: ops/s = the batch's ops
 *             (all workers) / the slowest worker's time for its share.
 *             The one-process and two-process runs take turns of TURN
 *             batches, and the single process spends half its batches on
 *             each CPU, so that the ratio between them compares the same
 *             minutes of this shared machine on the same CPUs.
 *   get-size  latency of one pxs_get (and get+release) of a 64 B .. 1 GiB
 *             object: flat if reads are really zero-copy.
 *   reserve   pxs_future_reserve + commit against pxs_future_set, for
 *             1 MiB and 64 MiB, with and without producing the data.
 */
#include "bench.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_MS 120000L
#define MAX_WORKERS 2
#define TURN 4 /* batches per turn (objects: one process, then two) */

enum mech { M_PXS, M_MEMCPY, M_REDIS, M_N };
enum phase { PH_PUT, PH_GET, PH_EVICT, PH_N };

static const char *const mech_name[M_N] = {"pxs", "memcpy", "redis"};
static const char *const phase_name[M_N][PH_N] = {
	{"put", "get+release", "evict"},
	{"copy", "", ""},
	{"set", "get", "del"},
};

struct objrun {
	const struct bench_opts *o;
	pxs_store *s;
	int mech;
	size_t size, n, batches;
	uint32_t nworkers;
	int worker;
	struct bench_barrier *bar;
	uint32_t *turn; /* 2k: the single process's k-th turn of TURN batches;
			   2k+1: the pair's */
	uint64_t *t;    /* [batch][phase][worker][2]: start, end */
	const char *table; /* "fitted" or "default-1GiB" (see objects_store) */
};

static uint64_t *
tslot(const struct objrun *r, size_t b, int ph, int w)
{
	return &r->t[(((b * PH_N) + (size_t)ph) * MAX_WORKERS + (size_t)w) * 2];
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		bench_die("out of memory (%zu bytes)", n);
	return p;
}

static void
fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = (seed += 0x9e3779b97f4a7c15ull);
	memset((char *)buf + len / 8 * 8, 0x5a, len % 8);
}

/* One phase over r->n items. */
static void
run_phase(struct objrun *r, int ph, void *src, unsigned char *dst,
	  pxs_key *keys, void *redis)
{
	int rc = 0;

	for (size_t i = 0; i < r->n; i++) {
		switch (r->mech * PH_N + ph) {
		case M_PXS * PH_N + PH_PUT:
			rc = pxs_put(r->s, src, r->size, &keys[i]);
			break;
		case M_PXS * PH_N + PH_GET: {
			pxs_view v;

			if ((rc = pxs_get(r->s, keys[i], &v)) == 0)
				rc = pxs_release(r->s, &v);
			break;
		}
		case M_PXS * PH_N + PH_EVICT:
			rc = pxs_evict(r->s, keys[i]);
			break;
		case M_MEMCPY * PH_N + PH_PUT:
			memcpy(dst + i * r->size, src, r->size);
			__asm__ __volatile__("" ::"r"(dst) : "memory");
			break;
#ifdef PXS_BENCH_HIREDIS
		case M_REDIS * PH_N + PH_PUT:
		case M_REDIS * PH_N + PH_GET:
		case M_REDIS * PH_N + PH_EVICT: {
			char key[48];
			int kl = snprintf(key, sizeof(key), "pxs-bench:%d:%zu",
					  r->worker, i);
			redisReply *rep;

			if (ph == PH_PUT)
				rep = redisCommand(redis, "SET %b %b", key,
						   (size_t)kl, src, r->size);
			else
				rep = redisCommand(redis, ph == PH_GET ?
						   "GET %b" : "DEL %b",
						   key, (size_t)kl);
			if (!rep || rep->type == REDIS_REPLY_ERROR ||
			    (ph == PH_GET && rep->len != (size_t)r->size))
				bench_die("redis %s: %s", phase_name[M_REDIS][ph],
					  rep ? rep->str : "no reply");
			freeReplyObject(rep);
			break;
		}
#endif
		default:
			(void)redis;
			return; /* memcpy has no get or evict */
		}
		if (rc < 0)
			bench_die("%s %s of %zu bytes: %s", mech_name[r->mech],
				  phase_name[r->mech][ph], r->size,
				  pxs_strerror(rc));
	}
}

static int
obj_worker(void *arg)
{
	struct objrun *r = arg;
	pxs_key *keys = xmalloc(r->n * sizeof(*keys));
	void *src = xmalloc(r->size);
	unsigned char *dst = NULL;
	void *redis = NULL;

	uint32_t pair = r->nworkers > 1;

	if (pair)
		bench_pin(0, bench_cpu(r->worker));
	fill(src, r->size, (uint64_t)r->worker);
	if (r->mech == M_MEMCPY)
		dst = bench_shared(r->n * r->size);
#ifdef PXS_BENCH_HIREDIS
	if (r->mech == M_REDIS)
		redis = bench_redis(r->o);
#endif
	for (size_t b = 0; b < r->batches; b++) {
		uint32_t mine = (uint32_t)(2 * (b / TURN)) + pair;
		bool last = b % TURN == TURN - 1 || b + 1 == r->batches;

		if (r->turn && b % TURN == 0 &&
		    bench_wait_ge(r->turn, mine, TIMEOUT_MS) < 0)
			bench_die("objects: turn %u timed out", mine);
		/* Alone: the first half of the batches on one CPU, the
		 * second on the other. The first batch of a turn starts with
		 * caches the other run used; the median looks past it. */
		if (!pair && bench_ncpus() > 1 &&
		    (b == 0 || b == r->batches / 2))
			bench_pin(0, bench_cpu(b == 0 ? 0 : 1));
		for (int ph = 0; ph < PH_N; ph++) {
			uint64_t *t = tslot(r, b, ph, r->worker);

			if (bench_barrier_wait(r->bar, TIMEOUT_MS) < 0)
				bench_die("barrier timed out");
			t[0] = bench_now_ns();
			run_phase(r, ph, src, dst, keys, redis);
			t[1] = bench_now_ns();
		}
		/* A turn done (by both of a pair): the other run's turn. */
		if (!last)
			continue;
		if (bench_barrier_wait(r->bar, TIMEOUT_MS) < 0)
			bench_die("barrier timed out");
		if (r->turn && r->worker == 0)
			bench_post(r->turn, mine + 1);
	}
#ifdef PXS_BENCH_HIREDIS
	if (redis)
		redisFree(redis);
#endif
	bench_unshare(dst, r->n * r->size);
	free(src);
	free(keys);
	return 0;
}

static void
obj_report(const struct objrun *r)
{
	double *v = xmalloc(r->batches * sizeof(*v));
	size_t ops = r->n * r->nworkers;

	for (int ph = 0; ph < PH_N; ph++) {
		struct bench_stats st;
		size_t k = 0;
		double ops_s;

		if (!*phase_name[r->mech][ph])
			continue;
		for (size_t b = 1; b < r->batches; b++) { /* 0 is warm-up */
			uint64_t span = 0;

			/* The slowest worker's own time: the barrier releases
			 * the other worker up to one cross-CPU wake later, a
			 * skew that would swamp batches of a few big ops. */
			for (uint32_t w = 0; w < r->nworkers; w++) {
				uint64_t *t = tslot(r, b, ph, (int)w);

				span = t[1] - t[0] > span ? t[1] - t[0] : span;
			}
			v[k++] = (double)span / (double)ops / 1e3;
		}
		bench_stats(v, k, &st);
		ops_s = st.p50 > 0 ? 1e6 / st.p50 : 0;
		bench_emit("case=objects mech=%s op=%s size=%zu procs=%u "
			   "table=%s n=%zu batch=%zu p50_us=%.4f p99_us=%.4f "
			   "ops_s=%.0f gb_s=%.3f",
			   mech_name[r->mech], phase_name[r->mech][ph], r->size,
			   r->nworkers, r->mech == M_PXS ? r->table : "-",
			   st.n, ops, st.p50, st.p99, ops_s,
			   ops_s * (double)r->size / 1e9);
	}
	free(v);
}

/* A store sized for one objects run: the data of every worker plus a
 * quarter, and a capacity of what the run keeps live (so the slot table is
 * 2 to 4 times the live keys, 128 bytes a slot). @p big overrides it with a
 * 1 GiB store of the default capacity (65536: a 16 MiB table). */
static pxs_store *
objects_store(size_t size, size_t n, int big)
{
	char name[80];
	size_t bytes = (size + 64) * n * MAX_WORKERS, cap = n * MAX_WORKERS;
	pxs_store *s;

	bytes = bytes + bytes / 4 + ((size_t)16 << 20);
	bytes = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
	if (big)
		s = bench_store(name, "obj", (size_t)1 << 30, 0);
	else
		s = bench_store(name, "obj", bytes, (uint32_t)(cap < 64 ? 64 :
								 cap));
	pxs_unlink(name);
	return s;
}

/* One process, and (with two CPUs) two at once, taking turns batch by
 * batch on one store. bar[w - 1] and t[w - 1] belong to the run of w. */
static void
objects_one(const struct bench_opts *o, int m, size_t size, size_t n,
	    size_t batches, int big, struct bench_barrier *bar, uint64_t **t,
	    uint32_t *turn)
{
	uint32_t maxw = bench_ncpus() >= 2 ? 2 : 1;
	pxs_store *s[MAX_WORKERS] = {NULL, NULL};
	struct objrun r[MAX_WORKERS];
	pid_t pids[MAX_WORKERS * MAX_WORKERS];
	uint32_t np = 0;

	/* A lone process has no pair to wait for: count its turns as if
	 * the pair's were done at once. */
	*turn = 0;
	for (uint32_t w = 1; w <= maxw; w++) {
		if (m == M_PXS)
			s[w - 1] = objects_store(size, n, big);
		r[w - 1] = (struct objrun){
			.o = o, .s = s[w - 1], .mech = m, .size = size, .n = n,
			.batches = batches, .nworkers = w, .bar = &bar[w - 1],
			.turn = turn, .t = t[w - 1],
			.table = big ? "default-1GiB" : "fitted",
		};
		bench_barrier_init(&bar[w - 1], w);
	}
	if (maxw == 1)
		r[0].turn = NULL;
	for (uint32_t w = 1; w <= maxw; w++)
		for (uint32_t j = 0; j < w; j++) {
			r[w - 1].worker = (int)j;
			pids[np++] = bench_spawn(obj_worker, &r[w - 1]);
		}
	for (uint32_t j = 0; j < np; j++)
		if (bench_reap(pids[j], 600) != 0)
			bench_die("objects worker failed");
	for (uint32_t w = 1; w <= maxw; w++) {
		obj_report(&r[w - 1]);
		pxs_close(s[w - 1]);
	}
}

static void
case_objects(const struct bench_opts *o)
{
	static const size_t sizes[] = {64, 4096, 65536, 1 << 20, 64 << 20};
	static const size_t full_n[] = {8192, 2048, 256, 32, 2};
	static const size_t full_b[] = {40, 30, 30, 30, 12};
	size_t nsizes = o->quick ? 4 : 5;
	struct bench_barrier *bar = bench_shared(MAX_WORKERS * sizeof(*bar));
	size_t tlen = 64 * PH_N * MAX_WORKERS * 2 * sizeof(uint64_t);
	uint64_t *t[MAX_WORKERS] = {bench_shared(tlen), bench_shared(tlen)};
	uint32_t *turn = bench_shared(sizeof(*turn));

	if (bench_ncpus() < 2)
		bench_skip("objects procs=2", "fewer than 2 CPUs allowed");
	for (size_t i = 0; i < nsizes; i++) {
		size_t n = o->quick ? (full_n[i] > 16 ? 16 : full_n[i]) :
				      full_n[i];
		size_t b = bench_iters(o, full_b[i], 3, 3);

		b = b > 64 ? 64 : b;
		for (int m = 0; m < M_N; m++) {
			if (m == M_REDIS && !o->redis_port)
				continue;
#ifndef PXS_BENCH_HIREDIS
			if (m == M_REDIS)
				continue;
#endif
			if (m == M_REDIS) /* Redis moves 64 MiB in ~1 s */
				objects_one(o, m, sizes[i], n > 512 ? 512 : n,
					    sizes[i] >= (64 << 20) ? 3 :
					    b > 8 ? 8 : b, 0, bar, t, turn);
			else
				objects_one(o, m, sizes[i], n, b, 0, bar, t,
					    turn);
		}
		/* The same small objects in a big store: a 16 MiB table. */
		if (i == 0)
			objects_one(o, M_PXS, sizes[i], n, b, 1, bar, t, turn);
	}
	bench_unshare(turn, sizeof(*turn));
	for (int w = 0; w < MAX_WORKERS; w++)
		bench_unshare(t[w], tlen);
	bench_unshare(bar, MAX_WORKERS * sizeof(*bar));
}

/* ---- zero copy: get latency by size --------------------------------- */

static pxs_key
make_object(pxs_store *s, size_t size)
{
	pxs_key k;
	void *buf;
	int rc;

	if ((rc = pxs_future_new(s, &k)) < 0 ||
	    (rc = pxs_future_reserve(s, k, size, &buf)) < 0)
		bench_die("reserve %zu bytes: %s", size, pxs_strerror(rc));
	memset(buf, 0x42, size);
	if ((rc = pxs_future_commit(s, k)) < 0)
		bench_die("commit: %s", pxs_strerror(rc));
	return k;
}

static void
case_get_size(const struct bench_opts *o)
{
	static const size_t full[] = {64, 4096, 65536, 1 << 20, 64 << 20,
				      (size_t)1 << 30};
	static const size_t quick[] = {64, 4096, 1 << 20};
	const size_t *sizes = o->quick ? quick : full;
	size_t nsizes = o->quick ? 3 : 6, rounds = bench_iters(o, 40, 3, 2);
	size_t per = o->quick ? 50 : 500, nsamp = rounds * per;
	size_t total = 0;
	char name[80];
	pxs_store *s;
	pxs_key keys[6];
	double *get[6], *getrel[6], *clk;

	for (size_t i = 0; i < nsizes; i++)
		total += sizes[i] + 4096;
	s = bench_store(name, "getsz", (total + ((size_t)64 << 20)) &
			~(size_t)4095, 1024);
	pxs_unlink(name);
	for (size_t i = 0; i < nsizes; i++) {
		keys[i] = make_object(s, sizes[i]);
		get[i] = xmalloc(nsamp * sizeof(double));
		getrel[i] = xmalloc(nsamp * sizeof(double));
	}
	clk = xmalloc(nsamp * sizeof(double));
	if (bench_ncpus() > 1)
		bench_pin(0, bench_cpu(0));
	for (size_t r = 0, k = 0; r < rounds; r++, k += per) {
		for (size_t i = 0; i < nsizes; i++) {
			for (size_t j = 0; j < per; j++) {
				pxs_view v;
				uint64_t t0 = bench_now_ns(), t1, t2;
				int rc = pxs_get(s, keys[i], &v);

				t1 = bench_now_ns();
				if (rc == 0)
					rc = pxs_release(s, &v);
				t2 = bench_now_ns();
				if (rc < 0)
					bench_die("get: %s", pxs_strerror(rc));
				get[i][k + j] = (double)(t1 - t0) / 1e3;
				getrel[i][k + j] = (double)(t2 - t0) / 1e3;
			}
		}
		for (size_t j = 0; j < per; j++) {
			uint64_t t0 = bench_now_ns();

			clk[k + j] = (double)(bench_now_ns() - t0) / 1e3;
		}
	}
	bench_pin(0, -1);
	for (size_t i = 0; i < nsizes; i++) {
		struct bench_stats a, b;

		bench_stats(get[i], nsamp, &a);
		bench_stats(getrel[i], nsamp, &b);
		bench_emit("case=get-size mech=pxs op=get size=%zu n=%zu "
			   "p50_us=%.4f p99_us=%.4f mean_us=%.4f",
			   sizes[i], a.n, a.p50, a.p99, a.mean);
		bench_emit("case=get-size mech=pxs op=get+release size=%zu "
			   "n=%zu p50_us=%.4f p99_us=%.4f mean_us=%.4f",
			   sizes[i], b.n, b.p50, b.p99, b.mean);
		free(get[i]);
		free(getrel[i]);
	}
	{
		struct bench_stats c;

		bench_stats(clk, nsamp, &c);
		bench_emit("case=get-size mech=clock op=clock_gettime size=0 "
			   "n=%zu p50_us=%.4f p99_us=%.4f mean_us=%.4f",
			   c.n, c.p50, c.p99, c.mean);
	}
	free(clk);
	for (size_t i = 0; i < nsizes; i++)
		pxs_evict(s, keys[i]);
	pxs_close(s);
}

/* ---- zero copy: reserve + commit against set ------------------------ */

enum rop { R_SET, R_RESERVE, R_FILL_SET, R_FILL_RESERVE, R_N };

static const char *const rop_name[R_N] = {
	"set", "reserve+commit", "fill+set", "reserve+fill+commit",
};

static double
one_rop(pxs_store *s, int op, void *src, size_t size, uint64_t seed)
{
	pxs_key k;
	void *buf;
	uint64_t t0, t1;
	int rc;

	if ((rc = pxs_future_new(s, &k)) < 0)
		bench_die("pxs_future_new: %s", pxs_strerror(rc));
	t0 = bench_now_ns();
	switch (op) {
	case R_FILL_SET:
		fill(src, size, seed);
		__attribute__((fallthrough)); /* fill, then time the set */
	case R_SET:
		rc = pxs_future_set(s, k, src, size);
		break;
	default:
		if ((rc = pxs_future_reserve(s, k, size, &buf)) < 0)
			break;
		if (op == R_FILL_RESERVE)
			fill(buf, size, seed);
		rc = pxs_future_commit(s, k);
		break;
	}
	t1 = bench_now_ns();
	if (rc < 0)
		bench_die("%s: %s", rop_name[op], pxs_strerror(rc));
	pxs_evict(s, k);
	return (double)(t1 - t0) / 1e3;
}

static void
case_reserve(const struct bench_opts *o)
{
	static const size_t full[] = {1 << 20, 64 << 20};
	static const size_t quick[] = {65536, 1 << 20};
	const size_t *sizes = o->quick ? quick : full;
	char name[80];
	pxs_store *s = bench_store(name, "rsv", (size_t)256 << 20, 1024);

	pxs_unlink(name);
	if (bench_ncpus() > 1)
		bench_pin(0, bench_cpu(0));
	for (size_t i = 0; i < 2; i++) {
		size_t size = sizes[i], warm = 2;
		size_t n = bench_iters(o, size > (1 << 20) ? 16 : 300, 4, 4);
		void *src = xmalloc(size);
		double *v[R_N];

		fill(src, size, 1);
		for (int op = 0; op < R_N; op++)
			v[op] = xmalloc(n * sizeof(double));
		for (size_t j = 0; j < n + warm; j++)
			for (int op = 0; op < R_N; op++) {
				double us = one_rop(s, op, src, size, j);

				if (j >= warm)
					v[op][j - warm] = us;
			}
		for (int op = 0; op < R_N; op++) {
			struct bench_stats st;

			bench_stats(v[op], n, &st);
			bench_emit("case=reserve mech=pxs op=%s size=%zu n=%zu "
				   "p50_us=%.3f p99_us=%.3f gb_s=%.3f",
				   rop_name[op], size, st.n, st.p50, st.p99,
				   st.p50 > 0 ? (double)size / st.p50 / 1e3 :
						0);
			free(v[op]);
		}
		free(src);
	}
	bench_pin(0, -1);
	pxs_close(s);
}

int
main(int argc, char **argv)
{
	struct bench_opts o;

	bench_parse(argc, argv, "put_get", &o);
#ifdef PXS_BENCH_HIREDIS
	if (!o.redis_port)
		bench_skip("redis", "no --redis-port (bench/run starts one)");
#else
	bench_skip("redis", "built without hiredis (libhiredis-dev)");
	o.redis_port = 0;
#endif
	if (bench_want(&o, "objects"))
		case_objects(&o);
	if (bench_want(&o, "get-size"))
		case_get_size(&o);
	if (bench_want(&o, "reserve"))
		case_reserve(&o);
	return 0;
}
