/* redis_int.h - what the Redis backend's connection layer (redis.c) lends
 * to the files above it (redis_stream.c): pooled connections, commands
 * and scripts with their replies checked for errors, owner liveness, the
 * views that keep a reply, and the handle's list of reservations. Nothing
 * here is public API.
 */
#ifndef PXS_REDIS_INT_H
#define PXS_REDIS_INT_H

#include "proxyshm.h"

#include <hiredis/hiredis.h>
#include <stdint.h>

/** How long a wait blocks in the server before it looks at liveness. */
#define PXS__REDIS_LIVENESS_MS 500

/** One pooled connection of a handle (opaque). */
struct pxs__rconn;

/** A reservation: client memory until its commit. */
struct pxs__rresv {
	struct pxs__rresv *next;
	pxs_key key;
	size_t size;
	unsigned char *buf;
	uintptr_t thread; /**< 0: a future's; a stream's: its thread */
	char tok[PXS_KEY_STRLEN]; /**< a stream's: its name on the server */
};

/** A connection for one command sequence; @p id gets the handle's owner
 *  id (its owner connection's CLIENT ID, in decimal). */
int pxs__redis_conn_get(pxs_store *s, struct pxs__rconn **n, char id[24]);
/** Give it back (one that failed is closed). */
void pxs__redis_conn_put(pxs_store *s, struct pxs__rconn *n);
/** The handle's key prefix, "pxs:NAME:". */
const char *pxs__redis_ns(const pxs_store *s);

/** One command: the reply, or NULL with *@p rc set (the connection
 *  failed). An error reply is returned as it is. */
redisReply *pxs__redis_run(struct pxs__rconn *n, int argc, const char **argv,
			   const size_t *len, int *rc);
/** A command that blocks in the server for up to @p ms: the reply, or NULL
 *  with *@p rc set (an error reply is mapped and freed). */
redisReply *pxs__redis_blocking(pxs_store *s, struct pxs__rconn *n, int argc,
				const char **argv, const size_t *len, long ms,
				int *rc);
/** The errno of an error reply: -ENOSPC (OOM), -EAGAIN, -EROFS, -EPROTO. */
int pxs__redis_reply_error(const redisReply *rep);
/** EVALSHA of @p src (its SHA1 cached in @p sha, "" at first) with
 *  argv[2..argc) (argv[0..1] are filled here); EVAL after a NOSCRIPT. */
redisReply *pxs__redis_eval(struct pxs__rconn *n, const char *src,
			    char sha[41], int argc, const char **argv,
			    size_t *len, int *rc);
/** A script's status word: 0 "OK", a negative errno for an errno name,
 *  -EPROTO for anything else it does not know. */
int pxs__redis_status(const redisReply *rep);
/** Is client @p id connected? 1, 0 or a negative errno. */
int pxs__redis_client_alive(struct pxs__rconn *n, const char *id);
/** Make @p v a view of @p data inside *@p rep (taken over on success). */
int pxs__redis_view_make(pxs_store *s, redisReply **rep, const char *data,
			 size_t size, pxs_view *v);
/** The seconds argument of a blocking command for @p ms. */
size_t pxs__redis_fmt_secs(char secs[32], long ms);
/** What is left of a wait (@p cap at most; 0 once @p deadline passed). */
long pxs__redis_ms_left(uint64_t deadline, long cap);
/** The deadline of a wait of @p timeout_ms (> 0), or 0. */
uint64_t pxs__redis_deadline(long timeout_ms);

/** A reservation of @p size bytes for @p key, not in any list; NULL. */
struct pxs__rresv *pxs__redis_resv_new(pxs_key key, size_t size);
void pxs__redis_resv_free(struct pxs__rresv *q);
/** Put @p q in the handle's list. */
void pxs__redis_resv_add(pxs_store *s, struct pxs__rresv *q);
/** Take the reservation of @p key by @p thread out of the list, or NULL. */
struct pxs__rresv *pxs__redis_resv_take(pxs_store *s, pxs_key key,
					uintptr_t thread);

#endif /* PXS_REDIS_INT_H */
