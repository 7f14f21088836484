/* demo.c - ProxyStore's foo/bar proxy-future scenario, in C, across processes.
 *
 * The client creates a store and a future, then starts two processes at
 * once: foo (the producer) claims the future, computes for a while and sets
 * it; bar (the consumer) receives only a proxy string, does the work that
 * does not need the data, and then blocks on the proxy until foo sets it.
 * Every step prints when it happened, in ms since the client started.
 *
 * Usage: pxs-demo [STORE-NAME]       (default /pxs-demo-<pid>)
 */
#include <proxyshm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct timespec t0;

static void
say(const char *who, const char *what)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	double ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
	printf("%8.3f ms  %-7s %s\n", ms, who, what);
	fflush(stdout);
}

static void
busy(int ms)
{
	struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&d, NULL);
}

/* foo(): produce the value straight into shared memory, then publish it. */
static int
foo(const char *store_name, pxs_key key)
{
	pxs_store *s;
	int rc = pxs_open(store_name, NULL, &s);
	if (rc == 0)
		rc = pxs_future_claim(
			s,
			key); /* our death now abandons it, not the client's */
	if (rc < 0) {
		fprintf(stderr, "foo: %s\n", pxs_strerror(rc));
		return 1;
	}
	say("foo", "started; computing the data (300 ms)");
	busy(300);
	char *buf;
	const char msg[] = "the data bar was waiting for";
	if ((rc = pxs_future_reserve(s, key, sizeof msg, (void **)&buf)) == 0) {
		memcpy(buf, msg, sizeof msg); /* written in place: zero copy */
		rc = pxs_future_commit(s, key);
	}
	say("foo", rc == 0 ? "set the future" : pxs_strerror(rc));
	pxs_close(s);
	return rc == 0 ? 0 : 1;
}

/* bar(): needs only the proxy string, as a process started elsewhere would. */
static int
bar(const char *proxy_string)
{
	pxs_proxy *p;
	int rc = pxs_proxy_parse(proxy_string, &p);
	if (rc < 0) {
		fprintf(stderr, "bar: %s\n", pxs_strerror(rc));
		return 1;
	}
	say("bar", "started; working on what does not need the data (100 ms)");
	busy(100);
	say("bar", "needs the data now: resolving the proxy");
	const void *data;
	size_t size;
	rc = pxs_proxy_resolve(p, 10000, &data, &size);
	if (rc == 0) {
		char line[128];
		snprintf(line, sizeof line, "got %zu bytes: \"%s\"", size,
			 (const char *)data);
		say("bar", line);
	} else {
		say("bar", pxs_strerror(rc));
	}
	pxs_proxy_free(p);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char name[64];
	if (argc > 1)
		snprintf(name, sizeof name, "%s", argv[1]);
	else
		snprintf(name, sizeof name, "/pxs-demo-%ld", (long)getpid());

	pxs_store *s;
	pxs_options o = {.size = 16 << 20, .flags = PXS_CREATE};
	int rc = pxs_open(name, &o, &s);
	if (rc < 0) {
		fprintf(stderr, "pxs-demo: open %s: %s\n", name,
			pxs_strerror(rc));
		return 1;
	}
	pxs_key key;
	pxs_proxy *p = NULL;
	char proxy_string[PXS_PROXY_STRLEN];
	if ((rc = pxs_future_new(s, &key)) < 0 ||
	    (rc = pxs_proxy_new(name, key, &p)) < 0 ||
	    (rc = pxs_proxy_format(p, proxy_string, sizeof proxy_string)) < 0) {
		fprintf(stderr, "pxs-demo: %s\n", pxs_strerror(rc));
		return 1;
	}
	pxs_proxy_free(p);
	char line[PXS_PROXY_STRLEN + 32];
	snprintf(line, sizeof line, "created future %s", proxy_string);
	say("client", line);

	fflush(stdout);
	pid_t pbar = fork();
	if (pbar == 0)
		_exit(bar(proxy_string));
	pid_t pfoo = fork();
	if (pfoo == 0)
		_exit(foo(name, key));
	say("client", "started foo and bar at the same time");

	int ok = 1, status;
	for (int i = 0; i < 2; i++) {
		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			ok = 0;
	}
	say("client", ok ? "both finished" : "a process failed");
	pxs_close(s);
	pxs_unlink(name);
	return ok ? 0 : 1;
}
