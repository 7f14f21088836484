/* bench.h - helpers shared by the benchmark programs: clocks, statistics,
 * CPU pinning, futexes, child processes, "is it asleep?", result lines.
 *
 * The programs use only the library's public header; this file holds the
 * harness around it and the raw baselines (futex, pipe). It must not reach
 * into src/. Every result is one line of key=value pairs on stdout, which
 * bench/run parses; everything else goes to stderr.
 */
#ifndef PXS_BENCH_H
#define PXS_BENCH_H

#include <proxyshm.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef PXS_BENCH_HIREDIS
#include <hiredis/hiredis.h>
#endif

#if defined(__GNUC__)
#define BENCH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define BENCH_NORETURN __attribute__((noreturn))
#else
#define BENCH_PRINTF(a, b)
#define BENCH_NORETURN
#endif

/** Default of --settle-us: how long a waiter has been asleep when it is
 *  woken. Long enough for an idle vCPU to leave the hypervisor's halt
 *  polling: with 50 us, a cross-CPU wake took either ~13 us (the host was
 *  still polling the halted vCPU) or ~65 us (it was not), in proportions
 *  that changed from run to run, so medians jumped between the two. */
#define BENCH_SETTLE_US 500u

/** Command-line options common to every benchmark program. */
struct bench_opts {
	int quick;       /**< --quick: a few iterations, small sizes (smoke) */
	int redis_port;  /**< --redis-port N: Redis on 127.0.0.1:N, 0 = none */
	pid_t redis_pid; /**< --redis-pid N: for pinning it and "asleep?" */
	const char *only; /**< --case NAME[,NAME]: run only these cases */
	double scale;    /**< --scale X: multiply iteration counts (default 1) */
	unsigned settle_us; /**< --settle-us N: asleep -> wake delay (wake) */
};

/** Parse argv into @p o; prints usage and exits 2 on a bad argument. */
void bench_parse(int argc, char **argv, const char *prog,
		 struct bench_opts *o);
/** 1 if case @p name was selected (no --case selects all). */
int bench_want(const struct bench_opts *o, const char *name);
/** Scale an iteration count by --scale and --quick (never below @p min). */
size_t bench_iters(const struct bench_opts *o, size_t full, size_t quick,
		   size_t min);

/** CLOCK_MONOTONIC in ns (the same clock in every process). */
uint64_t bench_now_ns(void);
/** Busy-wait @p ns nanoseconds. */
void bench_spin_ns(uint64_t ns);
/** Sleep about @p us microseconds (timer slack is set to 1 ns). */
void bench_sleep_us(unsigned us);

/** Median, p99 and friends of @p n samples (the array gets sorted). */
struct bench_stats {
	size_t n;
	double p50, p99, mean, min, max;
};
void bench_stats(double *v, size_t n, struct bench_stats *st);

/** Print one result line: "bench=<prog> " + the formatted rest + "\n". */
void bench_emit(const char *fmt, ...) BENCH_PRINTF(1, 2);
/** Print a "skip" line with the reason; bench/run shows it. */
void bench_skip(const char *what, const char *why);
/** Print a message to stderr and exit(1), killing registered children. */
void bench_die(const char *fmt, ...) BENCH_PRINTF(1, 2) BENCH_NORETURN;

/** A fresh segment name "/pxs-bench-<tag>-<pid>-<n>". */
void bench_name(char *buf, size_t len, const char *tag);
/** Create a store (PXS_CREATE|PXS_EXCL) or die; name written to name[80]. */
pxs_store *bench_store(char name[80], const char *tag, size_t size,
		       uint32_t capacity);

/** Zeroed MAP_SHARED|MAP_ANONYMOUS memory (inherited by children). */
void *bench_shared(size_t len);
void bench_unshare(void *p, size_t len);

/** Number of CPUs this process may run on. */
int bench_ncpus(void);
/** The @p i-th CPU of the allowed set (the allowed set at startup). */
int bench_cpu(int i);
/** Pin process @p pid (0 = self, all its threads) to @p cpu, or to every
 *  allowed CPU when @p cpu < 0. Returns 0 or -errno. */
int bench_pin(pid_t pid, int cpu);

/** Raw futex: sleep while *w == val (up to @p timeout_ms, <0 forever). */
int bench_futex_wait(uint32_t *w, uint32_t val, long timeout_ms);
/** Raw futex: wake up to @p n sleepers on @p w. */
void bench_futex_wake(uint32_t *w, int n);
/** Wait (futex) until *w >= want; 0, or -1 after timeout_ms. */
int bench_wait_ge(uint32_t *w, uint32_t want, long timeout_ms);
/** Store @p v into *w (release) and wake every sleeper. */
void bench_post(uint32_t *w, uint32_t v);

/** Poll (sleeping between polls) until process @p pid is in state S
 *  (asleep, interruptibly, in the kernel). 0, or -1 after timeout_ms. */
int bench_wait_asleep(pid_t pid, long timeout_ms);

/** Fork a child that runs fn(arg) and _exit()s with its return value. The
 *  child is remembered so bench_die() can kill it. */
pid_t bench_spawn(int (*fn)(void *), void *arg);
/** Wait for @p pid; returns its exit code (128+sig if killed), or -1 after
 *  timeout_s (it is then SIGKILLed). */
int bench_reap(pid_t pid, int timeout_s);

/** A process-shared barrier for @p n parties (lives in bench_shared()). */
struct bench_barrier {
	uint32_t count; /**< arrivals in the current round */
	uint32_t round; /**< futex word: bumped by the last arrival */
	uint32_t n;
};
void bench_barrier_init(struct bench_barrier *b, uint32_t n);
/** 0, or -1 if the others did not arrive within timeout_ms. */
int bench_barrier_wait(struct bench_barrier *b, long timeout_ms);

/** Touch every page of [p, p + len) for writing. */
void bench_touch(void *p, size_t len);

#ifdef PXS_BENCH_HIREDIS
/** Connect to the Redis of @p o, or die. */
redisContext *bench_redis(const struct bench_opts *o);
#endif

#endif
