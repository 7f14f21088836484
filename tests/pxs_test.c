/* pxs_test.c - the helpers declared in pxs_test.h. */
#include "pxs_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define PAYLOAD_MAGIC 0x5041594c4f414431ull /* "PAYLOAD1" */

double
pxs_test_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void
pxs_test_name(char *buf, size_t len)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* pid and counter are unique among live processes; the clock part
	 * avoids segments left behind by a dead process with a reused pid. */
	snprintf(buf, len, "/pxs-test-%ld-%u-%lx", (long)getpid(),
		 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED),
		 (unsigned long)(ts.tv_sec * 1000000000L + ts.tv_nsec) & 0xffffffffUL);
}

pxs_store *
pxs_test_store(char name[64], size_t size, uint32_t capacity)
{
	pxs_test_name(name, 64);
	pxs_options o = {.size = size,
			 .capacity = capacity,
			 .flags = PXS_CREATE | PXS_EXCL};
	pxs_store *s = NULL;
	int rc = pxs_open(name, &o, &s);
	ck_assert_msg(rc == 0, "pxs_open(%s): %s", name, pxs_strerror(rc));
	return s;
}

void
pxs_test_done(pxs_store *s, const char *name)
{
	pxs_close(s);
	pxs_unlink(name);
}

pxs_stats
pxs_test_stat(pxs_store *s)
{
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	return st;
}

pid_t
pxs_test_spawn(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0)
		_exit(fn(arg));
	ck_assert_int_gt(p, 0);
	return p;
}

int
pxs_test_reap(pid_t pid, int timeout_s)
{
	double end = pxs_test_ms() + timeout_s * 1e3;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (pxs_test_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(1000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int
in_futex(pid_t tid)
{
	char path[96], buf[128];
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/syscall", (long)tid,
		 (long)tid);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(path, sizeof path, "/proc/%ld/syscall", (long)tid);
		if (!(f = fopen(path, "r")))
			return 0;
	}
	long n = -1;
	if (fgets(buf, sizeof buf, f))
		n = strtol(buf, NULL, 10);
	fclose(f);
#ifdef SYS_futex_waitv
	if (n == SYS_futex_waitv)
		return 1;
#endif
	return n == SYS_futex;
}

int
pxs_test_wait_blocked(pid_t tid, int timeout_ms)
{
	double end = pxs_test_ms() + timeout_ms;
	while (pxs_test_ms() < end) {
		if (in_futex(tid))
			return 0;
		usleep(500);
	}
	return -1;
}

void
pxs_test_fill(void *buf, size_t len, pxs_key k, uint64_t seed)
{
	unsigned char *b = buf, *d = b + PXS_TEST_HDR;
	size_t n = len - PXS_TEST_HDR;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		d[i] = (unsigned char)x;
	}
	uint64_t h[5] = {PAYLOAD_MAGIC, k.hi, k.lo, n, XXH3_64bits(d, n)};
	memcpy(b, h, sizeof h);
}

int
pxs_test_verify(const void *buf, size_t len, pxs_key k)
{
	uint64_t h[5];
	if (len < PXS_TEST_HDR)
		return -1;
	memcpy(h, buf, sizeof h);
	const unsigned char *d = (const unsigned char *)buf + PXS_TEST_HDR;
	size_t n = len - PXS_TEST_HDR;
	return h[0] == PAYLOAD_MAGIC && h[1] == k.hi && h[2] == k.lo &&
			       h[3] == n && h[4] == XXH3_64bits(d, n)
		       ? 0
		       : -1;
}

int
pxs_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
