/* test_soak.c - long random runs with processes killed all the time.
 *
 * H1: N worker processes x T threads do a random mix of every operation on
 * a shared store while a supervisor SIGKILLs a random worker every 2-5 s
 * and starts a new one, and a fresh checker process runs pxs_check every
 * 5 s. Every view read is verified (XXH3 of the payload, key embedded).
 * Workers keep ledgers of what they committed; at the end every worker is
 * killed at once (A10, everyone dies), a fresh process recovers the store,
 * and every key the ledgers say is committed must still be there and
 * verify. Then a second, shorter phase runs on the recovered store.
 * H3: a chain of 50 stages, each waiting for the previous one's future and
 * setting its own, with stages killed at random: every stage ends with a
 * value or -EOWNERDEAD, consistently with its upstream, and none hangs.
 *
 * PXS_SOAK_SECONDS (default 20), PXS_SOAK_PROCS (4), PXS_SOAK_THREADS (2).
 */
#include "internal.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define KEYS 256      /* keys per worker thread */
#define MAX_PROCS 16
#define MAX_THREADS 4

static char seg[64];
static char ledger_dir[128];
static int nprocs, nthreads;

/* Counters shared by every worker (an anonymous shared mapping). */
struct totals {
	uint64_t ops, bytes_verified, owner_dead, kills;
	int failure;       /* first worker failure code */
	char why[128];
};
static struct totals *tot;

static long
env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v ? strtol(v, NULL, 10) : dflt;
}

static pxs_key
obj_key(int w, int t, int i)
{
	int id[4] = {'o', w, t, i};
	return pxs_key_from_name(id, sizeof id);
}

static pxs_key
fut_key(int w, int t, int i)
{
	int id[4] = {'f', w, t, i};
	return pxs_key_from_name(id, sizeof id);
}

static uint64_t
rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Log-uniform size in [PXS_TEST_HDR, 256 KiB]. */
static size_t
rnd_size(uint64_t *x)
{
	int bits = 6 + (int)(rnd(x) % 13);
	size_t n = (size_t)(rnd(x) % ((uint64_t)1 << bits));
	return PXS_TEST_HDR + n;
}

/* Record the first failure (what, key, error) and leave. */
static void
soak_fail(const char *what, pxs_key k, int rc)
{
	if (__atomic_exchange_n(&tot->failure, 1, __ATOMIC_ACQ_REL) == 0)
		snprintf(tot->why, sizeof tot->why, "%s %016llx: %s", what,
			 (unsigned long long)k.lo, pxs_strerror(rc));
	_exit(99);
}

/* Ledger: one O_APPEND file per worker thread incarnation. "C <key>"
 * after a commit returned, "e <key>" before an evict is attempted: a key
 * whose last record is C must be present at the end. */
struct ledger {
	int fd;
};

static void
ledger_add(struct ledger *l, char what, pxs_key k)
{
	char line[64];
	int n = snprintf(line, sizeof line, "%c %016llx%016llx\n", what,
			 (unsigned long long)k.hi, (unsigned long long)k.lo);
	if (write(l->fd, line, (size_t)n) != n)
		_exit(98);
}

struct worker_thread {
	pxs_store *s;
	int w, t;
	uint64_t seed;
	struct ledger ledger;
};

static void
check_view(pxs_view *v, pxs_key k, struct worker_thread *wt)
{
	if (pxs_test_verify(v->data, v->size, k) != 0)
		soak_fail("a view does not verify: key", k, 0);
	__atomic_fetch_add(&tot->bytes_verified, v->size, __ATOMIC_RELAXED);
	if (pxs_release(wt->s, v) != 0)
		soak_fail("release of key", k, -EINVAL);
}

static void
one_op(struct worker_thread *wt, char *buf)
{
	uint64_t *x = &wt->seed;
	int i = (int)(rnd(x) % KEYS), ow = (int)(rnd(x) % nprocs),
	    ot = (int)(rnd(x) % nthreads), dice = (int)(rnd(x) % 100), rc;
	pxs_key k = obj_key(wt->w, wt->t, i), f = fut_key(ow, ot, i);
	pxs_view v;
	size_t n = rnd_size(x);
	void *p;
	if (dice < 30) { /* put / put_at */
		pxs_test_fill(buf, n, k, rnd(x));
		rc = pxs_put_at(wt->s, k, buf, n);
		if (rc == 0)
			ledger_add(&wt->ledger, 'C', k);
		else if (rc != -EEXIST && rc != -ENOSPC)
			soak_fail("put", k, rc);
	} else if (dice < 55) { /* get + release, anyone's */
		k = obj_key(ow, ot, i);
		rc = pxs_get(wt->s, k, &v);
		if (rc == 0)
			check_view(&v, k, wt);
		else if (rc != -ENOENT)
			soak_fail("get", k, rc);
	} else if (dice < 68) { /* evict, ours */
		ledger_add(&wt->ledger, 'e', k);
		rc = pxs_evict(wt->s, k);
		if (rc != 0 && rc != -ENOENT)
			soak_fail("evict", k, rc);
	} else if (dice < 76) { /* a future of ours, or evict a spent one */
		f = fut_key(wt->w, wt->t, i);
		rc = pxs_future_new_at(wt->s, f);
		if (rc == -EEXIST)
			rc = pxs_evict(wt->s, f) == 0 ? 0 : -EEXIST;
		if (rc != 0 && rc != -EEXIST && rc != -ENOSPC &&
		    rc != -ENOENT)
			soak_fail("future_new", f, rc);
	} else if (dice < 82) { /* set anyone's future */
		pxs_test_fill(buf, n, f, rnd(x));
		rc = pxs_future_set(wt->s, f, buf, n);
		if (rc != 0 && rc != -ENOENT && rc != -EALREADY &&
		    rc != -EBUSY && rc != -EOWNERDEAD && rc != -ENOSPC)
			soak_fail("set", f, rc);
	} else if (dice < 88) { /* reserve + commit: ownership moves to us */
		rc = pxs_future_reserve(wt->s, f, n, &p);
		if (rc == 0) {
			pxs_test_fill(p, n, f, rnd(x));
			rc = pxs_future_commit(wt->s, f);
			if (rc != 0 && rc != -ENOENT)
				soak_fail("commit", f, rc);
		} else if (rc != -ENOENT && rc != -EALREADY && rc != -EBUSY &&
			   rc != -EOWNERDEAD && rc != -ENOSPC) {
			soak_fail("reserve", f, rc);
		}
	} else if (dice < 97) { /* wait, 0-200 ms */
		rc = pxs_future_wait(wt->s, f, (long)(rnd(x) % 200), &v);
		if (rc == 0)
			check_view(&v, f, wt);
		else if (rc == -EOWNERDEAD)
			__atomic_fetch_add(&tot->owner_dead, 1,
					   __ATOMIC_RELAXED);
		else if (rc != -ENOENT && rc != -ETIMEDOUT &&
			 rc != -ECANCELED)
			soak_fail("wait", f, rc);
	} else { /* exists / done */
		rc = pxs_exists(wt->s, obj_key(ow, ot, i));
		if (rc < 0)
			soak_fail("exists", k, rc);
		rc = pxs_future_done(wt->s, f);
		if (rc < 0 && rc != -ENOENT && rc != -EOWNERDEAD)
			soak_fail("done", f, rc);
	}
	__atomic_fetch_add(&tot->ops, 1, __ATOMIC_RELAXED);
}

static void *
worker_thread(void *arg)
{
	struct worker_thread *wt = arg;
	char *buf = malloc(300 << 10);
	for (;;)
		one_op(wt, buf);
	return NULL;
}

struct worker_arg {
	int w, incarnation;
};

static int
worker(void *arg)
{
	struct worker_arg *a = arg;
	pxs_store *s;
	int rc = pxs_open(seg, NULL, &s);
	if (rc < 0) {
		fprintf(stderr, "worker %d: open: %s\n", a->w, pxs_strerror(rc));
		return 97;
	}
	struct worker_thread wt[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	for (int t = 0; t < nthreads; t++) {
		char path[256];
		snprintf(path, sizeof path, "%s/w%d-t%d-i%05d", ledger_dir, a->w,
			 t, a->incarnation);
		wt[t] = (struct worker_thread){
			.s = s, .w = a->w, .t = t,
			.seed = (uint64_t)getpid() * 7919 + (uint64_t)t + 1,
			.ledger = {open(path, O_WRONLY | O_CREAT | O_APPEND |
						      O_CLOEXEC, 0600)}};
		if (wt[t].ledger.fd < 0)
			return 96;
		pthread_create(&th[t], NULL, worker_thread, &wt[t]);
	}
	pause(); /* until killed */
	return 0;
}

/* A fresh process attaches and checks the whole segment. */
static int
checker(void *arg)
{
	pxs_store *s;
	pxs_check_report r;
	if (pxs_open(seg, NULL, &s))
		return 2;
	int rc = pxs_check(s, &r);
	if (rc) {
		fprintf(stderr, "checker: %s (%u errors): %s\n", pxs_strerror(rc),
			r.errors, r.first_error);
		return 1;
	}
	pxs_close(s);
	return 0;
}

/* Run one phase; returns the number of kills. */
static int
phase(double seconds, int *incarnation)
{
	pid_t pids[MAX_PROCS];
	struct worker_arg args[MAX_PROCS];
	for (int w = 0; w < nprocs; w++) {
		args[w] = (struct worker_arg){w, (*incarnation)++};
		pids[w] = pxs_test_spawn(worker, &args[w]);
	}
	uint64_t x = (uint64_t)getpid() | 1;
	double end = pxs_test_ms() + seconds * 1e3, next_kill, next_check;
	next_kill = pxs_test_ms() + 2000 + (double)(rnd(&x) % 3000);
	next_check = pxs_test_ms() + 5000;
	int kills = 0;
	while (pxs_test_ms() < end) {
		usleep(50 * 1000);
		for (int w = 0; w < nprocs; w++) { /* a worker failed? */
			int st;
			if (waitpid(pids[w], &st, WNOHANG) == pids[w])
				ck_abort_msg("worker %d exited (%d): %s", w,
					     WIFEXITED(st) ? WEXITSTATUS(st)
							   : -WTERMSIG(st),
					     tot->why);
		}
		if (pxs_test_ms() >= next_kill) {
			int w = (int)(rnd(&x) % (uint64_t)nprocs);
			kill(pids[w], SIGKILL);
			ck_assert_int_eq(pxs_test_reap(pids[w], 10),
					 128 + SIGKILL);
			args[w].incarnation = (*incarnation)++;
			pids[w] = pxs_test_spawn(worker, &args[w]);
			kills++;
			next_kill = pxs_test_ms() + 2000 +
				    (double)(rnd(&x) % 3000);
		}
		if (pxs_test_ms() >= next_check) {
			ck_assert_int_eq(
				pxs_test_reap(pxs_test_spawn(checker, NULL), 60),
				0);
			next_check = pxs_test_ms() + 5000;
		}
	}
	/* Everyone dies at once (A10). */
	for (int w = 0; w < nprocs; w++)
		kill(pids[w], SIGKILL);
	for (int w = 0; w < nprocs; w++)
		ck_assert_int_eq(pxs_test_reap(pids[w], 10), 128 + SIGKILL);
	ck_assert_int_eq(tot->failure, 0);
	return kills + nprocs;
}

/* Read every ledger (incarnations in order); check what must be there. */
static uint64_t
verify_ledgers(pxs_store *s)
{
	uint64_t checked = 0;
	for (int w = 0; w < nprocs; w++)
		for (int t = 0; t < nthreads; t++) {
			/* last record per key index, over all incarnations */
			char last[KEYS];
			memset(last, 0, sizeof last);
			for (int inc = 0; inc < 100000; inc++) {
				char path[256];
				snprintf(path, sizeof path, "%s/w%d-t%d-i%05d",
					 ledger_dir, w, t, inc);
				FILE *f = fopen(path, "r");
				if (!f)
					continue;
				char what, hex[40];
				while (fscanf(f, " %c %39s", &what, hex) == 2) {
					pxs_key k;
					ck_assert_int_eq(pxs_key_parse(hex, &k), 0);
					for (int i = 0; i < KEYS; i++)
						if (pxs_key_equal(k, obj_key(w, t, i)))
							last[i] = what;
				}
				fclose(f);
			}
			for (int i = 0; i < KEYS; i++) {
				if (last[i] != 'C')
					continue;
				pxs_view v;
				pxs_key k = obj_key(w, t, i);
				ck_assert_msg(pxs_get(s, k, &v) == 0,
					      "committed key w%d t%d #%d lost",
					      w, t, i);
				ck_assert_int_eq(pxs_test_verify(v.data, v.size, k),
						 0);
				ck_assert_int_eq(pxs_release(s, &v), 0);
				checked++;
			}
		}
	return checked;
}

static void
recover_and_check(pxs_store *s)
{
	pxs_check_report r;
	ck_assert_int_ge(pxs_reap(s), 0);
	int rc = pxs_check(s, &r);
	ck_assert_msg(rc == 0, "pxs_check: %s", r.first_error);
	ck_assert_uint_eq(r.dead_pins, 0);
	ck_assert_uint_eq(r.dead_processes, 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	ck_assert_uint_eq(r.bytes_free + r.bytes_used, r.heap_size);
	/* Every pending future's owner is dead now: all report it. */
	uint64_t cur = 0;
	pxs_entry e;
	while (pxs_list(s, &cur, &e) == 1) {
		ck_assert(e.state != PXS_STATE_RESERVED);
		if (e.state == PXS_STATE_PENDING) {
			pxs_view v;
			ck_assert_int_eq(pxs_future_wait(s, e.key, -1, &v),
					 -EOWNERDEAD);
		}
	}
}

START_TEST(h1_random_operations_with_kills)
{
	double seconds = (double)env_long("PXS_SOAK_SECONDS", 20);
	nprocs = (int)env_long("PXS_SOAK_PROCS", 4);
	nthreads = (int)env_long("PXS_SOAK_THREADS", 2);
	ck_assert(nprocs > 0 && nprocs <= MAX_PROCS);
	ck_assert(nthreads > 0 && nthreads <= MAX_THREADS);
	tot = mmap(NULL, sizeof *tot, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(ledger_dir, sizeof ledger_dir, "%s/pxs-soak-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(ledger_dir));
	pxs_store *s = pxs_test_store(seg, 64 * MiB, 8192);
	int incarnation = 0, kills = 0;
	kills += phase(seconds, &incarnation);
	recover_and_check(s);
	uint64_t checked = verify_ledgers(s);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	printf("H1 phase 1: %.0f s, %d x %d workers, %llu operations, %d kills, "
	       "%llu recoveries, %llu bytes verified, %llu abandoned futures "
	       "seen, %llu committed keys verified after recovery\n",
	       seconds, nprocs, nthreads, (unsigned long long)tot->ops, kills,
	       (unsigned long long)st.recoveries,
	       (unsigned long long)tot->bytes_verified,
	       (unsigned long long)tot->owner_dead,
	       (unsigned long long)checked);
	/* The recovered store works on: a second, shorter phase. */
	kills = phase(seconds / 4 + 1, &incarnation);
	recover_and_check(s);
	checked = verify_ledgers(s);
	printf("H1 phase 2: %d kills, %llu committed keys verified\n", kills,
	       (unsigned long long)checked);
	/* Evict everything: one allocation of 90% of the heap then fits. */
	uint64_t cur = 0;
	pxs_entry e;
	while (pxs_list(s, &cur, &e) == 1)
		ck_assert_int_eq(pxs_evict(s, e.key), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.objects + st.pending + st.abandoned, 0);
	void *big = calloc(1, (size_t)(st.heap_size * 9 / 10));
	pxs_key bk;
	ck_assert_int_eq(pxs_put(s, big, (size_t)(st.heap_size * 9 / 10), &bk), 0);
	free(big);
	pxs_test_done(s, seg);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", ledger_dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

#define STAGES 50

static pxs_key
stage_key(int i)
{
	int id[2] = {'s', i};
	return pxs_key_from_name(id, sizeof id);
}

static int stage_ready[2]; /* a pipe: each stage writes a byte once it owns its future */

/* Stage i: owns future i, waits for future i-1, then sets its own. */
static int
stage(void *arg)
{
	int i = *(int *)arg;
	pxs_store *s;
	pxs_view v;
	if (pxs_open(seg, NULL, &s) || pxs_future_claim(s, stage_key(i)) ||
	    write(stage_ready[1], "r", 1) != 1)
		return 2;
	int rc = pxs_future_wait(s, stage_key(i - 1), 60000, &v);
	if (rc == -EOWNERDEAD)
		return 3; /* our own future is abandoned when we exit */
	if (rc != 0)
		return 4;
	if (pxs_test_verify(v.data, v.size, stage_key(i - 1)))
		return 5;
	char buf[PXS_TEST_HDR + 64];
	pxs_test_fill(buf, sizeof buf, stage_key(i), (uint64_t)i);
	usleep(2000); /* a little work, so that kills land mid-chain */
	return pxs_future_set(s, stage_key(i), buf, sizeof buf) ? 6 : 0;
}

START_TEST(h3_future_chains_with_kills)
{
	for (int round = 0; round < 3; round++) {
		pxs_store *s = pxs_test_store(seg, 8 * MiB, 256);
		for (int i = -1; i < STAGES; i++)
			ck_assert_int_eq(pxs_future_new_at(s, stage_key(i)), 0);
		pid_t pids[STAGES];
		int idx[STAGES];
		ck_assert_int_eq(pipe(stage_ready), 0);
		for (int i = 0; i < STAGES; i++) {
			idx[i] = i;
			pids[i] = pxs_test_spawn(stage, &idx[i]);
		}
		/* Every stage owns its future before we start. */
		for (int i = 0; i < STAGES; i++) {
			char c;
			ck_assert_int_eq(read(stage_ready[0], &c, 1), 1);
		}
		close(stage_ready[0]);
		close(stage_ready[1]);
		char buf[PXS_TEST_HDR + 64];
		pxs_test_fill(buf, sizeof buf, stage_key(-1), 0);
		uint64_t x = (uint64_t)getpid() * 31 + (uint64_t)round + 1;
		bool killed[STAGES] = {false};
		double t0 = pxs_test_ms();
		ck_assert_int_eq(pxs_future_set(s, stage_key(-1), buf, sizeof buf),
				 0);
		for (int k = 0; k < 3; k++) {
			int i = (int)(rnd(&x) % STAGES);
			usleep((useconds_t)(rnd(&x) % 20000));
			kill(pids[i], SIGKILL);
			killed[i] = true;
		}
		int values = 0, dead = 0;
		for (int i = 0; i < STAGES; i++) {
			int rc = pxs_test_reap(pids[i], 30);
			ck_assert_msg(rc != -1, "stage %d hangs", i);
			int up = pxs_future_done(s, stage_key(i - 1));
			if (rc == 128 + SIGKILL) {
				ck_assert(killed[i]);
				continue;
			}
			/* A stage saw a value iff its upstream was set. */
			if (up == 1) {
				ck_assert_int_eq(rc, 0);
				values++;
			} else {
				ck_assert_int_eq(up, -EOWNERDEAD);
				ck_assert_int_eq(rc, 3);
				dead++;
			}
		}
		printf("H3 round %d: %d stages got values, %d saw an abandoned "
		       "upstream, all within %.0f ms\n",
		       round, values, dead, pxs_test_ms() - t0);
		pxs_test_done(s, seg);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");
	tcase_set_timeout(tc, 3600);
	tcase_add_test(tc, h1_random_operations_with_kills);
	tcase_add_test(tc, h3_future_chains_with_kills);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
