/* redis_stream.c - streams on a Redis store, over Redis Streams.
 *
 * Owns: the key layout of a stream on Redis (its metadata fields, the
 * Redis stream of its items, the readers' positions, the reservations in
 * flight, the producers' wake list), the Lua scripts that change them
 * atomically, and every pxs__redis_stream_ call. It calls the connection
 * layer of the Redis backend (redis.c, through redis_int.h) and nothing
 * above it; docs/design.md ("Streams on Redis") explains the protocol.
 */
#include "internal.h"
#include "redis_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * KEYS. A stream of key K in store NAME is five keys under the hash tag
 * {K}, so that every script touches one cluster slot:
 *
 *   pxs:NAME:{K}     hash: s 'v', d "proxyshm stream", c (creation time),
 *                    x 'stream', w window, f flags, n next seq, a first
 *                    retained seq, e '0' or '1' (ended)
 *   pxs:NAME:{K}:x   the Redis stream: item seq S has the ID "S-1" and the
 *                    one field d (the bytes); the end marker has the ID
 *                    "N-2" (N = next at the end) and the field e
 *   pxs:NAME:{K}:r   hash: reader (its handle's owner id) -> position
 *   pxs:NAME:{K}:q   hash: reservation token -> owner id (Block only)
 *   pxs:NAME:{K}:g   list: the producers' wake list (at most 8 tokens)
 *
 * The metadata hash is an ordinary value for the rest of the backend (get
 * returns "proxyshm stream", list shows a value, evict removes it: the
 * stream is then gone for later callers, and the next pxs_stream_new() of
 * the key clears what was left). Each script validates the fields it reads
 * first: a key of the namespace written by someone else is -EPROTO.
 *
 * NUMBERS. The commit script gives the item seq `n` and the ID "n-1" in
 * one step (XADD with MAXLEN = window), so numbers follow the commits and
 * a reservation is client memory until then: a producer killed between
 * reserve and commit leaves no hole.
 *
 * WAITING, WITHOUT POLLING. A reader of an item not appended yet blocks
 * in XREAD BLOCK on the ID just below the item's ("S-0"): the XADD of the
 * item (or of the end marker) wakes it inside the server. A group member
 * blocks in XREADGROUP BLOCK. A producer held back by a full Block window
 * blocks in BLPOP on the wake list, which every reader advance, leave,
 * ack, drop of a dead holder and end pushes onto (trimmed to 8 tokens: a
 * stale token costs one more look). Every block lasts at most the
 * liveness period, after which the caller looks again and asks after the
 * holders it depends on.
 *
 * LIVENESS. Readers, reservations and group members are named by their
 * handle's owner id (the CLIENT ID of its idle owner connection, as for
 * futures). A script that finds the window full answers "?ID ID ..." (the
 * readers and the owners of reservations in flight); the caller asks the
 * server which of them are connected (CLIENT LIST ID), drops the dead
 * ones in one script and looks again, or blocks. A group member whose
 * client is gone has its pending items claimed (XCLAIM, by liveness, not
 * by idle time) one at a time by the member that finds it dead.
 */

#define DEFAULT_WINDOW 16u
#define MARKER "proxyshm stream"

/* The scripts take the stream's five keys. */
enum sscript {
	SS_NEW,
	SS_RESERVE,
	SS_PUT,
	SS_READ,
	SS_END,
	SS_STAT,
	SS_JOIN,
	SS_LEAVE,
	SS_DROP,
	SS_TAKE,
	SS_CLAIM,
	SS_ACK,
	SS_N
};

/* The metadata, validated; `ended` true after the end. */
#define LUA_META                                                             \
	"local function num(v) local x = tonumber(v) "                      \
	"if not x or x < 0 or x > 9007199254740992 or x ~= math.floor(x) "  \
	"then return nil end return x end "                                 \
	"local m = redis.call('hmget', KEYS[1], 's', 'x', 'w', 'f', 'n', 'a', 'e') " \
	"if not m[1] then return 'ENOENT' end "                             \
	"if m[2] ~= 'stream' then return 'EPROTO' end "                     \
	"local win, fl, nx, fs = num(m[3]), num(m[4]), num(m[5]), num(m[6]) " \
	"if not win or not fl or not nx or not fs or win < 1 or win > 65536 " \
	"or fl > 1 or fs > nx or nx - fs > win or (m[7] ~= '0' and m[7] ~= '1') " \
	"then return 'EPROTO' end "                                         \
	"local ended = m[7] == '1' "                                        \
	"local function fmt(x) return string.format('%d', x) end "

/* Wake the blocked producers. */
#define LUA_PROGRESS                                                         \
	"redis.call('rpush', KEYS[5], '1') redis.call('ltrim', KEYS[5], -8, -1) "

/* The seq an ID stands for: "S-1" item S, "N-2" the end marker (N),
 * "0-0" nothing delivered yet (0); nil for anything else. */
#define LUA_SEQOF                                                            \
	"local function seqof(id) "                                         \
	"local a, b = string.match(id or '', '^(%d+)%-(%d+)$') "            \
	"a, b = tonumber(a), tonumber(b) "                                  \
	"if not a or (b ~= 0 and b ~= 1 and b ~= 2) then return nil end "   \
	"return a, b end "                                                  \
	"local function fields(t) local r = {} "                            \
	"for j = 1, #t, 2 do r[t[j]] = t[j + 1] end return r end "

/* slowest(): the lowest seq a reader or a group still needs (nx when
 * none), or nil when a field is not a number. A group needs its oldest
 * pending item, or the first item it has not been given. */
#define LUA_SLOWEST                                                          \
	LUA_SEQOF                                                           \
	"local function slowest() local slow = nx "                         \
	"local rd = redis.call('hgetall', KEYS[3]) "                        \
	"for i = 2, #rd, 2 do local p = num(rd[i]) if not p then return nil end " \
	"if p < fs then p = fs end if p < slow then slow = p end end "      \
	"if redis.call('exists', KEYS[2]) == 0 then return slow end "       \
	"for _, g in ipairs(redis.call('xinfo', 'groups', KEYS[2])) do "    \
	"local f = fields(g) local a, b = seqof(f['last-delivered-id']) "   \
	"if not a then return nil end local h = a if b == 1 then h = a + 1 end " \
	"if f['pending'] > 0 then "                                         \
	"local p = redis.call('xpending', KEYS[2], f['name']) "             \
	"local pa = seqof(p[2]) if not pa then return nil end "             \
	"if pa < h then h = pa end end "                                    \
	"if h < fs then h = fs end if h < slow then slow = h end end "      \
	"return slow end "

/* In a Block stream, the window is full while the items committed or
 * reserved reach `window` past the slowest holder, or 64 reservations are
 * in flight: answer the holders to ask after ("?" and their ids). */
#define LUA_ROOM                                                             \
	"if fl == 1 then local slow = slowest() "                           \
	"if not slow then return 'EPROTO' end "                             \
	"local nq = redis.call('hlen', KEYS[4]) "                           \
	"if nx + nq - slow >= win or nq >= 64 then "                        \
	"local ids = redis.call('hkeys', KEYS[3]) "                         \
	"for _, o in ipairs(redis.call('hvals', KEYS[4])) do ids[#ids + 1] = o end " \
	"return '?' .. table.concat(ids, ' ') end end "

static const char *const sscripts[SS_N] = {
	/* SS_NEW: ARGV window, flags, ctime */
	[SS_NEW] = "if redis.call('exists', KEYS[1]) == 1 then return 'EEXIST' end "
		   "redis.call('del', KEYS[2], KEYS[3], KEYS[4], KEYS[5]) "
		   "redis.call('hset', KEYS[1], 's', 'v', 'd', '" MARKER "', 'c', ARGV[3], "
		   "'x', 'stream', 'w', ARGV[1], 'f', ARGV[2], 'n', '0', 'a', '0', 'e', '0') "
		   "return 'OK'",
	/* SS_RESERVE: ARGV me, token: "=1" recorded (Block), "=0" not */
	[SS_RESERVE] = LUA_META LUA_SLOWEST
		       "if ended then return 'EPIPE' end " LUA_ROOM
		       "if fl == 0 then return '=0' end "
		       "redis.call('hset', KEYS[4], ARGV[2], ARGV[1]) return '=1'",
	/* SS_PUT: ARGV me, token ("" for an append), data: "=seq" */
	[SS_PUT] = LUA_META LUA_SLOWEST
		   "if ARGV[2] ~= '' then "
		   "if redis.call('hdel', KEYS[4], ARGV[2]) == 0 then return 'ECANCELED' end "
		   "elseif not ended then " LUA_ROOM "end "
		   "if ended then " LUA_PROGRESS "return 'EPIPE' end "
		   "redis.call('xadd', KEYS[2], 'MAXLEN', '=', win, fmt(nx) .. '-1', 'd', ARGV[3]) "
		   "nx = nx + 1 if nx - fs > win then fs = nx - win end "
		   "redis.call('hset', KEYS[1], 'n', fmt(nx), 'a', fmt(fs)) "
		   "return '=' .. fmt(nx - 1)",
	/* SS_READ: ARGV me, seq: {'OK', entry}, 'WAIT', or a status; a
	 * joined reader at seq moves past it */
	[SS_READ] = LUA_META "local s = num(ARGV[2]) "
		    "if s < fs then return 'ERANGE' end "
		    "if s >= nx then if ended then return 'EPIPE' end return 'WAIT' end "
		    "local id = fmt(s) .. '-1' "
		    "local e = redis.call('xrange', KEYS[2], id, id) "
		    "if #e ~= 1 then return 'EPROTO' end "
		    "local p = redis.call('hget', KEYS[3], ARGV[1]) "
		    "if p then p = num(p) if not p then return 'EPROTO' end "
		    "if p < fs then p = fs end "
		    "if p == s then redis.call('hset', KEYS[3], ARGV[1], fmt(s + 1)) "
		    LUA_PROGRESS "end end "
		    "return {'OK', e[1]}",
	/* SS_END */
	[SS_END] = LUA_META "if ended then return 'EALREADY' end "
		   "redis.call('xadd', KEYS[2], fmt(nx) .. '-2', 'e', '1') "
		   "redis.call('hset', KEYS[1], 'e', '1') " LUA_PROGRESS "return 'OK'",
	/* SS_STAT: ARGV me: the numbers of pxs_stream_stats, in its order */
	[SS_STAT] = LUA_META LUA_SLOWEST "local slow = slowest() "
		    "if not slow then return 'EPROTO' end "
		    "local ng, taken = 0, 0 "
		    "if redis.call('exists', KEYS[2]) == 1 then "
		    "for _, g in ipairs(redis.call('xinfo', 'groups', KEYS[2])) do "
		    "ng = ng + 1 taken = taken + fields(g)['pending'] end end "
		    "local p = redis.call('hget', KEYS[3], ARGV[1]) "
		    "if p then p = num(p) if not p then return 'EPROTO' end "
		    "if p < fs then p = fs end else p = -1 end "
		    "return {fs, nx, ended and 1 or 0, win, fl, redis.call('hlen', KEYS[3]), "
		    "ng, taken, redis.call('hlen', KEYS[4]), slow, p}",
	/* SS_JOIN: ARGV me, from */
	[SS_JOIN] = LUA_META "local from = num(ARGV[2]) "
		    "if from < fs then return 'ERANGE' end "
		    "if redis.call('hexists', KEYS[3], ARGV[1]) == 1 then return 'EALREADY' end "
		    "if redis.call('hlen', KEYS[3]) >= 64 then return 'ENOSPC' end "
		    "redis.call('hset', KEYS[3], ARGV[1], fmt(from)) return 'OK'",
	/* SS_LEAVE: ARGV me */
	[SS_LEAVE] = LUA_META
		     "if redis.call('hdel', KEYS[3], ARGV[1]) == 0 then return 'ENOENT' end "
		     LUA_PROGRESS "return 'OK'",
	/* SS_DROP: ARGV the holders found dead */
	[SS_DROP] = LUA_META "local q = redis.call('hgetall', KEYS[4]) "
		    "for _, d in ipairs(ARGV) do redis.call('hdel', KEYS[3], d) "
		    "for i = 1, #q, 2 do if q[i + 1] == d then redis.call('hdel', KEYS[4], q[i]) end end end "
		    LUA_PROGRESS "return 'OK'",
	/* SS_TAKE: ARGV me, group, ask ('1': answer the other members that
	 * hold items, "?NAME NAME ..."). Makes the group (at the oldest
	 * item); EPIPE once ended and everything given out is acked. */
	[SS_TAKE] = LUA_META LUA_SEQOF "local gs = {} "
		    "if redis.call('exists', KEYS[2]) == 1 then "
		    "gs = redis.call('xinfo', 'groups', KEYS[2]) end "
		    "local g = nil for _, x in ipairs(gs) do local f = fields(x) "
		    "if f['name'] == ARGV[2] then g = f end end "
		    "if not g then if #gs >= 8 then return 'ENOSPC' end "
		    "redis.call('xgroup', 'create', KEYS[2], ARGV[2], '0', 'MKSTREAM') "
		    "g = {['pending'] = 0, ['last-delivered-id'] = '0-0'} end "
		    "if ARGV[3] == '1' and g['pending'] > 0 then local ids = {} "
		    "for _, c in ipairs(redis.call('xinfo', 'consumers', KEYS[2], ARGV[2])) do "
		    "local f = fields(c) if f['pending'] > 0 and f['name'] ~= ARGV[1] then "
		    "ids[#ids + 1] = f['name'] end end "
		    "if #ids > 0 then return '?' .. table.concat(ids, ' ') end end "
		    "if ended and g['pending'] == 0 then "
		    "local a, b = seqof(g['last-delivered-id']) "
		    "if not a then return 'EPROTO' end "
		    "if b == 2 or (b == 1 and a + 1 >= nx) or (b == 0 and nx == fs) then "
		    "return 'EPIPE' end end return 'OK'",
	/* SS_CLAIM: ARGV me, group, a dead member: "=ID" of one of its pending
	 * items, now the caller's, or 'NONE' (and the member is removed) */
	[SS_CLAIM] = LUA_META
		     "local p = redis.call('xpending', KEYS[2], ARGV[2], '-', '+', 1, ARGV[3]) "
		     "if #p == 0 then redis.call('xgroup', 'delconsumer', KEYS[2], ARGV[2], ARGV[3]) "
		     "return 'NONE' end "
		     "redis.call('xclaim', KEYS[2], ARGV[2], ARGV[1], 0, p[1][1], 'JUSTID') "
		     "return '=' .. p[1][1]",
	/* SS_ACK: ARGV group, seq */
	[SS_ACK] = LUA_META "if redis.call('exists', KEYS[2]) == 0 then return 'ENOENT' end "
		   "local n = redis.pcall('xack', KEYS[2], ARGV[1], fmt(num(ARGV[2])) .. '-1') "
		   "if type(n) ~= 'number' or n == 0 then return 'ENOENT' end "
		   LUA_PROGRESS "return 'OK'",
};

static char ssha[SS_N][41];

/* The Redis keys of one stream. */
#define KEY_MAX (PXS_NAME_MAX + 8 + 2 + 32 + 2 + 1)
struct skeys {
	char k[5][KEY_MAX];
	size_t len[5];
};

static void
make_skeys(const pxs_store *s, pxs_key key, struct skeys *ks)
{
	static const char *const suffix[5] = {"", ":x", ":r", ":q", ":g"};
	char hex[PXS_KEY_STRLEN];

	pxs_key_format(key, hex);
	for (int i = 0; i < 5; i++)
		ks->len[i] = (size_t)snprintf(ks->k[i], KEY_MAX, "%s{%s}%s",
					      pxs__redis_ns(s), hex, suffix[i]);
}

#define XKEY(ks) ((ks)->k[1])
#define XLEN(ks) ((ks)->len[1])

/* One call's connection and names. */
struct call {
	pxs_store *s;
	struct pxs__rconn *n;
	struct skeys ks;
	char me[24];
};

/* Start a call on stream @p key whose other arguments are @p args_ok. */
static int
call_begin(struct call *c, pxs_store *s, pxs_key key, bool args_ok)
{
	if (!args_ok || pxs__key_is_zero(key))
		return -EINVAL;
	c->s = s;
	make_skeys(s, key, &c->ks);
	return pxs__redis_conn_get(s, &c->n, c->me);
}

static void
call_end(struct call *c)
{
	pxs__redis_conn_put(c->s, c->n);
}

/* Most arguments of a script: the holders of a Block stream, 64 readers
 * and 64 reservations in flight (RESV_MAX of stream.c). */
#define MAX_SARGS (2 * 64)
/* Run script @p sc with @p nargs arguments: its reply, or NULL (*rc). */
static redisReply *
sscript(struct call *c, enum sscript sc, int nargs, const char **args,
	const size_t *alen, int *rc)
{
	const char *argv[8 + MAX_SARGS];
	size_t len[8 + MAX_SARGS];

	argv[2] = "5";
	len[2] = 1;
	for (int i = 0; i < 5; i++) {
		argv[3 + i] = c->ks.k[i];
		len[3 + i] = c->ks.len[i];
	}
	for (int i = 0; i < nargs; i++) {
		argv[8 + i] = args[i];
		len[8 + i] = alen[i];
	}
	return pxs__redis_eval(c->n, sscripts[sc], ssha[sc], 8 + nargs, argv,
			       len, rc);
}

/* What a script answered, beyond the status words of redis.c. */
enum { ST_NUM = 1, ST_ASK, ST_WAIT, ST_NONE };

/* A script's answer: 0 "OK", ST_NUM "=N" (N in *@p num, an ID's text in
 * @p text), ST_ASK "?ids" (the ids in @p text), ST_WAIT, ST_NONE, or a
 * negative errno. Frees the reply. */
static int
sstatus(redisReply *rep, uint64_t *num, char *text, size_t tl)
{
	int rc;

	if (rep->type == REDIS_REPLY_STATUS || rep->type == REDIS_REPLY_STRING) {
		if ((rep->str[0] == '=' || rep->str[0] == '?') &&
		    rep->len - 1 < tl) {
			rc = rep->str[0] == '=' ? ST_NUM : ST_ASK;
			memcpy(text, rep->str + 1, rep->len - 1);
			text[rep->len - 1] = '\0';
			if (rc == ST_NUM && num != NULL) {
				char *end;

				*num = strtoull(text, &end, 10);
				if (end == text || (*end != '\0' && *end != '-'))
					rc = -EPROTO;
			}
		} else if (rep->len == 4 && memcmp(rep->str, "WAIT", 4) == 0) {
			rc = ST_WAIT;
		} else if (rep->len == 4 && memcmp(rep->str, "NONE", 4) == 0) {
			rc = ST_NONE;
		} else if (rep->len == 5 && memcmp(rep->str, "EPIPE", 5) == 0) {
			rc = -EPIPE;
		} else if (rep->len == 6 && memcmp(rep->str, "ERANGE", 6) == 0) {
			rc = -ERANGE;
		} else if (rep->len == 6 && memcmp(rep->str, "ENOSPC", 6) == 0) {
			rc = -ENOSPC;
		} else if (rep->len == 9 && memcmp(rep->str, "ECANCELED", 9) == 0) {
			rc = -ECANCELED;
		} else {
			rc = pxs__redis_status(rep);
		}
	} else {
		rc = pxs__redis_status(rep);
	}
	freeReplyObject(rep);
	return rc;
}

/* Run @p sc and read its answer (sstatus()). */
static int
sscript_status(struct call *c, enum sscript sc, int nargs, const char **args,
	       const size_t *alen, uint64_t *num, char *text, size_t tl)
{
	int rc;
	redisReply *rep = sscript(c, sc, nargs, args, alen, &rc);

	return rep == NULL ? rc : sstatus(rep, num, text, tl);
}

/* The ids of "?ID ID ..." in @p text, split in place: their count. */
static int
split_ids(char *text, const char **ids, size_t *lens, int max)
{
	int k = 0;

	for (char *p = strtok(text, " "); p != NULL && k < max;
	     p = strtok(NULL, " ")) {
		ids[k] = p;
		lens[k++] = strlen(p);
	}
	return k;
}

/* Which of @p ids are dead: kept at the front, their count (or an error).
 * The caller's own id is alive. */
static int
dead_of(struct call *c, const char **ids, size_t *lens, int k)
{
	int nd = 0;

	for (int i = 0; i < k; i++) {
		int rc = strcmp(ids[i], c->me) == 0
				 ? 1
				 : pxs__redis_client_alive(c->n, ids[i]);

		if (rc < 0)
			return rc;
		if (rc == 0) {
			ids[nd] = ids[i];
			lens[nd++] = lens[i];
		}
	}
	return nd;
}

/* How long the next block of a wait may last, or 0: the wait is over. */
static long
block_ms(long timeout_ms, uint64_t deadline)
{
	if (timeout_ms == 0)
		return 0;
	if (timeout_ms < 0)
		return PXS__REDIS_LIVENESS_MS;
	return pxs__redis_ms_left(deadline, PXS__REDIS_LIVENESS_MS);
}

/* A blocking command that only wakes its caller (BLPOP, XREAD BLOCK):
 * 0 woken or timed out, or an error. */
static int
block_for(struct call *c, int argc, const char **argv, const size_t *len,
	  long ms)
{
	int rc;
	redisReply *rep = pxs__redis_blocking(c->s, c->n, argc, argv, len, ms,
					      &rc);

	if (rep == NULL)
		return rc;
	rc = rep->type == REDIS_REPLY_NIL || rep->type == REDIS_REPLY_ARRAY
		     ? 0
		     : -EPROTO;
	freeReplyObject(rep);
	return rc;
}

/* Run the script @p sc (reserve or append, whose first argument is the
 * caller's id) until the window has room: a full window answers its
 * holders; dead ones are dropped, live ones waited for on the wake list. */
static int
with_room(struct call *c, enum sscript sc, int nargs, const char **args,
	  const size_t *alen, long timeout_ms, uint64_t *num)
{
	uint64_t deadline = pxs__redis_deadline(timeout_ms);
	char text[MAX_SARGS * 24 + 8];

	for (;;) {
		const char *ids[MAX_SARGS];
		size_t lens[MAX_SARGS];
		char secs[32];
		int rc = sscript_status(c, sc, nargs, args, alen, num, text,
					sizeof text);
		int k, nd;
		long ms;

		if (rc != ST_ASK)
			return rc == ST_NUM ? 0 : rc < 0 ? rc : -EPROTO;
		k = split_ids(text, ids, lens, MAX_SARGS);
		nd = dead_of(c, ids, lens, k);
		if (nd < 0)
			return nd;
		if (nd > 0) {
			rc = sscript_status(c, SS_DROP, nd, ids, lens, NULL,
					    NULL, 0);
			if (rc < 0)
				return rc;
			continue;
		}
		ms = block_ms(timeout_ms, deadline);
		if (ms == 0)
			return -ETIMEDOUT;
		{
			const char *argv[] = {"BLPOP", c->ks.k[4], secs};
			size_t len[] = {5, c->ks.len[4],
					pxs__redis_fmt_secs(secs, ms)};

			rc = block_for(c, 3, argv, len, ms);
			if (rc < 0)
				return rc;
		}
	}
}

/* ---- making, appending ------------------------------------------------ */

int
pxs__redis_stream_new(pxs_store *s, pxs_key key, const pxs_stream_options *o)
{
	uint32_t win = o ? o->window : DEFAULT_WINDOW;
	unsigned fl = o ? o->flags : 0;
	char w[24], f[24], ct[24];
	struct call c;
	int rc;

	if (win == 0 || win > PXS_STREAM_WINDOW_MAX || (fl & ~PXS_STREAM_BLOCK))
		return -EINVAL;
	rc = call_begin(&c, s, key, true);
	if (rc < 0)
		return rc;
	{
		const char *args[] = {w, f, ct};
		size_t alen[] = {
			(size_t)snprintf(w, sizeof w, "%u", win),
			(size_t)snprintf(f, sizeof f, "%u", fl),
			(size_t)snprintf(ct, sizeof ct, "%llu",
					 (unsigned long long)pxs__now_ns(
						 CLOCK_REALTIME))};

		rc = sscript_status(&c, SS_NEW, 3, args, alen, NULL, NULL, 0);
	}
	call_end(&c);
	return rc > 0 ? -EPROTO : rc;
}

static uintptr_t
this_thread(void)
{
	return (uintptr_t)pthread_self();
}

/* Does this thread hold a reservation on @p key? */
static bool
holds(pxs_store *s, pxs_key key)
{
	struct pxs__rresv *q = pxs__redis_resv_take(s, key, this_thread());

	if (q != NULL)
		pxs__redis_resv_add(s, q);
	return q != NULL;
}

int
pxs__redis_stream_reserve(pxs_store *s, pxs_key key, size_t size,
			  long timeout_ms, void **buf)
{
	struct pxs__rresv *q;
	struct call c;
	uint64_t recorded = 0;
	int rc;

	if (buf == NULL || pxs__key_is_zero(key))
		return -EINVAL;
	if (holds(s, key))
		return -EBUSY;
	q = pxs__redis_resv_new(key, size);
	if (q == NULL)
		return -ENOMEM;
	q->thread = this_thread();
	pxs_key_format(pxs__key_random(), q->tok);
	rc = call_begin(&c, s, key, true);
	if (rc < 0) {
		pxs__redis_resv_free(q);
		return rc;
	}
	{
		const char *args[] = {c.me, q->tok};
		size_t alen[] = {strlen(c.me), strlen(q->tok)};

		rc = with_room(&c, SS_RESERVE, 2, args, alen, timeout_ms,
			       &recorded);
	}
	call_end(&c);
	if (rc < 0) {
		pxs__redis_resv_free(q);
		return rc;
	}
	if (recorded == 0)
		q->tok[0] = '\0'; /* Discard: nothing kept on the server */
	pxs__redis_resv_add(s, q);
	*buf = q->buf;
	return 0;
}

/* The commit of @p q, or an append (@p q NULL: @p data, @p size). */
static int
put(pxs_store *s, pxs_key key, const struct pxs__rresv *q, const void *data,
    size_t size, long timeout_ms, uint64_t *seq_out)
{
	struct call c;
	uint64_t seq = 0;
	int rc = call_begin(&c, s, key, true);

	if (rc < 0)
		return rc;
	{
		const char *tok = q ? q->tok : "";
		const char *args[] = {c.me, tok,
				      q ? (const char *)q->buf
					: size ? (const char *)data : ""};
		size_t alen[] = {strlen(c.me), strlen(tok), q ? q->size : size};

		rc = with_room(&c, SS_PUT, 3, args, alen, timeout_ms, &seq);
	}
	call_end(&c);
	if (rc == 0 && seq_out != NULL)
		*seq_out = seq;
	return rc;
}

int
pxs__redis_stream_commit(pxs_store *s, pxs_key key, uint64_t *seq_out)
{
	struct pxs__rresv *q;
	int rc;

	if (pxs__key_is_zero(key))
		return -EINVAL;
	q = pxs__redis_resv_take(s, key, this_thread());
	if (q == NULL)
		return -EINVAL;
	/* A commit never waits: its room was reserved (Block), or is
	 * made by sliding the window (Discard). */
	rc = put(s, key, q, NULL, 0, 0, seq_out);
	/* Kept when the server could not be reached: the commit may be
	 * retried. */
	if (rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EIO ||
	    rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -EAGAIN ||
	    rc == -ENOSPC || rc == -ENOMEM)
		pxs__redis_resv_add(s, q);
	else
		pxs__redis_resv_free(q);
	return rc;
}

int
pxs__redis_stream_append(pxs_store *s, pxs_key key, const void *data,
			 size_t size, long timeout_ms, uint64_t *seq_out)
{
	if (pxs__key_is_zero(key) || (data == NULL && size > 0))
		return -EINVAL;
	if (holds(s, key))
		return -EBUSY;
	return put(s, key, NULL, data, size, timeout_ms, seq_out);
}

/* ---- entries ------------------------------------------------------------ */

/* An entry of a Redis stream ([ID, [field, value]]), checked: 1 an item
 * (its seq and bytes), 2 the end marker, 3 an entry deleted meanwhile
 * (its fields nil: trimmed while pending), or -EPROTO. */
static int
entry_of(const redisReply *e, uint64_t *seq, const redisReply **data)
{
	const redisReply *id, *f;
	char buf[48], *end;
	unsigned long long ms, sq;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    (id = e->element[0])->type != REDIS_REPLY_STRING ||
	    id->len >= sizeof buf)
		return -EPROTO;
	memcpy(buf, id->str, id->len);
	buf[id->len] = '\0';
	ms = strtoull(buf, &end, 10);
	if (end == buf || *end != '-')
		return -EPROTO;
	sq = strtoull(end + 1, &end, 10);
	if (*end != '\0' || (sq != 1 && sq != 2))
		return -EPROTO;
	f = e->element[1];
	if (f->type == REDIS_REPLY_NIL)
		return 3;
	if (f->type != REDIS_REPLY_ARRAY || f->elements != 2 ||
	    f->element[0]->type != REDIS_REPLY_STRING ||
	    f->element[1]->type != REDIS_REPLY_STRING ||
	    f->element[0]->len != 1)
		return -EPROTO;
	*seq = ms;
	if (sq == 2 && f->element[0]->str[0] == 'e')
		return 2;
	if (sq != 1 || f->element[0]->str[0] != 'd')
		return -EPROTO;
	*data = f->element[1];
	return 1;
}

/* Make @p v a view of the item in @p e, inside *@p rep (taken over). */
static int
view_of(struct call *c, redisReply **rep, const redisReply *data,
	pxs_view *v)
{
	return pxs__redis_view_make(c->s, rep, data->str, data->len, v);
}

/* ---- reading ------------------------------------------------------------ */

/*
 * THE READ. One script looks at the numbers and, for a retained item,
 * returns it (and moves a joined reader at it past it) in the same step.
 * An item not appended yet is waited for in XREAD BLOCK on the ID below
 * it, for at most the liveness period at a time; then the script again.
 */
int
pxs__redis_stream_read(pxs_store *s, pxs_key key, uint64_t seq,
		       long timeout_ms, pxs_view *v)
{
	uint64_t deadline = pxs__redis_deadline(timeout_ms);
	char sq[24], below[32];
	struct call c;
	int rc;

	rc = call_begin(&c, s, key, v != NULL);
	if (rc < 0)
		return rc;
	snprintf(sq, sizeof sq, "%llu", (unsigned long long)seq);
	snprintf(below, sizeof below, "%llu-0", (unsigned long long)seq);
	for (;;) {
		const char *args[] = {c.me, sq};
		size_t alen[] = {strlen(c.me), strlen(sq)};
		redisReply *rep = sscript(&c, SS_READ, 2, args, alen, &rc);
		const redisReply *data;
		uint64_t got;
		char secs[32];
		long ms;

		if (rep == NULL)
			break;
		if (rep->type == REDIS_REPLY_ARRAY) {
			rc = rep->elements == 2 &&
					     rep->element[0]->type ==
						     REDIS_REPLY_STRING
				     ? entry_of(rep->element[1], &got, &data)
				     : -EPROTO;
			if (rc == 1 && got == seq)
				rc = view_of(&c, &rep, data, v);
			else
				rc = -EPROTO;
			freeReplyObject(rep);
			break;
		}
		rc = sstatus(rep, NULL, NULL, 0);
		if (rc != ST_WAIT)
			break;
		ms = block_ms(timeout_ms, deadline);
		if (ms == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		{
			const char *argv[] = {"XREAD",   "COUNT",    "1",
					      "BLOCK",   secs,       "STREAMS",
					      XKEY(&c.ks), below};
			size_t len[] = {5, 5, 1, 5, 0, 7, XLEN(&c.ks),
					strlen(below)};

			snprintf(secs, sizeof secs, "%ld", ms);
			len[4] = strlen(secs);
			rc = block_for(&c, 8, argv, len, ms);
			if (rc < 0)
				break;
		}
	}
	call_end(&c);
	return rc > 0 ? -EPROTO : rc;
}

/* ---- the small calls -------------------------------------------------- */

/* A script on @p key with the caller's id and @p arg (or none). */
static int
simple(pxs_store *s, pxs_key key, enum sscript sc, const char *arg)
{
	struct call c;
	int rc = call_begin(&c, s, key, true);

	if (rc < 0)
		return rc;
	{
		const char *args[] = {c.me, arg};
		size_t alen[] = {strlen(c.me), arg ? strlen(arg) : 0};

		rc = sscript_status(&c, sc, arg ? 2 : 1, args, alen, NULL,
				    NULL, 0);
	}
	call_end(&c);
	return rc > 0 ? -EPROTO : rc;
}

int
pxs__redis_stream_end(pxs_store *s, pxs_key key)
{
	return simple(s, key, SS_END, NULL);
}

int
pxs__redis_stream_join(pxs_store *s, pxs_key key, uint64_t from_seq)
{
	char f[24];

	snprintf(f, sizeof f, "%llu", (unsigned long long)from_seq);
	return simple(s, key, SS_JOIN, f);
}

int
pxs__redis_stream_leave(pxs_store *s, pxs_key key)
{
	return simple(s, key, SS_LEAVE, NULL);
}

/* An integer of the stat reply, checked. */
static int
int_at(const redisReply *rep, size_t i, long long lo, long long hi,
       long long *out)
{
	const redisReply *e = rep->element[i];

	if (e->type != REDIS_REPLY_INTEGER || e->integer < lo ||
	    e->integer > hi)
		return -EPROTO;
	*out = e->integer;
	return 0;
}

int
pxs__redis_stream_stat(pxs_store *s, pxs_key key, pxs_stream_stats *st)
{
	long long x[11];
	struct call c;
	redisReply *rep;
	int rc;

	rc = call_begin(&c, s, key, st != NULL);
	if (rc < 0)
		return rc;
	{
		const char *args[] = {c.me};
		size_t alen[] = {strlen(c.me)};

		rep = sscript(&c, SS_STAT, 1, args, alen, &rc);
	}
	call_end(&c);
	if (rep == NULL)
		return rc;
	if (rep->type != REDIS_REPLY_ARRAY) {
		rc = sstatus(rep, NULL, NULL, 0);
		return rc > 0 ? -EPROTO : rc;
	}
	rc = rep->elements == 11 ? 0 : -EPROTO;
	for (size_t i = 0; i < 11 && rc == 0; i++)
		rc = int_at(rep, i, i == 10 ? -1 : 0,
			    i == 3 ? PXS_STREAM_WINDOW_MAX
			    : i == 4 || i == 2 ? 1
					       : (1ll << 53),
			    &x[i]);
	freeReplyObject(rep);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof *st);
	st->first = (uint64_t)x[0];
	st->next = (uint64_t)x[1];
	st->ended = (int)x[2];
	st->window = (uint32_t)x[3];
	st->flags = (unsigned)x[4];
	st->readers = x[5] > UINT32_MAX ? UINT32_MAX : (uint32_t)x[5];
	st->groups = x[6] > UINT32_MAX ? UINT32_MAX : (uint32_t)x[6];
	st->taken = x[7] > UINT32_MAX ? UINT32_MAX : (uint32_t)x[7];
	st->reserved = x[8] > UINT32_MAX ? UINT32_MAX : (uint32_t)x[8];
	st->slowest = (uint64_t)x[9];
	st->position = x[10] < 0 ? UINT64_MAX : (uint64_t)x[10];
	return 0;
}

/* ---- groups ------------------------------------------------------------- */

static int
group_check(const char *group)
{
	size_t l;

	if (group == NULL)
		return -EINVAL;
	l = strnlen(group, PXS_STREAM_GROUP_NAME_MAX + 1);
	return l == 0 || l > PXS_STREAM_GROUP_NAME_MAX ? -EINVAL : 0;
}

/* XACK of @p id (an item or the marker) in @p group. */
static int
xack(struct call *c, const char *group, const char *id)
{
	const char *argv[] = {"XACK", XKEY(&c->ks), group, id};
	size_t len[] = {4, XLEN(&c->ks), strlen(group), strlen(id)};
	int rc;
	redisReply *rep = pxs__redis_run(c->n, 4, argv, len, &rc);

	if (rep == NULL)
		return rc;
	rc = rep->type == REDIS_REPLY_INTEGER ? 0
	     : rep->type == REDIS_REPLY_ERROR ? pxs__redis_reply_error(rep)
					      : -EPROTO;
	freeReplyObject(rep);
	return rc;
}

/* The one entry of an XRANGE or XREADGROUP reply @p rep (the array of
 * entries @p arr), as entry_of(); 0: none. An item becomes @p v; the end
 * marker and an entry deleted meanwhile are acked here. */
static int
take_entry(struct call *c, const char *group, redisReply **rep,
	   const redisReply *arr, uint64_t *seq, pxs_view *v)
{
	const redisReply *data = NULL, *e;
	char id[48];
	int rc;

	if (arr->type == REDIS_REPLY_NIL ||
	    (arr->type == REDIS_REPLY_ARRAY && arr->elements == 0))
		return 0;
	if (arr->type != REDIS_REPLY_ARRAY || arr->elements != 1)
		return -EPROTO;
	e = arr->element[0];
	rc = entry_of(e, seq, &data);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return view_of(c, rep, data, v) < 0 ? -ENOMEM : 1;
	if (e->element[0]->len >= sizeof id)
		return -EPROTO;
	memcpy(id, e->element[0]->str, e->element[0]->len);
	id[e->element[0]->len] = '\0';
	rc = xack(c, group, id);
	return rc < 0 ? rc : 2;
}

/* Claim the items of the dead members among @p names, one at a time,
 * until one is an item: 1 (@p seq, @p v), 0 none left, or an error. */
static int
claim_dead(struct call *c, const char *group, char *names, uint64_t *seq,
	   pxs_view *v)
{
	const char *ids[MAX_SARGS];
	size_t lens[MAX_SARGS];
	int k = split_ids(names, ids, lens, MAX_SARGS);
	int nd = dead_of(c, ids, lens, k);

	for (int i = 0; i < nd; i++) {
		for (;;) {
			const char *args[] = {c->me, group, ids[i]};
			size_t alen[] = {strlen(c->me), strlen(group),
					 lens[i]};
			char id[48];
			redisReply *rep;
			int rc = sscript_status(c, SS_CLAIM, 3, args, alen,
						NULL, id, sizeof id);

			if (rc == ST_NONE)
				break;
			if (rc != ST_NUM)
				return rc < 0 ? rc : -EPROTO;
			{
				const char *argv[] = {"XRANGE", XKEY(&c->ks),
						      id, id};
				size_t len[] = {6, XLEN(&c->ks), strlen(id),
						strlen(id)};

				rep = pxs__redis_run(c->n, 4, argv, len, &rc);
			}
			if (rep == NULL)
				return rc;
			if (rep->type == REDIS_REPLY_ERROR)
				rc = pxs__redis_reply_error(rep);
			else if (rep->type == REDIS_REPLY_ARRAY &&
				 rep->elements == 0)
				rc = xack(c, group, id); /* trimmed */
			else
				rc = take_entry(c, group, &rep, rep, seq, v);
			freeReplyObject(rep);
			if (rc < 0 || rc == 1)
				return rc;
		}
	}
	return nd < 0 ? nd : 0;
}

/* When this process last asked after the other members of a group. */
static _Atomic uint64_t last_ask_ns;

/*
 * THE TAKE. One script checks the stream, makes the group at its first
 * take and says whether the group is done (ended, everything acked); at
 * most once per liveness period it also names the other members holding
 * items, and those found dead give their items up first (claim_dead()).
 * Then XREADGROUP ">" hands out a new item, blocking in the server (for a
 * liveness period at a time) when there is none.
 */
int
pxs__redis_stream_take(pxs_store *s, pxs_key key, const char *group,
		       long timeout_ms, uint64_t *seq, pxs_view *v)
{
	uint64_t deadline = pxs__redis_deadline(timeout_ms);
	bool ask = true;
	struct call c;
	int rc;

	rc = call_begin(&c, s, key,
			seq != NULL && v != NULL && group_check(group) == 0);
	if (rc < 0)
		return rc;
	for (;;) {
		uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
		char names[MAX_SARGS * 24 + 8], secs[32];
		redisReply *rep;
		long ms;

		if (now - atomic_load(&last_ask_ns) >=
		    PXS__REDIS_LIVENESS_MS * 1000000ull)
			ask = true;
		{
			const char *args[] = {c.me, group, ask ? "1" : "0"};
			size_t alen[] = {strlen(c.me), strlen(group), 1};

			rc = sscript_status(&c, SS_TAKE, 3, args, alen, NULL,
					    names, sizeof names);
		}
		if (ask)
			atomic_store(&last_ask_ns, now);
		ask = false;
		if (rc == ST_ASK) {
			rc = claim_dead(&c, group, names, seq, v);
			if (rc != 0)
				break;
		} else if (rc != 0) {
			break;
		}
		ms = block_ms(timeout_ms, deadline);
		{
			const char *argv[11];
			size_t len[11];
			int k = 0;

#define ARG(str, l) (argv[k] = (str), len[k++] = (l))
			ARG("XREADGROUP", 10);
			ARG("GROUP", 5);
			ARG(group, strlen(group));
			ARG(c.me, strlen(c.me));
			ARG("COUNT", 5);
			ARG("1", 1);
			if (ms > 0) { /* without BLOCK it answers at once */
				ARG("BLOCK", 5);
				ARG(secs, (size_t)snprintf(secs, sizeof secs,
							   "%ld", ms));
			}
			ARG("STREAMS", 7);
			ARG(XKEY(&c.ks), XLEN(&c.ks));
			ARG(">", 1);
#undef ARG
			rep = pxs__redis_blocking(s, c.n, k, argv, len, ms, &rc);
		}
		if (rep == NULL)
			break;
		if (rep->type == REDIS_REPLY_NIL) {
			rc = 0;
		} else if (rep->type == REDIS_REPLY_ARRAY &&
			   rep->elements == 1 &&
			   rep->element[0]->type == REDIS_REPLY_ARRAY &&
			   rep->element[0]->elements == 2) {
			rc = take_entry(&c, group, &rep,
					rep->element[0]->element[1], seq, v);
		} else {
			rc = -EPROTO;
		}
		freeReplyObject(rep);
		if (rc < 0 || rc == 1)
			break;
		if (rc == 0) {
			if (timeout_ms == 0 ||
			    (timeout_ms > 0 && block_ms(timeout_ms, deadline) == 0)) {
				rc = -ETIMEDOUT;
				break;
			}
			ask = true; /* a whole block without items */
		}
	}
	call_end(&c);
	return rc == 1 ? 0 : rc > 0 ? -EPROTO : rc;
}

int
pxs__redis_stream_ack(pxs_store *s, pxs_key key, const char *group,
		      uint64_t seq)
{
	struct call c;
	char sq[24];
	int rc;

	rc = call_begin(&c, s, key, group_check(group) == 0);
	if (rc < 0)
		return rc;
	snprintf(sq, sizeof sq, "%llu", (unsigned long long)seq);
	{
		const char *args[] = {group, sq};
		size_t alen[] = {strlen(group), strlen(sq)};

		rc = sscript_status(&c, SS_ACK, 2, args, alen, NULL, NULL, 0);
	}
	call_end(&c);
	return rc > 0 ? -EPROTO : rc;
}
