/* backend.h - the backend seam: one table of operations per kind of store.
 *
 * Every handle begins with a struct pxs__handle naming its backend's table,
 * chosen once by pxs_open() from the store name; dispatch.c implements the
 * public calls that take a handle as one indirect call through it. The
 * shared-memory backend (store.c, future.c, inspect.c, check.c) and the
 * Redis backend (redis.c) each fill one table. Nothing here is public API.
 */
#ifndef PXS_BACKEND_H
#define PXS_BACKEND_H

#include "proxyshm.h"

/** The first member of every backend's handle struct. */
struct pxs__handle {
	const struct pxs__backend *be;
};

/** What a backend implements: the public calls that take a handle, with
 *  the same contracts (arguments are not yet checked, except the handle:
 *  dispatch.c never calls with a NULL store). */
struct pxs__backend {
	const char *scheme; /**< "shm" or "redis", for messages and tests */
	int (*close)(pxs_store *s);
	const char *(*store_name)(const pxs_store *s);
	int (*put)(pxs_store *s, const void *data, size_t size, pxs_key *key);
	int (*put_at)(pxs_store *s, pxs_key key, const void *data, size_t size);
	int (*put_named)(pxs_store *s, const char *name, const void *data,
			 size_t size, pxs_key *key);
	int (*key_name)(pxs_store *s, pxs_key key, char *buf, size_t len);
	int (*get)(pxs_store *s, pxs_key key, pxs_view *v);
	int (*release)(pxs_store *s, pxs_view *v);
	int (*exists)(pxs_store *s, pxs_key key);
	int (*evict)(pxs_store *s, pxs_key key);
	int (*future_new)(pxs_store *s, pxs_key *key);
	int (*future_new_at)(pxs_store *s, pxs_key key);
	int (*future_new_named)(pxs_store *s, const char *name, pxs_key *key);
	int (*future_set)(pxs_store *s, pxs_key key, const void *data,
			  size_t size);
	int (*future_reserve)(pxs_store *s, pxs_key key, size_t size,
			      void **buf);
	int (*future_commit)(pxs_store *s, pxs_key key);
	int (*future_claim)(pxs_store *s, pxs_key key);
	int (*future_disown)(pxs_store *s, pxs_key key);
	int (*future_wait_spin)(pxs_store *s, pxs_key key, long timeout_ms,
				long spin_us, pxs_view *v);
	int (*future_done)(pxs_store *s, pxs_key key);
	int (*expire)(pxs_store *s, pxs_key key, long ttl_ms);
	int (*future_wait_any)(pxs_store *s, const pxs_key *keys, size_t n,
			       long timeout_ms, size_t *which, pxs_view *v);
	int (*stat)(pxs_store *s, pxs_stats *st);
	int (*list)(pxs_store *s, uint64_t *cursor, pxs_entry *e);
	int (*proc_list)(pxs_store *s, uint64_t *cursor, pxs_proc_info *p);
	int (*check)(pxs_store *s, pxs_check_report *r);
	int (*reap)(pxs_store *s);
	/* Streams: NULL in a backend without them (dispatch.c: -ENOTSUP). */
	int (*stream_new)(pxs_store *s, pxs_key key,
			  const pxs_stream_options *o);
	int (*stream_append)(pxs_store *s, pxs_key key, const void *data,
			     size_t size, long timeout_ms, uint64_t *seq_out);
	int (*stream_reserve)(pxs_store *s, pxs_key key, size_t size,
			      long timeout_ms, void **buf);
	int (*stream_commit)(pxs_store *s, pxs_key key, uint64_t *seq_out);
	int (*stream_read)(pxs_store *s, pxs_key key, uint64_t seq,
			   long timeout_ms, pxs_view *v);
	int (*stream_end)(pxs_store *s, pxs_key key);
	int (*stream_delete)(pxs_store *s, pxs_key key);
	int (*stream_stat)(pxs_store *s, pxs_key key, pxs_stream_stats *st);
	int (*stream_join)(pxs_store *s, pxs_key key, uint64_t from_seq);
	int (*stream_leave)(pxs_store *s, pxs_key key);
	int (*stream_take)(pxs_store *s, pxs_key key, const char *group,
			   long timeout_ms, uint64_t *seq, pxs_view *v);
	int (*stream_ack)(pxs_store *s, pxs_key key, const char *group,
			  uint64_t seq);
};

/* ---- the shared-memory backend (store.c, future.c, inspect.c, check.c) */

int pxs__shm_open(const char *name, const pxs_options *o, pxs_store **out);
int pxs__shm_unlink(const char *name);
int pxs__shm_close(pxs_store *s);
const char *pxs__shm_store_name(const pxs_store *s);
int pxs__shm_put(pxs_store *s, const void *data, size_t size, pxs_key *key);
int pxs__shm_put_at(pxs_store *s, pxs_key key, const void *data,
		    size_t size);
/* store.c: put_at with @p tail_len more bytes stored after the value in
 * its block, written before the value is published (keynames.c). */
int pxs__shm_put_tail(pxs_store *s, pxs_key key, const void *data,
		      size_t size, const void *tail, size_t tail_len);
/* keynames.c; pxs__named_key: a name's length and key, or -EINVAL */
int pxs__named_key(const char *name, pxs_key *key);
int pxs__shm_put_named(pxs_store *s, const char *name, const void *data,
		       size_t size, pxs_key *key);
int pxs__shm_key_name(pxs_store *s, pxs_key key, char *buf, size_t len);
int pxs__shm_future_new_named(pxs_store *s, const char *name,
			      pxs_key *key);
int pxs__shm_get(pxs_store *s, pxs_key key, pxs_view *v);
int pxs__shm_release(pxs_store *s, pxs_view *v);
int pxs__shm_exists(pxs_store *s, pxs_key key);
int pxs__shm_evict(pxs_store *s, pxs_key key);
int pxs__shm_future_new(pxs_store *s, pxs_key *key);
int pxs__shm_future_new_at(pxs_store *s, pxs_key key);
int pxs__shm_future_set(pxs_store *s, pxs_key key, const void *data,
			size_t size);
int pxs__shm_future_reserve(pxs_store *s, pxs_key key, size_t size,
			    void **buf);
int pxs__shm_future_commit(pxs_store *s, pxs_key key);
int pxs__shm_future_claim(pxs_store *s, pxs_key key);
int pxs__shm_future_disown(pxs_store *s, pxs_key key);
int pxs__shm_future_wait_spin(pxs_store *s, pxs_key key, long timeout_ms,
			      long spin_us, pxs_view *v);
int pxs__shm_future_done(pxs_store *s, pxs_key key);
int pxs__shm_expire(pxs_store *s, pxs_key key, long ttl_ms);
int pxs__shm_future_wait_any(pxs_store *s, const pxs_key *keys, size_t n,
			     long timeout_ms, size_t *which, pxs_view *v);
int pxs__shm_stat(pxs_store *s, pxs_stats *st);
int pxs__shm_list(pxs_store *s, uint64_t *cursor, pxs_entry *e);
int pxs__shm_proc_list(pxs_store *s, uint64_t *cursor, pxs_proc_info *p);
int pxs__shm_check(pxs_store *s, pxs_check_report *r);
int pxs__shm_reap(pxs_store *s);

/* ---- streams on shared memory (stream.c) ------------------------------ */

int pxs__shm_stream_new(pxs_store *s, pxs_key key,
			const pxs_stream_options *o);
int pxs__shm_stream_append(pxs_store *s, pxs_key key, const void *data,
			   size_t size, long timeout_ms, uint64_t *seq_out);
int pxs__shm_stream_reserve(pxs_store *s, pxs_key key, size_t size,
			    long timeout_ms, void **buf);
int pxs__shm_stream_commit(pxs_store *s, pxs_key key, uint64_t *seq_out);
int pxs__shm_stream_read(pxs_store *s, pxs_key key, uint64_t seq,
			 long timeout_ms, pxs_view *v);
int pxs__shm_stream_end(pxs_store *s, pxs_key key);
int pxs__shm_stream_delete(pxs_store *s, pxs_key key);
int pxs__shm_stream_stat(pxs_store *s, pxs_key key, pxs_stream_stats *st);
int pxs__shm_stream_join(pxs_store *s, pxs_key key, uint64_t from_seq);
int pxs__shm_stream_leave(pxs_store *s, pxs_key key);
int pxs__shm_stream_take(pxs_store *s, pxs_key key, const char *group,
			 long timeout_ms, uint64_t *seq, pxs_view *v);
int pxs__shm_stream_ack(pxs_store *s, pxs_key key, const char *group,
			uint64_t seq);

/* ---- store names (names.c) ------------------------------------------ */

/** Longest host accepted in a redis:// name (a DNS name's limit). */
#define PXS__REDIS_HOST_MAX 253

/** A parsed redis://HOST:PORT/NAME. */
struct pxs__redis_url {
	char host[PXS__REDIS_HOST_MAX + 1]; /**< without IPv6 brackets */
	int port;                           /**< 1..65535 */
	char name[PXS_NAME_MAX + 1];        /**< without a leading '/' */
};

/** Is @p name spelt as a Redis store ("redis://" prefix)? */
int pxs__is_redis_name(const char *name);

/** Parse "redis://HOST:PORT/NAME" strictly, reading at most
 *  PXS_STORE_NAME_MAX + 1 bytes of @p s: HOST is 1..253 characters of
 *  [A-Za-z0-9.-] or a bracketed IPv6 address of [0-9A-Fa-f:.], PORT 1..65535
 *  in decimal without leading zeros, NAME a segment name without its '/'.
 *  @p u may be NULL (check only). @return 0 or -EINVAL. */
int pxs__redis_url_parse(const char *s, struct pxs__redis_url *u);

/** 0 if @p name is a valid store name of either kind, else -EINVAL. */
int pxs__store_name_check(const char *name);

/* ---- the Redis backend (redis.c) ------------------------------------ */

/** Open a Redis store; -EPROTONOSUPPORT when built without hiredis. */
int pxs__redis_open(const struct pxs__redis_url *u, const char *name,
		    const pxs_options *o, pxs_store **out);
/** Remove a Redis store's keys. */
int pxs__redis_unlink(const struct pxs__redis_url *u);

/* ---- streams on Redis (redis_stream.c), in the Redis backend's table -- */

int pxs__redis_stream_new(pxs_store *s, pxs_key key,
			  const pxs_stream_options *o);
int pxs__redis_stream_append(pxs_store *s, pxs_key key, const void *data,
			     size_t size, long timeout_ms, uint64_t *seq_out);
int pxs__redis_stream_reserve(pxs_store *s, pxs_key key, size_t size,
			      long timeout_ms, void **buf);
int pxs__redis_stream_commit(pxs_store *s, pxs_key key, uint64_t *seq_out);
int pxs__redis_stream_read(pxs_store *s, pxs_key key, uint64_t seq,
			   long timeout_ms, pxs_view *v);
int pxs__redis_stream_end(pxs_store *s, pxs_key key);
int pxs__redis_stream_stat(pxs_store *s, pxs_key key, pxs_stream_stats *st);
int pxs__redis_stream_join(pxs_store *s, pxs_key key, uint64_t from_seq);
int pxs__redis_stream_leave(pxs_store *s, pxs_key key);
int pxs__redis_stream_take(pxs_store *s, pxs_key key, const char *group,
			   long timeout_ms, uint64_t *seq, pxs_view *v);
int pxs__redis_stream_ack(pxs_store *s, pxs_key key, const char *group,
			  uint64_t seq);

#endif /* PXS_BACKEND_H */
