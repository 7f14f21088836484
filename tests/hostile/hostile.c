/* hostile.c - the helpers declared in hostile.h: documented errors,
 * snapshots, the victim script, raw images.
 *
 * The error table below is include/proxyshm.h's @return lists, read from
 * the header at build time (pxs_doc_errs.h, written by docs/mkman.py): a
 * test that sees an undocumented code names the function and the code.
 */
#include "hostile.h"
#include "pxs_doc_errs.h"

#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* The documented negative results of each function, as positive errno
 * values, 0-terminated; and the largest documented non-negative result. */
struct doc {
	const char *name;
	int max_nonneg;
	int errs[48];
};

/* A function's entry: its name, largest non-negative result, errors. */
#define DOC(fn, max) {#fn, max, {PXS_DOC_ERRS_##fn, 0}}

static const struct doc docs[HX_NFN] = {
	[HX_OPEN] = DOC(pxs_open, 0),
	[HX_CLOSE] = {"pxs_close", 0, {0}},
	[HX_UNLINK] = DOC(pxs_unlink, 0),
	[HX_PUT] = DOC(pxs_put, 0),
	[HX_PUT_AT] = DOC(pxs_put_at, 0),
	[HX_GET] = DOC(pxs_get, 0),
	[HX_RELEASE] = DOC(pxs_release, 0),
	[HX_EXISTS] = DOC(pxs_exists, 1),
	[HX_EVICT] = DOC(pxs_evict, 0),
	[HX_FNEW] = DOC(pxs_future_new, 0),
	[HX_FNEW_AT] = DOC(pxs_future_new_at, 0),
	[HX_FSET] = DOC(pxs_future_set, 0),
	[HX_FRESERVE] = DOC(pxs_future_reserve, 0),
	[HX_FCOMMIT] = DOC(pxs_future_commit, 0),
	[HX_FCLAIM] = DOC(pxs_future_claim, 0),
	[HX_FWAIT] = DOC(pxs_future_wait, 0),
	[HX_FWAIT_ANY] = DOC(pxs_future_wait_any, 0),
	[HX_FDONE] = DOC(pxs_future_done, 1),
	[HX_STAT] = DOC(pxs_stat, 0),
	[HX_LIST] = DOC(pxs_list, 1),
	[HX_PROC_LIST] = DOC(pxs_proc_list, 1),
	[HX_CHECK] = DOC(pxs_check, 0),
	[HX_REAP] = DOC(pxs_reap, INT_MAX),
	[HX_KEY_FORMAT] = DOC(pxs_key_format, 0),
	[HX_KEY_PARSE] = DOC(pxs_key_parse, 0),
	[HX_PROXY_NEW] = DOC(pxs_proxy_new, 0),
	[HX_PROXY_FORMAT] = DOC(pxs_proxy_format, INT_MAX),
	[HX_PROXY_PARSE] = DOC(pxs_proxy_parse, 0),
	/* "any error of pxs_open() without PXS_CREATE, or of
	 * pxs_future_wait()" */
	[HX_PROXY_RESOLVE] = {"pxs_proxy_resolve",
			      0,
			      {PXS_DOC_ERRS_pxs_proxy_resolve,
			       PXS_DOC_ERRS_pxs_open,
			       PXS_DOC_ERRS_pxs_future_wait, 0}},
	[HX_SNEW] = DOC(pxs_stream_new, 0),
	[HX_SAPPEND] = DOC(pxs_stream_append, 0),
	[HX_SRESERVE] = DOC(pxs_stream_reserve, 0),
	[HX_SCOMMIT] = DOC(pxs_stream_commit, 0),
	[HX_SREAD] = DOC(pxs_stream_read, 0),
	[HX_SEND] = DOC(pxs_stream_end, 0),
	[HX_SSTAT] = DOC(pxs_stream_stat, 0),
	[HX_SJOIN] = DOC(pxs_stream_join, 0),
	[HX_SLEAVE] = DOC(pxs_stream_leave, 0),
	[HX_STAKE] = DOC(pxs_stream_take, 0),
	[HX_SACK] = DOC(pxs_stream_ack, 0),
	[HX_SDELETE] = DOC(pxs_stream_delete, 0),
};

static bool
takes_store(enum hx_fn fn)
{
	switch (fn) {
	case HX_OPEN:
	case HX_CLOSE:
	case HX_UNLINK:
	case HX_KEY_FORMAT:
	case HX_KEY_PARSE:
	case HX_PROXY_NEW:
	case HX_PROXY_FORMAT:
	case HX_PROXY_PARSE:
		return false;
	default:
		return true;
	}
}

const char *
hx_fn_name(enum hx_fn fn)
{
	return fn < HX_NFN ? docs[fn].name : "?";
}

bool
hx_doc_lists(enum hx_fn fn, int err)
{
	if (fn >= HX_NFN)
		return false;
	const struct doc *d = &docs[fn];
	for (size_t i = 0; i < sizeof d->errs / sizeof *d->errs && d->errs[i];
	     i++)
		if (d->errs[i] == err)
			return true;
	return false;
}

bool
hx_documented(enum hx_fn fn, int rc)
{
	if (fn >= HX_NFN)
		return false;
	const struct doc *d = &docs[fn];
	if (rc >= 0)
		return rc <= d->max_nonneg;
	/* The header's Errors section: "Once a segment is in that state,
	 * every function that takes a store returns it." */
	if (rc == -ENOTRECOVERABLE && takes_store(fn))
		return true;
	return hx_doc_lists(fn, -rc);
}

bool hx_strict;

const char *
hx_known_bug(enum hx_fn fn, int rc)
{
	/* Open library bugs whose codes the victim script must tolerate go
	 * here, each with its id from test_bugs.c. None at the moment:
	 * KB-FIRST-PIN (-ENOSPC from get/wait) and KB-POISON-DOC
	 * (-ENOTRECOVERABLE everywhere) became documented behaviour. */
	(void)fn;
	(void)rc;
	return NULL;
}

bool
hx_acceptable(enum hx_fn fn, int rc)
{
	return hx_documented(fn, rc) || (!hx_strict && hx_known_bug(fn, rc));
}

void
hx_deadline(unsigned secs)
{
	signal(SIGALRM, SIG_DFL);
	alarm(secs);
}

void
hx_name(char *buf, size_t len, const char *tag)
{
	static unsigned counter;
	snprintf(buf, len, "/pxs-hx-%s-%ld-%u", tag, (long)getpid(),
		 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
}

void
hx_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
}

int
hx_shm_write(const char *name, const void *bytes, size_t n, size_t size)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (ftruncate(fd, (off_t)size) < 0)
		rc = -errno;
	size_t done = 0;
	while (rc == 0 && done < n) {
		ssize_t w = pwrite(fd, (const char *)bytes + done, n - done,
				   (off_t)done);
		if (w <= 0)
			rc = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	close(fd);
	return rc;
}

unsigned char *
hx_shm_read(const char *name, size_t *len)
{
	/* O_NONBLOCK: a FIFO must not block the test. */
	int fd = shm_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	struct stat st;
	unsigned char *buf = NULL;
	*len = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (buf = malloc(st.st_size ? (size_t)st.st_size : 1)) != NULL) {
		size_t done = 0;
		while (done < (size_t)st.st_size) {
			ssize_t r =
				pread(fd, buf + done, (size_t)st.st_size - done,
				      (off_t)done);
			if (r <= 0)
				break;
			done += (size_t)r;
		}
		*len = done;
	}
	close(fd);
	return buf;
}

uint64_t
hx_shm_hash(const char *name)
{
	size_t n;
	unsigned char *b = hx_shm_read(name, &n);
	if (!b)
		return 0;
	uint64_t h = XXH3_64bits(b, n) ^ n;
	free(b);
	return h;
}

void
hx_reinit_locks(unsigned char *base, size_t len)
{
	struct pxs_seg_hdr *h = (struct pxs_seg_hdr *)base;
	struct pxs_geom g;
	if (len < sizeof *h)
		return;
	pxs__mutex_init(&h->table_lock);
	pxs__mutex_init(&h->heap_lock);
	pxs__mutex_init(&h->proc_lock);
	for (uint32_t b = 0; b < PXS_BELLS; b++)
		pxs__mutex_init(&h->bells[b].lock);
	if (pxs__geometry(h->size, h->capacity, &g) < 0 || g.size != len ||
	    g.table_off + (uint64_t)g.nslots * sizeof(struct pxs_seg_slot) >
		    len)
		return;
	struct pxs_seg_slot *sl = (struct pxs_seg_slot *)(base + g.table_off);
	for (uint32_t i = 0; i < g.nslots; i++)
		pxs__mutex_init(&sl[i].lock);
}

/* ---- snapshots ---------------------------------------------------------- */

int
hx_snap_take(pxs_store *s, struct hx_snap *out)
{
	memset(out, 0, sizeof *out);
	int rc = pxs_stat(s, &out->st);
	if (rc < 0)
		return rc;
	out->nslots = s->g.nslots;
	out->slots = calloc(out->nslots, sizeof *out->slots);
	if (!out->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < out->nslots; i++) {
		const struct pxs_seg_slot *sl = &s->slots[i];
		struct hx_slot *o = &out->slots[i];
		o->state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (o->state == PXS_SLOT_EMPTY || o->state == PXS_SLOT_TOMB) {
			o->state =
				PXS_SLOT_EMPTY; /* a swept tomb is no change */
			continue;
		}
		o->owner = sl->owner;
		o->gen = sl->gen;
		o->key_hi = sl->key_hi;
		o->key_lo = sl->key_lo;
		o->off = sl->off;
		o->size = sl->size;
		const void *data;
		uint64_t size;
		if ((o->state == PXS_SLOT_READY ||
		     o->state == PXS_SLOT_EVICTED) &&
		    pxs__slot_payload(s, sl, &data, &size) == 0)
			o->hash = XXH3_64bits(data, (size_t)size);
	}
	return 0;
}

void
hx_snap_free(struct hx_snap *sn)
{
	free(sn->slots);
	sn->slots = NULL;
}

#define SAME(field)                                                            \
	do {                                                                   \
		if (a->st.field != b->st.field) {                              \
			snprintf(why, len, "stat." #field " %llu -> %llu",     \
				 (unsigned long long)a->st.field,              \
				 (unsigned long long)b->st.field);             \
			return -1;                                             \
		}                                                              \
	} while (0)

int
hx_snap_cmp(const struct hx_snap *a, const struct hx_snap *b, char *why,
	    size_t len)
{
	SAME(heap_used);
	SAME(heap_free);
	SAME(heap_largest_free);
	SAME(objects);
	SAME(pending);
	SAME(abandoned);
	SAME(evicted_pinned);
	SAME(pins);
	SAME(waiters);
	SAME(processes);
	if (a->nslots != b->nslots) {
		snprintf(why, len, "nslots differ");
		return -1;
	}
	for (uint32_t i = 0; i < a->nslots; i++) {
		if (memcmp(&a->slots[i], &b->slots[i], sizeof a->slots[i])) {
			snprintf(why, len,
				 "slot %u changed: state %u->%u "
				 "size %llu->%llu",
				 i, a->slots[i].state, b->slots[i].state,
				 (unsigned long long)a->slots[i].size,
				 (unsigned long long)b->slots[i].size);
			return -1;
		}
	}
	return 0;
}

bool
hx_view_inside(const pxs_store *s, const void *data, size_t size)
{
	uintptr_t lo = (uintptr_t)(s->base + s->g.heap_off);
	uintptr_t hi = (uintptr_t)(s->base + s->g.size);
	uintptr_t p = (uintptr_t)data;
	return data && p >= lo && p <= hi && size <= hi - p;
}

/* ---- the victim --------------------------------------------------------- */

struct vctx {
	pxs_store *s;
	char *why;
	size_t len;
	bool failed;
};

static bool
ok(struct vctx *c, enum hx_fn fn, int rc, pxs_key k)
{
	if (hx_acceptable(fn, rc))
		return true;
	if (!c->failed) {
		char ks[PXS_KEY_STRLEN];
		pxs_key_format(k, ks);
		snprintf(c->why, c->len,
			 "%s(%s) returned %d (%s): undocumented",
			 hx_fn_name(fn), ks, rc, pxs_strerror(rc));
	}
	c->failed = true;
	return false;
}

static bool
view_ok(struct vctx *c, const pxs_view *v, const char *what)
{
	if (hx_view_inside(c->s, v->data, v->size))
		return true;
	if (!c->failed)
		snprintf(c->why, c->len,
			 "%s: view %p+%zu outside the heap [%p, %p)", what,
			 v->data, v->size,
			 (void *)(c->s->base + c->s->g.heap_off),
			 (void *)(c->s->base + c->s->g.size));
	c->failed = true;
	return false;
}

/* Touch every byte of a view: under ASan a wild pointer shows here. */
static uint64_t
touch(const pxs_view *v)
{
	return XXH3_64bits(v->data, v->size);
}

static void
try_key(struct vctx *c, pxs_key k, uint64_t *rng, bool mutate)
{
	pxs_store *s = c->s;
	pxs_view v;
	void *buf;
	int rc;
	unsigned char data[512];
	size_t n = (size_t)(hx_rand(rng) % sizeof data);
	memset(data, (int)(n & 0xff), n);

	rc = pxs_get(s, k, &v);
	if (ok(c, HX_GET, rc, k) && rc == 0 && view_ok(c, &v, "pxs_get")) {
		touch(&v);
		ok(c, HX_RELEASE, pxs_release(s, &v), k);
	}
	ok(c, HX_EXISTS, pxs_exists(s, k), k);
	ok(c, HX_FDONE, pxs_future_done(s, k), k);
	rc = pxs_future_wait(s, k, 0, &v);
	if (ok(c, HX_FWAIT, rc, k) && rc == 0 && view_ok(c, &v, "wait")) {
		touch(&v);
		ok(c, HX_RELEASE, pxs_release(s, &v), k);
	}
	if (!mutate)
		return;
	switch (hx_rand(rng) % 8) {
	case 0:
		ok(c, HX_EVICT, pxs_evict(s, k), k);
		break;
	case 1:
		ok(c, HX_FCLAIM, pxs_future_claim(s, k), k);
		break;
	case 2:
		ok(c, HX_FSET, pxs_future_set(s, k, data, n), k);
		break;
	case 3:
		rc = pxs_future_reserve(s, k, n, &buf);
		if (ok(c, HX_FRESERVE, rc, k) && rc == 0) {
			pxs_view bv = {.data = buf, .size = n};
			if (view_ok(c, &bv, "reserve"))
				memcpy(buf, data, n);
		}
		ok(c, HX_FCOMMIT, pxs_future_commit(s, k), k);
		break;
	case 4:
		ok(c, HX_PUT_AT, pxs_put_at(s, k, data, n), k);
		break;
	case 5:
		ok(c, HX_FNEW_AT, pxs_future_new_at(s, k), k);
		break;
	case 6:
		/* Pin, evict, then release: the evicted-pinned path. */
		rc = pxs_get(s, k, &v);
		if (ok(c, HX_GET, rc, k) && rc == 0 &&
		    view_ok(c, &v, "pxs_get")) {
			ok(c, HX_EVICT, pxs_evict(s, k), k);
			touch(&v);
			ok(c, HX_RELEASE, pxs_release(s, &v), k);
		}
		break;
	default:
		ok(c, HX_FCOMMIT, pxs_future_commit(s, k), k);
		break;
	}
}

int
hx_victim(pxs_store *s, const struct hx_victim_opts *o, char *why, size_t len)
{
	struct vctx c = {.s = s, .why = why, .len = len};
	uint64_t rng = o->seed | 1;
	pxs_key none = {0, 0}, k;
	pxs_stats st;
	pxs_check_report cr;
	pxs_entry e;
	pxs_proc_info pi;
	uint64_t cur;
	int rc;

	why[0] = '\0';
	for (unsigned r = 0; r < o->rounds && !c.failed; r++) {
		for (size_t i = 0; i < o->nkeys && !c.failed; i++)
			try_key(&c, o->keys[i], &rng, o->mutate);
		/* Fresh keys: the insertion paths. */
		unsigned char data[300];
		memset(data, 0x5a, sizeof data);
		size_t n = (size_t)(hx_rand(&rng) % sizeof data);
		rc = pxs_put(s, data, n, &k);
		ok(&c, HX_PUT, rc, none);
		if (rc == 0)
			try_key(&c, k, &rng, o->mutate);
		rc = pxs_future_new(s, &k);
		ok(&c, HX_FNEW, rc, none);
		if (rc == 0) {
			try_key(&c, k, &rng, o->mutate);
			ok(&c, HX_FSET, pxs_future_set(s, k, data, n), k);
			try_key(&c, k, &rng, o->mutate);
		}
		ok(&c, HX_STAT, pxs_stat(s, &st), none);
		rc = pxs_check(s, &cr);
		ok(&c, HX_CHECK, rc, none);
		if (rc == -EPROTO && !o->check_allowed_to_fail && !c.failed) {
			snprintf(why, len, "pxs_check: %s", cr.first_error);
			c.failed = true;
		}
		cur = 0;
		for (int guard = 0; guard < (1 << 20); guard++) {
			rc = pxs_list(s, &cur, &e);
			if (!ok(&c, HX_LIST, rc, none) || rc != 1)
				break;
			if (!pxs__key_is_zero(e.key))
				try_key(&c, e.key, &rng, false);
		}
		cur = 0;
		while ((rc = pxs_proc_list(s, &cur, &pi)) == 1)
			;
		ok(&c, HX_PROC_LIST, rc, none);
		ok(&c, HX_REAP, pxs_reap(s), none);
	}
	return c.failed ? -1 : 0;
}

/* ---- the reference grammar --------------------------------------------- */

bool
hx_ref_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
hx_ref_key(const char *s, size_t n)
{
	bool nonzero = false;
	if (n != 32)
		return false;
	for (size_t i = 0; i < 32; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		nonzero |= c != '0';
	}
	return nonzero;
}

/* NAME in n bytes: 1..PXS_NAME_MAX name characters, not "." or "..", and
 * not reserved for unfinished segments (".pxs-..."). */
static bool
ref_name(const char *name, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!hx_ref_name_char(name[i]))
			return false;
	return n >= 1 && n <= PXS_NAME_MAX && !(n == 1 && name[0] == '.') &&
	       !(n == 2 && name[0] == '.' && name[1] == '.') &&
	       !(n >= 5 && !strncmp(name, ".pxs-", 5));
}

bool
hx_ref_store_name(const char *s, size_t n)
{
	return n >= 1 && s[0] == '/' && ref_name(s + 1, n - 1);
}

bool
hx_ref_name_key(const char *name, size_t n)
{
	const char *slash = memchr(name, '/', n);
	if (!slash)
		return false;
	size_t i = (size_t)(slash - name);
	return ref_name(name, i) && hx_ref_key(slash + 1, n - i - 1);
}

bool
hx_ref_pxs_proxy(const char *s, size_t n)
{
	if (n < 6 || memcmp(s, "pxs://", 6) != 0)
		return false;
	return hx_ref_name_key(s + 6, n - 6);
}

bool
hx_ref_redis_proxy(const char *s, size_t *store_len)
{
	size_t n = strlen(s), i = 8, h;
	long port = 0;

	if (n < 8 || memcmp(s, "redis://", 8))
		return false;
	if (s[i] == '[') {
		h = ++i;
		while (i < n && (strchr("0123456789abcdefABCDEF:.", s[i]) &&
				 s[i] != '\0'))
			i++;
		if (i >= n || s[i] != ']' || i - h < 2 || i - h > 45)
			return false;
		i++;
	} else {
		h = i;
		while (i < n && (hx_ref_name_char(s[i]) && s[i] != '_'))
			i++;
		if (i == h || i - h > 253)
			return false;
	}
	if (s[i++] != ':' || s[i] < '1' || s[i] > '9')
		return false;
	for (h = i; s[i] >= '0' && s[i] <= '9'; i++)
		if (i - h >= 5 || (port = port * 10 + (s[i] - '0')) > 65535)
			return false;
	if (s[i] != '/')
		return false;
	const char *last = strrchr(s, '/');
	*store_len = (size_t)(last - s);
	return hx_ref_name_key(s + i + 1, n - i - 1);
}
