/* proxy.c - proxies: lazy, serialisable references "pxs://<store>/<key>"
 * and "redis://HOST:PORT/<store>/<key>".
 *
 * Owns: the proxy object, its strict string form, and the process-wide
 * attachment registry that gives every proxy of one store name the same
 * pxs_store handle. Uses only the public store/future API; it never looks
 * inside a segment.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME "pxs://"
#define SCHEME_LEN (sizeof(SCHEME) - 1)

/*
 * The attachment registry
 * =======================
 *
 * Resolving a proxy needs a handle on its store, but a proxy string
 * arrives in a process that may never have opened that store, and
 * thousands of proxies may name the same one. The registry is a list of
 * {name, handle, refs}: the first resolve of any proxy of a name attaches
 * (pxs_open with NULL options: attach only), later ones share the handle,
 * and the handle is closed when the last resolved proxy is freed.
 *
 * LOCKING. registry_lock protects the list and every refs field. It is a
 * leaf lock: pxs_open() and pxs_close() are called with it released, so it
 * never nests inside (or around) the library's own locks. The price is that
 * two threads resolving the first proxies of one name at the same moment
 * may both attach; the loser sees the winner's entry when it relocks and
 * closes its own handle again, so the registry still holds one.
 *
 * FORK. A thread of the parent could hold registry_lock at the instant
 * another thread forks, leaving it locked forever in the child. The atfork
 * handlers take the lock around fork() so the child's copy is consistent
 * and unlocked. The handles themselves keep working in the child.
 */
struct attachment {
	struct attachment *next;
	pxs_store *store;
	unsigned long refs; /* resolved proxies using it; under registry_lock */
	char name[PXS_STORE_NAME_MAX + 1];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct attachment *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void
registry_lock_all(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void
registry_unlock_all(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static void
registry_init(void)
{
	/* On ENOMEM the registry works, but a fork() that races a resolve
	 * may leave the child's registry locked. Nothing to report to. */
	(void)pthread_atfork(registry_lock_all, registry_unlock_all,
			     registry_unlock_all);
}

/* The entry for @p name with one more reference, or NULL. Call locked. */
static struct attachment *
registry_find(const char *name)
{
	for (struct attachment *a = registry; a != NULL; a = a->next) {
		if (strcmp(a->name, name) == 0) {
			a->refs++;
			return a;
		}
	}
	return NULL;
}

/* Take a reference on @p name's attachment, attaching if there is none. */
static int
registry_get(const char *name, struct attachment **out)
{
	struct attachment *a, *found;
	int rc;

	pthread_once(&registry_once, registry_init);

	pthread_mutex_lock(&registry_lock);
	found = registry_find(name);
	pthread_mutex_unlock(&registry_lock);
	if (found != NULL)
		goto done;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	rc = pxs_open(name, NULL, &a->store);
	if (rc < 0) {
		free(a);
		return rc;
	}
	strcpy(a->name, name); /* fits: it passed pxs__store_name_check */
	a->refs = 1;

	pthread_mutex_lock(&registry_lock);
	found = registry_find(name); /* did another thread attach first? */
	if (found == NULL) {
		a->next = registry;
		registry = a;
	}
	pthread_mutex_unlock(&registry_lock);
	if (found != NULL) {
		pxs_close(a->store);
		free(a);
	} else {
		found = a;
	}
done:
	*out = found;
	return 0;
}

/* Drop a reference from registry_get(); detach when it was the last. */
static void
registry_put(struct attachment *a)
{
	bool last;

	pthread_mutex_lock(&registry_lock);
	last = --a->refs == 0;
	if (last) {
		struct attachment **pp = &registry;

		while (*pp != a)
			pp = &(*pp)->next;
		*pp = a->next;
	}
	pthread_mutex_unlock(&registry_lock);
	if (last) {
		pxs_close(a->store);
		free(a);
	}
}

int
pxs__proxy_registry_count(void)
{
	int n = 0;

	pthread_mutex_lock(&registry_lock);
	for (struct attachment *a = registry; a != NULL; a = a->next)
		n++;
	pthread_mutex_unlock(&registry_lock);
	return n;
}

/*
 * The proxy
 * =========
 *
 * HOW RESOLVE WORKS. A proxy is unresolved until some call of
 * pxs_proxy_resolve() succeeds; from then on it holds one pinned view and
 * one registry reference, both released by pxs_proxy_free(). The pinned
 * view and its attachment live in a `struct resolution`, and the proxy's
 * `resolved` pointer to it is the whole state: NULL, then set once and
 * never changed until free.
 *
 * Every resolving thread that finds it NULL does the work itself: it takes
 * a registry reference, waits with its own timeout and, on success, tries
 * to install its resolution with one compare-and-swap. The winner's
 * release (on the CAS) pairs with the acquire loads of every later
 * caller, which then read data and size without any lock. A loser releases
 * its own pin and reference and returns the winner's bytes, so all callers
 * see one pointer. Nobody ever blocks on another thread's wait: a caller
 * with a 10 ms timeout is not held up by one waiting forever, and no lock
 * is held across a wait (or across a fork()).
 *
 * A failed resolve (-ETIMEDOUT, -ENOENT...) changes nothing, so it can be
 * retried. If the failure raced with another thread's success, the
 * proxy is resolved after all and the call succeeds.
 */
struct resolution {
	struct attachment *att;
	pxs_view view;
};

struct pxs_proxy {
	pxs_key key;
	_Atomic(struct resolution *) resolved;
	char name[PXS_STORE_NAME_MAX + 1]; /* '/'... or redis://... */
};

int
pxs_proxy_new(const char *store_name, pxs_key key, pxs_proxy **out)
{
	pxs_proxy *p;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (pxs__store_name_check(store_name) < 0 || pxs__key_is_zero(key))
		return -EINVAL;
	p = malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->key = key;
	atomic_init(&p->resolved, NULL);
	strcpy(p->name, store_name); /* fits: checked above */
	*out = p;
	return 0;
}

int
pxs_proxy_format(const pxs_proxy *p, char *buf, size_t len)
{
	char key[PXS_KEY_STRLEN];
	size_t name_len, n;

	if (p == NULL || buf == NULL)
		return -EINVAL;
	/* A segment's proxy is "pxs://" + its name without the '/'; a Redis
	 * store's name is already a URL and is written whole. */
	const bool redis = pxs__is_redis_name(p->name);
	const char *scheme = redis ? "" : SCHEME;
	const char *name = redis ? p->name : p->name + 1;
	const size_t scheme_len = strlen(scheme);

	name_len = strlen(name);
	n = scheme_len + name_len + 1 + 32;
	if (len < n + 1) {
		if (len > 0)
			buf[0] = '\0';
		return -ENOSPC;
	}
	pxs_key_format(p->key, key);
	memcpy(buf, scheme, scheme_len);
	memcpy(buf + scheme_len, name, name_len);
	buf[scheme_len + name_len] = '/';
	memcpy(buf + scheme_len + name_len + 1, key, PXS_KEY_STRLEN);
	return (int)n;
}

/*
 * The string form is strict so that each proxy has exactly one spelling
 * and parsing cannot be fooled: "pxs://", a store name (without its '/'),
 * one '/', 32 lowercase hex digits, end. The name stops at the first '/',
 * which no valid name contains; pxs__name_check() then rejects anything
 * outside [A-Za-z0-9._-] (so percent-escapes, '?', spaces), empty names,
 * "." and ".."; pxs_key_parse() rejects a key that is not exactly 32
 * lowercase digits before the NUL (so extra segments and trailing
 * slashes). Inputs are measured with a bound, never with strlen().
 *
 * A Redis proxy is its store's name (a redis:// URL, whose NAME holds no
 * '/'), one '/' and the key: the store name ends at the last '/', and
 * pxs__redis_url_parse() checks it as strictly.
 */
int
pxs_proxy_parse(const char *str, pxs_proxy **out)
{
	char name[PXS_NAME_MAX + 2];
	const char *body, *slash;
	size_t n, name_len;
	pxs_key key;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (str == NULL)
		return -EINVAL;
	n = strnlen(str, PXS_PROXY_STRLEN);
	if (n == PXS_PROXY_STRLEN)
		return -EINVAL;
	if (pxs__is_redis_name(str)) {
		char url[PXS_STORE_NAME_MAX + 1];

		slash = memrchr(str, '/', n);
		name_len = (size_t)(slash - str); /* slash: "redis://" has two */
		if (name_len > PXS_STORE_NAME_MAX)
			return -EINVAL;
		memcpy(url, str, name_len);
		url[name_len] = '\0';
		if (pxs_key_parse(slash + 1, &key) < 0)
			return -EINVAL;
		return pxs_proxy_new(url, key, out); /* checks the URL */
	}
	if (n < SCHEME_LEN ||
	    memcmp(str, SCHEME, SCHEME_LEN) != 0)
		return -EINVAL;

	body = str + SCHEME_LEN;
	slash = memchr(body, '/', n - SCHEME_LEN);
	if (slash == NULL)
		return -EINVAL;
	name_len = (size_t)(slash - body);
	if (name_len == 0 || name_len > PXS_NAME_MAX)
		return -EINVAL;
	name[0] = '/';
	memcpy(name + 1, body, name_len);
	name[1 + name_len] = '\0';

	if (pxs_key_parse(slash + 1, &key) < 0)
		return -EINVAL;
	return pxs_proxy_new(name, key, out); /* checks the name */
}

pxs_key
pxs_proxy_key(const pxs_proxy *p)
{
	pxs_key zero = {0, 0};

	return p != NULL ? p->key : zero;
}

/* Give back a resolution's pin and registry reference, and free it. */
static void
resolution_drop(struct resolution *r)
{
	pxs_release(r->att->store, &r->view);
	registry_put(r->att);
	free(r);
}

int
pxs_proxy_resolve(pxs_proxy *p, long timeout_ms, const void **data,
		  size_t *size)
{
	struct resolution *r, *mine;
	int rc;

	if (p == NULL || data == NULL || size == NULL)
		return -EINVAL;

	/* Pairs with the release of the winning CAS below. */
	r = atomic_load_explicit(&p->resolved, memory_order_acquire);
	if (PXS_LIKELY(r != NULL))
		goto out;

	mine = calloc(1, sizeof(*mine));
	if (mine == NULL)
		return -ENOMEM;
	rc = registry_get(p->name, &mine->att);
	if (rc < 0) {
		free(mine);
		goto failed;
	}
	rc = pxs_future_wait(mine->att->store, p->key, timeout_ms,
			     &mine->view);
	if (rc < 0) {
		registry_put(mine->att);
		free(mine);
		goto failed;
	}
	r = NULL;
	if (atomic_compare_exchange_strong_explicit(&p->resolved, &r, mine,
						    memory_order_acq_rel,
						    memory_order_acquire))
		r = mine;
	else
		resolution_drop(mine); /* lost: r is the winner's */
	goto out;

failed:
	/* Another thread may have resolved the proxy meanwhile. */
	r = atomic_load_explicit(&p->resolved, memory_order_acquire);
	if (r == NULL)
		return rc;
out:
	*data = r->view.data;
	*size = r->view.size;
	return 0;
}

void
pxs_proxy_free(pxs_proxy *p)
{
	struct resolution *r;

	if (p == NULL)
		return;
	r = atomic_load_explicit(&p->resolved, memory_order_acquire);
	if (r != NULL)
		resolution_drop(r);
	free(p);
}
