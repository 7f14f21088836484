/* test_redis.c - the public API on a Redis store (redis://127.0.0.1:PORT/..).
 *
 * The suite starts its own redis-server on 127.0.0.1 at a free port with
 * persistence off and stops it by its pid; without redis-server (or a
 * build without hiredis) it is skipped (exit 77). hiredis is used directly
 * only to play the part of another Redis client: counting commands, and
 * writing garbage into a key of the store.
 */
#include "pxs_test.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;
static pid_t server;

static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		return -1;
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static redisContext *
raw(void)
{
	struct timeval tv = {1, 0};

	return redisConnectWithTimeout("127.0.0.1", port, tv);
}

static pid_t
start_server(void)
{
	char ps[16];
	pid_t pid;

	snprintf(ps, sizeof ps, "%d", port);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execlp("redis-server", "redis-server", "--port", ps, "--bind",
		       "127.0.0.1", "--save", "", "--appendonly", "no",
		       "--dir", "/tmp", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		redisContext *c = raw();
		int ok = c && !c->err;

		redisFree(c);
		if (ok)
			return pid;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void
stop_server(void)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = 0;
	}
}

/* Start the server again once the old one's listening socket is gone
 * (the old one need not be this process's child). */
static pid_t
restart_server(void)
{
	for (int i = 0; i < 500; i++) {
		redisContext *c = raw();
		int up = c && !c->err;

		redisFree(c);
		if (!up)
			break;
		usleep(10000);
	}
	return start_server();
}

static pxs_store *
rstore(char name[128])
{
	static unsigned n;
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL};
	pxs_store *s = NULL;
	int rc;

	snprintf(name, 128, "redis://127.0.0.1:%d/t-%ld-%u", port,
		 (long)getpid(), n++);
	rc = pxs_open(name, &o, &s);
	ck_assert_msg(rc == 0, "open %s: %s", name, pxs_strerror(rc));
	return s;
}

START_TEST(objects)
{
	char name[128];
	pxs_store *s = rstore(name), *s2 = NULL;
	pxs_key k, k2 = pxs_key_from_name("a", 1);
	pxs_view v, v2;

	ck_assert_int_eq(pxs_put(s, "hello", 5, &k), 0);
	ck_assert_int_eq(pxs_exists(s, k), 1);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_uint_eq(v.size, 5);
	ck_assert_mem_eq(v.data, "hello", 5);
	v2 = v;
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_mem_eq(v.data, "hello", 5); /* a private copy */
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v2), -EINVAL); /* stale copy */
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), -ENOENT);
	ck_assert_int_eq(pxs_evict(s, k), -ENOENT);
	ck_assert_int_eq(pxs_put_at(s, k2, "", 0), 0);
	ck_assert_int_eq(pxs_put_at(s, k2, "x", 1), -EEXIST);
	ck_assert_int_eq(pxs_get(s, k2, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	ck_assert_ptr_nonnull(v.data);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_str_eq(pxs_store_name(s), name);

	pxs_options ex = {.flags = PXS_CREATE | PXS_EXCL};
	ck_assert_int_eq(pxs_open(name, &ex, &s2), -EEXIST);
	ck_assert_int_eq(pxs_open(name, NULL, &s2), 0);
	ck_assert_int_eq(pxs_exists(s2, k2), 1);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s2, &st), 0);
	ck_assert_uint_eq(st.objects, 1);
	uint64_t cur = 0;
	pxs_entry e;
	ck_assert_int_eq(pxs_list(s2, &cur, &e), 1);
	ck_assert(pxs_key_equal(e.key, k2));
	ck_assert_int_eq(pxs_list(s2, &cur, &e), 0);
	pxs_close(s2);
	pxs_close(s);
	ck_assert_int_eq(pxs_unlink(name), 0);
	ck_assert_int_eq(pxs_unlink(name), -ENOENT);
	ck_assert_int_eq(pxs_open(name, NULL, &s2), -ENOENT);
}
END_TEST

START_TEST(future_basics)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k;
	pxs_view v;
	void *buf;

	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_done(s, k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), -EAGAIN);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait(s, k, 300, &v), -ETIMEDOUT);
	double dt = pxs_test_ms() - t0;
	ck_assert_msg(dt >= 290 && dt < 2000, "timeout after %.0f ms", dt);
	ck_assert_int_eq(pxs_future_wait(s, k, 0, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_future_reserve(s, k, 4, &buf), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "no", 2), -EBUSY);
	memcpy(buf, "abcd", 4);
	ck_assert_int_eq(pxs_future_commit(s, k), 0);
	ck_assert_int_eq(pxs_future_commit(s, k), -EALREADY);
	ck_assert_int_eq(pxs_future_done(s, k), 1);
	ck_assert_int_eq(pxs_future_wait(s, k, -1, &v), 0);
	ck_assert_mem_eq(v.data, "abcd", 4);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "x", 1), -EALREADY);
	ck_assert_int_eq(pxs_future_claim(s, k), -EALREADY);
	ck_assert_int_eq(pxs_future_new_at(s, k), -EEXIST);
	ck_assert_int_eq(pxs_future_commit(s, pxs_key_from_name("z", 1)), -ENOENT);
	/* a named future: under the name's key; the name is not kept */
	pxs_key nk;
	char nb[PXS_KEY_NAME_MAX + 1];
	ck_assert_int_eq(pxs_future_new_named(s, "step/1", &nk), 0);
	ck_assert(pxs_key_equal(nk, pxs_key_from_name("step/1", 6)));
	ck_assert_int_eq(pxs_future_done(s, nk), 0);
	ck_assert_int_eq(pxs_future_new_named(s, "step/1", &nk), -EEXIST);
	ck_assert_int_eq(pxs_future_new_named(s, "", &nk), -EINVAL);
	ck_assert_int_eq(pxs_future_new_named(s, NULL, &nk), -EINVAL);
	ck_assert_int_eq(pxs_key_name(s, nk, nb, sizeof nb), 0);
	ck_assert_int_eq(pxs_future_set(s, nk, "v", 1), 0);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

struct waitarg {
	const char *name;
	pxs_key k;
};

static int
waiter(void *p)
{
	struct waitarg *a = p;
	pxs_store *s;
	pxs_view v;
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	rc = pxs_future_wait(s, a->k, 10000, &v);
	if (rc == 0)
		rc = v.size == 3 && memcmp(v.data, "yes", 3) == 0 ? 0 : 11;
	else
		rc = rc == -ECANCELED ? 20 : rc == -EOWNERDEAD ? 21 : 12;
	pxs_close(s);
	return rc;
}

START_TEST(sixteen_waiters)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	pid_t w[16];

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	for (int i = 0; i < 16; i++)
		w[i] = pxs_test_spawn(waiter, &a);
	usleep(300000);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 10), 0);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static int
setter(void *p)
{
	struct waitarg *a = p;
	pxs_store *s;
	char me[16];
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	snprintf(me, sizeof me, "%d", getpid());
	rc = pxs_future_set(s, a->k, me, strlen(me));
	pxs_close(s);
	return rc == 0 ? 0 : rc == -EALREADY ? 1 : 2;
}

START_TEST(racing_setters)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	pid_t w[8];
	int wins = 0;

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	ck_assert_int_eq(pxs_future_disown(s, a.k), 0);
	for (int i = 0; i < 8; i++)
		w[i] = pxs_test_spawn(setter, &a);
	for (int i = 0; i < 8; i++) {
		int rc = pxs_test_reap(w[i], 10);

		ck_assert_int_le(rc, 1);
		wins += rc == 0;
	}
	ck_assert_int_eq(wins, 1);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static int
owner_then_sleep(void *p)
{
	struct waitarg *a = p;
	pxs_store *s;

	if (pxs_open(a->name, NULL, &s) < 0 || pxs_future_new_at(s, a->k) < 0)
		return 10;
	for (;;)
		pause();
}

START_TEST(dead_owner)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name, .k = pxs_key_from_name("f", 1)};
	pxs_view v;
	pid_t o = pxs_test_spawn(owner_then_sleep, &a);

	while (pxs_future_done(s, a.k) == -ENOENT)
		usleep(10000);
	pid_t w = pxs_test_spawn(waiter, &a);
	usleep(200000);
	double t0 = pxs_test_ms();
	kill(o, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(w, 10), 21);
	double dt = pxs_test_ms() - t0;
	ck_assert_msg(dt < 1000, "-EOWNERDEAD after %.0f ms", dt);
	pxs_test_reap(o, 5);
	ck_assert_int_eq(pxs_future_wait(s, a.k, 0, &v), -EOWNERDEAD);
	ck_assert_int_eq(pxs_future_set(s, a.k, "x", 1), -EOWNERDEAD);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(dead_waiter_and_evict)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	pxs_view v;

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	pid_t dead = pxs_test_spawn(waiter, &a);
	pid_t w = pxs_test_spawn(waiter, &a);
	usleep(300000);
	kill(dead, SIGKILL);
	pxs_test_reap(dead, 5);
	ck_assert_int_eq(pxs_evict(s, a.k), 0);
	ck_assert_int_eq(pxs_test_reap(w, 10), 20); /* -ECANCELED */
	ck_assert_int_eq(pxs_future_wait(s, a.k, 0, &v), -ENOENT);
	/* nothing wedged: the key is usable again */
	ck_assert_int_eq(pxs_future_new_at(s, a.k), 0);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_future_wait(s, a.k, 1000, &v), 0);
	pxs_release(s, &v);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static long long
calls(redisContext *c)
{
	redisReply *r = redisCommand(c, "INFO commandstats");
	long long total = 0;
	const char *p;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	for (p = r->str; (p = strstr(p, "calls=")) != NULL; p += 6)
		total += atoll(p + 6);
	freeReplyObject(r);
	return total;
}

/* Calls of one command since the last look (0 for all commands). */
static long long
calls_of(redisContext *c, const char *cmd)
{
	redisReply *r = redisCommand(c, "INFO commandstats");
	char want[64];
	long long n = 0;
	const char *p;

	ck_assert_ptr_nonnull(r);
	snprintf(want, sizeof want, "cmdstat_%s:calls=", cmd);
	if ((p = strstr(r->str, want)) != NULL)
		n = atoll(p + strlen(want));
	freeReplyObject(r);
	return n;
}

START_TEST(one_round_trip_per_op)
{
	char name[128];
	pxs_store *s = rstore(name);
	redisContext *c = raw();
	long long t0, e0;
	pxs_key k;
	pxs_view v;

	/* what the benchmark compares with one raw command each: put one
	 * HSET, get one HMGET, exists one HGET, a wait on a value one HMGET,
	 * evict one EVALSHA (whose HMGET and DEL run inside the server) */
	t0 = calls(c);
	ck_assert_int_eq(pxs_put(s, "x", 1, &k), 0);
	ck_assert_int_eq(calls(c) - t0 - 1, 1);
	t0 = calls(c);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(calls(c) - t0 - 1, 1);
	t0 = calls(c);
	ck_assert_int_eq(pxs_exists(s, k), 1);
	ck_assert_int_eq(calls(c) - t0 - 1, 1);
	t0 = calls(c);
	ck_assert_int_eq(pxs_future_wait(s, k, 1000, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(calls(c) - t0 - 1, 1);
	e0 = calls_of(c, "evalsha");
	t0 = calls(c);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(calls_of(c, "evalsha") - e0, 1);
	ck_assert_int_eq(calls(c) - t0 - 2, 3);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(waiter_does_not_poll)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	redisContext *c = raw();
	pxs_view v;
	long long before, after;

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	ck_assert_int_eq(pxs_future_disown(s, a.k), 0);
	pxs_store *s2;
	ck_assert_int_eq(pxs_open(name, NULL, &s2), 0);
	ck_assert_int_eq(pxs_future_claim(s2, a.k), 0); /* an owner to check */
	pid_t w = pxs_test_spawn(waiter, &a);
	usleep(500000);
	before = calls(c);
	sleep(5);
	after = calls(c);
	/* 1 for the second INFO; the rest is the waiter's: three commands
	 * per 0.5 s liveness period (block, state, owner), 6 a second; a
	 * handful means at most 7 (a period may straddle the window). */
	ck_assert_msg(after - before - 1 <= 7 * 5,
		      "%lld commands in 5 s", after - before - 1);
	ck_assert_int_eq(pxs_future_set(s2, a.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_test_reap(w, 10), 0);
	ck_assert_int_eq(pxs_future_wait(s, a.k, 0, &v), 0);
	pxs_release(s, &v);
	redisFree(c);
	pxs_close(s2);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* How many keys of the store @p name's objects are in the server. */
static long long
object_keys(redisContext *c, const char *name)
{
	redisReply *r = redisCommand(c, "KEYS pxs:%s:{*", strrchr(name, '/') + 1);
	long long n;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	n = (long long)r->elements;
	freeReplyObject(r);
	return n;
}

START_TEST(absent_keys)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name, .k = pxs_key_from_name("later", 5)};
	struct waitarg b = {.name = name, .k = pxs_key_from_name("put", 3)};
	pxs_key zero = {0, 0};
	redisContext *c = raw();
	long long before;
	pxs_view v;

	/* not there yet: a check is -ENOENT, a wait times out */
	ck_assert_int_eq(pxs_future_wait(s, a.k, 0, &v), -ENOENT);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait(s, a.k, 300, &v), -ETIMEDOUT);
	double dt = pxs_test_ms() - t0;
	ck_assert_msg(dt >= 290 && dt < 2000, "timeout after %.0f ms", dt);
	ck_assert_int_eq(pxs_future_wait(s, zero, 100, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait(s, a.k, 100, NULL), -EINVAL);
	/* consumers before their producers: a future made then set, an
	 * object put under its key */
	pid_t w1 = pxs_test_spawn(waiter, &a), w2 = pxs_test_spawn(waiter, &b);
	usleep(300000);
	ck_assert_int_eq(pxs_future_new_at(s, a.k), 0);
	usleep(100000);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_put_at(s, b.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_test_reap(w1, 10), 0);
	ck_assert_int_eq(pxs_test_reap(w2, 10), 0);
	/* evicted, the key is absent again and its old tokens wake nobody:
	 * a 1 s wait sends a few commands, it does not spin */
	ck_assert_int_eq(pxs_evict(s, b.k), 0);
	ck_assert_int_eq(pxs_evict(s, a.k), 0);
	before = calls(c);
	ck_assert_int_eq(pxs_future_wait(s, b.k, 1000, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_future_wait(s, a.k, 1000, &v), -ETIMEDOUT);
	ck_assert_int_le(calls(c) - before - 1, 16);
	/* a future made and evicted during the wait cancels it */
	w1 = pxs_test_spawn(waiter, &a);
	usleep(300000);
	ck_assert_int_eq(pxs_future_new_at(s, a.k), 0);
	usleep(300000);
	ck_assert_int_eq(pxs_evict(s, a.k), 0);
	ck_assert_int_eq(pxs_test_reap(w1, 10), 20);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static int
open_waiting(void *p)
{
	pxs_options o = {.wait_ms = 5000};
	pxs_store *s;
	int rc = pxs_open(p, &o, &s);

	if (rc == 0)
		pxs_close(s);
	return rc == 0 ? 0 : 1;
}

START_TEST(wait_for_store)
{
	char name[128];
	pxs_options o = {.wait_ms = 200}, c = {.flags = PXS_CREATE};
	pxs_store *s = NULL;

	snprintf(name, sizeof name, "redis://127.0.0.1:%d/later-%ld", port,
		 (long)getpid());
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_open(name, &o, &s), -ENOENT);
	ck_assert_double_ge(pxs_test_ms() - t0, 190);
	ck_assert_ptr_null(s);
	pid_t w = pxs_test_spawn(open_waiting, name);
	usleep(300000);
	ck_assert_int_eq(pxs_open(name, &c, &s), 0);
	ck_assert_int_eq(pxs_test_reap(w, 10), 0);
	pxs_close(s);
	ck_assert_int_eq(pxs_unlink(name), 0);
}
END_TEST

START_TEST(expiry)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	redisContext *c = raw();
	pxs_key k, zero = {0, 0};
	uint64_t cur = 0;
	pxs_entry e;
	pxs_view v;

	ck_assert_int_eq(pxs_put(s, "obj", 3, &k), 0);
	ck_assert_int_eq(pxs_expire(s, zero, 10), -EINVAL);
	ck_assert_int_eq(pxs_expire(s, pxs_key_from_name("no", 2), 10), -ENOENT);
	ck_assert_int_eq(pxs_list(s, &cur, &e), 1);
	ck_assert_int_eq(e.ttl_ms, -1);
	ck_assert_int_eq(pxs_expire(s, k, 60000), 0);
	cur = 0;
	ck_assert_int_eq(pxs_list(s, &cur, &e), 1);
	ck_assert_msg(e.ttl_ms > 59000 && e.ttl_ms <= 60000, "%lld",
		      (long long)e.ttl_ms);
	ck_assert_int_eq(pxs_expire(s, k, -1), 0); /* no expiry any more */
	cur = 0;
	ck_assert_int_eq(pxs_list(s, &cur, &e), 1);
	ck_assert_int_eq(e.ttl_ms, -1);
	ck_assert_int_eq(pxs_expire(s, k, 200), 0);
	ck_assert_int_eq(pxs_exists(s, k), 1);
	usleep(400000);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), -ENOENT);
	ck_assert_int_eq(pxs_expire(s, k, 10), -ENOENT);
	ck_assert_int_eq(pxs_put_at(s, k, "again", 5), 0); /* free again */
	ck_assert_int_eq(pxs_expire(s, k, 0), 0);          /* evicts at once */
	ck_assert_int_eq(pxs_exists(s, k), 0);
	/* the waiters of a pending future that expires: -ECANCELED */
	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	pid_t w = pxs_test_spawn(waiter, &a);
	usleep(300000);
	ck_assert_int_eq(pxs_expire(s, a.k, 300), 0);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_test_reap(w, 10), 20);
	double dt = pxs_test_ms() - t0;
	ck_assert_msg(dt < 300 + 500 + 500, "-ECANCELED after %.0f ms", dt);
	/* a future set after its expiry was given: its wake list goes too */
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_expire(s, k, 300), 0);
	ck_assert_int_eq(pxs_future_set(s, k, "v", 1), 0);
	ck_assert_int_gt(object_keys(c, name), 0);
	usleep(500000);
	ck_assert_int_eq(object_keys(c, name), 0);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(restart_over_abandoned)
{
	char name[128];
	pxs_store *s = rstore(name), *s2;
	struct waitarg a = {.name = name, .k = pxs_key_from_name("job", 3)};
	struct waitarg b = {.name = name, .k = pxs_key_from_name("res", 3)};
	pxs_key live = pxs_key_from_name("live", 4);
	pxs_view v;
	pid_t o;

	/* a producer dies with its future pending; restarted, it makes the
	 * future again under the same key and sets it */
	o = pxs_test_spawn(owner_then_sleep, &a);
	while (pxs_future_done(s, a.k) == -ENOENT)
		usleep(10000);
	kill(o, SIGKILL);
	pxs_test_reap(o, 5);
	/* the server drops the dead client's connection within moments */
	int rc;
	for (int i = 0; (rc = pxs_future_new_at(s, a.k)) == -EEXIST && i < 100;
	     i++)
		usleep(10000);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(pxs_future_done(s, a.k), 0);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_future_new_at(s, a.k), -EEXIST); /* a value */
	ck_assert_int_eq(pxs_put_at(s, a.k, "no", 2), -EEXIST);
	/* or puts its result under the key of the abandoned future */
	o = pxs_test_spawn(owner_then_sleep, &b);
	while (pxs_future_done(s, b.k) == -ENOENT)
		usleep(10000);
	kill(o, SIGKILL);
	pxs_test_reap(o, 5);
	ck_assert_int_eq(pxs_future_wait(s, b.k, 2000, &v), -EOWNERDEAD);
	ck_assert_int_eq(pxs_put_at(s, b.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_get(s, b.k, &v), 0);
	ck_assert_mem_eq(v.data, "yes", 3);
	pxs_release(s, &v);
	/* a live owner's future is not taken over */
	ck_assert_int_eq(pxs_open(name, NULL, &s2), 0);
	ck_assert_int_eq(pxs_future_new_at(s2, live), 0);
	ck_assert_int_eq(pxs_future_new_at(s, live), -EEXIST);
	ck_assert_int_eq(pxs_put_at(s, live, "x", 1), -EEXIST);
	ck_assert_int_eq(pxs_future_new_at(s2, live), -EEXIST);
	ck_assert_int_eq(pxs_future_done(s, live), 0);
	pxs_close(s2);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* After 0.3 s, set (op 's') or evict (op 'e') one future. */
struct later {
	const char *name;
	pxs_key k;
	char op;
};

static int
later(void *p)
{
	const struct later *l = p;
	pxs_store *s;
	int rc;

	if (pxs_open(l->name, NULL, &s) < 0)
		return 10;
	usleep(300000);
	rc = l->op == 's' ? pxs_future_set(s, l->k, "yes", 3)
			  : pxs_evict(s, l->k);
	pxs_close(s);
	return rc == 0 ? 0 : 1;
}

/* pxs_future_wait_any() over the two futures of a waitarg pair. */
static int
any_waiter(void *p)
{
	const struct waitarg *a = p;
	pxs_key keys[2] = {pxs_key_from_name("other", 5), a->k};
	pxs_store *s;
	size_t which = 9;
	pxs_view v;
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	rc = pxs_future_wait_any(s, keys, 2, 10000, &which, &v);
	if (rc == 0)
		rc = which == 1 && v.size == 3 && memcmp(v.data, "yes", 3) == 0
			     ? pxs_release(s, &v) : 11;
	else
		rc = 12;
	pxs_close(s);
	return rc;
}

/* The server's count of blocked clients. */
static long long
blocked_clients(redisContext *c)
{
	redisReply *r = redisCommand(c, "INFO clients");
	const char *p;
	long long n = -1;

	ck_assert_ptr_nonnull(r);
	if ((p = strstr(r->str, "blocked_clients:")) != NULL)
		n = atoll(p + 16);
	freeReplyObject(r);
	return n;
}

/* A wait-any waiter that cannot run after its BLMPOP took the wake token
 * (stopped: as if killed between the two steps) does not take the token
 * away from the future's other waiters: the server puts it back. */
START_TEST(wait_any_token_restored)
{
	char name[128], wake[256], hex[PXS_KEY_STRLEN];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	redisContext *c = raw();
	long long left = 0;
	pid_t w;

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	ck_assert_int_eq(pxs_future_new_at(s, pxs_key_from_name("other", 5)), 0);
	pxs_key_format(a.k, hex);
	snprintf(wake, sizeof wake, "pxs:%s:{%s}:w", strrchr(name, '/') + 1, hex);
	w = pxs_test_spawn(any_waiter, &a);
	for (int i = 0; i < 500 && blocked_clients(c) < 1; i++)
		usleep(2000);
	kill(w, SIGSTOP);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	for (int i = 0; i < 200 && left == 0; i++) {
		redisReply *r = redisCommand(c, "LLEN %s", wake);

		left = r->integer;
		freeReplyObject(r);
		if (left == 0)
			usleep(10000);
	}
	kill(w, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(w, 10), 128 + SIGKILL);
	ck_assert_int_eq(left, 1);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(wait_any_many_waiters)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name, .k = pxs_key_from_name("any", 3)};
	pid_t w[8];

	/* wait-any waiters pop the token and push it back: with plain
	 * waiters on the same list, one set still wakes every one */
	ck_assert_int_eq(pxs_future_new_at(s, pxs_key_from_name("other", 5)), 0);
	ck_assert_int_eq(pxs_future_new_at(s, a.k), 0);
	for (int i = 0; i < 8; i++)
		w[i] = pxs_test_spawn(i % 2 ? waiter : any_waiter, &a);
	usleep(300000);
	ck_assert_int_eq(pxs_future_set(s, a.k, "yes", 3), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 10), 0);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(wait_any)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k[3], m[2], zero = {0, 0};
	struct later l = {.name = name, .op = 's'};
	size_t which = 99;
	pxs_view v;

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pxs_future_new(s, &k[i]), 0);
		ck_assert_int_eq(pxs_future_disown(s, k[i]), 0);
	}
	/* bad input changes nothing, which included */
	ck_assert_int_eq(pxs_future_wait_any(s, NULL, 3, 0, &which, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 0, 0, &which, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, PXS_WAIT_ANY_MAX + 1, 0,
					     &which, &v),
			 -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 0, NULL, &v), -EINVAL);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 0, &which, NULL), -EINVAL);
	m[0] = k[0];
	m[1] = zero;
	ck_assert_int_eq(pxs_future_wait_any(s, m, 2, 0, &which, &v), -EINVAL);
	ck_assert_uint_eq(which, 99);
	/* none ready: -ETIMEDOUT, which = n */
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 0, &which, &v), -ETIMEDOUT);
	ck_assert_uint_eq(which, 3);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 300, &which, &v), -ETIMEDOUT);
	ck_assert_double_ge(pxs_test_ms() - t0, 290);
	/* the last one is set while the call sleeps on all three */
	l.k = k[2];
	pid_t p = pxs_test_spawn(later, &l);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 3, 5000, &which, &v), 0);
	ck_assert_uint_eq(which, 2);
	ck_assert_mem_eq(v.data, "yes", 3);
	pxs_release(s, &v);
	ck_assert_int_eq(pxs_test_reap(p, 10), 0);
	/* its token went back: a plain waiter of it is not kept waiting */
	ck_assert_int_eq(pxs_future_wait(s, k[2], 1000, &v), 0);
	pxs_release(s, &v);
	/* evicted during the call: -ECANCELED with its index */
	l.k = k[1];
	l.op = 'e';
	p = pxs_test_spawn(later, &l);
	ck_assert_int_eq(pxs_future_wait_any(s, k, 2, 5000, &which, &v),
			 -ECANCELED);
	ck_assert_uint_eq(which, 1);
	ck_assert_int_eq(pxs_test_reap(p, 10), 0);
	/* an absent key ends the call with its index */
	m[1] = pxs_key_from_name("none", 4);
	ck_assert_int_eq(pxs_future_wait_any(s, m, 2, 1000, &which, &v), -ENOENT);
	ck_assert_uint_eq(which, 1);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* ---- streams ------------------------------------------------------------ */

START_TEST(stream_basics)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("stream", 6), z = {0};
	pxs_key plain = pxs_key_from_name("plain", 5);
	pxs_stream_options bad = {.window = 0}, big = {.window = 65537},
			   flags = {.window = 4, .flags = 2};
	pxs_stream_stats st;
	pxs_view v;
	void *buf;
	uint64_t seq = 99;

	ck_assert_int_eq(pxs_stream_new(s, z, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &bad), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &big), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &flags), -EINVAL);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, &seq), -ENOENT);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), -ENOENT);
	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0);
	ck_assert_int_eq(pxs_stream_new(s, k, NULL), -EEXIST);
	ck_assert_int_eq(pxs_put_at(s, plain, "v", 1), 0);
	ck_assert_int_eq(pxs_stream_new(s, plain, NULL), -EEXIST);
	ck_assert_int_eq(pxs_stream_append(s, plain, "x", 1, 0, NULL), -EPROTO);
	ck_assert_int_eq(pxs_stream_read(s, plain, 0, 0, &v), -EPROTO);
	ck_assert_int_eq(pxs_stream_append(s, k, NULL, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k, "", 0, &seq, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k, "0123456789012345678901234567890123", 0,
					 &seq, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_commit(s, k, &seq), -EINVAL);
	ck_assert_int_eq(pxs_stream_leave(s, k), -ENOENT);

	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -ETIMEDOUT);
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 300, &v), -ETIMEDOUT);
	double dt = pxs_test_ms() - t0;
	ck_assert_msg(dt >= 290 && dt < 3000, "timeout after %.0f ms", dt);
	ck_assert_int_eq(pxs_stream_append(s, k, "a", 1, 0, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 3, 0, &buf), 0);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 3, 0, &buf), -EBUSY);
	ck_assert_int_eq(pxs_stream_append(s, k, "b", 1, 0, NULL), -EBUSY);
	memcpy(buf, "bcd", 3);
	ck_assert_int_eq(pxs_stream_read(s, k, 1, 0, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_stream_commit(s, k, &seq), 0);
	ck_assert_uint_eq(seq, 1);
	ck_assert_int_eq(pxs_stream_append(s, k, "", 0, 0, &seq), 0);
	ck_assert_uint_eq(seq, 2);
	ck_assert_int_eq(pxs_stream_read(s, k, 1, 0, &v), 0);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_mem_eq(v.data, "bcd", 3);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_read(s, k, 2, 0, &v), 0);
	ck_assert_uint_eq(v.size, 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 1), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 1), -EALREADY);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.first, 0);
	ck_assert_uint_eq(st.next, 3);
	ck_assert_int_eq(st.ended, 0);
	ck_assert_uint_eq(st.window, 16);
	ck_assert_uint_eq(st.flags, 0);
	ck_assert_uint_eq(st.readers, 1);
	ck_assert_uint_eq(st.position, 1);
	ck_assert_uint_eq(st.slowest, 1);
	ck_assert_int_eq(pxs_stream_read(s, k, 1, 0, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.position, 2);
	ck_assert_int_eq(pxs_stream_leave(s, k), 0);
	ck_assert_int_eq(pxs_stream_leave(s, k), -ENOENT);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.position, UINT64_MAX);
	ck_assert_uint_eq(st.readers, 0);

	ck_assert_int_eq(pxs_stream_end(s, k), 0);
	ck_assert_int_eq(pxs_stream_end(s, k), -EALREADY);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, NULL), -EPIPE);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 1, 0, &buf), -EPIPE);
	ck_assert_int_eq(pxs_stream_read(s, k, 3, -1, &v), -EPIPE);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), 0); /* retained */
	ck_assert_mem_eq(v.data, "a", 1);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_int_eq(st.ended, 1);
	/* the stream key is a value for the rest of the API */
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0); /* a fresh one */
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.next, 0);
	pxs_close(s);
	ck_assert_int_eq(pxs_unlink(name), 0);
}
END_TEST

/* Discard: the window slides, a slid-out read is -ERANGE, and the reader
 * resumes from the oldest. */
START_TEST(stream_discard)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("d", 1);
	pxs_stream_options o = {.window = 4};
	pxs_stream_stats st;
	pxs_view v;
	uint64_t seq;
	char b[8];

	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 0), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(b, sizeof b, "%d", i);
		ck_assert_int_eq(pxs_stream_append(s, k, b, strlen(b), 0, &seq), 0);
		ck_assert_uint_eq(seq, (uint64_t)i);
	}
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -ERANGE);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.first, 6);
	ck_assert_uint_eq(st.next, 10);
	ck_assert_uint_eq(st.position, 6); /* slid-out items count as read */
	ck_assert_int_eq(pxs_stream_join(s, k, 7), -EALREADY);
	ck_assert_int_eq(pxs_stream_read(s, k, st.first, 0, &v), 0);
	ck_assert_mem_eq(v.data, "6", 1);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.position, 7);
	ck_assert_int_eq(pxs_stream_leave(s, k), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 5), -ERANGE);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

struct sarg {
	const char *name;
	pxs_key k;
	int id, n, fd;
};

/* A reader process: joins, signals, reads 0..n-1 in order, checking each
 * producer's numbers rise by one, then -EPIPE. */
static int
stream_reader(void *p)
{
	struct sarg *a = p;
	unsigned next[2] = {0, 0};
	pxs_store *s;
	pxs_view v;

	if (pxs_open(a->name, NULL, &s) < 0 || pxs_stream_join(s, a->k, 0) < 0)
		return 10;
	if (write(a->fd, "j", 1) != 1)
		return 11;
	for (int i = 0; i < a->n; i++) {
		unsigned prod, x;

		if (pxs_stream_read(s, a->k, (uint64_t)i, 20000, &v) < 0)
			return 12;
		if (v.size != 8)
			return 13;
		memcpy(&prod, v.data, 4);
		memcpy(&x, (const char *)v.data + 4, 4);
		if (prod > 1 || x != next[prod]++)
			return 14;
		pxs_release(s, &v);
	}
	if (pxs_stream_read(s, a->k, (uint64_t)a->n, 20000, &v) != -EPIPE)
		return 15;
	pxs_close(s);
	return 0;
}

static int
stream_producer(void *p)
{
	struct sarg *a = p;
	pxs_store *s;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	for (unsigned i = 0; i < (unsigned)a->n; i++) {
		unsigned char b[8];
		void *buf;

		memcpy(b, &a->id, 4);
		memcpy(b + 4, &i, 4);
		if (i % 2) {
			if (pxs_stream_append(s, a->k, b, 8, 20000, NULL) < 0)
				return 11;
		} else if (pxs_stream_reserve(s, a->k, 8, 20000, &buf) < 0) {
			return 12;
		} else {
			memcpy(buf, b, 8);
			if (pxs_stream_commit(s, a->k, NULL) < 0)
				return 13;
		}
	}
	pxs_close(s);
	return 0;
}

/* Two producers, four reader processes, a Block window of 8: every reader
 * sees all 400 items, each producer's in its order, then the end. */
START_TEST(stream_order)
{
	char name[128], j[4];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("o", 1);
	pxs_stream_options o = {.window = 8, .flags = PXS_STREAM_BLOCK};
	pxs_stream_stats st;
	struct sarg r = {.name = name, .k = k, .n = 400}, p[2];
	pid_t rd[4], pr[2];
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	r.fd = fds[1];
	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	for (int i = 0; i < 4; i++)
		rd[i] = pxs_test_spawn(stream_reader, &r);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(read(fds[0], j, 1), 1);
	for (int i = 0; i < 2; i++) {
		p[i] = (struct sarg){.name = name, .k = k, .id = i, .n = 200};
		pr[i] = pxs_test_spawn(stream_producer, &p[i]);
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pxs_test_reap(pr[i], 60), 0);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.next, 400);
	ck_assert_uint_eq(st.reserved, 0);
	ck_assert_int_eq(pxs_stream_end(s, k), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pxs_test_reap(rd[i], 60), 0);
	close(fds[0]);
	close(fds[1]);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* A process that joins (id 0), reserves (1) or takes one item (2), tells
 * the parent (the item's seq for a take), and sleeps for ever holding it. */
static int
stuck(void *p)
{
	struct sarg *a = p;
	uint64_t seq = 0;
	pxs_store *s;
	pxs_view v;
	void *buf;
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	rc = a->id == 0   ? pxs_stream_join(s, a->k, 0)
	     : a->id == 1 ? pxs_stream_reserve(s, a->k, 4, 0, &buf)
			  : pxs_stream_take(s, a->k, "g", 5000, &seq, &v);
	if (rc < 0)
		return 11;
	if (write(a->fd, &seq, sizeof seq) != sizeof seq)
		return 12;
	pause();
	return 0;
}

/* Block: a full window holds the producer back while the slowest reader
 * lives; its SIGKILL releases it. A producer killed between reserve and
 * commit leaves no hole and gives its room back. */
START_TEST(stream_backpressure)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("b", 1);
	pxs_stream_options o = {.window = 4, .flags = PXS_STREAM_BLOCK};
	pxs_stream_stats st;
	struct sarg a = {.name = name, .k = k};
	pxs_view v;
	uint64_t seq;
	int fds[2];
	pid_t rd, pr;

	ck_assert_int_eq(pipe(fds), 0);
	a.fd = fds[1];
	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	rd = pxs_test_spawn(stuck, &a);
	ck_assert_int_eq(read(fds[0], &seq, 8), 8);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, NULL), 0);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, NULL), -ETIMEDOUT);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 700, NULL), -ETIMEDOUT);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.readers, 1);
	ck_assert_uint_eq(st.slowest, 0);
	kill(rd, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(rd, 10), 128 + SIGKILL);
	ck_assert_int_eq(pxs_stream_append(s, k, "y", 1, 5000, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.readers, 0);
	ck_assert_uint_eq(st.first, 1);

	/* our own reader at the oldest holds us; the dead producer's
	 * reservation counts until it is found dead */
	ck_assert_int_eq(pxs_stream_join(s, k, 2), 0);
	a.id = 1;
	pr = pxs_test_spawn(stuck, &a); /* fills the last room */
	ck_assert_int_eq(read(fds[0], &seq, 8), 8);
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.reserved, 1);
	ck_assert_int_eq(pxs_stream_append(s, k, "z", 1, 0, NULL), -ETIMEDOUT);
	kill(pr, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(pr, 10), 128 + SIGKILL);
	ck_assert_int_eq(pxs_stream_append(s, k, "z", 1, 5000, &seq), 0);
	ck_assert_uint_eq(seq, 5); /* no hole */
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), 0);
	ck_assert_uint_eq(st.reserved, 0);
	ck_assert_uint_eq(st.first, 2);
	ck_assert_int_eq(pxs_stream_read(s, k, 5, 0, &v), 0);
	ck_assert_mem_eq(v.data, "z", 1);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	close(fds[0]);
	close(fds[1]);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* A member that takes and acks until -EPIPE, writing each seq it acked. */
static int
worker(void *p)
{
	struct sarg *a = p;
	pxs_store *s;
	pxs_view v;
	uint64_t seq;
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	while ((rc = pxs_stream_take(s, a->k, "g", 20000, &seq, &v)) == 0) {
		if (v.size != 8 || memcmp(v.data, &seq, 8) != 0)
			return 11;
		pxs_release(s, &v);
		if (pxs_stream_ack(s, a->k, "g", seq) < 0)
			return 12;
		if (write(a->fd, &seq, sizeof seq) != sizeof seq)
			return 13;
	}
	pxs_close(s);
	return rc == -EPIPE ? 0 : 14;
}

/* Four members, one SIGKILLed holding an item: every item is acked
 * exactly once (the dead one's by another), then every take is -EPIPE. */
START_TEST(stream_groups)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("g", 1);
	struct sarg a = {.name = name, .k = k, .id = 2};
	int fds[2], seen[60] = {0}, total = 0;
	uint64_t seq, held;
	pid_t w[4];
	pxs_stream_options o = {.window = 64};
	pxs_view v;

	ck_assert_int_eq(pipe(fds), 0);
	a.fd = fds[1];
	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	for (uint64_t i = 0; i < 60; i++) {
		ck_assert_int_eq(pxs_stream_append(s, k, &i, 8, 0, &seq), 0);
		if (i == 15)
			w[3] = pxs_test_spawn(stuck, &a);
	}
	ck_assert_int_eq(read(fds[0], &held, 8), 8);
	ck_assert_uint_lt(held, 60);
	kill(w[3], SIGKILL);
	ck_assert_int_eq(pxs_test_reap(w[3], 10), 128 + SIGKILL);
	ck_assert_int_eq(pxs_stream_ack(s, k, "nogroup", 0), -ENOENT);
	ck_assert_int_eq(pxs_stream_end(s, k), 0);
	for (int i = 0; i < 3; i++)
		w[i] = pxs_test_spawn(worker, &a);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 60), 0);
	close(fds[1]);
	while (read(fds[0], &seq, 8) == 8) {
		ck_assert_uint_lt(seq, 60);
		seen[seq]++;
		total++;
	}
	close(fds[0]);
	for (int i = 0; i < 60; i++)
		ck_assert_msg(seen[i] == 1, "item %d acked %d times", i, seen[i]);
	ck_assert_int_eq(total, 60);
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v), -EPIPE);
	ck_assert_int_eq(pxs_stream_ack(s, k, "g", held), -ENOENT);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static int
stream_waiter(void *p)
{
	struct sarg *a = p;
	pxs_store *s;
	pxs_view v;
	int rc;

	if (pxs_open(a->name, NULL, &s) < 0)
		return 10;
	rc = pxs_stream_read(s, a->k, 0, 20000, &v);
	if (rc == 0)
		rc = v.size == 3 && memcmp(v.data, "yes", 3) == 0 ? 0 : 11;
	pxs_close(s);
	return rc < 0 ? 12 : rc;
}

/* A reader waiting for an item sleeps in the server's XREAD BLOCK: a
 * handful of commands per liveness period, no polling. */
START_TEST(stream_reader_does_not_poll)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("p", 1);
	struct sarg a = {.name = name, .k = k};
	redisContext *c = raw();
	long long before, after, xr0, xr1;

	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0);
	pid_t w = pxs_test_spawn(stream_waiter, &a);
	usleep(500000);
	xr0 = calls_of(c, "xread");
	before = calls(c);
	sleep(3);
	after = calls(c);
	xr1 = calls_of(c, "xread");
	/* per 0.5 s period one XREAD and one script (which counts its
	 * HMGET too): at most 3 * 7 */
	ck_assert_msg(after - before - 2 <= 21, "%lld commands in 3 s",
		      after - before - 2);
	ck_assert_msg(xr1 - xr0 >= 4 && xr1 - xr0 <= 7, "%lld XREADs",
		      xr1 - xr0);
	ck_assert_int_eq(pxs_stream_append(s, k, "yes", 3, 0, NULL), 0);
	ck_assert_int_eq(pxs_test_reap(w, 10), 0);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

struct tres {
	pxs_store *s;
	pxs_key k;
	uint64_t seq;
	int rc;
};

/* A thread's reservation is its own: reserve, a pause, commit. */
static void *
thread_reserver(void *p)
{
	struct tres *t = p;
	void *buf;

	t->rc = pxs_stream_reserve(t->s, t->k, 1, 0, &buf);
	if (t->rc == 0) {
		memcpy(buf, "t", 1);
		usleep(100000);
		t->rc = pxs_stream_commit(t->s, t->k, &t->seq);
	}
	return NULL;
}

/* Four threads of one handle, each with a reservation of its own on one
 * Block stream at once: four commits, four numbers. */
START_TEST(stream_threads)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("t", 1);
	pxs_stream_options o = {.window = 8, .flags = PXS_STREAM_BLOCK};
	struct tres t[4];
	pthread_t th[4];
	unsigned seen = 0;

	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct tres){.s = s, .k = k};
		ck_assert_int_eq(pthread_create(&th[i], NULL, thread_reserver, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].rc, 0);
		ck_assert_uint_lt(t[i].seq, 4);
		seen |= 1u << t[i].seq;
	}
	ck_assert_uint_eq(seen, 15);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* A stream's keys overwritten with garbage: -EPROTO, never a crash. */
START_TEST(stream_garbage)
{
	char name[128], obj[256], hex[PXS_KEY_STRLEN];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("x", 1);
	redisContext *c = raw();
	pxs_stream_stats st;
	pxs_view v;
	uint64_t seq;
	static const char *const field[] = {"w", "f", "n", "a", "e", "x"};

	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0);
	ck_assert_int_eq(pxs_stream_append(s, k, "a", 1, 0, NULL), 0);
	pxs_key_format(k, hex);
	snprintf(obj, sizeof obj, "pxs:%s:{%s}", strrchr(name, '/') + 1, hex);
	for (size_t i = 0; i < sizeof field / sizeof field[0]; i++) {
		redisReply *r = redisCommand(c, "HGET %s %s", obj, field[i]);
		char keep[64];

		ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
		snprintf(keep, sizeof keep, "%s", r->str);
		freeReplyObject(r);
		freeReplyObject(redisCommand(c, "HSET %s %s -1x", obj, field[i]));
		ck_assert_int_eq(pxs_stream_append(s, k, "b", 1, 0, NULL), -EPROTO);
		ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -EPROTO);
		ck_assert_int_eq(pxs_stream_stat(s, k, &st), -EPROTO);
		ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v), -EPROTO);
		ck_assert_int_eq(pxs_stream_end(s, k), -EPROTO);
		freeReplyObject(redisCommand(c, "HSET %s %s %s", obj, field[i], keep));
	}
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* the items' stream replaced by a string, then by foreign entries */
	freeReplyObject(redisCommand(c, "SET %s:x garbage", obj));
	ck_assert_int_eq(pxs_stream_append(s, k, "b", 1, 0, NULL), -EPROTO);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -EPROTO);
	ck_assert_int_eq(pxs_stream_read(s, k, 1, 100, &v), -EPROTO);
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v), -EPROTO);
	freeReplyObject(redisCommand(c, "DEL %s:x", obj));
	freeReplyObject(redisCommand(c, "XADD %s:x 0-1 zz top", obj));
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, &v), -EPROTO);
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v), -EPROTO);
	freeReplyObject(redisCommand(c, "XADD %s:x 99-7 d x", obj));
	ck_assert_int_eq(pxs_stream_append(s, k, "b", 1, 0, NULL), -EPROTO);
	freeReplyObject(redisCommand(c, "HSET %s:r 1 x", obj));
	ck_assert_int_eq(pxs_stream_stat(s, k, &st), -EPROTO);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* A server that closes idle clients (`timeout 1`) leaves an owner that
 * only waits its futures: the owner connection is a Pub/Sub client, which
 * the timeout spares; the pooled connections it closes are replaced. */
START_TEST(idle_owner_survives_timeout)
{
	char name[128];
	pxs_store *s = rstore(name), *s2;
	redisContext *c = raw();
	int done, waited, set, again;
	pxs_key k;
	pxs_view v;

	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &s2), 0);
	freeReplyObject(redisCommand(c, "CONFIG SET timeout 1"));
	redisFree(c);
	sleep(3); /* idle for longer than the timeout */
	done = pxs_future_done(s2, k);
	waited = pxs_future_wait(s2, k, 600, &v);
	set = pxs_future_set(s, k, "ok", 2);
	again = pxs_future_wait(s2, k, 1000, &v);
	c = raw();
	freeReplyObject(redisCommand(c, "CONFIG SET timeout 0"));
	redisFree(c);
	ck_assert_int_eq(done, 0);
	ck_assert_int_eq(waited, -ETIMEDOUT);
	ck_assert_int_eq(set, 0);
	ck_assert_int_eq(again, 0);
	ck_assert_mem_eq(v.data, "ok", 2);
	ck_assert_int_eq(pxs_release(s2, &v), 0);
	pxs_close(s2);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(garbage_is_eproto)
{
	char name[128], obj[256];
	pxs_store *s = rstore(name);
	pxs_key k;
	char hex[PXS_KEY_STRLEN];
	redisContext *c = raw();
	pxs_view v;
	pxs_check_report rep;

	ck_assert_int_eq(pxs_put(s, "abc", 3, &k), 0);
	pxs_key_format(k, hex);
	snprintf(obj, sizeof obj, "pxs:%s:{%s}", strrchr(name, '/') + 1, hex);
	freeReplyObject(redisCommand(c, "SET %s garbage", obj));
	ck_assert_int_eq(pxs_get(s, k, &v), -EPROTO);
	ck_assert_int_eq(pxs_exists(s, k), -EPROTO);
	ck_assert_int_eq(pxs_future_wait(s, k, 100, &v), -EPROTO);
	freeReplyObject(redisCommand(c, "DEL %s", obj));
	freeReplyObject(redisCommand(c, "HSET %s s q", obj));
	ck_assert_int_eq(pxs_get(s, k, &v), -EPROTO);
	ck_assert_int_eq(pxs_future_set(s, k, "x", 1), -EPROTO);
	ck_assert_int_eq(pxs_check(s, &rep), -EPROTO);
	ck_assert_uint_eq(rep.errors, 1);
	/* metadata overwritten: not a store of this layout */
	snprintf(obj, sizeof obj, "pxs:%s:meta", strrchr(name, '/') + 1);
	freeReplyObject(redisCommand(c, "SET %s 1", obj));
	pxs_store *s2;
	ck_assert_int_eq(pxs_open(name, NULL, &s2), -EPROTO);
	redisFree(c);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(bad_names_and_servers)
{
	static const char *bad[] = {
		"redis://", "redis://127.0.0.1", "redis://127.0.0.1:/x",
		"redis://127.0.0.1:0/x", "redis://127.0.0.1:65536/x",
		"redis://127.0.0.1:06379/x", "redis://127.0.0.1:6379/",
		"redis://127.0.0.1:6379/a/b", "redis://127.0.0.1:6379/..",
		"redis://h_st:1/x", "redis://[::1/x", "redis://u@h:1/x",
		"redis://h:1/x?y", "redis://h:1/x y", "redis://h:123456/x"};
	pxs_store *s;
	pxs_proxy *p;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(pxs_open(bad[i], NULL, &s) == -EINVAL, "%s", bad[i]);
		ck_assert_msg(pxs_proxy_new(bad[i], pxs_key_from_name("a", 1), &p) ==
				      -EINVAL,
			      "%s", bad[i]);
	}
	/* refused */
	char name[128];
	int dead = free_port();
	snprintf(name, sizeof name, "redis://127.0.0.1:%d/x", dead);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -ECONNREFUSED);
	/* a listener that never replies */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&a, &l);
	snprintf(name, sizeof name, "redis://127.0.0.1:%d/x", ntohs(a.sin_port));
	pxs_options o = {.connect_timeout_ms = 300, .command_timeout_ms = 300};
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_open(name, &o, &s), -ETIMEDOUT);
	ck_assert_double_lt(pxs_test_ms() - t0, 2000);
	close(fd);
}
END_TEST

START_TEST(proxies)
{
	char name[128], str[PXS_PROXY_STRLEN], want[256];
	pxs_store *s = rstore(name);
	pxs_proxy *p, *q;
	pxs_key k;
	char hex[PXS_KEY_STRLEN];
	const void *d;
	size_t n;

	ck_assert_int_eq(pxs_put(s, "data", 4, &k), 0);
	ck_assert_int_eq(pxs_proxy_new(pxs_store_name(s), k, &p), 0);
	int len = pxs_proxy_format(p, str, sizeof str);
	pxs_key_format(k, hex);
	snprintf(want, sizeof want, "%s/%s", name, hex);
	ck_assert_str_eq(str, want);
	ck_assert_int_eq(len, (int)strlen(want));
	ck_assert_int_eq(pxs_proxy_parse(str, &q), 0);
	ck_assert(pxs_key_equal(pxs_proxy_key(q), k));
	ck_assert_int_eq(pxs_proxy_resolve(q, 1000, &d, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_mem_eq(d, "data", 4);
	pxs_proxy_free(q);
	pxs_proxy_free(p);
	strcat(str, "/");
	ck_assert_int_eq(pxs_proxy_parse(str, &q), -EINVAL);
	ck_assert_int_eq(pxs_proxy_parse("redis://h:1/abc", &q), -EINVAL);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

START_TEST(server_restart)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct waitarg a = {.name = name};
	pxs_view v;
	pxs_key k;
	pxs_options o = {.flags = PXS_CREATE};

	ck_assert_int_eq(pxs_future_new(s, &a.k), 0);
	pid_t killer = fork();
	if (killer == 0) {
		usleep(300000);
		kill(server, SIGKILL);
		_exit(0);
	}
	double t0 = pxs_test_ms();
	/* the server does not come back within the timeout: the wait keeps
	 * reconnecting, then ends with the connection's error */
	int rc = pxs_future_wait(s, a.k, 5000, &v);
	ck_assert_msg(rc == -ECONNREFUSED || rc == -ECONNRESET ||
			      rc == -ETIMEDOUT,
		      "%d", rc);
	ck_assert_double_ge(pxs_test_ms() - t0, 5000 - 10);
	ck_assert_double_lt(pxs_test_ms() - t0, 5000 + 500);
	waitpid(killer, NULL, 0);
	server = restart_server();
	ck_assert_int_gt(server, 0);
	/* without persistence the store is gone; the handle reconnects */
	ck_assert_int_eq(pxs_exists(s, a.k), 0);
	pxs_store *s2;
	ck_assert_int_eq(pxs_open(name, &o, &s2), 0);
	ck_assert_int_eq(pxs_put(s, "x", 1, &k), 0);
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	ck_assert_int_eq(pxs_future_done(s2, k), 0); /* its owner is known */
	/* A waiter on a key not made yet, through a restart within its
	 * timeout: it reconnects, waits on, and wakes at the put. */
	struct waitarg b = {.name = name, .k = pxs_key_from_name("after", 5)};
	pid_t w = pxs_test_spawn(waiter, &b);
	usleep(300000);
	stop_server();
	server = restart_server();
	ck_assert_int_gt(server, 0);
	pxs_store *s3;
	ck_assert_int_eq(pxs_open(name, &o, &s3), 0); /* lost with the server */
	usleep(500000); /* the waiter is back in its block */
	ck_assert_int_eq(pxs_put_at(s3, b.k, "yes", 3), 0);
	ck_assert_int_eq(pxs_test_reap(w, 15), 0);
	ck_assert_int_eq(pxs_exists(s, b.k), 1); /* the next call works */
	pxs_close(s3);
	pxs_close(s2);
	pxs_close(s);
	pxs_unlink(name);
	stop_server(); /* the one this test started */
}
END_TEST

static int
forked_child_uses(void *p)
{
	pxs_store *s = p;
	pxs_key k;
	pxs_view v;

	if (pxs_put(s, "child", 5, &k) < 0 || pxs_get(s, k, &v) < 0)
		return 1;
	return pxs_release(s, &v) == 0 ? 0 : 2;
}

START_TEST(fork_and_threads)
{
	char name[128];
	pxs_store *s = rstore(name);
	pxs_key k;

	ck_assert_int_eq(pxs_put(s, "p", 1, &k), 0); /* a pooled connection */
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(forked_child_uses, s), 10),
			 0);
	ck_assert_int_eq(pxs_exists(s, k), 1);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* A "node": a process in a mount namespace of its own with a private,
 * empty /dev/shm, so that it shares no memory with the other. 0 when in
 * place, -1 when not permitted (not root). */
static int
private_node(void)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=16m") < 0)
		return -1;
	return 0;
}

struct node_arg {
	char proxy[PXS_PROXY_STRLEN];
	const char *name;
	pxs_key k;
};

static int
producer_node(void *p)
{
	struct node_arg *a = p;
	pxs_store *s;

	if (private_node() < 0)
		return 77;
	if (pxs_open(a->name, NULL, &s) < 0 || pxs_future_new_at(s, a->k) < 0)
		return 10;
	usleep(300000);
	return pxs_future_set(s, a->k, "yes", 3) == 0 ? 0 : 11;
}

static int
consumer_node(void *p)
{
	struct node_arg *a = p;
	pxs_proxy *px;
	const void *d;
	size_t n;

	if (private_node() < 0)
		return 77;
	if (pxs_proxy_parse(a->proxy, &px) < 0)
		return 10;
	/* the future may not exist yet: retry until the producer made it */
	int rc;
	for (int i = 0; i < 100; i++) {
		rc = pxs_proxy_resolve(px, 5000, &d, &n);
		if (rc != -ENOENT)
			break;
		usleep(20000);
	}
	rc = rc == 0 && n == 3 && memcmp(d, "yes", 3) == 0 ? 0 : 12;
	pxs_proxy_free(px);
	return rc;
}

START_TEST(two_nodes)
{
	char name[128];
	pxs_store *s = rstore(name);
	struct node_arg a = {.name = name, .k = pxs_key_from_name("n", 1)};
	pxs_proxy *p;

	ck_assert_int_eq(pxs_proxy_new(name, a.k, &p), 0);
	ck_assert_int_gt(pxs_proxy_format(p, a.proxy, sizeof a.proxy), 0);
	pxs_proxy_free(p);
	pid_t c = pxs_test_spawn(consumer_node, &a);
	pid_t w = pxs_test_spawn(producer_node, &a);
	int rw = pxs_test_reap(w, 20), rc = pxs_test_reap(c, 20);
	if (rw == 77 || rc == 77) {
		puts("SKIP two_nodes: unshare/mount not permitted (needs root)");
	} else {
		ck_assert_int_eq(rw, 0);
		ck_assert_int_eq(rc, 0);
	}
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

static const char *consumer_path;

START_TEST(exec_consumer)
{
	char name[128], str[PXS_PROXY_STRLEN];
	pxs_store *s = rstore(name);
	pxs_key k = pxs_key_from_name("exec", 4);
	pxs_proxy *p;
	char buf[4096];

	if (consumer_path == NULL) {
		puts("SKIP exec_consumer: no consumer path in argv");
		pxs_close(s);
		return;
	}
	ck_assert_int_eq(pxs_future_new_at(s, k), 0);
	ck_assert_int_eq(pxs_proxy_new(name, k, &p), 0);
	ck_assert_int_gt(pxs_proxy_format(p, str, sizeof str), 0);
	pxs_proxy_free(p);
	pid_t c = fork();
	if (c == 0) {
		execl(consumer_path, consumer_path, str, "10000", (char *)NULL);
		_exit(127);
	}
	usleep(200000);
	pxs_test_fill(buf, sizeof buf, k, 7);
	ck_assert_int_eq(pxs_future_set(s, k, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_test_reap(c, 20), 0);
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

int
main(int argc, char **argv)
{
	pxs_store *s;
	int rc;

	consumer_path = argc > 1 ? argv[1] : NULL;
	if (pxs_open("redis://127.0.0.1:1/x", NULL, &s) == -EPROTONOSUPPORT) {
		puts("SKIP: built without hiredis");
		return 77;
	}
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		puts("SKIP: no redis-server");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	port = free_port();
	server = start_server();
	if (server < 0) {
		puts("SKIP: redis-server did not start");
		return 77;
	}
	Suite *su = suite_create("redis");
	TCase *tc = tcase_create("redis");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, objects);
	tcase_add_test(tc, future_basics);
	tcase_add_test(tc, stream_basics);
	tcase_add_test(tc, stream_discard);
	tcase_add_test(tc, stream_order);
	tcase_add_test(tc, stream_backpressure);
	tcase_add_test(tc, stream_groups);
	tcase_add_test(tc, stream_reader_does_not_poll);
	tcase_add_test(tc, stream_garbage);
	tcase_add_test(tc, stream_threads);
	tcase_add_test(tc, sixteen_waiters);
	tcase_add_test(tc, racing_setters);
	tcase_add_test(tc, dead_owner);
	tcase_add_test(tc, dead_waiter_and_evict);
	tcase_add_test(tc, waiter_does_not_poll);
	tcase_add_test(tc, one_round_trip_per_op);
	tcase_add_test(tc, absent_keys);
	tcase_add_test(tc, wait_for_store);
	tcase_add_test(tc, expiry);
	tcase_add_test(tc, restart_over_abandoned);
	tcase_add_test(tc, wait_any);
	tcase_add_test(tc, wait_any_many_waiters);
	tcase_add_test(tc, wait_any_token_restored);
	tcase_add_test(tc, garbage_is_eproto);
	tcase_add_test(tc, idle_owner_survives_timeout);
	tcase_add_test(tc, bad_names_and_servers);
	tcase_add_test(tc, proxies);
	tcase_add_test(tc, fork_and_threads);
	tcase_add_test(tc, two_nodes);
	tcase_add_test(tc, exec_consumer);
	tcase_add_test(tc, server_restart); /* last: it restarts the server */
	suite_add_tcase(su, tc);
	rc = pxs_test_run(su);
	stop_server();
	return rc;
}
