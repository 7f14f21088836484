/* bench_redis.c - a Redis store (redis://) against raw hiredis, same server.
 *
 * Cases:
 *   ops   one client, one request at a time: pxs_put, pxs_get+pxs_release,
 *         pxs_exists and pxs_evict of 64 B, 64 KiB and 1 MiB objects on a
 *         redis:// store, in rounds that alternate with raw SET, GET,
 *         EXISTS and DEL of the same sizes over one hiredis connection (the
 *         limit: one round trip each). Each op is timed alone; rows give
 *         p50/p99 per op, and bench/run the ratio to the raw op.
 *   wake  a consumer asleep in pxs_future_wait() on a Redis future; the
 *         producer calls pxs_future_set(): time from just before the set
 *         to the waiter's return. Against BLPOP woken by RPUSH, the two
 *         alternating, in the shared-memory wake's placements (same-cpu:
 *         everything on one CPU; diff-cpu: producer and Redis on one, the
 *         consumer on the other; unpinned).
 *   idle  CPU time (user + system, getrusage) of a process while it waits
 *         2 s on a Redis future nobody sets, against a 2 s BLPOP.
 *   stream one client: pxs_stream_append then pxs_stream_read+pxs_release
 *         of that item, 1 KiB and 1 MiB, on a Discard stream of window 16
 *         on the redis:// store, in rounds that alternate with raw XADD
 *         (MAXLEN = 16) then XREAD COUNT 1 of the entry just added, over
 *         one hiredis connection. Each append+read pair is timed alone.
 * Without --redis-port every case is skipped (bench/run starts a server).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef PXS_BENCH_HIREDIS

#define TIMEOUT_MS 20000L

enum mech { M_PXS, M_RAW, M_N };
enum op { O_PUT, O_GET, O_EXISTS, O_EVICT, O_N };

static const char *const mech_name[M_N] = {"pxs-redis", "redis"};
static const char *const op_name[M_N][O_N] = {
	{"put", "get+release", "exists", "evict"},
	{"set", "get", "exists", "del"},
};

static pxs_store *
open_store(const struct bench_opts *o, char name[128])
{
	pxs_options opt = {.flags = PXS_CREATE | PXS_EXCL};
	pxs_store *s;
	int rc;

	snprintf(name, 128, "redis://127.0.0.1:%d/bench-%ld", o->redis_port,
		 (long)getpid());
	if ((rc = pxs_open(name, &opt, &s)) < 0)
		bench_die("open %s: %s", name, pxs_strerror(rc));
	return s;
}

static void
raw_cmd(redisContext *c, int type, const char *fmt, const char *key,
	const void *data, size_t size)
{
	redisReply *rep = data ? redisCommand(c, fmt, key, data, size)
			       : redisCommand(c, fmt, key);

	if (!rep || rep->type != type)
		bench_die("redis %s: %s", fmt, rep && rep->str ? rep->str
							      : "bad reply");
	freeReplyObject(rep);
}

/* One op of @p m on item @p i; its time in us. */
static double
one_op(pxs_store *s, redisContext *c, int m, int op, pxs_key *k, size_t i,
       const void *src, size_t size)
{
	char key[48];
	uint64_t t0;
	pxs_view v;
	int rc = 0;

	snprintf(key, sizeof key, "pxs-bench-raw:%zu", i);
	t0 = bench_now_ns();
	switch (m * O_N + op) {
	case M_PXS * O_N + O_PUT:
		rc = pxs_put(s, src, size, k);
		break;
	case M_PXS * O_N + O_GET:
		if ((rc = pxs_get(s, *k, &v)) == 0)
			rc = v.size == size ? pxs_release(s, &v) : -EPROTO;
		break;
	case M_PXS * O_N + O_EXISTS:
		rc = pxs_exists(s, *k) == 1 ? 0 : -ENOENT;
		break;
	case M_PXS * O_N + O_EVICT:
		rc = pxs_evict(s, *k);
		break;
	case M_RAW * O_N + O_PUT:
		raw_cmd(c, REDIS_REPLY_STATUS, "SET %s %b", key, src, size);
		break;
	case M_RAW * O_N + O_GET:
		raw_cmd(c, REDIS_REPLY_STRING, "GET %s", key, NULL, 0);
		break;
	case M_RAW * O_N + O_EXISTS:
		raw_cmd(c, REDIS_REPLY_INTEGER, "EXISTS %s", key, NULL, 0);
		break;
	default:
		raw_cmd(c, REDIS_REPLY_INTEGER, "DEL %s", key, NULL, 0);
	}
	if (rc < 0)
		bench_die("%s %s of %zu bytes: %s", mech_name[m], op_name[m][op],
			  size, pxs_strerror(rc));
	return (double)(bench_now_ns() - t0) / 1e3;
}

static void
case_ops(const struct bench_opts *o)
{
	static const size_t sizes[] = {64, 65536, 1 << 20};
	size_t rounds = bench_iters(o, 20, 2, 2), per = o->quick ? 10 : 100;
	redisContext *c = bench_redis(o);
	char name[128];
	pxs_store *s = open_store(o, name);
	pxs_key *keys = calloc(per, sizeof *keys);
	void *src = malloc(1 << 20);
	double *v[3][M_N][O_N];

	if (!keys || !src)
		bench_die("out of memory");
	memset(src, 0x5a, 1 << 20);
	for (size_t z = 0; z < 3; z++)
		for (int m = 0; m < M_N; m++)
			for (int op = 0; op < O_N; op++)
				if (!(v[z][m][op] = malloc(rounds * per *
							   sizeof(double))))
					bench_die("out of memory");
	for (size_t r = 0; r < rounds; r++)
		for (size_t z = 0; z < 3; z++)
			for (int m = 0; m < M_N; m++)
				for (int op = 0; op < O_N; op++)
					for (size_t i = 0; i < per; i++)
						v[z][m][op][r * per + i] =
							one_op(s, c, m, op,
							       &keys[i], i, src,
							       sizes[z]);
	for (size_t z = 0; z < 3; z++)
		for (int m = 0; m < M_N; m++)
			for (int op = 0; op < O_N; op++) {
				struct bench_stats st;

				bench_stats(v[z][m][op], rounds * per, &st);
				bench_emit("case=redis-ops mech=%s op=%s "
					   "size=%zu n=%zu p50_us=%.3f "
					   "p99_us=%.3f mean_us=%.3f",
					   mech_name[m], op_name[m][op],
					   sizes[z], st.n, st.p50, st.p99,
					   st.mean);
				free(v[z][m][op]);
			}
	pxs_close(s);
	pxs_unlink(name);
	redisFree(c);
	free(keys);
	free(src);
}

/* ---- wake ---------------------------------------------------------------- */

struct wake_shm {
	uint32_t go;   /* iteration posted by the producer (futex word) */
	uint32_t done; /* iteration finished by the consumer */
	int mech;
	pxs_key k;
	uint64_t t_woke;
	int err;
};

struct wake_run {
	const struct bench_opts *o;
	struct wake_shm *w;
	const char *name;
	int cpu; /* consumer's CPU, < 0 unpinned */
	size_t iters;
};

static int
consumer(void *p)
{
	const struct wake_run *r = p;
	redisContext *c = bench_redis(r->o);
	pxs_store *s;
	int rc;

	bench_pin(0, r->cpu);
	if ((rc = pxs_open(r->name, NULL, &s)) < 0)
		bench_die("consumer open: %s", pxs_strerror(rc));
	for (uint32_t i = 1; i <= r->iters; i++) {
		if (bench_wait_ge(&r->w->go, i, TIMEOUT_MS) < 0)
			bench_die("consumer: no iteration %u", i);
		if (r->w->mech == M_PXS) {
			pxs_view v;

			rc = pxs_future_wait(s, r->w->k, TIMEOUT_MS, &v);
			r->w->t_woke = bench_now_ns();
			if (rc == 0)
				rc = pxs_release(s, &v);
		} else {
			redisReply *rep = redisCommand(c, "BLPOP pxs-bench-wake 20");

			r->w->t_woke = bench_now_ns();
			rc = rep && rep->type == REDIS_REPLY_ARRAY ? 0 : -EPROTO;
			freeReplyObject(rep);
		}
		r->w->err = rc;
		bench_post(&r->w->done, i);
	}
	pxs_close(s);
	redisFree(c);
	return 0;
}

static void
case_wake(const struct bench_opts *o)
{
	static const char *const places[] = {"same-cpu", "diff-cpu",
					     "unpinned"};
	size_t iters = bench_iters(o, 400, 6, 4);
	redisContext *c = bench_redis(o);
	char name[128];
	pxs_store *s = open_store(o, name);

	for (int p = 0; p < 3; p++) {
		int pc = p == 2 ? -1 : bench_cpu(0);
		int cc = p == 0 ? bench_cpu(0) : p == 1 ? bench_cpu(1) : -1;
		struct wake_shm *w = bench_shared(sizeof *w);
		struct wake_run r = {.o = o, .w = w, .name = name, .cpu = cc,
				     .iters = iters};
		double *v[M_N];
		size_t nv[M_N] = {0, 0};
		pid_t pid;

		if (p == 1 && bench_ncpus() < 2) {
			bench_skip("redis-wake diff-cpu", "fewer than 2 CPUs");
			bench_unshare(w, sizeof *w);
			continue;
		}
		for (int m = 0; m < M_N; m++)
			if (!(v[m] = malloc(iters * sizeof(double))))
				bench_die("out of memory");
		bench_pin(0, pc);
		if (o->redis_pid)
			bench_pin(o->redis_pid, pc);
		pid = bench_spawn(consumer, &r);
		for (uint32_t i = 1; i <= iters; i++) {
			int m = (int)(i % 2);
			uint64_t t0;
			int rc = 0;

			w->mech = m;
			if (m == M_PXS && (rc = pxs_future_new(s, &w->k)) < 0)
				bench_die("future_new: %s", pxs_strerror(rc));
			bench_post(&w->go, i);
			if (bench_wait_asleep(pid, TIMEOUT_MS) < 0 ||
			    (o->redis_pid &&
			     bench_wait_asleep(o->redis_pid, TIMEOUT_MS) < 0))
				bench_die("the consumer never fell asleep");
			bench_sleep_us(o->settle_us);
			t0 = bench_now_ns();
			if (m == M_PXS)
				rc = pxs_future_set(s, w->k, "wake", 4);
			else
				raw_cmd(c, REDIS_REPLY_INTEGER,
					"RPUSH %s %b", "pxs-bench-wake",
					"wake", 4);
			if (rc < 0)
				bench_die("set: %s", pxs_strerror(rc));
			if (bench_wait_ge(&w->done, i, TIMEOUT_MS) < 0 ||
			    w->err < 0)
				bench_die("consumer failed: %s",
					  pxs_strerror(w->err));
			if (i > 2) /* the first of each: warm-up */
				v[m][nv[m]++] = (double)(w->t_woke - t0) / 1e3;
			if (m == M_PXS)
				pxs_evict(s, w->k);
		}
		if (bench_reap(pid, 30) != 0)
			bench_die("consumer failed");
		for (int m = 0; m < M_N; m++) {
			struct bench_stats st;

			bench_stats(v[m], nv[m], &st);
			bench_emit("case=redis-wake placement=%s mech=%s n=%zu "
				   "p50_us=%.3f p99_us=%.3f mean_us=%.3f",
				   places[p], m == M_PXS ? "pxs-redis" :
				   "redis-blpop", st.n, st.p50, st.p99,
				   st.mean);
			free(v[m]);
		}
		bench_unshare(w, sizeof *w);
	}
	bench_pin(0, -1);
	if (o->redis_pid)
		bench_pin(o->redis_pid, -1);
	pxs_close(s);
	pxs_unlink(name);
	redisFree(c);
}

/* ---- idle: CPU of a waiting process ---------------------------------- */

struct idle_run {
	const struct bench_opts *o;
	const char *name;
	pxs_key k;
	int mech;
	double *cpu_ms; /* shared */
};

static double
cpu_ms(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

static int
idler(void *p)
{
	const struct idle_run *r = p;
	pxs_store *s;
	double t0;
	int rc;

	if (r->mech == M_PXS) {
		pxs_view v;

		if ((rc = pxs_open(r->name, NULL, &s)) < 0)
			return 1;
		t0 = cpu_ms();
		rc = pxs_future_wait(s, r->k, 2000, &v);
		*r->cpu_ms = cpu_ms() - t0;
		pxs_close(s);
		return rc == -ETIMEDOUT ? 0 : 2;
	}
	{
		redisContext *c = bench_redis(r->o);
		redisReply *rep;

		t0 = cpu_ms();
		rep = redisCommand(c, "BLPOP pxs-bench-idle 2");
		*r->cpu_ms = cpu_ms() - t0;
		rc = rep && rep->type == REDIS_REPLY_NIL ? 0 : 2;
		freeReplyObject(rep);
		redisFree(c);
		return rc;
	}
}

static void
case_idle(const struct bench_opts *o)
{
	char name[128];
	pxs_store *s = open_store(o, name);
	double *ms = bench_shared(sizeof *ms);
	struct idle_run r = {.o = o, .name = name, .cpu_ms = ms};
	int rc;

	if ((rc = pxs_future_new(s, &r.k)) < 0)
		bench_die("future_new: %s", pxs_strerror(rc));
	for (int m = 0; m < M_N; m++) {
		r.mech = m;
		if (bench_reap(bench_spawn(idler, &r), 30) != 0)
			bench_die("idle waiter failed");
		bench_emit("case=redis-idle mech=%s wait_ms=2000 cpu_ms=%.3f",
			   m == M_PXS ? "pxs-redis" : "redis-blpop", *ms);
	}
	bench_unshare(ms, sizeof *ms);
	pxs_close(s);
	pxs_unlink(name);
}

/* ---- stream -------------------------------------------------------------- */

/* One append+read pair of @p m of @p size bytes (the raw entry's ID is
 * "++*raw_id-1"); its time in us. */
static double
stream_pair(pxs_store *s, redisContext *c, int m, pxs_key k,
	    uint64_t *raw_id, const void *src, size_t size)
{
	uint64_t t0 = bench_now_ns(), seq;
	pxs_view v;
	int rc = 0;

	if (m == M_PXS) {
		rc = pxs_stream_append(s, k, src, size, 0, &seq);
		if (rc == 0 && (rc = pxs_stream_read(s, k, seq, 0, &v)) == 0)
			rc = v.size == size ? pxs_release(s, &v) : -EPROTO;
	} else {
		redisReply *rep = redisCommand(c, "XADD pxs-bench-raw:x MAXLEN = 16 "
					       "%llu-1 d %b",
					       (unsigned long long)++*raw_id, src, size);

		if (!rep || rep->type != REDIS_REPLY_STRING)
			bench_die("XADD: %s", rep && rep->str ? rep->str : "bad reply");
		freeReplyObject(rep);
		rep = redisCommand(c, "XREAD COUNT 1 STREAMS pxs-bench-raw:x %llu-0",
				   (unsigned long long)*raw_id);
		if (!rep || rep->type != REDIS_REPLY_ARRAY)
			bench_die("XREAD: %s", rep && rep->str ? rep->str : "bad reply");
		freeReplyObject(rep);
	}
	if (rc < 0)
		bench_die("stream append+read of %zu bytes: %s", size,
			  pxs_strerror(rc));
	return (double)(bench_now_ns() - t0) / 1e3;
}

static void
case_stream(const struct bench_opts *o)
{
	static const size_t sizes[] = {1024, 1 << 20};
	size_t rounds = bench_iters(o, 20, 2, 2), per = o->quick ? 10 : 100;
	pxs_key k = pxs_key_from_name("bench-stream", 12);
	redisContext *c = bench_redis(o);
	char name[128];
	pxs_store *s = open_store(o, name);
	void *src = malloc(1 << 20);
	double *v[2][M_N];
	uint64_t raw_id = 0;
	int rc;

	if (!src)
		bench_die("out of memory");
	memset(src, 0x5a, 1 << 20);
	if ((rc = pxs_stream_new(s, k, NULL)) < 0)
		bench_die("stream_new: %s", pxs_strerror(rc));
	freeReplyObject(redisCommand(c, "DEL pxs-bench-raw:x"));
	for (size_t z = 0; z < 2; z++)
		for (int m = 0; m < M_N; m++)
			if (!(v[z][m] = malloc(rounds * per * sizeof(double))))
				bench_die("out of memory");
	for (size_t r = 0; r < rounds; r++)
		for (size_t z = 0; z < 2; z++)
			for (int m = 0; m < M_N; m++)
				for (size_t i = 0; i < per; i++)
					v[z][m][r * per + i] = stream_pair(
						s, c, m, k, &raw_id, src, sizes[z]);
	for (size_t z = 0; z < 2; z++)
		for (int m = 0; m < M_N; m++) {
			struct bench_stats st;

			bench_stats(v[z][m], rounds * per, &st);
			bench_emit("case=redis-stream mech=%s op=%s size=%zu n=%zu "
				   "p50_us=%.3f p99_us=%.3f mean_us=%.3f",
				   mech_name[m],
				   m == M_PXS ? "append+read" : "xadd+xread",
				   sizes[z], st.n, st.p50, st.p99, st.mean);
			free(v[z][m]);
		}
	freeReplyObject(redisCommand(c, "DEL pxs-bench-raw:x"));
	pxs_close(s);
	pxs_unlink(name);
	redisFree(c);
	free(src);
}

#endif /* PXS_BENCH_HIREDIS */

int
main(int argc, char **argv)
{
	struct bench_opts o;

	bench_parse(argc, argv, "redis", &o);
#ifdef PXS_BENCH_HIREDIS
	if (!o.redis_port) {
		bench_skip("redis", "no --redis-port (bench/run starts one)");
		return 0;
	}
	if (bench_want(&o, "redis-ops"))
		case_ops(&o);
	if (bench_want(&o, "redis-wake"))
		case_wake(&o);
	if (bench_want(&o, "redis-idle"))
		case_idle(&o);
	if (bench_want(&o, "redis-stream"))
		case_stream(&o);
#else
	bench_skip("redis", "built without hiredis (libhiredis-dev)");
#endif
	return 0;
}
