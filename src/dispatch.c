/* dispatch.c - the public calls that take a store, routed to its backend.
 *
 * Owns: pxs_open() and pxs_unlink() (which pick the backend from the
 * name: '/' for shared memory, "redis://" for Redis) and every public call
 * on a handle, each one indirect call through the table its handle names
 * (backend.h). It sits at the top of the layers: it calls the backends,
 * and nothing below calls it except through the public API.
 *
 * A read-only handle (PXS_RDONLY) gets a table of its own: the calls
 * that inspect go to the shared-memory backend, which reads without locks
 * on such a handle; every call that would change the store, or pin a
 * value, answers -EROFS here, before anything touches the mapping (which
 * has no write access: a write would be a SIGSEGV).
 */
#include "internal.h"

static const struct pxs__backend shm_backend = {
	.scheme = "shm",
	.close = pxs__shm_close,
	.store_name = pxs__shm_store_name,
	.put = pxs__shm_put,
	.put_at = pxs__shm_put_at,
	.put_named = pxs__shm_put_named,
	.key_name = pxs__shm_key_name,
	.get = pxs__shm_get,
	.release = pxs__shm_release,
	.exists = pxs__shm_exists,
	.evict = pxs__shm_evict,
	.future_new = pxs__shm_future_new,
	.future_new_at = pxs__shm_future_new_at,
	.future_new_named = pxs__shm_future_new_named,
	.future_set = pxs__shm_future_set,
	.future_reserve = pxs__shm_future_reserve,
	.future_commit = pxs__shm_future_commit,
	.future_claim = pxs__shm_future_claim,
	.future_disown = pxs__shm_future_disown,
	.future_wait_spin = pxs__shm_future_wait_spin,
	.future_done = pxs__shm_future_done,
	.future_wait_any = pxs__shm_future_wait_any,
	.expire = pxs__shm_expire,
	.stat = pxs__shm_stat,
	.list = pxs__shm_list,
	.proc_list = pxs__shm_proc_list,
	.check = pxs__shm_check,
	.reap = pxs__shm_reap,
	.stream_new = pxs__shm_stream_new,
	.stream_append = pxs__shm_stream_append,
	.stream_reserve = pxs__shm_stream_reserve,
	.stream_commit = pxs__shm_stream_commit,
	.stream_read = pxs__shm_stream_read,
	.stream_end = pxs__shm_stream_end,
	.stream_delete = pxs__shm_stream_delete,
	.stream_stat = pxs__shm_stream_stat,
	.stream_join = pxs__shm_stream_join,
	.stream_leave = pxs__shm_stream_leave,
	.stream_take = pxs__shm_stream_take,
	.stream_ack = pxs__shm_stream_ack,
};

/* ---- the read-only handle's refusals -------------------------------- */

static int
ro_put(pxs_store *s, const void *data, size_t size, pxs_key *key)
{
	return -EROFS;
}

static int
ro_put_named(pxs_store *s, const char *name, const void *data, size_t size,
	     pxs_key *key)
{
	return -EROFS;
}

static int
ro_new_named(pxs_store *s, const char *name, pxs_key *key)
{
	return -EROFS;
}

static int
ro_key_data(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	return -EROFS;
}

static int
ro_get(pxs_store *s, pxs_key key, pxs_view *v)
{
	return -EROFS;
}

static int
ro_key(pxs_store *s, pxs_key key)
{
	return -EROFS;
}

static int
ro_new(pxs_store *s, pxs_key *key)
{
	return -EROFS;
}

static int
ro_reserve(pxs_store *s, pxs_key key, size_t size, void **buf)
{
	return -EROFS;
}

static int
ro_wait(pxs_store *s, pxs_key key, long timeout_ms, long spin_us,
	pxs_view *v)
{
	return -EROFS;
}

static int
ro_expire(pxs_store *s, pxs_key key, long ttl_ms)
{
	return -EROFS;
}

static int
ro_wait_any(pxs_store *s, const pxs_key *keys, size_t n, long timeout_ms,
	    size_t *which, pxs_view *v)
{
	return -EROFS;
}

static int
ro_reap(pxs_store *s)
{
	return -EROFS;
}

static const struct pxs__backend shm_ro_backend = {
	.scheme = "shm",
	.close = pxs__shm_close,
	.store_name = pxs__shm_store_name,
	.put = ro_put,
	.put_at = ro_key_data,
	.put_named = ro_put_named,
	.key_name = pxs__shm_key_name, /* reads without locks there */
	.get = ro_get,
	.release = pxs__shm_release, /* it has no views: -EINVAL, or 0 */
	.exists = pxs__shm_exists,
	.evict = ro_key,
	.future_new = ro_new,
	.future_new_at = ro_key,
	.future_new_named = ro_new_named,
	.future_set = ro_key_data,
	.future_reserve = ro_reserve,
	.future_commit = ro_key,
	.future_claim = ro_key,
	.future_disown = ro_key,
	.future_wait_spin = ro_wait,
	.future_done = ro_key,
	.future_wait_any = ro_wait_any,
	.expire = ro_expire,
	.stat = pxs__shm_stat,
	.list = pxs__shm_list,
	.proc_list = pxs__shm_proc_list,
	.check = pxs__shm_check,
	.reap = ro_reap,
	/* No stream calls: they pin the stream's metadata (-ENOTSUP). */
};

/* The backend of @p s. A NULL handle goes to the shared-memory backend,
 * whose functions already answer it as the header documents (-EINVAL, or
 * 0 for pxs_close), so both backends need no NULL checks of their own. */
static inline const struct pxs__backend *
be(const pxs_store *s)
{
	return PXS_LIKELY(s != NULL) ? ((const struct pxs__handle *)s)->be
				     : &shm_backend;
}

int
pxs_open(const char *name, const pxs_options *o, pxs_store **out)
{
	struct pxs__redis_url u;
	int rc;

	if (pxs__is_redis_name(name)) {
		if (out == NULL)
			return -EINVAL;
		*out = NULL;
		if (pxs__redis_url_parse(name, &u) < 0)
			return -EINVAL;
		return pxs__redis_open(&u, name, o, out);
	}
	rc = pxs__shm_open(name, o, out);
	if (rc == 0)
		((struct pxs__handle *)*out)->be =
			o && (o->flags & PXS_RDONLY) ? &shm_ro_backend
						     : &shm_backend;
	return rc;
}

int
pxs_unlink(const char *name)
{
	struct pxs__redis_url u;

	if (pxs__is_redis_name(name)) {
		if (pxs__redis_url_parse(name, &u) < 0)
			return -EINVAL;
		return pxs__redis_unlink(&u);
	}
	return pxs__shm_unlink(name);
}

/* Every other public call on a handle is its backend's function of the
 * same name (backend.h), called through the table the handle names. */
#define FORWARD(type, name, params, args)                                      \
	type pxs_##name params                                                 \
	{                                                                      \
		return be(s)->name args;                                       \
	}

FORWARD(int, close, (pxs_store *s), (s))
FORWARD(const char *, store_name, (const pxs_store *s), (s))
FORWARD(int, put,
	(pxs_store *s, const void *data, size_t size, pxs_key *key_out),
	(s, data, size, key_out))
FORWARD(int, put_at,
	(pxs_store *s, pxs_key key, const void *data, size_t size),
	(s, key, data, size))
FORWARD(int, put_named,
	(pxs_store *s, const char *name, const void *data, size_t size,
	 pxs_key *key_out),
	(s, name, data, size, key_out))
FORWARD(int, key_name, (pxs_store *s, pxs_key key, char *buf, size_t len),
	(s, key, buf, len))
FORWARD(int, get, (pxs_store *s, pxs_key key, pxs_view *v), (s, key, v))
FORWARD(int, release, (pxs_store *s, pxs_view *v), (s, v))
FORWARD(int, exists, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, evict, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, future_new, (pxs_store *s, pxs_key *key_out), (s, key_out))
FORWARD(int, future_new_at, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, future_new_named,
	(pxs_store *s, const char *name, pxs_key *key_out), (s, name, key_out))
FORWARD(int, future_set,
	(pxs_store *s, pxs_key key, const void *data, size_t size),
	(s, key, data, size))
FORWARD(int, future_reserve,
	(pxs_store *s, pxs_key key, size_t size, void **buf),
	(s, key, size, buf))
FORWARD(int, future_commit, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, future_claim, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, future_disown, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, future_wait_spin,
	(pxs_store *s, pxs_key key, long timeout_ms, long spin_us, pxs_view *v),
	(s, key, timeout_ms, spin_us, v))
FORWARD(int, expire, (pxs_store *s, pxs_key key, long ttl_ms), (s, key, ttl_ms))
FORWARD(int, future_wait_any,
	(pxs_store *s, const pxs_key *keys, size_t n, long timeout_ms,
	 size_t *which, pxs_view *v),
	(s, keys, n, timeout_ms, which, v))
FORWARD(int, future_done, (pxs_store *s, pxs_key key), (s, key))
FORWARD(int, stat, (pxs_store *s, pxs_stats *st), (s, st))
FORWARD(int, list, (pxs_store *s, uint64_t *cursor, pxs_entry *e),
	(s, cursor, e))
FORWARD(int, proc_list, (pxs_store *s, uint64_t *cursor, pxs_proc_info *p),
	(s, cursor, p))
FORWARD(int, check, (pxs_store *s, pxs_check_report *r), (s, r))
FORWARD(int, reap, (pxs_store *s), (s))

/* pxs_future_wait is pxs_future_wait_spin with the handle's own budget. */
int
pxs_future_wait(pxs_store *s, pxs_key key, long timeout_ms, pxs_view *v)
{
	return be(s)->future_wait_spin(s, key, timeout_ms, -1, v);
}

/* Streams: a backend whose table leaves them NULL does not have them. */
#define FORWARD_OPTIONAL(type, name, params, args)                             \
	type pxs_##name params                                                 \
	{                                                                      \
		return be(s)->name ? be(s)->name args : -ENOTSUP;              \
	}

FORWARD_OPTIONAL(int, stream_new,
		 (pxs_store *s, pxs_key key, const pxs_stream_options *o),
		 (s, key, o))
FORWARD_OPTIONAL(int, stream_append,
		 (pxs_store *s, pxs_key key, const void *data, size_t size,
		  long timeout_ms, uint64_t *seq_out),
		 (s, key, data, size, timeout_ms, seq_out))
FORWARD_OPTIONAL(int, stream_reserve,
		 (pxs_store *s, pxs_key key, size_t size, long timeout_ms,
		  void **buf),
		 (s, key, size, timeout_ms, buf))
FORWARD_OPTIONAL(int, stream_commit,
		 (pxs_store *s, pxs_key key, uint64_t *seq_out),
		 (s, key, seq_out))
FORWARD_OPTIONAL(int, stream_read,
		 (pxs_store *s, pxs_key key, uint64_t seq, long timeout_ms,
		  pxs_view *v),
		 (s, key, seq, timeout_ms, v))
FORWARD_OPTIONAL(int, stream_end, (pxs_store *s, pxs_key key), (s, key))
FORWARD_OPTIONAL(int, stream_delete, (pxs_store *s, pxs_key key), (s, key))
FORWARD_OPTIONAL(int, stream_stat,
		 (pxs_store *s, pxs_key key, pxs_stream_stats *st),
		 (s, key, st))
FORWARD_OPTIONAL(int, stream_join,
		 (pxs_store *s, pxs_key key, uint64_t from_seq),
		 (s, key, from_seq))
FORWARD_OPTIONAL(int, stream_leave, (pxs_store *s, pxs_key key), (s, key))
FORWARD_OPTIONAL(int, stream_take,
		 (pxs_store *s, pxs_key key, const char *group,
		  long timeout_ms, uint64_t *seq, pxs_view *v),
		 (s, key, group, timeout_ms, seq, v))
FORWARD_OPTIONAL(int, stream_ack,
		 (pxs_store *s, pxs_key key, const char *group, uint64_t seq),
		 (s, key, group, seq))
