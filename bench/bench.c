/* bench.c - the harness declared in bench.h.
 *
 * Nothing here calls the library except bench_store() (pxs_open); the rest
 * is POSIX and Linux: clocks, sched_setaffinity, futexes, /proc/<pid>/stat.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 256

static const char *prog_name = "bench";
static pid_t main_pid;
static pid_t children[MAX_CHILDREN];
static int nchildren;
static cpu_set_t allowed;
static int nallowed;

/* ---- options ----------------------------------------------------------- */

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--quick] [--scale X] [--case NAME[,NAME...]]\n"
		"       [--redis-port PORT [--redis-pid PID]] [--settle-us N]\n"
		"Prints one key=value line per result on stdout.\n",
		prog);
	exit(2);
}

void
bench_parse(int argc, char **argv, const char *prog, struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->scale = 1.0;
	o->settle_us = BENCH_SETTLE_US;
	prog_name = prog;
	main_pid = getpid();
	/* Sleeps of a few microseconds must not stretch to the default 50. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	CPU_ZERO(&allowed);
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		bench_die("sched_getaffinity: %s", strerror(errno));
	nallowed = CPU_COUNT(&allowed);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quick") == 0) {
			o->quick = 1;
		} else if (strcmp(a, "--redis-port") == 0 && v) {
			o->redis_port = atoi(v);
			i++;
		} else if (strcmp(a, "--redis-pid") == 0 && v) {
			o->redis_pid = (pid_t)atoi(v);
			i++;
		} else if (strcmp(a, "--case") == 0 && v) {
			o->only = v;
			i++;
		} else if (strcmp(a, "--settle-us") == 0 && v) {
			o->settle_us = (unsigned)atoi(v);
			i++;
		} else if (strcmp(a, "--scale") == 0 && v) {
			o->scale = atof(v);
			if (!(o->scale > 0))
				usage(prog);
			i++;
		} else {
			usage(prog);
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
}

int
bench_want(const struct bench_opts *o, const char *name)
{
	size_t n = strlen(name);

	if (!o->only)
		return 1;
	for (const char *p = o->only; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

size_t
bench_iters(const struct bench_opts *o, size_t full, size_t quick, size_t min)
{
	size_t n = o->quick ? quick : (size_t)((double)full * o->scale);

	return n < min ? min : n;
}

/* ---- clocks ----------------------------------------------------------- */

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
bench_spin_ns(uint64_t ns)
{
	uint64_t end = bench_now_ns() + ns;

	while (bench_now_ns() < end)
		__asm__ __volatile__("pause");
}

void
bench_sleep_us(unsigned us)
{
	struct timespec d = {(time_t)(us / 1000000u),
			     (long)(us % 1000000u) * 1000L};

	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
}

/* ---- statistics ------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double
rank(const double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)n + 0.999999);
	k = k < 1 ? 1 : k > n ? n : k;
	return v[k - 1];
}

void
bench_stats(double *v, size_t n, struct bench_stats *st)
{
	double sum = 0;

	memset(st, 0, sizeof(*st));
	st->n = n;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	st->mean = sum / (double)n;
	st->min = v[0];
	st->max = v[n - 1];
	st->p50 = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	st->p99 = rank(v, n, 99.0);
}

/* ---- output ----------------------------------------------------------- */

void
bench_emit(const char *fmt, ...)
{
	va_list ap;

	printf("bench=%s ", prog_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void
bench_skip(const char *what, const char *why)
{
	printf("bench=%s skip=%s reason=\"%s\"\n", prog_name, what, why);
	fflush(stdout);
	fprintf(stderr, "%s: skipping %s: %s\n", prog_name, what, why);
}

void
bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (getpid() != main_pid)
		_exit(1);
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0)
			waitpid(children[i], NULL, 0);
	exit(1);
}

/* ---- stores and memory ------------------------------------------------ */

void
bench_name(char *buf, size_t len, const char *tag)
{
	static unsigned counter;

	snprintf(buf, len, "/pxs-bench-%s-%ld-%u", tag, (long)getpid(),
		 counter++);
}

pxs_store *
bench_store(char name[80], const char *tag, size_t size, uint32_t capacity)
{
	pxs_options o = {.size = size,
			 .capacity = capacity,
			 .flags = PXS_CREATE | PXS_EXCL};
	pxs_store *s = NULL;
	int rc;

	bench_name(name, 80, tag);
	rc = pxs_open(name, &o, &s);
	if (rc < 0)
		bench_die("pxs_open(%s, %zu MiB): %s", name, size >> 20,
			  pxs_strerror(rc));
	return s;
}

void *
bench_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap(%zu): %s", len, strerror(errno));
	return p;
}

void
bench_unshare(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void
bench_touch(void *p, size_t len)
{
	volatile unsigned char *c = p;
	long pg = sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < len; i += (size_t)pg)
		c[i] = 1;
}

/* ---- CPUs ------------------------------------------------------------- */

int
bench_ncpus(void)
{
	return nallowed;
}

int
bench_cpu(int i)
{
	for (int c = 0, k = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed) && k++ == i)
			return c;
	return -1;
}

static int
pin_tid(pid_t tid, const cpu_set_t *set)
{
	return sched_setaffinity(tid, sizeof(*set), set) < 0 ? -errno : 0;
}

int
bench_pin(pid_t pid, int cpu)
{
	cpu_set_t set;
	char path[64];
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (cpu < 0) {
		set = allowed;
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	if (pid == 0)
		return pin_tid(0, &set);
	/* Another process: every thread of it (redis-server has several). */
	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	if (!(d = opendir(path)))
		return -errno;
	while ((e = readdir(d))) {
		int r;

		if (e->d_name[0] == '.')
			continue;
		if ((r = pin_tid((pid_t)atol(e->d_name), &set)) < 0)
			rc = r;
	}
	closedir(d);
	return rc;
}

/* ---- futexes ---------------------------------------------------------- */

int
bench_futex_wait(uint32_t *w, uint32_t val, long timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
	long rc = syscall(SYS_futex, w, FUTEX_WAIT, val,
			  timeout_ms < 0 ? NULL : &ts, NULL, 0);

	return rc < 0 ? -errno : 0;
}

void
bench_futex_wake(uint32_t *w, int n)
{
	syscall(SYS_futex, w, FUTEX_WAKE, n, NULL, NULL, 0);
}

int
bench_wait_ge(uint32_t *w, uint32_t want, long timeout_ms)
{
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) < want) {
		uint64_t now = bench_now_ns();

		if (now >= end)
			return -1;
		bench_futex_wait(w, v, (long)((end - now) / 1000000u) + 1);
	}
	return 0;
}

void
bench_post(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	bench_futex_wake(w, INT_MAX);
}

/* ---- processes -------------------------------------------------------- */

/* The state letter of /proc/<pid>/stat: after the last ')' and a space. */
static int
proc_state(int fd)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *p;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : -1;
}

int
bench_wait_asleep(pid_t pid, long timeout_ms)
{
	char path[64];
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int fd, st, rc = -1;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while (bench_now_ns() < end) {
		if ((st = proc_state(fd)) == 'S') {
			rc = 0;
			break;
		}
		if (st < 0 || st == 'Z' || st == 'X')
			break;
		bench_sleep_us(10);
	}
	close(fd);
	return rc;
}

pid_t
bench_spawn(int (*fn)(void *), void *arg)
{
	pid_t p;

	fflush(NULL);
	p = fork();
	if (p < 0)
		bench_die("fork: %s", strerror(errno));
	if (p == 0) {
		nchildren = 0;
		_exit(fn(arg));
	}
	if (nchildren < MAX_CHILDREN)
		children[nchildren++] = p;
	return p;
}

static void
forget(pid_t pid)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i] == pid)
			children[i] = 0;
}

int
bench_reap(pid_t pid, int timeout_s)
{
	uint64_t end = bench_now_ns() + (uint64_t)timeout_s * 1000000000u;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (bench_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			forget(pid);
			return -1;
		}
		bench_sleep_us(1000);
	}
	forget(pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* ---- barrier ---------------------------------------------------------- */

void
bench_barrier_init(struct bench_barrier *b, uint32_t n)
{
	b->count = 0;
	b->round = 0;
	b->n = n;
}

int
bench_barrier_wait(struct bench_barrier *b, long timeout_ms)
{
	uint32_t round = __atomic_load_n(&b->round, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
		__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
		bench_post(&b->round, round + 1);
		return 0;
	}
	return bench_wait_ge(&b->round, round + 1, timeout_ms);
}

/* ---- Redis ------------------------------------------------------------ */

#ifdef PXS_BENCH_HIREDIS
redisContext *
bench_redis(const struct bench_opts *o)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", o->redis_port,
						   tv);

	if (!c || c->err)
		bench_die("redis 127.0.0.1:%d: %s", o->redis_port,
			  c ? c->errstr : "out of memory");
	return c;
}
#endif
