/* fuzz_reply.c - bytes -> the replies of a Redis server -> the Redis backend.
 *
 * A thread plays a Redis server on 127.0.0.1 (a free port, loopback only).
 * It answers what opening a store needs as a real server would (CLIENT ID,
 * SUBSCRIBE of the owner connection, SCRIPT LOAD, the open script), and
 * then answers the next command with the input itself: the input is the raw reply stream (RESP) for every
 * command after the open, in order, after which the server closes the
 * connection (later connections are closed at once). The harness opens
 * the store and makes one fixed series of calls on it: get, exists, done,
 * wait, set, claim, evict, expire, wait-any, list, check, stat, reap, then
 * the stream calls: new, append, reserve, commit, read, join, stat, take,
 * ack, leave, end.
 * Oracle: no crash, hang or sanitizer report (leaks included); every call
 * returns a value its documentation allows on a Redis store; a view that
 * a call returns is readable to its size and released.
 */
#include "fuzz.h"

#include "proxyshm.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

struct server {
	int lfd;
	int port;
	const uint8_t *data;
	size_t size;
	atomic_int stop;
};

struct peer {
	int fd;
	int index; /* 0 the owner connection, 1 the first pool connection */
	char in[4096];
	size_t n;
	bool dumped; /* the input went out on it */
};

/* One RESP request from @p p->in: its first two arguments (truncated to
 * 31 bytes) and whether KEYS[1] (the 4th) ends in "meta"; the bytes it
 * took, or 0 if it is incomplete (or too long: the connection is then
 * closed, which a client survives). */
static size_t
request(const struct peer *p, char a0[32], char a1[32], bool *meta)
{
	size_t i = 0, argc = 0;

	*meta = false;
	a0[0] = a1[0] = '\0';
	if (p->n < 1 || p->in[0] != '*')
		return 0;
	for (i = 1; i < p->n && p->in[i] != '\r'; i++)
		argc = argc * 10 + (size_t)(p->in[i] - '0');
	i += 2;
	for (size_t k = 0; k < argc; k++) {
		size_t len = 0;

		if (i >= p->n || p->in[i] != '$')
			return 0;
		for (i++; i < p->n && p->in[i] != '\r'; i++)
			len = len * 10 + (size_t)(p->in[i] - '0');
		i += 2;
		if (i + len + 2 > p->n)
			return 0;
		if (k < 2) {
			char *dst = k == 0 ? a0 : a1;
			size_t c = len < 31 ? len : 31;

			memcpy(dst, p->in + i, c);
			dst[c] = '\0';
		}
		if (k == 3 && len >= 4 && memcmp(p->in + i + len - 4, "meta", 4) == 0)
			*meta = true;
		i += len + 2;
	}
	return i;
}

static void
say(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Answer the complete requests of @p p; false: close it. */
static bool
answer(struct server *sv, struct peer *p)
{
	static const char sha[] = "$40\r\n"
				  "0123456789012345678901234567890123456789\r\n";
	static const char sub[] = "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n";
	char a0[32], a1[32];
	bool meta;
	size_t used;

	while ((used = request(p, a0, a1, &meta)) > 0) {
		memmove(p->in, p->in + used, p->n - used);
		p->n -= used;
		if (p->index > 1 || p->dumped)
			return false;
		if (strcmp(a0, "CLIENT") == 0 && strcmp(a1, "ID") == 0)
			say(p->fd, ":7\r\n", 4);
		else if (strcmp(a0, "SUBSCRIBE") == 0 && p->index == 0)
			say(p->fd, sub, sizeof sub - 1);
		else if (strcmp(a0, "SCRIPT") == 0)
			say(p->fd, sha, sizeof sha - 1);
		else if (strcmp(a0, "EVALSHA") == 0 && meta)
			say(p->fd, "+OK\r\n", 5);
		else if (p->index == 1) {
			say(p->fd, sv->data, sv->size);
			shutdown(p->fd, SHUT_WR);
			p->dumped = true;
		} else {
			return false;
		}
	}
	return p->n < sizeof p->in;
}

static void *
serve(void *arg)
{
	struct server *sv = arg;
	struct peer peers[MAX_CONNS];
	int np = 0, accepted = 0;

	while (!sv->stop) {
		struct pollfd fds[MAX_CONNS + 1];

		fds[0] = (struct pollfd){.fd = sv->lfd, .events = POLLIN};
		for (int i = 0; i < np; i++)
			fds[i + 1] = (struct pollfd){.fd = peers[i].fd,
						     .events = POLLIN};
		if (poll(fds, (nfds_t)np + 1, 2) <= 0)
			continue;
		if ((fds[0].revents & POLLIN) && np < MAX_CONNS) {
			int fd = accept(sv->lfd, NULL, NULL);

			if (fd >= 0)
				peers[np++] = (struct peer){.fd = fd,
							    .index = accepted++};
		}
		for (int i = np - 1; i >= 0; i--) {
			struct peer *p = &peers[i];
			ssize_t r;

			if (!fds[i + 1].revents)
				continue;
			r = recv(p->fd, p->in + p->n, sizeof p->in - p->n, 0);
			if (r > 0) {
				p->n += (size_t)r;
				if (answer(sv, p))
					continue;
			}
			close(p->fd);
			*p = peers[--np];
		}
	}
	for (int i = 0; i < np; i++)
		close(peers[i].fd);
	return NULL;
}

/* The values each call may return on a Redis store besides 0 (and 1 where
 * the call has it): its own errors and the connection's; a stream call's
 * (stream_allowed()) also those of a stream. */
static bool
allowed(int rc)
{
	static const int ok[] = {
		ENOENT,	      EAGAIN,	   EOWNERDEAD, EPROTO,	  ECONNRESET,
		ECONNREFUSED, ETIMEDOUT,   EIO,	       ENOMEM,	  ENOSPC,
		EROFS,	      EHOSTUNREACH, EALREADY,  EBUSY,	  EPERM,
		EEXIST,	      ECANCELED,
	};

	if (rc >= 0)
		return rc <= 1;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (rc == -ok[i])
			return true;
	return false;
}

static bool
stream_allowed(int rc)
{
	return rc == -EPIPE || rc == -ERANGE || rc == -ETIMEDOUT ||
	       (rc != 1 && allowed(rc));
}

static void
check_view(pxs_store *s, int rc, pxs_view *v, const char *call)
{
	FZ_CHECK(allowed(rc), "%s returned %d", call, rc);
	if (rc == 0) {
		volatile unsigned char sum = 0;

		for (size_t i = 0; i < v->size; i++)
			sum ^= ((const unsigned char *)v->data)[i];
		(void)sum;
		FZ_CHECK(pxs_release(s, v) == 0, "%s: release failed", call);
	}
}

/* Every stream call once; a commit without a reservation is -EINVAL. */
static void
stream_calls(pxs_store *s)
{
	pxs_key k = pxs_key_from_name("st", 2);
	pxs_stream_options o = {.window = 4, .flags = PXS_STREAM_BLOCK};
	pxs_stream_stats st;
	uint64_t seq;
	pxs_view v;
	void *buf = NULL;
	int rc;

	FZ_CHECK(stream_allowed(pxs_stream_new(s, k, &o)), "stream_new");
	FZ_CHECK(stream_allowed(pxs_stream_append(s, k, "ab", 2, 5, &seq)),
		 "stream_append");
	rc = pxs_stream_reserve(s, k, 3, 5, &buf);
	FZ_CHECK(stream_allowed(rc), "stream_reserve returned %d", rc);
	if (rc == 0)
		memcpy(buf, "cde", 3);
	rc = pxs_stream_commit(s, k, &seq);
	FZ_CHECK(stream_allowed(rc) || (rc == -EINVAL && buf == NULL),
		 "stream_commit returned %d", rc);
	rc = pxs_stream_read(s, k, 0, 5, &v);
	FZ_CHECK(stream_allowed(rc), "stream_read returned %d", rc);
	if (rc == 0)
		check_view(s, 0, &v, "stream_read");
	FZ_CHECK(stream_allowed(pxs_stream_join(s, k, 0)), "stream_join");
	FZ_CHECK(stream_allowed(pxs_stream_stat(s, k, &st)), "stream_stat");
	rc = pxs_stream_take(s, k, "g", 5, &seq, &v);
	FZ_CHECK(stream_allowed(rc), "stream_take returned %d", rc);
	if (rc == 0)
		check_view(s, 0, &v, "stream_take");
	FZ_CHECK(stream_allowed(pxs_stream_ack(s, k, "g", 0)), "stream_ack");
	FZ_CHECK(stream_allowed(pxs_stream_leave(s, k)), "stream_leave");
	FZ_CHECK(stream_allowed(pxs_stream_end(s, k)), "stream_end");
}

static void
calls(pxs_store *s)
{
	pxs_key k = pxs_key_from_name("k", 1), ks[2] = {k, pxs_key_from_name("j", 1)};
	pxs_check_report rep;
	uint64_t cur = 0;
	pxs_entry e;
	pxs_stats st;
	size_t which;
	pxs_view v;
	int rc;

	check_view(s, pxs_get(s, k, &v), &v, "get");
	FZ_CHECK(allowed(pxs_exists(s, k)), "exists");
	FZ_CHECK(allowed(pxs_future_done(s, k)), "done");
	check_view(s, pxs_future_wait(s, k, 0, &v), &v, "wait 0");
	rc = pxs_future_wait(s, k, 5, &v);
	check_view(s, rc == -ETIMEDOUT ? -EAGAIN : rc, &v, "wait 5");
	FZ_CHECK(allowed(pxs_future_set(s, k, "x", 1)), "set");
	FZ_CHECK(allowed(pxs_future_claim(s, k)), "claim");
	FZ_CHECK(allowed(pxs_put_at(s, k, "y", 1)), "put_at");
	FZ_CHECK(allowed(pxs_evict(s, k)), "evict");
	FZ_CHECK(allowed(pxs_expire(s, k, 100)), "expire");
	rc = pxs_future_wait_any(s, ks, 2, 0, &which, &v);
	check_view(s, rc == -ETIMEDOUT ? -EAGAIN : rc, &v, "wait_any");
	for (int i = 0; i < 8 && (rc = pxs_list(s, &cur, &e)) == 1; i++)
		FZ_CHECK(e.state <= PXS_STATE_EVICTED, "list: state %d",
			 (int)e.state);
	FZ_CHECK(allowed(rc), "list returned %d", rc);
	rc = pxs_check(s, &rep);
	FZ_CHECK(allowed(rc), "check returned %d", rc);
	FZ_CHECK(allowed(pxs_stat(s, &st)), "stat");
	rc = pxs_reap(s);
	FZ_CHECK(rc >= 0 || allowed(rc), "reap returned %d", rc);
	stream_calls(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	struct server sv = {.data = data, .size = size};
	pxs_options o = {.flags = PXS_CREATE, .connect_timeout_ms = 500,
			 .command_timeout_ms = 200};
	char name[64];
	pthread_t t;
	pxs_store *s;

	sv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (sv.lfd < 0 || bind(sv.lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(sv.lfd, 8) < 0 ||
	    getsockname(sv.lfd, (struct sockaddr *)&a, &al) < 0) {
		if (sv.lfd >= 0)
			close(sv.lfd);
		return 0; /* no socket to be had: nothing to test */
	}
	sv.port = ntohs(a.sin_port);
	if (pthread_create(&t, NULL, serve, &sv) != 0) {
		close(sv.lfd);
		return 0;
	}
	snprintf(name, sizeof name, "redis://127.0.0.1:%d/fz", sv.port);
	if (pxs_open(name, &o, &s) == 0) {
		calls(s);
		pxs_close(s);
	}
	sv.stop = 1;
	pthread_join(t, NULL);
	close(sv.lfd);
	return 0;
}
