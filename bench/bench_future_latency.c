/* bench_future_latency.c - how fast a set wakes a sleeping waiter.
 *
 * Cases (cases 1-3), each against baselines in the same run:
 *   wake      a consumer asleep in pxs_future_wait, a producer calls
 *             pxs_future_set: time from just before the set call to the
 *             waiter's return. Baselines: a raw shared futex, a pipe, Redis
 *             BLPOP woken by RPUSH (hiredis). Spin rows: the waiter polls
 *             before sleeping (pxs_future_wait_spin, or the futex word).
 *   pingpong  set, wait, set back: one round trip, against a futex and a
 *             pipe ping-pong.
 *   fanout    one set wakes 1, 8, 64 waiting processes: time until the last
 *             (and the first) returns, against one FUTEX_WAKE of all.
 * wake and pingpong run in three placements: both processes pinned to one
 * CPU, pinned to two different CPUs, and unpinned.
 *
 * HOW A SAMPLE IS TAKEN. The consumer announces the iteration it is about
 * to wait for, then blocks. The producer polls until it sees the
 * announcement and the consumer in state S in /proc (and Redis too, for the
 * Redis rows), sleeps a fixed 500 us (--settle-us) so every mechanism
 * starts from the same idle CPU, reads CLOCK_MONOTONIC (t0), and wakes.
 * The consumer reads the clock when its wait returns (t1) and
 * acknowledges through a futex; the
 * producer blocks on that before the next iteration. The mechanisms are
 * interleaved in blocks, so that a noisy neighbour hurts them alike, and
 * the first block of each is a discarded warm-up. Children touch every
 * page they will use before the loop (prefault, warm_heap): first touch is
 * case 7's subject, not this one's.
 */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_MS 20000L
#define SPIN_BUDGET_NS 200000u /* spinning waiters poll this long at most */
#define SPIN_DELAY_NS 20000u   /* spin rows: set this long after "ready" */

enum mech {
	M_PXS,
	M_FUTEX,
	M_PIPE,
	M_REDIS,
	M_PXS_SPIN,
	M_FUTEX_SPIN,
	M_PXS_ANY,
	M_N
};

static const char *const mech_name[M_N] = {
	"pxs", "futex", "pipe", "redis", "pxs-spin", "futex-spin", "pxs-any64",
};

/* Iterations that wait on a future of ours (one, or one of ANY_N). */
static int
is_pxs(int m)
{
	return m == M_PXS || m == M_PXS_SPIN || m == M_PXS_ANY;
}

#define ANY_N 64 /* pxs-any64: the set future is the last of 64 */

static int
is_spin(int m)
{
	return m == M_PXS_SPIN || m == M_FUTEX_SPIN;
}

enum placement { P_SAME, P_DIFF, P_FREE, P_N };

static const char *const place_name[P_N] = {
	"same-cpu", "diff-cpu", "unpinned",
};

/* Shared between the producer and its consumers (bench_shared). */
struct ctl {
	_Alignas(64) uint32_t ready; /* consumer: iteration it waits for, +1 */
	_Alignas(64) uint32_t ack;   /* consumer: iteration it finished, +1 */
	_Alignas(64) uint32_t word;  /* the futex baseline's word */
	_Alignas(64) uint64_t t0;    /* futex baseline: the producer's t0 */
	_Alignas(64) uint32_t done;  /* fan-out: waiters that returned */
	_Alignas(64) uint32_t rdy[64]; /* fan-out: per waiter, like ready */
	uint64_t t1[64];             /* fan-out: per waiter, return time */
};

struct run {
	const struct bench_opts *o;
	pxs_store *s;
	struct ctl *ctl;
	uint8_t *sched;   /* [n] mechanism of each iteration */
	pxs_key *keys;    /* [2n] future keys */
	double *lat;      /* [n] result of each iteration, ns */
	size_t n;
	int pcpu, ccpu;   /* -1 = unpinned */
	int fd_c2p[2], fd_p2c[2];
	int waiter;       /* fan-out: this waiter's index */
	uint32_t nwaiters;
	pxs_key warm;     /* a 1 MiB object over the heap the run will use */
	pxs_key any[ANY_N]; /* pxs-any64: 63 futures never set, then keys[i] */
	char list[64];    /* Redis list name */
};

static pxs_key
key_of(const char *what, size_t i)
{
	char buf[96];
	int len = snprintf(buf, sizeof(buf), "%s/%ld/%zu", what,
			   (long)getpid(), i);

	return pxs_key_from_name(buf, (size_t)len);
}

/* Interleave: block b of @p block iterations runs mechs[b % k]. */
static size_t
make_sched(uint8_t *sched, const int *mechs, int k, size_t per_mech,
	   size_t block)
{
	size_t nblocks = (per_mech + block - 1) / block + 1; /* +1 warm-up */
	size_t n = nblocks * (size_t)k * block;

	for (size_t i = 0; i < n; i++)
		sched[i] = (uint8_t)mechs[(i / block) % (size_t)k];
	return n;
}

static void
read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			bench_die("pipe read: %s", r ? strerror(errno) : "EOF");
		}
		p += r;
		len -= (size_t)r;
	}
}

static void
write_full(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		bench_die("pipe write: %s", strerror(errno));
}

static void
poll_ge(const uint32_t *w, uint32_t want, int spin)
{
	uint64_t end = bench_now_ns() + (uint64_t)TIMEOUT_MS * 1000000u;

	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) < want) {
		if (bench_now_ns() > end)
			bench_die("peer did not get ready in time");
		if (!spin)
			bench_sleep_us(10);
	}
}

static void
futex_until(uint32_t *w, uint32_t want, int spin)
{
	uint32_t v;

	if (spin) {
		uint64_t end = bench_now_ns() + SPIN_BUDGET_NS;

		while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != want &&
		       bench_now_ns() < end)
			__asm__ __volatile__("pause");
	}
	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want)
		if (bench_futex_wait(w, v, TIMEOUT_MS) == -ETIMEDOUT)
			bench_die("futex wait timed out");
}

static void
pxs_wait_value(struct run *r, pxs_key k, int spin, uint64_t *t0)
{
	pxs_view v;
	int rc = pxs_future_wait_spin(r->s, k, TIMEOUT_MS,
				      spin ? SPIN_BUDGET_NS / 1000 : 0, &v);

	if (rc < 0)
		bench_die("pxs_future_wait: %s", pxs_strerror(rc));
	if (t0)
		memcpy(t0, v.data, sizeof(*t0));
	pxs_release(r->s, &v);
}

/* Wait for k as the last of ANY_N futures, the others never set. */
static void
pxs_wait_any_value(struct run *r, pxs_key k, uint64_t *t0)
{
	pxs_view v;
	size_t which;
	int rc;

	r->any[ANY_N - 1] = k;
	rc = pxs_future_wait_any(r->s, r->any, ANY_N, TIMEOUT_MS, &which, &v);
	if (rc < 0 || which != ANY_N - 1)
		bench_die("pxs_future_wait_any: %s", pxs_strerror(rc));
	memcpy(t0, v.data, sizeof(*t0));
	pxs_release(r->s, &v);
}

static void
pxs_set_value(struct run *r, pxs_key k, uint64_t val)
{
	int rc = pxs_future_set(r->s, k, &val, sizeof(val));

	if (rc < 0)
		bench_die("pxs_future_set: %s", pxs_strerror(rc));
}

/* A process forked for a run has no page-table entries for the segment
 * yet, and on this kind of VM every first touch of a page costs 5 to 15 us
 * (case 7 measures it). Touch every future's slot the way a wait does
 * (lock, check, unlock: timeout 0) before the timed loop, so that the
 * loop measures waking and not first use. */
static void
prefault(struct run *r, const pxs_key *keys, const uint8_t *sched,
	 size_t n, size_t stride, int want)
{
	for (size_t i = 0; i < n; i++) {
		pxs_view v;
		int rc;

		if (sched[i] != want && !(want == M_PXS && is_pxs(sched[i])))
			continue;
		rc = pxs_future_wait(r->s, keys[i * stride], 0, &v);
		if (rc == 0)
			pxs_release(r->s, &v);
		else if (rc != -ETIMEDOUT)
			bench_die("prefault: %s", pxs_strerror(rc));
	}
}

/* The values set during a run are carved from the heap where r->warm
 * lies now: read it once (mapping those pages into this process) before
 * the parent evicts it and the run reuses the space. */
static void
warm_heap(struct run *r)
{
	const volatile unsigned char *p;
	pxs_view v;
	int rc = pxs_get(r->s, r->warm, &v);

	if (rc < 0)
		bench_die("warm_heap: %s", pxs_strerror(rc));
	p = v.data;
	for (size_t i = 0; i < v.size; i += 4096)
		(void)p[i];
	pxs_release(r->s, &v);
}

/* Before forking: put the warm-up object. After every child has read it:
 * evict it, so the run's values land on pages the children have mapped. */
static void
warm_put(struct run *r)
{
	static unsigned char zero[1 << 20];
	int rc = pxs_put(r->s, zero, sizeof(zero), &r->warm);

	if (rc < 0)
		bench_die("warm_put: %s", pxs_strerror(rc));
}

/* ---- case 1: wake latency ------------------------------------------- */

static int
wake_consumer(void *arg)
{
	struct run *r = arg;
	struct ctl *c = r->ctl;
	void *redis = NULL;

	if (r->ccpu >= 0)
		bench_pin(0, r->ccpu);
#ifdef PXS_BENCH_HIREDIS
	if (r->o->redis_port)
		redis = bench_redis(r->o);
#endif
	prefault(r, r->keys, r->sched, r->n, 1, M_PXS);
	warm_heap(r);
	for (size_t i = 0; i < r->n; i++) {
		int m = r->sched[i];
		uint64_t t0 = 0, t1;

		__atomic_store_n(&c->ready, (uint32_t)i + 1, __ATOMIC_RELEASE);
		switch (m) {
		case M_PXS:
		case M_PXS_SPIN:
			pxs_wait_value(r, r->keys[i], is_spin(m), &t0);
			t1 = bench_now_ns();
			break;
		case M_PXS_ANY:
			pxs_wait_any_value(r, r->keys[i], &t0);
			t1 = bench_now_ns();
			break;
		case M_FUTEX:
		case M_FUTEX_SPIN:
			futex_until(&c->word, (uint32_t)i + 1, is_spin(m));
			t1 = bench_now_ns();
			t0 = __atomic_load_n(&c->t0, __ATOMIC_RELAXED);
			break;
		case M_PIPE:
			read_full(r->fd_p2c[0], &t0, sizeof(t0));
			t1 = bench_now_ns();
			break;
		default: {
#ifdef PXS_BENCH_HIREDIS
			redisReply *rep = redisCommand(redis, "BLPOP %s 20",
						       r->list);

			t1 = bench_now_ns();
			if (!rep || rep->type != REDIS_REPLY_ARRAY ||
			    rep->elements != 2 ||
			    rep->element[1]->len != sizeof(t0))
				bench_die("BLPOP: bad reply");
			memcpy(&t0, rep->element[1]->str, sizeof(t0));
			freeReplyObject(rep);
#else
			t1 = 0;
#endif
			break;
		}
		}
		r->lat[i] = (double)(t1 - t0);
		bench_post(&c->ack, (uint32_t)i + 1);
	}
#ifdef PXS_BENCH_HIREDIS
	if (redis)
		redisFree(redis);
#endif
	(void)redis;
	return 0;
}

static void
wake_producer(struct run *r, pid_t consumer)
{
	struct ctl *c = r->ctl;
	void *redis = NULL;

#ifdef PXS_BENCH_HIREDIS
	if (r->o->redis_port)
		redis = bench_redis(r->o);
#endif
	for (size_t i = 0; i < r->n; i++) {
		int m = r->sched[i];
		uint64_t t0;

		poll_ge(&c->ready, (uint32_t)i + 1, is_spin(m));
		if (i == 0)
			pxs_evict(r->s, r->warm);
		if (is_spin(m)) {
			bench_spin_ns(SPIN_DELAY_NS);
		} else {
			if (bench_wait_asleep(consumer, TIMEOUT_MS) < 0)
				bench_die("consumer never fell asleep");
			if (m == M_REDIS && r->o->redis_pid &&
			    bench_wait_asleep(r->o->redis_pid, TIMEOUT_MS) < 0)
				bench_die("redis-server never fell asleep");
			bench_sleep_us(r->o->settle_us);
		}
		t0 = bench_now_ns();
		switch (m) {
		case M_PXS:
		case M_PXS_SPIN:
		case M_PXS_ANY:
			pxs_set_value(r, r->keys[i], t0);
			break;
		case M_FUTEX:
		case M_FUTEX_SPIN:
			__atomic_store_n(&c->t0, t0, __ATOMIC_RELAXED);
			__atomic_store_n(&c->word, (uint32_t)i + 1,
					 __ATOMIC_RELEASE);
			bench_futex_wake(&c->word, 1);
			break;
		case M_PIPE:
			write_full(r->fd_p2c[1], &t0, sizeof(t0));
			break;
		default: {
#ifdef PXS_BENCH_HIREDIS
			redisReply *rep = redisCommand(redis, "RPUSH %s %b",
						       r->list, &t0,
						       sizeof(t0));

			if (!rep || rep->type != REDIS_REPLY_INTEGER)
				bench_die("RPUSH: bad reply");
			freeReplyObject(rep);
#endif
			break;
		}
		}
		if (bench_wait_ge(&c->ack, (uint32_t)i + 1, TIMEOUT_MS) < 0)
			bench_die("consumer did not acknowledge");
	}
#ifdef PXS_BENCH_HIREDIS
	if (redis)
		redisFree(redis);
#endif
	(void)redis;
}

/* Pin the producer (this process), the consumer and Redis for @p p. */
static void
placement_cpus(int p, int *pcpu, int *ccpu)
{
	*pcpu = p == P_FREE ? -1 : bench_cpu(0);
	*ccpu = p == P_FREE ? -1 : p == P_SAME ? bench_cpu(0) : bench_cpu(1);
}

static void
pin_redis(const struct bench_opts *o, int cpu)
{
	if (o->redis_port && o->redis_pid)
		bench_pin(o->redis_pid, cpu);
}

/* Report the samples of @p r after the warm-up, one line per mechanism.
 * @p prefix starts the line (case=... placement=...). */
static void
report(const struct run *r, const int *mechs, int k, size_t warm,
       const char *prefix, const char *unit_note)
{
	double *v = malloc(r->n * sizeof(*v));
	const char *raw = getenv("PXS_BENCH_RAW");
	FILE *f = raw ? fopen(raw, "a") : NULL;

	if (!v)
		bench_die("out of memory");
	/* PXS_BENCH_RAW=file: append every sample, for distributions. */
	for (size_t i = warm; f && i < r->n; i++)
		fprintf(f, "%s mech=%s i=%zu us=%.3f\n", prefix,
			mech_name[r->sched[i]], i, r->lat[i] / 1e3);
	if (f)
		fclose(f);
	for (int j = 0; j < k; j++) {
		struct bench_stats st;
		size_t n = 0;

		for (size_t i = warm; i < r->n; i++)
			if (r->sched[i] == mechs[j])
				v[n++] = r->lat[i] / 1e3;
		bench_stats(v, n, &st);
		bench_emit("%s mech=%s n=%zu p50_us=%.3f p99_us=%.3f "
			   "mean_us=%.3f min_us=%.3f%s",
			   prefix, mech_name[mechs[j]], st.n, st.p50, st.p99,
			   st.mean, st.min, unit_note);
	}
	free(v);
}

static void
setup_run(struct run *r, const struct bench_opts *o, pxs_store *s,
	  size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->s = s;
	r->ctl = bench_shared(sizeof(*r->ctl));
	r->sched = bench_shared(cap);
	r->keys = bench_shared(2 * cap * sizeof(*r->keys));
	r->lat = bench_shared(cap * sizeof(*r->lat));
	if (pipe(r->fd_p2c) < 0 || pipe(r->fd_c2p) < 0)
		bench_die("pipe: %s", strerror(errno));
	snprintf(r->list, sizeof(r->list), "pxs-bench-%ld", (long)getpid());
}

static void
free_run(struct run *r, size_t cap)
{
	bench_unshare(r->ctl, sizeof(*r->ctl));
	bench_unshare(r->sched, cap);
	bench_unshare(r->keys, 2 * cap * sizeof(*r->keys));
	bench_unshare(r->lat, cap * sizeof(*r->lat));
	close(r->fd_p2c[0]);
	close(r->fd_p2c[1]);
	close(r->fd_c2p[0]);
	close(r->fd_c2p[1]);
}

/* Evict every key of @p keys[0..n) that exists (best effort). */
static void
evict_all(pxs_store *s, const pxs_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pxs_evict(s, keys[i]);
}

static void
case_wake(const struct bench_opts *o, pxs_store *s, int place)
{
	size_t per = bench_iters(o, 1500, 16, 4);
	size_t block = o->quick ? 8 : 100;
	int mechs[M_N], k = 0;
	struct run r;
	size_t cap, n;
	pid_t pid;
	char prefix[96];

	mechs[k++] = M_PXS;
	mechs[k++] = M_FUTEX;
	mechs[k++] = M_PIPE;
#ifdef PXS_BENCH_HIREDIS
	if (o->redis_port)
		mechs[k++] = M_REDIS;
#endif
	if (place != P_SAME) { /* a spinner on the setter's CPU only hurts */
		mechs[k++] = M_PXS_SPIN;
		mechs[k++] = M_FUTEX_SPIN;
	}
	mechs[k++] = M_PXS_ANY;
	cap = ((per + block - 1) / block + 1) * (size_t)k * block;
	setup_run(&r, o, s, cap);
	n = make_sched(r.sched, mechs, k, per, block);
	r.n = n;
	placement_cpus(place, &r.pcpu, &r.ccpu);
	for (size_t i = 0; i + 1 < ANY_N; i++) {
		int rc;

		r.any[i] = key_of("any", i);
		if ((rc = pxs_future_new_at(s, r.any[i])) < 0)
			bench_die("pxs_future_new_at: %s", pxs_strerror(rc));
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (!is_pxs(r.sched[i]))
			continue;
		r.keys[i] = key_of("wake", i);
		if ((rc = pxs_future_new_at(s, r.keys[i])) < 0)
			bench_die("pxs_future_new_at: %s", pxs_strerror(rc));
	}
	bench_pin(0, r.pcpu);
	pin_redis(o, r.pcpu);
	warm_put(&r);
	pid = bench_spawn(wake_consumer, &r);
	wake_producer(&r, pid);
	if (bench_reap(pid, 30) != 0)
		bench_die("wake consumer failed");
	bench_pin(0, -1);
	pin_redis(o, -1);
	snprintf(prefix, sizeof(prefix), "case=wake placement=%s",
		 place_name[place]);
	report(&r, mechs, k, (size_t)k * block, prefix, "");
	for (size_t i = 0; i < n; i++)
		if (is_pxs(r.sched[i]))
			pxs_evict(s, r.keys[i]);
	evict_all(s, r.any, ANY_N - 1);
	free_run(&r, cap);
}

/* ---- case 2: ping-pong ---------------------------------------------- */

static int
pong(void *arg)
{
	struct run *r = arg;
	struct ctl *c = r->ctl;
	char b = 0;

	if (r->ccpu >= 0)
		bench_pin(0, r->ccpu);
	/* The futures this side sets are its own (odd keys). */
	for (size_t i = 0; i < r->n; i++) {
		int rc;

		if (r->sched[i] == M_PXS &&
		    (rc = pxs_future_new_at(r->s, r->keys[2 * i + 1])) < 0)
			bench_die("pxs_future_new_at: %s", pxs_strerror(rc));
	}
	prefault(r, r->keys, r->sched, r->n, 2, M_PXS);
	warm_heap(r);
	bench_post(&c->ready, 1);
	for (size_t i = 0; i < r->n; i++) {
		switch (r->sched[i]) {
		case M_PXS:
			pxs_wait_value(r, r->keys[2 * i], 0, NULL);
			pxs_set_value(r, r->keys[2 * i + 1], i);
			break;
		case M_FUTEX:
			futex_until(&c->word, 2 * (uint32_t)i + 1, 0);
			__atomic_store_n(&c->word, 2 * (uint32_t)i + 2,
					 __ATOMIC_RELEASE);
			bench_futex_wake(&c->word, 1);
			break;
		default:
			read_full(r->fd_p2c[0], &b, 1);
			write_full(r->fd_c2p[1], &b, 1);
			break;
		}
	}
	return 0;
}

static void
case_pingpong(const struct bench_opts *o, pxs_store *s, int place)
{
	size_t per = bench_iters(o, 5000, 32, 4);
	size_t block = o->quick ? 8 : 250;
	int mechs[] = {M_PXS, M_FUTEX, M_PIPE}, k = 3;
	struct run r;
	size_t cap, n;
	pid_t pid;
	char prefix[96], b = 0;

	cap = ((per + block - 1) / block + 1) * (size_t)k * block;
	setup_run(&r, o, s, cap);
	n = make_sched(r.sched, mechs, k, per, block);
	r.n = n;
	placement_cpus(place, &r.pcpu, &r.ccpu);
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (r.sched[i] != M_PXS)
			continue;
		r.keys[2 * i] = key_of("ping", 2 * i);
		r.keys[2 * i + 1] = key_of("ping", 2 * i + 1);
		if ((rc = pxs_future_new_at(s, r.keys[2 * i])) < 0)
			bench_die("pxs_future_new_at: %s", pxs_strerror(rc));
	}
	bench_pin(0, r.pcpu);
	warm_put(&r);
	pid = bench_spawn(pong, &r);
	if (bench_wait_ge(&r.ctl->ready, 1, TIMEOUT_MS) < 0)
		bench_die("pong did not start");
	pxs_evict(s, r.warm);
	prefault(&r, r.keys + 1, r.sched, n, 2, M_PXS);
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();

		switch (r.sched[i]) {
		case M_PXS:
			pxs_set_value(&r, r.keys[2 * i], i);
			pxs_wait_value(&r, r.keys[2 * i + 1], 0, NULL);
			break;
		case M_FUTEX:
			__atomic_store_n(&r.ctl->word, 2 * (uint32_t)i + 1,
					 __ATOMIC_RELEASE);
			bench_futex_wake(&r.ctl->word, 1);
			futex_until(&r.ctl->word, 2 * (uint32_t)i + 2, 0);
			break;
		default:
			write_full(r.fd_p2c[1], &b, 1);
			read_full(r.fd_c2p[0], &b, 1);
			break;
		}
		r.lat[i] = (double)(bench_now_ns() - t0);
	}
	if (bench_reap(pid, 30) != 0)
		bench_die("pong failed");
	bench_pin(0, -1);
	snprintf(prefix, sizeof(prefix), "case=pingpong placement=%s",
		 place_name[place]);
	report(&r, mechs, k, (size_t)k * block, prefix, " unit=round-trip");
	for (size_t i = 0; i < n; i++)
		if (r.sched[i] == M_PXS)
			evict_all(s, &r.keys[2 * i], 2);
	free_run(&r, cap);
}

/* ---- case 3: fan-out ------------------------------------------------ */

static int
fan_waiter(void *arg)
{
	struct run *r = arg;
	struct ctl *c = r->ctl;
	uint32_t w = r->nwaiters;
	int j = r->waiter;

	prefault(r, r->keys, r->sched, r->n, 1, M_PXS);
	warm_heap(r);
	for (size_t i = 0; i < r->n; i++) {
		__atomic_store_n(&c->rdy[j], (uint32_t)i + 1, __ATOMIC_RELEASE);
		if (r->sched[i] == M_PXS)
			pxs_wait_value(r, r->keys[i], 0, NULL);
		else
			futex_until(&c->word, (uint32_t)i + 1, 0);
		c->t1[j] = bench_now_ns();
		if (__atomic_add_fetch(&c->done, 1, __ATOMIC_ACQ_REL) ==
		    ((uint32_t)i + 1) * w)
			bench_futex_wake(&c->done, 1);
	}
	return 0;
}

static void
case_fanout(const struct bench_opts *o, pxs_store *s, uint32_t w)
{
	size_t per = bench_iters(o, w >= 64 ? 150 : 300, 4, 2);
	size_t block = o->quick ? 2 : 25;
	int mechs[] = {M_PXS, M_FUTEX}, k = 2;
	struct run r;
	size_t cap, n;
	pid_t pids[64];
	double *first;
	char prefix[96];

	cap = ((per + block - 1) / block + 1) * (size_t)k * block;
	setup_run(&r, o, s, cap);
	n = make_sched(r.sched, mechs, k, per, block);
	r.n = n;
	r.nwaiters = w;
	if (!(first = calloc(n, sizeof(*first))))
		bench_die("out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (r.sched[i] != M_PXS)
			continue;
		r.keys[i] = key_of("fan", i);
		if ((rc = pxs_future_new_at(s, r.keys[i])) < 0)
			bench_die("pxs_future_new_at: %s", pxs_strerror(rc));
	}
	warm_put(&r);
	for (uint32_t j = 0; j < w; j++) {
		r.waiter = (int)j;
		pids[j] = bench_spawn(fan_waiter, &r);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t t0, lo = UINT64_MAX, hi = 0;

		for (uint32_t j = 0; j < w; j++) {
			poll_ge(&r.ctl->rdy[j], (uint32_t)i + 1, 0);
			if (i == 0 && j == w - 1)
				pxs_evict(s, r.warm);
			if (bench_wait_asleep(pids[j], TIMEOUT_MS) < 0)
				bench_die("waiter %u never fell asleep", j);
		}
		bench_sleep_us(o->settle_us);
		t0 = bench_now_ns();
		if (r.sched[i] == M_PXS) {
			pxs_set_value(&r, r.keys[i], t0);
		} else {
			__atomic_store_n(&r.ctl->word, (uint32_t)i + 1,
					 __ATOMIC_RELEASE);
			bench_futex_wake(&r.ctl->word, INT_MAX);
		}
		if (bench_wait_ge(&r.ctl->done, ((uint32_t)i + 1) * w,
				  TIMEOUT_MS) < 0)
			bench_die("fan-out waiters did not return");
		for (uint32_t j = 0; j < w; j++) {
			uint64_t t = r.ctl->t1[j];

			lo = t < lo ? t : lo;
			hi = t > hi ? t : hi;
		}
		r.lat[i] = (double)(hi - t0);
		first[i] = (double)(lo - t0);
	}
	for (uint32_t j = 0; j < w; j++)
		if (bench_reap(pids[j], 30) != 0)
			bench_die("fan-out waiter failed");
	snprintf(prefix, sizeof(prefix),
		 "case=fanout placement=unpinned waiters=%u", w);
	report(&r, mechs, k, (size_t)k * block, prefix, " unit=last-waiter");
	memcpy(r.lat, first, n * sizeof(*first));
	snprintf(prefix, sizeof(prefix),
		 "case=fanout-first placement=unpinned waiters=%u", w);
	report(&r, mechs, k, (size_t)k * block, prefix, " unit=first-waiter");
	free(first);
	for (size_t i = 0; i < n; i++)
		if (r.sched[i] == M_PXS)
			pxs_evict(s, r.keys[i]);
	free_run(&r, cap);
}

int
main(int argc, char **argv)
{
	struct bench_opts o;
	char name[80];
	pxs_store *s;
	int nplace;

	bench_parse(argc, argv, "future_latency", &o);
	s = bench_store(name, "lat", (size_t)64 << 20, 1u << 16);
	/* Children inherit the handle through fork(); the name can go now,
	 * so that nothing is left behind even if we are killed. */
	pxs_unlink(name);
	nplace = bench_ncpus() >= 2 ? P_N : 1;
	if (nplace == 1)
		bench_skip("diff-cpu", "fewer than 2 CPUs allowed");
#ifdef PXS_BENCH_HIREDIS
	if (!o.redis_port)
		bench_skip("redis", "no --redis-port (bench/run starts one)");
#else
	bench_skip("redis", "built without hiredis (libhiredis-dev)");
	o.redis_port = 0;
#endif
	for (int p = 0; p < P_N; p++) {
		if (p == P_DIFF && nplace == 1)
			continue;
		if (bench_want(&o, "wake"))
			case_wake(&o, s, p);
	}
	for (int p = 0; p < P_N; p++) {
		if (p == P_DIFF && nplace == 1)
			continue;
		if (bench_want(&o, "pingpong"))
			case_pingpong(&o, s, p);
	}
	if (bench_want(&o, "fanout")) {
		static const uint32_t full[] = {1, 8, 64}, quick[] = {1, 4};
		const uint32_t *ws = o.quick ? quick : full;
		size_t nw = o.quick ? 2 : 3;

		for (size_t i = 0; i < nw; i++)
			case_fanout(&o, s, ws[i]);
	}
	pxs_close(s);
	return 0;
}
