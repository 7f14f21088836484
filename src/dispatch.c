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
	.get = pxs__shm_get,
	.release = pxs__shm_release,
	.exists = pxs__shm_exists,
	.evict = pxs__shm_evict,
	.future_new = pxs__shm_future_new,
	.future_new_at = pxs__shm_future_new_at,
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
};

/* ---- the read-only handle's refusals -------------------------------- */

static int
ro_put(pxs_store *s, const void *data, size_t size, pxs_key *key)
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
	.get = ro_get,
	.release = pxs__shm_release, /* it has no views: -EINVAL, or 0 */
	.exists = pxs__shm_exists,
	.evict = ro_key,
	.future_new = ro_new,
	.future_new_at = ro_key,
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

int
pxs_close(pxs_store *s)
{
	return be(s)->close(s);
}

const char *
pxs_store_name(const pxs_store *s)
{
	return be(s)->store_name(s);
}

int
pxs_put(pxs_store *s, const void *data, size_t size, pxs_key *key_out)
{
	return be(s)->put(s, data, size, key_out);
}

int
pxs_put_at(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	return be(s)->put_at(s, key, data, size);
}

int
pxs_get(pxs_store *s, pxs_key key, pxs_view *v)
{
	return be(s)->get(s, key, v);
}

int
pxs_release(pxs_store *s, pxs_view *v)
{
	return be(s)->release(s, v);
}

int
pxs_exists(pxs_store *s, pxs_key key)
{
	return be(s)->exists(s, key);
}

int
pxs_evict(pxs_store *s, pxs_key key)
{
	return be(s)->evict(s, key);
}

int
pxs_future_new(pxs_store *s, pxs_key *key_out)
{
	return be(s)->future_new(s, key_out);
}

int
pxs_future_new_at(pxs_store *s, pxs_key key)
{
	return be(s)->future_new_at(s, key);
}

int
pxs_future_set(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	return be(s)->future_set(s, key, data, size);
}

int
pxs_future_reserve(pxs_store *s, pxs_key key, size_t size, void **buf)
{
	return be(s)->future_reserve(s, key, size, buf);
}

int
pxs_future_commit(pxs_store *s, pxs_key key)
{
	return be(s)->future_commit(s, key);
}

int
pxs_future_claim(pxs_store *s, pxs_key key)
{
	return be(s)->future_claim(s, key);
}

int
pxs_future_disown(pxs_store *s, pxs_key key)
{
	return be(s)->future_disown(s, key);
}

int
pxs_future_wait(pxs_store *s, pxs_key key, long timeout_ms, pxs_view *v)
{
	return be(s)->future_wait_spin(s, key, timeout_ms, -1, v);
}

int
pxs_future_wait_spin(pxs_store *s, pxs_key key, long timeout_ms, long spin_us,
		     pxs_view *v)
{
	return be(s)->future_wait_spin(s, key, timeout_ms, spin_us, v);
}

int
pxs_expire(pxs_store *s, pxs_key key, long ttl_ms)
{
	return be(s)->expire(s, key, ttl_ms);
}

int
pxs_future_wait_any(pxs_store *s, const pxs_key *keys, size_t n,
		    long timeout_ms, size_t *which, pxs_view *v)
{
	return be(s)->future_wait_any(s, keys, n, timeout_ms, which, v);
}

int
pxs_future_done(pxs_store *s, pxs_key key)
{
	return be(s)->future_done(s, key);
}

int
pxs_stat(pxs_store *s, pxs_stats *st)
{
	return be(s)->stat(s, st);
}

int
pxs_list(pxs_store *s, uint64_t *cursor, pxs_entry *e)
{
	return be(s)->list(s, cursor, e);
}

int
pxs_proc_list(pxs_store *s, uint64_t *cursor, pxs_proc_info *p)
{
	return be(s)->proc_list(s, cursor, p);
}

int
pxs_check(pxs_store *s, pxs_check_report *r)
{
	return be(s)->check(s, r);
}

int
pxs_reap(pxs_store *s)
{
	return be(s)->reap(s);
}
