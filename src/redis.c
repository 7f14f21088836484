/* redis.c - the Redis backend: the same store, objects and futures kept in
 * a Redis server, over hiredis.
 *
 * Owns: the Redis handle (a small pool of connections, one owner
 * connection whose CLIENT ID identifies the handle as a future's owner),
 * the key layout, the server-side Lua scripts that make every change of an
 * object or future atomic, the blocking wait on a future's wake list, the
 * liveness check of owners, and the private copies that stand for views.
 * It calls hiredis and names.c only; docs/design.md ("The Redis backend")
 * explains the layout and the protocol.
 */
#include "internal.h"
#include "redis_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/*
 * KEYS. A store NAME owns every key that begins with "pxs:NAME:". Its
 * metadata is the hash "pxs:NAME:meta" {magic, layout}. An object or future
 * of key K (32 hex digits) is the hash "pxs:NAME:{K}" with the fields
 *
 *   s  state: 'v' value, 'p' pending, 'r' reserved, 'a' abandoned
 *   d  the value (states 'v')
 *   o  the owner: the CLIENT ID of its owner handle's owner connection,
 *      "" for an ownerless future (disowned); absent once set
 *   p  the owner's pid (for pxs_list); z  reserved bytes ('r')
 *   c  creation time, ns since the Epoch
 *
 * and, for futures, the list "pxs:NAME:{K}:w", its wake list; a key made
 * by put_at or future_new_at also has the list "pxs:NAME:{K}:n", its birth
 * list (one token, pushed when the key was made). "{K}" is a Redis hash
 * tag: the keys of one object hash to one cluster slot, so every script
 * touches one slot only. pxs_expire() gives all of them the same PEXPIRE.
 *
 * WAKING. A waiter that finds the future pending blocks in
 * BLMOVE w w LEFT RIGHT (a rotation of the wake list onto itself). Every
 * script that ends the pending state (set, commit, evict, abandon) pushes
 * one token onto the wake list in the same atomic step. The server hands
 * the token to the first blocked waiter, whose BLMOVE pushes it straight
 * back, which makes the list ready again for the next blocked waiter: one
 * push wakes them all, inside the server, with no polling. A waiter that
 * checks the state and then blocks cannot miss a set in between: the token
 * is already in the list and BLMOVE returns at once. A waiter on a key
 * that does not exist yet rotates its birth list the same way: the script
 * that makes the key pushes the token. A key that expires (Redis's own
 * TTL) pushes nothing; waiters find it gone at their next liveness check.
 *
 * OWNERS. A future's owner is a handle, named by the CLIENT ID of a
 * connection the handle opens at pxs_open() and keeps idle until
 * pxs_close(), subscribed to a channel nobody publishes to: a server's
 * `timeout` closes idle clients, but not Pub/Sub ones, so an owner that
 * only waits does not lose its futures to it. When the process dies the kernel closes the socket and the
 * server forgets the client at once. A waiter's BLMOVE times out every
 * LIVENESS_MS; it then reads the state again (an expired key pushed no
 * token) and asks the server whether the owner's client still exists
 * (CLIENT LIST ID). So a waiter issues three commands every LIVENESS_MS
 * (six a second), and reports a dead owner within LIVENESS_MS plus a round
 * trip. A script never decides liveness (scripts cannot run
 * CLIENT): a script that needs it returns "?<owner>", the caller checks,
 * and calls the script again with the owner it found alive, or abandons
 * the future (the abandon script compares the owner, so a claim in between
 * is never overruled).
 */
#define LIVENESS_MS PXS__REDIS_LIVENESS_MS
#define RECONNECT_MS 200 /* between attempts while a wait reconnects */
#define OPEN_WAIT_MS 10000 /* longest block of a wait for the store */
#define POOL_MAX 8 /* idle connections kept per handle */
#define LAYOUT "1"
#define MAGIC "proxyshm-redis"

struct conn {
	redisContext *c;
	struct conn *next;
};

/* The private copies standing for views: the replies that brought the
 * values, kept until pxs_release() (a second copy of a 1 MiB value cost
 * more than its transfer), in a table of slots, so that pxs_release()
 * validates a view in O(1) (priv[0] slot, priv[1] its generation, priv[2]
 * the address). */
struct vslot {
	redisReply *rep; /* NULL: a free slot */
	const char *buf; /* the value, inside rep */
	uint64_t gen;
	uint32_t next_free;
};


struct rstore {
	struct pxs__handle h; /* first: the backend seam */
	pthread_mutex_t lock; /* pool, owner, views, reservations */
	struct conn *pool;
	unsigned npool;
	redisContext *owner; /* idle; its CLIENT ID names this handle */
	char owner_id[24];   /* decimal CLIENT ID; "" until connected */
	pid_t pid;           /* process that opened the connections */
	struct timeval connect_tv, command_tv;
	struct vslot *views;
	uint32_t nviews, free_view;
	uint64_t view_gen;
	struct pxs__rresv *resv;
	struct rstore *next; /* in the process's list, for fork */
	char host[PXS__REDIS_HOST_MAX + 1];
	int port;
	char ns[PXS_NAME_MAX + 8]; /* "pxs:NAME:" */
	char url[PXS_STORE_NAME_MAX + 1];
};

static const struct pxs__backend redis_backend;

static struct rstore *
R(pxs_store *s)
{
	return (struct rstore *)(void *)s;
}

/* ---- fork ------------------------------------------------------------ */

/*
 * A child must not use its parent's sockets: both would read replies from
 * one stream. The atfork handlers hold every handle's lock across fork(),
 * so the child's copy of each is consistent; the first call of the child
 * sees pid != getpid() and drops the inherited connections (closing its
 * copies of the descriptors, which leaves the parent's connections alone)
 * before opening its own, owner connection included: the child is a new
 * owner, as with shared memory.
 */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rstore *all;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
fork_prepare(void)
{
	pthread_mutex_lock(&all_lock);
	for (struct rstore *r = all; r; r = r->next)
		pthread_mutex_lock(&r->lock);
}

static void
fork_after(void)
{
	for (struct rstore *r = all; r; r = r->next)
		pthread_mutex_unlock(&r->lock);
	pthread_mutex_unlock(&all_lock);
}

/* The process's pid, kept by the atfork handler of the child: a getpid()
 * per call cost a system call for nothing. */
static pid_t cur_pid;

static void
fork_child(void)
{
	cur_pid = getpid();
	fork_after();
}

static void
atfork_init(void)
{
	cur_pid = getpid();
	(void)pthread_atfork(fork_prepare, fork_after, fork_child);
}

static pid_t
my_pid(void)
{
	pthread_once(&atfork_once, atfork_init);
	return cur_pid;
}

/* ---- connections -------------------------------------------------------- */

/* The errno a failed context stands for. hiredis keeps only the text of
 * the system error, so it is matched against the texts of the errors a
 * connection can meet. */
static int
ctx_error(const redisContext *c)
{
	static const int io[] = {ECONNREFUSED, EHOSTUNREACH, ENETUNREACH,
				 ETIMEDOUT,    ECONNRESET,   EPIPE,
				 EAGAIN,       EINPROGRESS,  EADDRNOTAVAIL};

	if (c == NULL)
		return -ENOMEM;
	switch (c->err) {
	case REDIS_ERR_EOF:
		return -ECONNRESET;
	case REDIS_ERR_PROTOCOL:
		return -EPROTO;
	case REDIS_ERR_OOM:
		return -ENOMEM;
	case REDIS_ERR_IO:
		for (size_t i = 0; i < sizeof io / sizeof io[0]; i++) {
			const char *t = strerrordesc_np(io[i]);

			if (t && strstr(c->errstr, t)) {
				if (io[i] == EAGAIN || io[i] == EINPROGRESS)
					return -ETIMEDOUT; /* SO_RCVTIMEO */
				if (io[i] == ENETUNREACH ||
				    io[i] == EADDRNOTAVAIL)
					return -EHOSTUNREACH;
				return -io[i];
			}
		}
		return -EIO;
	default: /* name resolution and the like */
		return -EHOSTUNREACH;
	}
}

static int
connect_one(struct rstore *r, redisContext **out)
{
	redisContext *c = redisConnectWithTimeout(r->host, r->port,
						  r->connect_tv);
	int rc;

	if (c == NULL || c->err) {
		rc = ctx_error(c);
		redisFree(c);
		return rc;
	}
	if (redisSetTimeout(c, r->command_tv) != REDIS_OK) {
		rc = ctx_error(c);
		redisFree(c);
		return rc < 0 ? rc : -EIO;
	}
	*out = c;
	return 0;
}

static void *
command(redisContext *c, int argc, const char **argv, const size_t *len)
{
	return redisCommandArgv(c, argc, argv, len);
}

static int reply_error(const redisReply *rep);

/* SUBSCRIBE the owner connection @p c (CLIENT ID @p id) to its own
 * channel, "pxs:NAME:owner:ID", which exempts it from the server's idle
 * timeout. 0, or an error. */
static int
owner_subscribe(struct rstore *r, redisContext *c, long long id)
{
	char ch[PXS_NAME_MAX + 40];
	const char *argv[] = {"SUBSCRIBE", ch};
	size_t len[] = {9, (size_t)snprintf(ch, sizeof ch, "%sowner:%lld",
					    r->ns, id)};
	redisReply *rep = command(c, 2, argv, len);
	int rc = 0;

	if (rep == NULL)
		return ctx_error(c);
	if (rep->type == REDIS_REPLY_ERROR)
		rc = reply_error(rep);
	else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
		 rep->element[0]->type != REDIS_REPLY_STRING ||
		 strcmp(rep->element[0]->str, "subscribe") != 0)
		rc = -EPROTO;
	freeReplyObject(rep);
	return rc;
}

/* Open the owner connection and learn its CLIENT ID. Call locked. */
static int
owner_connect(struct rstore *r)
{
	static const char *argv[] = {"CLIENT", "ID"};
	static const size_t len[] = {6, 2};
	redisContext *c = NULL;
	redisReply *rep;
	long long id;
	int rc = connect_one(r, &c);

	if (rc < 0)
		return rc;
	rep = command(c, 2, argv, len);
	if (rep == NULL) {
		rc = ctx_error(c);
		redisFree(c);
		return rc;
	}
	if (rep->type != REDIS_REPLY_INTEGER || rep->integer <= 0) {
		freeReplyObject(rep);
		redisFree(c);
		return -EPROTO;
	}
	id = rep->integer;
	freeReplyObject(rep);
	rc = owner_subscribe(r, c, id);
	if (rc < 0) {
		redisFree(c);
		return rc;
	}
	redisFree(r->owner);
	r->owner = c;
	snprintf(r->owner_id, sizeof r->owner_id, "%lld", id);
	return 0;
}

/* Forget every inherited connection in a forked child. Call locked. */
static void
drop_inherited(struct rstore *r)
{
	struct conn *n;

	while ((n = r->pool) != NULL) {
		r->pool = n->next;
		redisFree(n->c);
		free(n);
	}
	r->npool = 0;
	redisFree(r->owner);
	r->owner = NULL;
	r->owner_id[0] = '\0';
	r->pid = my_pid();
}

/*
 * RECONNECTION. An idle connection has nothing to read: if its socket is
 * readable or hung up, the server closed it (a restart, a client timeout)
 * and it is replaced before use, the owner connection included, so the
 * first call after a restart works (on what the server kept) and new
 * futures get an owner the new server knows. One poll() without waiting
 * per call, on the owner connection and the pooled one together:
 * closed() returns which of them (bit 0 the owner, bit 1 @p n) to replace.
 */
static int
closed(const redisContext *owner, const struct conn *n)
{
	struct pollfd p[2] = {
		{.fd = owner ? owner->fd : -1, .events = POLLIN | POLLRDHUP},
		{.fd = n ? n->c->fd : -1, .events = POLLIN | POLLRDHUP},
	};

	if (poll(p, 2, 0) < 0) /* cannot tell: replace them */
		return (owner ? 1 : 0) | (n ? 2 : 0);
	return (p[0].revents ? 1 : 0) | (p[1].revents ? 2 : 0);
}

static struct conn *
pool_pop(struct rstore *r)
{
	struct conn *n = r->pool;

	if (n != NULL) {
		r->pool = n->next;
		r->npool--;
	}
	return n;
}

/* A connection for one command sequence, from the pool or new; the
 * handle's owner id is valid (and copied to @p id) on success. */
static int
conn_get(struct rstore *r, struct conn **out, char id[24])
{
	struct conn *n;
	int rc = 0;

	int m;

	pthread_mutex_lock(&r->lock);
	if (PXS_UNLIKELY(r->pid != my_pid()))
		drop_inherited(r);
	n = pool_pop(r);
	m = closed(r->owner, n);
	while (PXS_UNLIKELY(m & 2)) {
		redisFree(n->c);
		free(n);
		n = pool_pop(r);
		m = (m & 1) | (n != NULL ? closed(NULL, n) : 0);
	}
	if (PXS_UNLIKELY(r->owner == NULL || (m & 1))) {
		redisFree(r->owner);
		r->owner = NULL;
		rc = owner_connect(r);
	}
	if (rc == 0)
		memcpy(id, r->owner_id, sizeof r->owner_id);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		goto fail;
	if (n == NULL) {
		n = calloc(1, sizeof *n);
		if (n == NULL)
			return -ENOMEM;
		rc = connect_one(r, &n->c);
		if (rc < 0)
			goto fail;
	}
	*out = n;
	return 0;
fail:
	if (n != NULL) {
		redisFree(n->c);
		free(n);
	}
	return rc;
}

/* Give a connection back: one that failed is closed (a reply may still be
 * on its way), the others kept for the next call. */
static void
conn_put(struct rstore *r, struct conn *n)
{
	pthread_mutex_lock(&r->lock);
	if (n->c->err == 0 && r->npool < POOL_MAX && r->pid == my_pid()) {
		n->next = r->pool;
		r->pool = n;
		r->npool++;
		n = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (n != NULL) {
		redisFree(n->c);
		free(n);
	}
}

/* Run a command; NULL reply means the connection failed (*rc set). An
 * error reply is mapped here too: WRONGTYPE and the like mean a key of
 * the namespace that is not ours (-EPROTO), OOM a full server. */
static redisReply *
run(struct conn *n, int argc, const char **argv, const size_t *len, int *rc)
{
	redisReply *rep = command(n->c, argc, argv, len);

	if (rep == NULL) {
		*rc = ctx_error(n->c);
		return NULL;
	}
	*rc = 0;
	return rep;
}

static int
reply_error(const redisReply *rep)
{
	if (strncmp(rep->str, "OOM", 3) == 0)
		return -ENOSPC;
	if (strncmp(rep->str, "LOADING", 7) == 0 ||
	    strncmp(rep->str, "BUSY", 4) == 0)
		return -EAGAIN;
	if (strncmp(rep->str, "READONLY", 8) == 0)
		return -EROFS;
	return -EPROTO;
}

/* ---- keys -------------------------------------------------------------- */

struct keys {
	char obj[PXS_NAME_MAX + 8 + 2 + 32 + 1];
	char wake[PXS_NAME_MAX + 8 + 2 + 32 + 2 + 1];
	char birth[PXS_NAME_MAX + 8 + 2 + 32 + 2 + 1];
	size_t obj_len, wake_len, birth_len;
};

static void
make_keys(const struct rstore *r, pxs_key k, struct keys *ks)
{
	char hex[PXS_KEY_STRLEN];

	pxs_key_format(k, hex);
	ks->obj_len = (size_t)snprintf(ks->obj, sizeof ks->obj, "%s{%s}",
				       r->ns, hex);
	ks->wake_len = (size_t)snprintf(ks->wake, sizeof ks->wake,
					"%s{%s}:w", r->ns, hex);
	ks->birth_len = (size_t)snprintf(ks->birth, sizeof ks->birth,
					 "%s{%s}:n", r->ns, hex);
}

/* The start of every call on one key: check it, name its Redis keys, take
 * a connection. */
static int
begin(struct rstore *r, pxs_key key, struct keys *ks, struct conn **n,
      char id[24])
{
	if (pxs__key_is_zero(key))
		return -EINVAL;
	make_keys(r, key, ks);
	return conn_get(r, n, id);
}

/* ---- scripts ------------------------------------------------------------ */

/*
 * Each script takes KEYS[1] (the object hash), KEYS[2] (its wake list) and
 * KEYS[3] (its birth list) and returns a status word: "OK", an errno name,
 * or "?<owner>" (check that owner's liveness and call again with it as
 * ARGV "alive"). Any other state string is "EPROTO": a key of the
 * namespace written by someone else.
 */
enum script {
	S_OPEN,
	S_PUT_AT,
	S_EVICT,
	S_NEW,
	S_SET,
	S_RESERVE,
	S_COMMIT,
	S_CLAIM,
	S_DISOWN,
	S_ABANDON,
	S_EXPIRE,
	S_N
};

#define LUA_STATE                                                    \
	"local h = redis.call('hmget', KEYS[1], 's', 'o') "          \
	"local s, o = h[1], h[2] "                                   \
	"if not s then return 'ENOENT' end "                         \
	"if s ~= 'v' and s ~= 'p' and s ~= 'r' and s ~= 'a' then "   \
	"return 'EPROTO' end "
/* A token for the waiters; the wake list lives as long as the object. */
#define LUA_WAKE(tok)                                                \
	"redis.call('rpush', KEYS[2], '" tok "') "                   \
	"local t = redis.call('pttl', KEYS[1]) "                     \
	"if t > 0 then redis.call('pexpire', KEYS[2], t) end "
/* The start of a script that makes a key (ARGV me, alive): a key in use
 * is EEXIST, a pending future of an owner not known alive is "?<owner>";
 * an abandoned future is taken over (its waiters were told). */
#define LUA_FREE                                                     \
	"local h = redis.call('hmget', KEYS[1], 's', 'o') "          \
	"local s, o = h[1], h[2] "                                   \
	"if (s == 'p' or s == 'r') and o and o ~= '' and o ~= ARGV[1] " \
	"and o ~= ARGV[2] then return '?' .. o end "                 \
	"if s ~= 'a' and redis.call('exists', KEYS[1]) == 1 then "   \
	"return 'EEXIST' end "                                       \
	"redis.call('del', KEYS[1], KEYS[2]) "
/* The end of it: one token on the birth list wakes who waited for it. */
#define LUA_BORN                                                     \
	"redis.call('del', KEYS[3]) redis.call('rpush', KEYS[3], 'n') "  \
	"return 'OK'"

static const char *const scripts[S_N] = {
	/* S_OPEN: KEYS[1] meta; ARGV create, excl */
	[S_OPEN] = "local m = redis.call('hget', KEYS[1], 'magic') "
		   "if not m then "
		   "if redis.call('exists', KEYS[1]) == 1 then return 'EPROTO' end "
		   "if ARGV[1] ~= '1' then return 'ENOENT' end "
		   "redis.call('hset', KEYS[1], 'magic', '" MAGIC "', 'layout', '" LAYOUT "') "
		   "return 'NEW' end "
		   "if m ~= '" MAGIC "' or redis.call('hget', KEYS[1], 'layout') ~= '" LAYOUT "' "
		   "then return 'EPROTO' end "
		   "if ARGV[2] == '1' then return 'EEXIST' end return 'OK'",
	/* S_PUT_AT: ARGV me, alive, data, ctime */
	[S_PUT_AT] = LUA_FREE "redis.call('hset', KEYS[1], 's', 'v', 'd', ARGV[3], 'c', ARGV[4]) "
		     LUA_BORN,
	/* S_EVICT: a pending future's waiters get a token, kept a minute for
	 * those between their check and their BLMOVE. */
	[S_EVICT] = LUA_STATE "redis.call('del', KEYS[1], KEYS[2], KEYS[3]) "
		    "if s == 'p' or s == 'r' then " LUA_WAKE("c")
		    "redis.call('pexpire', KEYS[2], 60000) end return 'OK'",
	/* S_NEW: ARGV me (the owner), alive, pid, ctime */
	[S_NEW] = LUA_FREE "redis.call('hset', KEYS[1], 's', 'p', 'o', ARGV[1], 'p', ARGV[3], 'c', ARGV[4]) "
		  LUA_BORN,
	/* S_SET: ARGV me, alive, data */
	[S_SET] = LUA_STATE "if s == 'v' then return 'EALREADY' end "
		  "if s == 'r' then return 'EBUSY' end "
		  "if s == 'a' then return 'EOWNERDEAD' end "
		  "if o ~= '' and o ~= ARGV[1] and o ~= ARGV[2] then return '?' .. o end "
		  "redis.call('hset', KEYS[1], 's', 'v', 'd', ARGV[3]) "
		  "redis.call('hdel', KEYS[1], 'o', 'p') " LUA_WAKE("v") "return 'OK'",
	/* S_RESERVE: ARGV me, alive, size, pid */
	[S_RESERVE] = LUA_STATE "if s == 'v' then return 'EALREADY' end "
		      "if s == 'r' then return 'EBUSY' end "
		      "if s == 'a' then return 'EOWNERDEAD' end "
		      "if o ~= '' and o ~= ARGV[1] and o ~= ARGV[2] then return '?' .. o end "
		      "redis.call('hset', KEYS[1], 's', 'r', 'o', ARGV[1], 'z', ARGV[3], 'p', ARGV[4]) "
		      "return 'OK'",
	/* S_COMMIT: ARGV me, data or nothing (no reservation here) */
	[S_COMMIT] = LUA_STATE "if s == 'v' then return 'EALREADY' end "
		     "if s == 'p' then return 'EAGAIN' end "
		     "if s == 'a' then return 'EOWNERDEAD' end "
		     "if o ~= ARGV[1] or ARGV[2] == nil then return 'EPERM' end "
		     "redis.call('hset', KEYS[1], 's', 'v', 'd', ARGV[2]) "
		     "redis.call('hdel', KEYS[1], 'o', 'p', 'z') " LUA_WAKE("v") "return 'OK'",
	/* S_CLAIM: ARGV me, alive, pid */
	[S_CLAIM] = LUA_STATE "if s == 'v' then return 'EALREADY' end "
		    "if s == 'a' then return 'EOWNERDEAD' end "
		    "if s == 'r' then if o == ARGV[1] then return 'OK' end return 'EBUSY' end "
		    "if o ~= '' and o ~= ARGV[1] and o ~= ARGV[2] then return '?' .. o end "
		    "redis.call('hset', KEYS[1], 'o', ARGV[1], 'p', ARGV[3]) return 'OK'",
	/* S_DISOWN: ARGV me, alive */
	[S_DISOWN] = LUA_STATE "if s == 'v' then return 'EALREADY' end "
		     "if s == 'a' then return 'EOWNERDEAD' end "
		     "if s == 'r' then return 'EBUSY' end "
		     "if o == '' then return 'OK' end "
		     "if o == ARGV[1] then redis.call('hset', KEYS[1], 'o', '', 'p', '0') "
		     "return 'OK' end "
		     "if o == ARGV[2] then return 'EPERM' end return '?' .. o",
	/* S_ABANDON: ARGV the owner found dead */
	[S_ABANDON] = LUA_STATE "if s == 'a' then return 'OK' end "
		      "if (s ~= 'p' and s ~= 'r') or o ~= ARGV[1] then return 'NO' end "
		      "redis.call('hset', KEYS[1], 's', 'a') "
		      "redis.call('hdel', KEYS[1], 'z') " LUA_WAKE("a") "return 'OK'",
	/* S_EXPIRE: ARGV milliseconds (> 0), or < 0 to keep the keys */
	[S_EXPIRE] = LUA_STATE "for i = 1, 3 do "
		     "if tonumber(ARGV[1]) < 0 then redis.call('persist', KEYS[i]) "
		     "else redis.call('pexpire', KEYS[i], ARGV[1]) end end return 'OK'",
};

/* SHA1 of each script, from SCRIPT LOAD at the first pxs_open(). */
static char script_sha[S_N][41];
static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

/* SCRIPT LOAD @p src into @p sha unless it holds its SHA1 already; a
 * copy of it goes to @p out (read under the lock: threads share @p sha). */
static int
load_one(struct conn *n, const char *src, char sha[41], char out[41])
{
	const char *argv[] = {"SCRIPT", "LOAD", src};
	size_t len[] = {6, 4, strlen(src)};
	redisReply *rep;
	int rc = 0;

	pthread_mutex_lock(&sha_lock);
	if (sha[0] == '\0') {
		rep = run(n, 3, argv, len, &rc);
		if (rep != NULL) {
			if (rep->type == REDIS_REPLY_STRING && rep->len == 40)
				memcpy(sha, rep->str, 41);
			else
				rc = rep->type == REDIS_REPLY_ERROR
					     ? reply_error(rep)
					     : -EPROTO;
			freeReplyObject(rep);
		}
	}
	memcpy(out, sha, 41);
	pthread_mutex_unlock(&sha_lock);
	return rc;
}

static int
load_scripts(struct conn *n)
{
	int rc = 0;

	char unused[41];

	for (int i = 0; i < S_N && rc == 0; i++)
		rc = load_one(n, scripts[i], script_sha[i], unused);
	return rc;
}

/* EVALSHA @p sha (loaded first when still "") with @p argv[2..argc); on
 * NOSCRIPT (a restarted server) EVAL @p src, which caches it again.
 * argv[0] and argv[1] are filled here. The reply, or NULL with *rc set. */
static redisReply *
eval(struct conn *n, const char *src, char sha[41], int argc,
     const char **argv, size_t *len, int *rc)
{
	redisReply *rep;
	char h[41];

	if ((*rc = load_one(n, src, sha, h)) < 0)
		return NULL;
	argv[0] = "EVALSHA";
	len[0] = 7;
	argv[1] = h;
	len[1] = 40;
	rep = run(n, argc, argv, len, rc);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		argv[0] = "EVAL";
		len[0] = 4;
		argv[1] = src;
		len[1] = strlen(src);
		rep = run(n, argc, argv, len, rc);
	}
	return rep;
}

static const struct {
	const char *name;
	int err;
} status_words[] = {
	{"ENOENT", -ENOENT},	 {"EEXIST", -EEXIST}, {"EALREADY", -EALREADY},
	{"EBUSY", -EBUSY},	 {"EAGAIN", -EAGAIN}, {"EPERM", -EPERM},
	{"EOWNERDEAD", -EOWNERDEAD}, {"EPROTO", -EPROTO},
	{"NEW", 3}, /* S_OPEN made the store */
};

/* The outcome of a script: 0 ("OK"), a negative errno, 1 ("?<owner>":
 * @p owner set), 2 ("NO") or 3 ("NEW"). */
static int
script_status(const redisReply *rep, char owner[24])
{
	if (rep->type == REDIS_REPLY_ERROR)
		return reply_error(rep);
	if (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_STATUS)
		return -EPROTO;
	if (rep->len == 2 && memcmp(rep->str, "OK", 2) == 0)
		return 0;
	if (rep->len == 2 && memcmp(rep->str, "NO", 2) == 0)
		return 2;
	if (rep->len >= 2 && rep->len < 24 && rep->str[0] == '?') {
		memcpy(owner, rep->str + 1, rep->len - 1);
		owner[rep->len - 1] = '\0';
		return 1;
	}
	for (size_t i = 0; i < sizeof status_words / sizeof status_words[0];
	     i++)
		if (strlen(status_words[i].name) == rep->len &&
		    memcmp(status_words[i].name, rep->str, rep->len) == 0)
			return status_words[i].err;
	return -EPROTO;
}

/* Script @p sc with its three keys and @p nargs arguments (see eval()). */
#define MAX_ARGS 4
static int
script(struct conn *n, enum script sc, const struct keys *ks, int nargs,
       const char **args, const size_t *alen, char owner[24])
{
	const char *argv[6 + MAX_ARGS];
	size_t len[6 + MAX_ARGS];
	redisReply *rep;
	int rc;

	argv[2] = "3";
	len[2] = 1;
	argv[3] = ks->obj;
	len[3] = ks->obj_len;
	argv[4] = ks->wake;
	len[4] = ks->wake_len;
	argv[5] = ks->birth;
	len[5] = ks->birth_len;
	for (int i = 0; i < nargs; i++) {
		argv[6 + i] = args[i];
		len[6 + i] = alen[i];
	}
	rep = eval(n, scripts[sc], script_sha[sc], 6 + nargs, argv, len, &rc);
	if (rep == NULL)
		return rc;
	rc = script_status(rep, owner);
	freeReplyObject(rep);
	return rc;
}

/* Is the client @p id connected? 1, 0 or a negative errno. */
static int
client_alive(struct conn *n, const char *id)
{
	const char *argv[] = {"CLIENT", "LIST", "ID", id};
	size_t len[] = {6, 4, 2, strlen(id)};
	char want[32];
	redisReply *rep;
	int rc;

	rep = run(n, 4, argv, len, &rc);
	if (rep == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_ERROR)
		rc = reply_error(rep);
	else if (rep->type != REDIS_REPLY_STRING)
		rc = -EPROTO;
	else {
		snprintf(want, sizeof want, "id=%s ", id);
		rc = strncmp(rep->str, want, strlen(want)) == 0;
	}
	freeReplyObject(rep);
	return rc;
}

/* Abandon the future if @p owner is still its (dead) owner: 0 done (or
 * abandoned already), 2 the owner changed meanwhile, or an error. */
static int
abandon(struct conn *n, const struct keys *ks, const char *owner)
{
	const char *args[] = {owner};
	size_t alen[] = {strlen(owner)};
	char unused[24];

	return script(n, S_ABANDON, ks, 1, args, alen, unused);
}

/*
 * Run a script that may ask about its owner's liveness: ARGV[1] is always
 * the caller's id, ARGV[2] the owner found alive ("" at first), then the
 * script's own @p args. A dead owner abandons the future: -EOWNERDEAD, or,
 * for the scripts that make a key (put_at, new), a second try that takes
 * the abandoned key over, as a restarted producer expects.
 */
static int
owned_script(struct conn *n, enum script sc, const struct keys *ks,
	     const char *me, int nargs, const char **args, const size_t *alen)
{
	const char *a[MAX_ARGS];
	size_t l[MAX_ARGS];
	char owner[24], alive[24] = "";
	int rc;

	a[0] = me;
	l[0] = strlen(me);
	for (int i = 0; i < nargs; i++) {
		a[2 + i] = args[i];
		l[2 + i] = alen[i];
	}
	for (int tries = 0; tries < 8; tries++) {
		a[1] = alive;
		l[1] = strlen(alive);
		rc = script(n, sc, ks, 2 + nargs, a, l, owner);
		if (rc != 1)
			return rc;
		rc = client_alive(n, owner);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			memcpy(alive, owner, sizeof alive);
			continue;
		}
		rc = abandon(n, ks, owner);
		if (rc < 0)
			return rc;
		if (rc == 0 && sc != S_PUT_AT && sc != S_NEW)
			return -EOWNERDEAD;
		/* taken over next, or the owner changed meanwhile: again */
	}
	return -EAGAIN;
}

/* ---- views ------------------------------------------------------------- */

/* Make @p v a view of @p data, which lies in the reply @p *rep: the view
 * takes the reply over (*rep = NULL) on success. */
static int
view_make(struct rstore *r, redisReply **rep, const char *data, size_t size,
	  pxs_view *v)
{
	uint32_t i;

	pthread_mutex_lock(&r->lock);
	if (r->free_view == UINT32_MAX) {
		uint32_t n = r->nviews ? r->nviews * 2 : 16;
		struct vslot *t = n > r->nviews ? realloc(r->views, n * sizeof *t)
						: NULL;

		if (t == NULL) {
			pthread_mutex_unlock(&r->lock);
			return -ENOMEM;
		}
		for (uint32_t j = r->nviews; j < n; j++) {
			t[j].rep = NULL;
			t[j].buf = NULL;
			t[j].gen = 0;
			t[j].next_free = j + 1 < n ? j + 1 : UINT32_MAX;
		}
		r->views = t;
		r->free_view = r->nviews;
		r->nviews = n;
	}
	i = r->free_view;
	r->free_view = r->views[i].next_free;
	r->views[i].rep = *rep;
	r->views[i].buf = data;
	r->views[i].gen = ++r->view_gen;
	v->priv[0] = i;
	v->priv[1] = r->views[i].gen;
	v->priv[2] = (uint64_t)(uintptr_t)data;
	pthread_mutex_unlock(&r->lock);
	*rep = NULL;
	v->data = data;
	v->size = size;
	return 0;
}

static int
r_release(pxs_store *s, pxs_view *v)
{
	struct rstore *r = R(s);
	redisReply *rep = NULL;
	uint64_t i;

	if (v == NULL || (v->data == NULL && v->priv[1] == 0))
		return 0;
	i = v->priv[0];
	pthread_mutex_lock(&r->lock);
	if (i < r->nviews && r->views[i].rep != NULL &&
	    r->views[i].gen == v->priv[1] &&
	    (uintptr_t)r->views[i].buf == v->priv[2] &&
	    (const void *)r->views[i].buf == v->data) {
		rep = r->views[i].rep;
		r->views[i].rep = NULL;
		r->views[i].buf = NULL;
		r->views[i].next_free = r->free_view;
		r->free_view = (uint32_t)i;
	}
	pthread_mutex_unlock(&r->lock);
	if (rep == NULL)
		return -EINVAL;
	freeReplyObject(rep);
	memset(v, 0, sizeof *v);
	return 0;
}

/* ---- opening ------------------------------------------------------------ */

static struct timeval
tv_ms(uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	return tv;
}

static void
rstore_free(struct rstore *r)
{
	struct conn *n;
	struct pxs__rresv *q;

	while ((n = r->pool) != NULL) {
		r->pool = n->next;
		redisFree(n->c);
		free(n);
	}
	redisFree(r->owner);
	for (uint32_t i = 0; i < r->nviews; i++)
		freeReplyObject(r->views[i].rep);
	free(r->views);
	while ((q = r->resv) != NULL) {
		r->resv = q->next;
		pxs__redis_resv_free(q);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* A handle that is not yet in the process's list: for pxs_open() and
 * pxs_unlink(). */
static struct rstore *
rstore_new(const struct pxs__redis_url *u, const pxs_options *o)
{
	struct rstore *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->h.be = &redis_backend;
	pthread_mutex_init(&r->lock, NULL);
	r->pid = my_pid();
	r->free_view = UINT32_MAX;
	strcpy(r->host, u->host);
	r->port = u->port;
	snprintf(r->ns, sizeof r->ns, "pxs:%s:", u->name);
	r->connect_tv = tv_ms(o && o->connect_timeout_ms
				      ? o->connect_timeout_ms
				      : PXS_REDIS_CONNECT_TIMEOUT_MS);
	r->command_tv = tv_ms(o && o->command_timeout_ms
				      ? o->command_timeout_ms
				      : PXS_REDIS_COMMAND_TIMEOUT_MS);
	return r;
}

/*
 * OPENING, AND WAITING FOR A STORE. The open script checks (or makes) the
 * metadata hash. A store it makes gets a token on "pxs:NAME:meta:n" (one
 * RPUSH after the script: the list hashes to another slot than the
 * metadata). An attacher with #pxs_options.wait_ms that finds no store
 * rotates that list as a waiter rotates a wake list, for what is left of
 * wait_ms (in blocks of OPEN_WAIT_MS), and tries again when woken: no
 * polling, and a store made between its try and its block is not missed,
 * since the token is already there. pxs_unlink() removes the list with the
 * store.
 */
static int block_on(struct rstore *r, struct conn *n, const char *l,
		    size_t ll, long ms, const struct keys *then,
		    redisReply **then_rep);
static long ms_left(uint64_t deadline, long cap);

static int
open_meta(struct rstore *r, struct conn *n, const pxs_options *o)
{
	bool create = o && (o->flags & PXS_CREATE);
	bool wait = o && !create && o->wait_ms != 0;
	uint64_t deadline = 0;
	struct keys ks;
	char meta_n[sizeof ks.obj + 2];
	char unused[24];
	int rc;

	ks.obj_len = (size_t)snprintf(ks.obj, sizeof ks.obj, "%smeta", r->ns);
	memcpy(ks.wake, ks.obj, ks.obj_len + 1); /* unused */
	ks.wake_len = ks.obj_len;
	memcpy(ks.birth, ks.obj, ks.obj_len + 1); /* unused */
	ks.birth_len = ks.obj_len;
	snprintf(meta_n, sizeof meta_n, "%s:n", ks.obj);
	if (wait && o->wait_ms > 0)
		deadline = pxs__now_ns(CLOCK_MONOTONIC) +
			   (uint64_t)o->wait_ms * 1000000u;
	for (;;) {
		const char *args[] = {create ? "1" : "0",
				      o && (o->flags & PXS_EXCL) ? "1" : "0"};
		size_t alen[] = {1, 1};
		long ms = OPEN_WAIT_MS;

		rc = script(n, S_OPEN, &ks, 2, args, alen, unused);
		if (rc == 3) {
			const char *argv[] = {"RPUSH", meta_n, "n"};
			size_t len[] = {5, strlen(meta_n), 1};
			redisReply *rep = run(n, 3, argv, len, &rc);

			if (rep != NULL)
				rc = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : 0;
			freeReplyObject(rep);
			return rc;
		}
		if (rc != -ENOENT || !wait)
			break;
		if (o->wait_ms > 0) {
			ms = ms_left(deadline, OPEN_WAIT_MS);
			if (ms == 0)
				break;
		}
		rc = block_on(r, n, meta_n, strlen(meta_n), ms, NULL, NULL);
		if (rc < 0)
			break;
	}
	return rc > 0 ? -EPROTO : rc;
}

int
pxs__redis_open(const struct pxs__redis_url *u, const char *name,
		const pxs_options *o, pxs_store **out)
{
	struct rstore *r;
	struct conn *n;
	char id[24];
	int rc;

	if (o && ((o->flags & ~(PXS_CREATE | PXS_EXCL)) ||
		  ((o->flags & PXS_EXCL) && !(o->flags & PXS_CREATE)) ||
		  o->spin_us > PXS_MAX_SPIN_US))
		return -EINVAL;
	pthread_once(&atfork_once, atfork_init);
	r = rstore_new(u, o);
	if (r == NULL)
		return -ENOMEM;
	strcpy(r->url, name); /* fits: pxs__redis_url_parse measured it */
	rc = conn_get(r, &n, id);
	if (rc < 0) {
		rstore_free(r);
		return rc;
	}
	rc = load_scripts(n);
	if (rc == 0)
		rc = open_meta(r, n, o);
	conn_put(r, n);
	if (rc < 0) {
		rstore_free(r);
		return rc;
	}
	pthread_mutex_lock(&all_lock);
	r->next = all;
	all = r;
	pthread_mutex_unlock(&all_lock);
	*out = (pxs_store *)(void *)r;
	return 0;
}

static int
r_close(pxs_store *s)
{
	struct rstore *r = R(s), **pp;

	pthread_mutex_lock(&all_lock);
	for (pp = &all; *pp != NULL && *pp != r; pp = &(*pp)->next)
		;
	if (*pp == r)
		*pp = r->next;
	pthread_mutex_unlock(&all_lock);
	/* Closing the owner connection abandons the pending futures it owns:
	 * their waiters see the owner gone at their next liveness check. */
	rstore_free(r);
	return 0;
}

static const char *
r_store_name(const pxs_store *s)
{
	return ((const struct rstore *)(const void *)s)->url;
}

/* ---- objects ------------------------------------------------------------ */

static void
fmt_u64(char buf[24], uint64_t x, size_t *len)
{
	*len = (size_t)snprintf(buf, 24, "%llu", (unsigned long long)x);
}

static int key_script(pxs_store *s, pxs_key key, enum script sc,
		      bool as_owner, int nargs, const char **args,
		      const size_t *alen);

static int
r_put_at(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	char ct[24];
	size_t ctl;

	if (data == NULL && size > 0)
		return -EINVAL;
	fmt_u64(ct, pxs__now_ns(CLOCK_REALTIME), &ctl);
	{
		const char *args[] = {size ? data : "", ct};
		size_t alen[] = {size, ctl};

		return key_script(s, key, S_PUT_AT, true, 2, args, alen);
	}
}

/* A Redis store keeps no names (its keys are hashed names too): a named
 * put is the put under the name's key. */
static int
r_put_named(pxs_store *s, const char *name, const void *data, size_t size,
	    pxs_key *key_out)
{
	pxs_key key;
	int rc = pxs__named_key(name, &key);

	if (rc < 0)
		return rc;
	if ((rc = r_put_at(s, key, data, size)) == 0 && key_out)
		*key_out = key;
	return rc;
}

static int
r_key_name(pxs_store *s, pxs_key key, char *buf, size_t len)
{
	if (pxs__key_is_zero(key) || !buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	return 0;
}

/* A fresh random key cannot be in use: the store is one HSET, without a
 * script, the one round trip a raw SET costs. */
static int
r_put(pxs_store *s, const void *data, size_t size, pxs_key *key_out)
{
	struct rstore *r = R(s);
	struct conn *n;
	struct keys ks;
	char id[24], ct[24];
	size_t ctl;
	redisReply *rep;
	pxs_key k;
	int rc;

	if (key_out == NULL || (data == NULL && size > 0))
		return -EINVAL;
	k = pxs__key_random();
	make_keys(r, k, &ks);
	fmt_u64(ct, pxs__now_ns(CLOCK_REALTIME), &ctl);
	rc = conn_get(r, &n, id);
	if (rc < 0)
		return rc;
	{
		const char *argv[] = {"HSET", ks.obj, "s", "v", "d",
				      size ? data : "", "c", ct};
		size_t len[] = {4, ks.obj_len, 1, 1, 1, size, 1, ctl};

		rep = run(n, 8, argv, len, &rc);
	}
	if (rep != NULL) {
		if (rep->type == REDIS_REPLY_ERROR)
			rc = reply_error(rep);
		else if (rep->type != REDIS_REPLY_INTEGER)
			rc = -EPROTO;
		freeReplyObject(rep);
	}
	conn_put(r, n);
	if (rc == 0)
		*key_out = k;
	return rc;
}

/* The fields s, d, o of an object, checked: 'v' with its value, 'p'/'r'
 * with its owner, 'a', or absent. */
struct fields {
	redisReply *rep;
	char state; /* 0 absent */
	const char *data;
	size_t size;
	char owner[24]; /* "" ownerless */
};

/* The command whose reply read_fields() checks. */
#define FIELDS_ARGC 5
static void
fields_cmd(const struct keys *ks, const char *argv[FIELDS_ARGC],
	   size_t len[FIELDS_ARGC])
{
	static const char *const a[] = {"HMGET", NULL, "s", "d", "o"};

	for (int i = 0; i < FIELDS_ARGC; i++) {
		argv[i] = i == 1 ? ks->obj : a[i];
		len[i] = i == 1 ? ks->obj_len : strlen(a[i]);
	}
}

/* Read (or, with @p got, take the reply already read of) the fields. */
static int
read_fields(struct conn *n, const struct keys *ks, struct fields *f,
	    redisReply *got)
{
	const char *argv[FIELDS_ARGC];
	size_t len[FIELDS_ARGC];
	redisReply *rep = got, *e;
	int rc;

	memset(f, 0, sizeof *f);
	if (rep == NULL) {
		fields_cmd(ks, argv, len);
		rep = run(n, FIELDS_ARGC, argv, len, &rc);
		if (rep == NULL)
			return rc;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		rc = reply_error(rep);
		goto bad;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
		goto proto;
	for (size_t i = 0; i < 3; i++)
		if (rep->element[i]->type != REDIS_REPLY_STRING &&
		    rep->element[i]->type != REDIS_REPLY_NIL)
			goto proto;
	e = rep->element[0];
	if (e->type == REDIS_REPLY_NIL) {
		/* No state: absent, unless other fields are there. */
		if (rep->element[1]->type != REDIS_REPLY_NIL ||
		    rep->element[2]->type != REDIS_REPLY_NIL)
			goto proto;
		freeReplyObject(rep);
		return 0;
	}
	if (e->len != 1 || !strchr("vpra", e->str[0]))
		goto proto;
	f->state = e->str[0];
	e = rep->element[1];
	if (f->state == 'v') {
		if (e->type != REDIS_REPLY_STRING)
			goto proto;
		f->data = e->str;
		f->size = e->len;
	}
	e = rep->element[2];
	if (f->state == 'p' || f->state == 'r') {
		if (e->type != REDIS_REPLY_STRING || e->len >= sizeof f->owner)
			goto proto;
		for (size_t i = 0; i < e->len; i++)
			if (e->str[i] < '0' || e->str[i] > '9')
				goto proto;
		memcpy(f->owner, e->str, e->len);
	}
	f->rep = rep;
	return 0;
proto:
	rc = -EPROTO;
bad:
	freeReplyObject(rep);
	return rc;
}

/* A pending or reserved future: -EAGAIN, or -EOWNERDEAD when its owner
 * is gone (which abandons it). */
static int
pending_status(struct conn *n, const struct keys *ks, const struct fields *f,
	       const char *me)
{
	int rc;

	if (f->owner[0] == '\0' || strcmp(f->owner, me) == 0)
		return -EAGAIN;
	rc = client_alive(n, f->owner);
	if (rc != 0)
		return rc < 0 ? rc : -EAGAIN;
	rc = abandon(n, ks, f->owner);
	if (rc < 0)
		return rc;
	return rc == 0 ? -EOWNERDEAD : -EAGAIN;
}

static int
r_get(pxs_store *s, pxs_key key, pxs_view *v)
{
	struct rstore *r = R(s);
	struct fields f;
	struct conn *n;
	struct keys ks;
	char id[24];
	int rc;

	if (v == NULL || pxs__key_is_zero(key))
		return -EINVAL;
	make_keys(r, key, &ks);
	rc = conn_get(r, &n, id);
	if (rc < 0)
		return rc;
	rc = read_fields(n, &ks, &f, NULL);
	if (rc == 0) {
		switch (f.state) {
		case 0:
			rc = -ENOENT;
			break;
		case 'v':
			rc = view_make(r, &f.rep, f.data, f.size, v);
			break;
		case 'a':
			rc = -EOWNERDEAD;
			break;
		default:
			rc = pending_status(n, &ks, &f, id);
		}
		freeReplyObject(f.rep);
	}
	conn_put(r, n);
	return rc;
}

static int
r_exists(pxs_store *s, pxs_key key)
{
	struct rstore *r = R(s);
	struct conn *n;
	struct keys ks;
	redisReply *rep;
	char id[24];
	int rc;

	rc = begin(r, key, &ks, &n, id);
	if (rc < 0)
		return rc;
	{
		const char *argv[] = {"HGET", ks.obj, "s"};
		size_t len[] = {4, ks.obj_len, 1};

		rep = run(n, 3, argv, len, &rc);
	}
	if (rep != NULL) {
		if (rep->type == REDIS_REPLY_NIL)
			rc = 0;
		else if (rep->type == REDIS_REPLY_STRING && rep->len == 1 &&
			 strchr("vpra", rep->str[0]))
			rc = rep->str[0] == 'v';
		else if (rep->type == REDIS_REPLY_ERROR)
			rc = reply_error(rep);
		else
			rc = -EPROTO;
		freeReplyObject(rep);
	}
	conn_put(r, n);
	return rc;
}

/* Run script @p sc on @p key with @p nargs args: one connection, taken
 * and given back. An owner-aware script (@p as_owner) is given the
 * handle's owner id as "me" and may ask about an owner's liveness; any
 * other answers with a status alone. */
static int
key_script(pxs_store *s, pxs_key key, enum script sc, bool as_owner,
	   int nargs, const char **args, const size_t *alen)
{
	struct rstore *r = R(s);
	struct conn *n;
	struct keys ks;
	char id[24], unused[24];
	int rc;

	rc = begin(r, key, &ks, &n, id);
	if (rc < 0)
		return rc;
	rc = as_owner ? owned_script(n, sc, &ks, id, nargs, args, alen)
		      : script(n, sc, &ks, nargs, args, alen, unused);
	if (rc > 0)
		rc = -EPROTO;
	conn_put(r, n);
	return rc;
}

static int
r_evict(pxs_store *s, pxs_key key)
{
	return key_script(s, key, S_EVICT, false, 0, NULL, NULL);
}

/* ---- futures ------------------------------------------------------------ */

static int
r_future_new_at(pxs_store *s, pxs_key key)
{
	char pid[24], ct[24];
	size_t pl, cl;

	fmt_u64(pid, (uint64_t)getpid(), &pl);
	fmt_u64(ct, pxs__now_ns(CLOCK_REALTIME), &cl);
	{
		const char *args[] = {pid, ct};
		size_t alen[] = {pl, cl};

		return key_script(s, key, S_NEW, true, 2, args, alen);
	}
}

/* As r_put_named: the future under the name's key, the name not kept. */
static int
r_future_new_named(pxs_store *s, const char *name, pxs_key *key_out)
{
	pxs_key key;
	int rc = pxs__named_key(name, &key);

	if (rc < 0)
		return rc;
	if ((rc = r_future_new_at(s, key)) == 0 && key_out)
		*key_out = key;
	return rc;
}

static int
r_future_new(pxs_store *s, pxs_key *key_out)
{
	pxs_key k;
	int rc;

	if (key_out == NULL)
		return -EINVAL;
	do {
		k = pxs__key_random();
		rc = r_future_new_at(s, k);
	} while (rc == -EEXIST);
	if (rc == 0)
		*key_out = k;
	return rc;
}

static int
r_future_set(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	const char *args[] = {size ? data : ""};
	size_t alen[] = {size};

	if (data == NULL && size > 0)
		return -EINVAL;
	return key_script(s, key, S_SET, true, 1, args, alen);
}

static void
resv_put_back(struct rstore *r, struct pxs__rresv *q)
{
	pthread_mutex_lock(&r->lock);
	q->next = r->resv;
	r->resv = q;
	pthread_mutex_unlock(&r->lock);
}

static int
r_future_reserve(pxs_store *s, pxs_key key, size_t size, void **buf)
{
	struct rstore *r = R(s);
	struct pxs__rresv *q;
	char z[24], pid[24];
	size_t zl, pl;
	int rc;

	if (buf == NULL || pxs__key_is_zero(key))
		return -EINVAL;
	q = pxs__redis_resv_new(key, size);
	if (q == NULL)
		return -ENOMEM;
	fmt_u64(z, size, &zl);
	fmt_u64(pid, (uint64_t)getpid(), &pl);
	{
		const char *args[] = {z, pid};
		size_t alen[] = {zl, pl};

		rc = key_script(s, key, S_RESERVE, true, 2, args, alen);
	}
	if (rc < 0) {
		pxs__redis_resv_free(q);
		return rc;
	}
	resv_put_back(r, q);
	*buf = q->buf;
	return 0;
}

/* Take this handle's reservation of @p key by @p thread (0: a future's)
 * out of its list, or NULL. */
static struct pxs__rresv *
resv_take(struct rstore *r, pxs_key key, uintptr_t thread)
{
	struct pxs__rresv **pp, *q = NULL;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->resv; *pp != NULL; pp = &(*pp)->next) {
		if (pxs_key_equal((*pp)->key, key) &&
		    (*pp)->thread == thread) {
			q = *pp;
			*pp = q->next;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return q;
}


static int
r_future_commit(pxs_store *s, pxs_key key)
{
	struct rstore *r = R(s);
	struct pxs__rresv *q;
	struct conn *n;
	struct keys ks;
	char id[24], unused[24];
	int rc;

	if (pxs__key_is_zero(key))
		return -EINVAL;
	make_keys(r, key, &ks);
	q = resv_take(r, key, 0);
	rc = conn_get(r, &n, id);
	if (rc == 0) {
		const char *args[] = {id, q ? (const char *)q->buf : NULL};
		size_t alen[] = {strlen(id), q ? q->size : 0};

		rc = script(n, S_COMMIT, &ks, q ? 2 : 1, args, alen, unused);
		if (rc > 0)
			rc = -EPROTO;
		conn_put(r, n);
	}
	if (q == NULL)
		return rc;
	/* Keep the reservation when the commit may be retried. */
	if (rc == 0 || rc == -ENOENT || rc == -EALREADY || rc == -EPERM ||
	    rc == -EOWNERDEAD || rc == -EAGAIN) {
		pxs__redis_resv_free(q);
	} else {
		resv_put_back(r, q);
	}
	return rc;
}

static int
r_future_claim(pxs_store *s, pxs_key key)
{
	char pid[24];
	size_t pl;

	fmt_u64(pid, (uint64_t)getpid(), &pl);
	{
		const char *args[] = {pid};
		size_t alen[] = {pl};

		return key_script(s, key, S_CLAIM, true, 1, args, alen);
	}
}

static int
r_future_disown(pxs_store *s, pxs_key key)
{
	return key_script(s, key, S_DISOWN, true, 0, NULL, NULL);
}

/* The seconds argument of a blocking command for @p ms. */
static size_t
fmt_secs(char secs[32], long ms)
{
	return (size_t)snprintf(secs, 32, "%ld.%03ld", ms / 1000, ms % 1000);
}

/* A command to send behind another (pipelined()). */
struct cmd {
	int argc;
	const char **argv;
	const size_t *len;
};

/* Send and read one command, and with @p then != NULL a second command
 * right behind it in one pipeline: the server runs it as soon as the first
 * returns (after a blocking command: as soon as it is woken), whether or
 * not the client is still there to read. A woken waiter so gets the value
 * (the HMGET of read_fields()) without another round trip, and a wait-any
 * waiter's restore of the token it took runs inside the server. The second
 * reply goes to @p *then_rep. NULL (with *rc set) if the connection
 * failed. */
static redisReply *
pipelined(struct conn *n, int argc, const char **argv, const size_t *len,
	  const struct cmd *then, redisReply **then_rep, int *rc)
{
	void *rep = NULL, *second = NULL;

	if (then == NULL)
		return run(n, argc, argv, len, rc);
	if (redisAppendCommandArgv(n->c, argc, argv, len) != REDIS_OK ||
	    redisAppendCommandArgv(n->c, then->argc, then->argv, then->len) !=
		    REDIS_OK ||
	    redisGetReply(n->c, &rep) != REDIS_OK ||
	    redisGetReply(n->c, &second) != REDIS_OK) {
		freeReplyObject(rep);
		*rc = ctx_error(n->c);
		return NULL;
	}
	*then_rep = second;
	*rc = 0;
	return rep;
}

/* Run the blocking command @p argv that blocks for @p ms (and @p then's
 * fields behind it, see pipelined()): the reply, or NULL with *rc set
 * (and no @p *then_rep). The socket's timeout is the block plus the
 * command timeout. */
static redisReply *
blocking(struct rstore *r, struct conn *n, int argc, const char **argv,
	 const size_t *len, long ms, const struct cmd *then,
	 redisReply **then_rep, int *rc)
{
	struct timeval tv = r->command_tv;
	redisReply *rep, *second = NULL;

	tv.tv_sec += ms / 1000;
	tv.tv_usec += (ms % 1000) * 1000;
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec++;
		tv.tv_usec -= 1000000;
	}
	if (redisSetTimeout(n->c, tv) != REDIS_OK) {
		*rc = -EIO;
		return NULL;
	}
	rep = pipelined(n, argc, argv, len, then, &second, rc);
	if (rep != NULL && redisSetTimeout(n->c, r->command_tv) != REDIS_OK)
		*rc = -EIO;
	else if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		*rc = reply_error(rep);
	else {
		if (then_rep != NULL)
			*then_rep = second;
		return rep;
	}
	freeReplyObject(rep);
	freeReplyObject(second);
	return NULL;
}

/* BLMOVE l l LEFT RIGHT (a rotation of the list @p l onto itself) for
 * @p ms, and the fields of @p then behind it into @p *then_rep (when not
 * NULL; see pipelined()): 1 woken, 0 timed out, or an error. */
static int
block_on(struct rstore *r, struct conn *n, const char *l, size_t ll, long ms,
	 const struct keys *then, redisReply **then_rep)
{
	char secs[32];
	const char *argv[] = {"BLMOVE", l, l, "LEFT", "RIGHT", secs};
	size_t len[] = {6, ll, ll, 4, 5, fmt_secs(secs, ms)};
	const char *fa[FIELDS_ARGC];
	size_t fl[FIELDS_ARGC];
	struct cmd fields = {FIELDS_ARGC, fa, fl};
	redisReply *rep;
	int rc;

	if (then != NULL)
		fields_cmd(then, fa, fl);
	rep = blocking(r, n, 6, argv, len, ms, then ? &fields : NULL, then_rep,
		       &rc);
	if (rep == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_NIL)
		rc = 0;
	else if (rep->type == REDIS_REPLY_STRING)
		rc = 1;
	else {
		rc = -EPROTO;
		if (then_rep != NULL) {
			freeReplyObject(*then_rep);
			*then_rep = NULL;
		}
	}
	freeReplyObject(rep);
	return rc;
}

/* How long the next block may last: @p cap, or what is left before
 * @p deadline (rounded up); 0 once it has passed. */
static long
ms_left(uint64_t deadline, long cap)
{
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);

	if (now >= deadline)
		return 0;
	if ((deadline - now) / 1000000u < (uint64_t)cap)
		return (long)((deadline - now + 999999u) / 1000000u);
	return cap;
}

/* The deadline of a wait of @p timeout_ms (> 0), or 0. */
static uint64_t
deadline_of(long timeout_ms)
{
	return timeout_ms > 0 ? pxs__now_ns(CLOCK_MONOTONIC) +
					(uint64_t)timeout_ms * 1000000u
			      : 0;
}

/*
 * RECONNECTING INSIDE A WAIT. A wait whose connection fails (the server
 * restarted, or went away) does not end there: it reconnects, every
 * RECONNECT_MS, until its timeout, and then goes on waiting on what the
 * server kept. A key that exists no more is then gone for the waiter as
 * for everyone: a future that was pending is -ECANCELED (a server without
 * persistence lost it), a key not made yet is still waited for. A future
 * kept by a persistent server has lost its owner's connection with the
 * restart: it is abandoned at the next liveness check, as on any loss of
 * the owner's connection. Only when the timeout passes without a server
 * does the wait return the connection's error.
 */
static bool
conn_lost(int rc)
{
	return rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EIO ||
	       rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -EAGAIN;
}

static void
nap_ms(long ms)
{
	struct timespec t = {.tv_sec = ms / 1000,
			     .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* The connection @p *n failed with @p err: 0 with a new one in @p *n
 * (and the handle's owner id in @p id), or the error once the wait's
 * deadline passed (@p timeout_ms < 0: none). @p *n is NULL on error. */
static int
rejoin(struct rstore *r, struct conn **n, char id[24], int err,
       long timeout_ms, uint64_t deadline)
{
	conn_put(r, *n);
	*n = NULL;
	while (conn_lost(err)) {
		long ms = RECONNECT_MS;

		if (timeout_ms >= 0) {
			ms = timeout_ms > 0 ? ms_left(deadline, RECONNECT_MS) : 0;
			if (ms == 0)
				break;
		}
		nap_ms(ms);
		err = conn_get(r, n, id);
		if (err == 0)
			return 0;
	}
	return err;
}

/*
 * One look at a key a waiter waits on: 0 and @p v made (a value), 1 pending
 * (wait on its wake list), 2 absent and never seen (wait on its birth
 * list, when @p absent_ok), or an error: -ENOENT absent, -ECANCELED gone
 * after it was seen (evicted, expired, lost with a server),
 * -EOWNERDEAD abandoned. With @p check_owner a pending future's owner is
 * asked after too (a dead one abandons it). @p got: the fields' reply if
 * already read (by the pipeline of a block), which look() consumes.
 */
static int
look(struct rstore *r, struct conn *n, const struct keys *ks, const char *id,
     bool check_owner, bool absent_ok, bool *seen, pxs_view *v,
     redisReply *got)
{
	struct fields f;
	int rc = read_fields(n, ks, &f, got);

	if (rc < 0)
		return rc;
	switch (f.state) {
	case 0:
		if (*seen)
			return -ECANCELED;
		return absent_ok ? 2 : -ENOENT;
	case 'v':
		rc = view_make(r, &f.rep, f.data, f.size, v);
		freeReplyObject(f.rep);
		return rc;
	case 'a':
		rc = -EOWNERDEAD;
		break;
	default:
		*seen = true;
		rc = check_owner ? pending_status(n, ks, &f, id) : -EAGAIN;
		if (rc == -EAGAIN)
			rc = 1;
	}
	freeReplyObject(f.rep);
	return rc;
}

/*
 * THE WAIT. Look at the key; a value is copied out, a pending future is
 * waited on in the server: BLMOVE on the wake list (on the birth list for
 * a key not made yet) for at most LIVENESS_MS or what is left of the
 * timeout. Woken or timed out, look again; after a time-out the owner is
 * asked after too. The spin of pxs_future_wait_spin() has no meaning here
 * (the wait is on a socket) and is only checked.
 */
static int
r_future_wait_spin(pxs_store *s, pxs_key key, long timeout_ms, long spin_us,
		   pxs_view *v)
{
	struct rstore *r = R(s);
	uint64_t deadline = deadline_of(timeout_ms);
	bool seen = false, check_owner = false;
	redisReply *got = NULL;
	struct conn *n;
	struct keys ks;
	char id[24];
	int rc;

	if (v == NULL || pxs__key_is_zero(key) || spin_us > PXS_MAX_SPIN_US)
		return -EINVAL;
	make_keys(r, key, &ks);
	rc = conn_get(r, &n, id);
	if (rc < 0)
		return rc;
	for (;;) {
		long ms = LIVENESS_MS;

		rc = look(r, n, &ks, id, check_owner || timeout_ms == 0,
			  timeout_ms != 0, &seen, v, got);
		got = NULL;
		if (rc > 0) {
			if (timeout_ms > 0)
				ms = ms_left(deadline, LIVENESS_MS);
			if (timeout_ms == 0 || ms == 0) {
				rc = -ETIMEDOUT;
				break;
			}
			rc = rc == 1 ? block_on(r, n, ks.wake, ks.wake_len, ms,
						&ks, &got)
				     : block_on(r, n, ks.birth, ks.birth_len,
						ms, &ks, &got);
			check_owner = rc == 0;
			if (rc >= 0)
				continue;
		}
		if (rc == 0 || !conn_lost(rc))
			break;
		rc = rejoin(r, &n, id, rc, timeout_ms, deadline);
		if (rc < 0)
			return rc;
	}
	conn_put(r, n);
	return rc;
}

static int
r_expire(pxs_store *s, pxs_key key, long ttl_ms)
{
	char t[24];
	size_t tl;

	if (ttl_ms == 0)
		return r_evict(s, key);
	tl = (size_t)snprintf(t, sizeof t, "%ld", ttl_ms < 0 ? -1L : ttl_ms);
	{
		const char *args[] = {t};
		size_t alen[] = {tl};

		return key_script(s, key, S_EXPIRE, false, 1, args, alen);
	}
}

/* What a wait-any waiter sends behind its BLMPOP (KEYS: the n wake lists,
 * then the n objects; ARGV n): a wake list left empty while its future is
 * no longer pending lost its token to that BLMPOP, and gets it back (with
 * the object's time to live; an evicted or expired object's for a minute,
 * as evict's), so the other waiters of that list are served at once. */
static const char restore_src[] =
	"local n = tonumber(ARGV[1]) for i = 1, n do "
	"if redis.call('llen', KEYS[i]) == 0 then "
	"local s = redis.pcall('hget', KEYS[n + i], 's') "
	"if type(s) ~= 'table' and s ~= 'p' and s ~= 'r' then "
	"redis.call('rpush', KEYS[i], s or 'c') "
	"local t = redis.call('pttl', KEYS[n + i]) "
	"if not s then t = 60000 end "
	"if t > 0 then redis.call('pexpire', KEYS[i], t) end end end end "
	"return 'OK'";

/* BLMPOP over the wake lists of @p ks for @p ms, and behind it in the same
 * pipeline the restore of the token it took (restore_src): the server runs
 * both in one go, so a waiter killed after its BLMPOP delays nobody. 1
 * woken, 0 timed out, or an error. */
static int
block_any(struct rstore *r, struct conn *n, const struct keys *ks, size_t nk,
	  long ms)
{
	const char *argv[3 + PXS_WAIT_ANY_MAX + 1];
	size_t len[3 + PXS_WAIT_ANY_MAX + 1];
	const char *ra[4 + 2 * PXS_WAIT_ANY_MAX];
	size_t rl[4 + 2 * PXS_WAIT_ANY_MAX];
	struct cmd restore = {(int)(4 + 2 * nk), ra, rl};
	char secs[32], cnt[24], cnt2[24];
	redisReply *rep, *e, *second = NULL;
	int rc;

	argv[0] = "BLMPOP";
	len[0] = 6;
	argv[1] = secs;
	len[1] = fmt_secs(secs, ms);
	argv[2] = cnt;
	fmt_u64(cnt, nk, &len[2]);
	ra[0] = "EVAL";
	rl[0] = 4;
	ra[1] = restore_src;
	rl[1] = sizeof restore_src - 1;
	ra[2] = cnt2;
	fmt_u64(cnt2, 2 * nk, &rl[2]);
	for (size_t i = 0; i < nk; i++) {
		argv[3 + i] = ks[i].wake;
		len[3 + i] = ks[i].wake_len;
		ra[3 + i] = ks[i].wake;
		rl[3 + i] = ks[i].wake_len;
		ra[3 + nk + i] = ks[i].obj;
		rl[3 + nk + i] = ks[i].obj_len;
	}
	ra[3 + 2 * nk] = cnt;
	/* cppcheck-suppress unreadVariable ; read through restore.len */
	rl[3 + 2 * nk] = len[2];
	argv[3 + nk] = "LEFT";
	len[3 + nk] = 4;
	rep = blocking(r, n, (int)(4 + nk), argv, len, ms, &restore, &second,
		       &rc);
	if (rep == NULL)
		return rc;
	/* The restore's answer: OK, or an error reply (a key of the namespace
	 * of another type) that the next look reports. */
	freeReplyObject(second);
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		return 0;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    (e = rep->element[1])->type != REDIS_REPLY_ARRAY ||
	    e->elements != 1 || e->element[0]->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		return -EPROTO;
	}
	freeReplyObject(rep);
	return 1;
}

/*
 * WAIT-ANY. One BLMPOP over the wake lists of all the futures: the server
 * serves the first token pushed on any of them. BLMPOP pops where BLMOVE
 * rotates (BLMOVE has one source), so the token goes back in the same step
 * inside the server: the restore script sent behind the BLMPOP in one
 * pipeline runs as soon as the BLMPOP is served, even if the waiter dies
 * before it reads the reply, and other waiters of that list are served by
 * its push. Keys are
 * looked at in order after every wake and time-out, as on shared memory;
 * a key that is absent (never made) ends the call with -ENOENT, as there.
 */
static int
r_future_wait_any(pxs_store *s, const pxs_key *keys, size_t nk,
		  /* cppcheck-suppress constParameter ; pxs__backend's signature */
		  long timeout_ms, size_t *which, pxs_view *v)
{
	struct rstore *r = R(s);
	uint64_t deadline = deadline_of(timeout_ms);
	bool seen[PXS_WAIT_ANY_MAX] = {false}, check_owner = false;
	struct keys *ks;
	struct conn *n;
	char id[24];
	size_t i;
	int rc;

	if (!keys || !which || !v || nk == 0 || nk > PXS_WAIT_ANY_MAX)
		return -EINVAL;
	for (i = 0; i < nk; i++)
		if (pxs__key_is_zero(keys[i]))
			return -EINVAL;
	*which = nk;
	ks = malloc(nk * sizeof *ks);
	if (ks == NULL)
		return -ENOMEM;
	for (i = 0; i < nk; i++)
		make_keys(r, keys[i], &ks[i]);
	rc = conn_get(r, &n, id);
	if (rc < 0) {
		free(ks);
		return rc;
	}
	for (;;) {
		long ms = LIVENESS_MS;

		for (i = 0, rc = 1; i < nk && rc == 1; i++)
			rc = look(r, n, &ks[i], id, check_owner || timeout_ms == 0,
				  false, &seen[i], v, NULL);
		if (rc == 1) {
			if (timeout_ms > 0)
				ms = ms_left(deadline, LIVENESS_MS);
			if (timeout_ms == 0 || ms == 0) {
				rc = -ETIMEDOUT;
				break;
			}
			rc = block_any(r, n, ks, nk, ms);
			check_owner = rc == 0;
			if (rc >= 0)
				continue;
		} else if (rc == 0 || !conn_lost(rc)) {
			*which = i - 1;
			break;
		}
		rc = rejoin(r, &n, id, rc, timeout_ms, deadline);
		if (rc < 0) {
			free(ks);
			return rc;
		}
	}
	conn_put(r, n);
	free(ks);
	return rc;
}

static int
r_future_done(pxs_store *s, pxs_key key)
{
	struct rstore *r = R(s);
	struct fields f;
	struct conn *n;
	struct keys ks;
	char id[24];
	int rc;

	rc = begin(r, key, &ks, &n, id);
	if (rc < 0)
		return rc;
	rc = read_fields(n, &ks, &f, NULL);
	if (rc == 0) {
		if (f.state == 0)
			rc = -ENOENT;
		else if (f.state == 'v')
			rc = 1;
		else if (f.state == 'a')
			rc = -EOWNERDEAD;
		else
			rc = pending_status(n, &ks, &f, id);
		if (rc == -EAGAIN)
			rc = 0;
		freeReplyObject(f.rep);
	}
	conn_put(r, n);
	return rc;
}

/* ---- inspection ---------------------------------------------------------- */

/*
 * pxs_list() walks the namespace with SCAN. Its cursor packs the server's
 * SCAN cursor (high 48 bits) and the index of the next entry in that batch
 * (low 16 bits): each call repeats one SCAN step and returns one entry, as
 * the shared-memory iteration does, without holding state in the handle.
 */
#define SCAN_COUNT "500"
#define IDX_BITS 16

/* One SCAN step from @p sc: the reply (an array of two) or NULL. */
static redisReply *
scan_step(struct rstore *r, struct conn *n, uint64_t sc, int *rc)
{
	char cur[24], pat[PXS_NAME_MAX + 16];
	size_t cl, pl;
	redisReply *rep;

	fmt_u64(cur, sc, &cl);
	pl = (size_t)snprintf(pat, sizeof pat, "%s{*}", r->ns);
	{
		const char *argv[] = {"SCAN", cur, "MATCH", pat, "COUNT",
				      SCAN_COUNT};
		size_t len[] = {4, cl, 5, pl, 5, sizeof SCAN_COUNT - 1};

		rep = run(n, 6, argv, len, rc);
	}
	if (rep == NULL)
		return NULL;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY ||
	    rep->element[1]->elements >= (1u << IDX_BITS)) {
		*rc = rep->type == REDIS_REPLY_ERROR ? reply_error(rep)
						     : -EPROTO;
		freeReplyObject(rep);
		return NULL;
	}
	for (size_t i = 0; i < rep->element[1]->elements; i++)
		if (rep->element[1]->element[i]->type != REDIS_REPLY_STRING) {
			*rc = -EPROTO;
			freeReplyObject(rep);
			return NULL;
		}
	return rep;
}

/* The key K of "pxs:NAME:{K}", checked. */
static int
key_of(const struct rstore *r, const redisReply *name, pxs_key *k)
{
	size_t nl = strlen(r->ns);
	char hex[PXS_KEY_STRLEN];

	if (name->len != nl + 34 || name->str[nl] != '{' ||
	    name->str[nl + 33] != '}')
		return -EPROTO;
	memcpy(hex, name->str + nl + 1, 32);
	hex[32] = '\0';
	return pxs_key_parse(hex, k) < 0 ? -EPROTO : 0;
}

static int
parse_u64(const redisReply *e, uint64_t *out)
{
	uint64_t x = 0;

	if (e->type == REDIS_REPLY_NIL) {
		*out = 0;
		return 0;
	}
	if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 19)
		return -EPROTO;
	for (size_t i = 0; i < e->len; i++) {
		if (e->str[i] < '0' || e->str[i] > '9')
			return -EPROTO;
		x = x * 10 + (uint64_t)(e->str[i] - '0');
	}
	*out = x;
	return 0;
}

/* Describe the object of @p k; -ENOENT if it went meanwhile. */
static int
describe(struct rstore *r, struct conn *n, pxs_key k, pxs_entry *e)
{
	struct keys ks;
	redisReply *rep;
	uint64_t size, pid, ct;
	int rc;

	make_keys(r, k, &ks);
	{
		const char *argv[] = {"HMGET", ks.obj, "s", "o", "p", "c", "z"};
		size_t len[] = {5, ks.obj_len, 1, 1, 1, 1, 1};

		rep = run(n, 7, argv, len, &rc);
	}
	if (rep == NULL)
		return rc;
	/* HSTRLEN would spare the value's transfer; see below. */
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5) {
		rc = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : -EPROTO;
		goto done;
	}
	memset(e, 0, sizeof *e);
	e->key = k;
	if (rep->element[0]->type == REDIS_REPLY_NIL) {
		rc = -ENOENT;
		goto done;
	}
	if (rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len != 1 ||
	    parse_u64(rep->element[2], &pid) < 0 ||
	    parse_u64(rep->element[3], &ct) < 0 ||
	    parse_u64(rep->element[4], &size) < 0 || pid > INT32_MAX) {
		rc = -EPROTO;
		goto done;
	}
	switch (rep->element[0]->str[0]) {
	case 'v':
		e->state = PXS_STATE_VALUE;
		break;
	case 'p':
		e->state = PXS_STATE_PENDING;
		break;
	case 'r':
		e->state = PXS_STATE_RESERVED;
		break;
	case 'a':
		e->state = PXS_STATE_ABANDONED;
		break;
	default:
		rc = -EPROTO;
		goto done;
	}
	e->created_ns = ct;
	e->size = size;
	if (e->state == PXS_STATE_PENDING || e->state == PXS_STATE_RESERVED) {
		const redisReply *o = rep->element[1];

		e->owner_pid = (int32_t)pid;
		if (o->type == REDIS_REPLY_STRING && o->len > 0 && o->len < 24) {
			char id[24];

			memcpy(id, o->str, o->len);
			id[o->len] = '\0';
			rc = client_alive(n, id);
			if (rc < 0)
				goto done;
			e->owner_alive = rc;
		}
	}
	{
		/* Redis's own TTL of the object: -1 none, -2 gone meanwhile */
		const char *argv[] = {"PTTL", ks.obj};
		size_t len[] = {4, ks.obj_len};
		redisReply *t = run(n, 2, argv, len, &rc);

		if (t == NULL)
			goto done;
		if (t->type != REDIS_REPLY_INTEGER || t->integer < -2)
			rc = -EPROTO;
		else if (t->integer == -2)
			rc = -ENOENT;
		else
			e->ttl_ms = t->integer;
		freeReplyObject(t);
		if (rc < 0)
			goto done;
	}
	if (e->state == PXS_STATE_VALUE) {
		const char *argv[] = {"HSTRLEN", ks.obj, "d"};
		size_t len[] = {7, ks.obj_len, 1};
		redisReply *l = run(n, 3, argv, len, &rc);

		if (l == NULL)
			goto done;
		if (l->type == REDIS_REPLY_INTEGER && l->integer >= 0)
			e->size = (uint64_t)l->integer;
		else
			rc = -EPROTO;
		freeReplyObject(l);
	}
done:
	freeReplyObject(rep);
	return rc;
}

static int
r_list(pxs_store *s, uint64_t *cursor, pxs_entry *e)
{
	struct rstore *r = R(s);
	struct conn *n;
	char id[24];
	uint64_t sc, idx;
	int rc;

	if (cursor == NULL || e == NULL)
		return -EINVAL;
	if (*cursor == UINT64_MAX)
		return 0;
	sc = *cursor >> IDX_BITS;
	idx = *cursor & ((1u << IDX_BITS) - 1);
	rc = conn_get(r, &n, id);
	if (rc < 0)
		return rc;
	for (;;) {
		redisReply *rep = scan_step(r, n, sc, &rc);
		redisReply *keys;
		uint64_t next;
		pxs_key k;

		if (rep == NULL)
			break;
		keys = rep->element[1];
		if (parse_u64(rep->element[0], &next) < 0 ||
		    next >> (64 - IDX_BITS)) {
			rc = -EPROTO;
			freeReplyObject(rep);
			break;
		}
		rc = -ENOENT;
		while (idx < keys->elements && rc == -ENOENT) {
			rc = key_of(r, keys->element[idx++], &k);
			if (rc == 0)
				rc = describe(r, n, k, e);
		}
		freeReplyObject(rep);
		if (rc != -ENOENT) {
			/* An entry, or a key of the namespace that is not
			 * ours: the cursor moves past it either way. */
			*cursor = sc << IDX_BITS | idx;
			rc = rc == 0 ? 1 : rc;
			break;
		}
		if (next == 0) {
			*cursor = UINT64_MAX;
			rc = 0;
			break;
		}
		sc = next;
		idx = 0;
	}
	conn_put(r, n);
	return rc;
}

/* A Redis store has no process table: clients are not registered. The
 * signature is the backend table's. */
static int
/* cppcheck-suppress constParameter ; the signature of pxs__backend.proc_list */
r_proc_list(pxs_store *s, uint64_t *cursor, pxs_proc_info *p)
{
	return cursor == NULL || p == NULL ? -EINVAL : 0;
}

static int
r_stat(pxs_store *s, pxs_stats *st)
{
	uint64_t cur = 0;
	pxs_entry e;
	int rc;

	if (st == NULL)
		return -EINVAL;
	memset(st, 0, sizeof *st);
	while ((rc = r_list(s, &cur, &e)) == 1) {
		if (e.state == PXS_STATE_VALUE)
			st->objects++;
		else if (e.state == PXS_STATE_ABANDONED)
			st->abandoned++;
		else
			st->pending++;
	}
	return rc;
}

/* Every object's fields, checked as every call checks them. */
static int
r_check(pxs_store *s, pxs_check_report *rep)
{
	uint64_t cur = 0;
	pxs_entry e;
	int rc;

	if (rep == NULL)
		return -EINVAL;
	memset(rep, 0, sizeof *rep);
	for (;;) {
		rc = r_list(s, &cur, &e);
		if (rc == 1) {
			rep->slots_live++;
			continue;
		}
		if (rc == -EPROTO && cur != UINT64_MAX) {
			if (rep->errors++ == 0)
				snprintf(rep->first_error,
					 sizeof rep->first_error,
					 "a key of the store is not an object of this layout");
			continue; /* the cursor has moved past it */
		}
		break;
	}
	if (rc < 0 && rc != -EPROTO)
		return rc;
	return rep->errors ? -EPROTO : 0;
}

/* Abandon the pending futures whose owners are gone. */
static int
r_reap(pxs_store *s)
{
	uint64_t cur = 0;
	pxs_entry e;
	int rc, n = 0;

	while ((rc = r_list(s, &cur, &e)) == 1) {
		pxs_view v;

		if ((e.state != PXS_STATE_PENDING &&
		     e.state != PXS_STATE_RESERVED) ||
		    e.owner_alive)
			continue;
		if (r_future_wait_spin(s, e.key, 0, 0, &v) == -EOWNERDEAD)
			n++;
		else if (v.data)
			r_release(s, &v);
	}
	return rc < 0 ? rc : n;
}

/* ---- unlink -------------------------------------------------------------- */

int
pxs__redis_unlink(const struct pxs__redis_url *u)
{
	struct rstore *r = rstore_new(u, NULL);
	char pat[PXS_NAME_MAX + 16];
	uint64_t sc = 0, deleted = 0;
	struct conn *n;
	char id[24];
	size_t pl;
	int rc;

	if (r == NULL)
		return -ENOMEM;
	rc = conn_get(r, &n, id);
	if (rc < 0) {
		rstore_free(r);
		return rc;
	}
	pl = (size_t)snprintf(pat, sizeof pat, "%s*", r->ns);
	do {
		char cur[24];
		size_t cl;
		redisReply *rep, *keys;

		fmt_u64(cur, sc, &cl);
		{
			const char *argv[] = {"SCAN", cur, "MATCH", pat,
					      "COUNT", SCAN_COUNT};
			size_t len[] = {4, cl, 5, pl, 5, sizeof SCAN_COUNT - 1};

			rep = run(n, 6, argv, len, &rc);
		}
		if (rep == NULL)
			break;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    parse_u64(rep->element[0], &sc) < 0 ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = -EPROTO;
			freeReplyObject(rep);
			break;
		}
		keys = rep->element[1];
		for (size_t i = 0; i < keys->elements && rc == 0; i++) {
			const char *argv[] = {"UNLINK", keys->element[i]->str};
			size_t len[] = {6, keys->element[i]->len};
			redisReply *d;

			if (keys->element[i]->type != REDIS_REPLY_STRING) {
				rc = -EPROTO;
				break;
			}
			d = run(n, 2, argv, len, &rc);
			if (d == NULL)
				break;
			if (d->type == REDIS_REPLY_INTEGER)
				deleted += (uint64_t)d->integer;
			freeReplyObject(d);
		}
		freeReplyObject(rep);
	} while (rc == 0 && sc != 0);
	conn_put(r, n);
	rstore_free(r);
	if (rc == 0 && deleted == 0)
		rc = -ENOENT;
	return rc;
}

/* ---- lent to the files above (redis_int.h) ------------------------------ */

/* A pooled connection is a struct conn; the files above see it opaque. */
static struct conn *
C(struct pxs__rconn *n)
{
	return (struct conn *)(void *)n;
}

int
pxs__redis_conn_get(pxs_store *s, struct pxs__rconn **n, char id[24])
{
	return conn_get(R(s), (struct conn **)(void *)n, id);
}

void
pxs__redis_conn_put(pxs_store *s, struct pxs__rconn *n)
{
	conn_put(R(s), C(n));
}

const char *
pxs__redis_ns(const pxs_store *s)
{
	return ((const struct rstore *)(const void *)s)->ns;
}

redisReply *
pxs__redis_run(struct pxs__rconn *n, int argc, const char **argv,
	       const size_t *len, int *rc)
{
	return run(C(n), argc, argv, len, rc);
}

redisReply *
pxs__redis_blocking(pxs_store *s, struct pxs__rconn *n, int argc,
		    const char **argv, const size_t *len, long ms, int *rc)
{
	return blocking(R(s), C(n), argc, argv, len, ms, NULL, NULL, rc);
}

int
pxs__redis_reply_error(const redisReply *rep)
{
	return reply_error(rep);
}

redisReply *
pxs__redis_eval(struct pxs__rconn *n, const char *src, char sha[41],
		int argc, const char **argv, size_t *len, int *rc)
{
	return eval(C(n), src, sha, argc, argv, len, rc);
}

int
pxs__redis_status(const redisReply *rep)
{
	char unused[24];
	int rc = script_status(rep, unused);

	return rc > 0 ? -EPROTO : rc;
}

int
pxs__redis_client_alive(struct pxs__rconn *n, const char *id)
{
	return client_alive(C(n), id);
}

int
pxs__redis_view_make(pxs_store *s, redisReply **rep, const char *data,
		     size_t size, pxs_view *v)
{
	return view_make(R(s), rep, data, size, v);
}

size_t
pxs__redis_fmt_secs(char secs[32], long ms)
{
	return fmt_secs(secs, ms);
}

long
pxs__redis_ms_left(uint64_t deadline, long cap)
{
	return ms_left(deadline, cap);
}

uint64_t
pxs__redis_deadline(long timeout_ms)
{
	return deadline_of(timeout_ms);
}

struct pxs__rresv *
pxs__redis_resv_new(pxs_key key, size_t size)
{
	struct pxs__rresv *q = calloc(1, sizeof *q);

	if (q == NULL)
		return NULL;
	q->buf = malloc(size ? size : 1);
	if (q->buf == NULL) {
		free(q);
		return NULL;
	}
	q->key = key;
	q->size = size;
	return q;
}

void
pxs__redis_resv_free(struct pxs__rresv *q)
{
	if (q != NULL) {
		free(q->buf);
		free(q);
	}
}

void
pxs__redis_resv_add(pxs_store *s, struct pxs__rresv *q)
{
	resv_put_back(R(s), q);
}

struct pxs__rresv *
pxs__redis_resv_take(pxs_store *s, pxs_key key, uintptr_t thread)
{
	return resv_take(R(s), key, thread);
}

static const struct pxs__backend redis_backend = {
	.scheme = "redis",
	.close = r_close,
	.store_name = r_store_name,
	.put = r_put,
	.put_at = r_put_at,
	.put_named = r_put_named,
	.key_name = r_key_name,
	.get = r_get,
	.release = r_release,
	.exists = r_exists,
	.evict = r_evict,
	.future_new = r_future_new,
	.future_new_at = r_future_new_at,
	.future_new_named = r_future_new_named,
	.future_set = r_future_set,
	.future_reserve = r_future_reserve,
	.future_commit = r_future_commit,
	.future_claim = r_future_claim,
	.future_disown = r_future_disown,
	.future_wait_spin = r_future_wait_spin,
	.future_done = r_future_done,
	.future_wait_any = r_future_wait_any,
	.expire = r_expire,
	.stat = r_stat,
	.list = r_list,
	.proc_list = r_proc_list,
	.check = r_check,
	.reap = r_reap,
	.stream_new = pxs__redis_stream_new,
	.stream_append = pxs__redis_stream_append,
	.stream_reserve = pxs__redis_stream_reserve,
	.stream_commit = pxs__redis_stream_commit,
	.stream_read = pxs__redis_stream_read,
	.stream_end = pxs__redis_stream_end,
	.stream_stat = pxs__redis_stream_stat,
	.stream_join = pxs__redis_stream_join,
	.stream_leave = pxs__redis_stream_leave,
	.stream_take = pxs__redis_stream_take,
	.stream_ack = pxs__redis_stream_ack,
};
