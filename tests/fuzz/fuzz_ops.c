/* fuzz_ops.c - PLAN G5: a byte stream decoded into API calls on two
 * handles of one store, checked against an in-memory model. Op bytes from
 * STREAM_OPS up are stream calls on a second store (fuzz_ops_stream.c);
 * below it, b % NOPS is the op and (b / NOPS) & 1 the handle.
 *
 * The model is what the header and docs/design.md promise: per key a
 * state (absent, value, pending, reserved, abandoned) and an owner, per
 * slot "instance" its pins and whether it was evicted while pinned or
 * reserved, and the table's capacity (evicted-but-held slots count
 * against it). Every return code must equal the model's, every view's
 * bytes must stay what was stored while it is pinned, pxs_stat's figures
 * must match the model after every call, and at the end, with every view
 * released, every key evicted and both handles closed, the heap must be
 * back to empty (heap exact). -ENOSPC is right only when the model's
 * capacity is used up: payloads are small, the heap cannot fill.
 */
#include "fuzz.h"
#include "hostile.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NFIX 16 /* keys chosen by the input */
#define NKEY 32 /* plus keys handed out by pxs_put / pxs_future_new */
#define NVIEW 48
#define NINST 256
#define CAP 64

enum mstate { M_ABSENT, M_READY, M_PENDING, M_RESERVED, M_ABANDONED };

struct inst {
	bool used;
	int key;
	bool evicted;
	int pins;
	int reserver; /* handle holding a reservation on it, or -1 */
	size_t size;
	uint8_t fill;
};

struct mkey {
	bool used;
	pxs_key k;
	enum mstate state;
	int owner; /* handle owning a pending/reserved future */
	int inst;
};

struct mview {
	bool used;
	int h, inst;
	pxs_view v;
};

static struct {
	struct mkey keys[NKEY];
	struct inst inst[NINST];
	struct mview views[NVIEW];
	pxs_store *h[2];
	char name[64];
	int ops;
} M;

static const char *const op_names[] = {
	"put_at", "put",   "get",  "release", "exists", "evict",
	"new_at", "new",   "set",  "reserve", "commit", "claim",
	"done",   "wait0", "stat", "check",   "verify", "reopen",
};
#define NOPS (int)(sizeof op_names / sizeof *op_names)
#define STREAM_OPS (8 * NOPS) /* op bytes from here on: stream calls */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(M.name, sizeof M.name, "/pxs-fz-ops-%ld", (long)getpid());
	return 0;
}

static uint8_t
pattern(uint8_t fill, size_t j)
{
	return (uint8_t)(fill + j * 7);
}

static void
fill_buf(void *b, size_t n, uint8_t fill)
{
	for (size_t j = 0; j < n; j++)
		((uint8_t *)b)[j] = pattern(fill, j);
}

static int
live_count(void)
{
	int n = 0;
	for (int i = 0; i < NINST; i++)
		n += M.inst[i].used;
	return n;
}

static int
inst_new(int key)
{
	for (int i = 0; i < NINST; i++)
		if (!M.inst[i].used) {
			M.inst[i] = (struct inst){
				.used = true, .key = key, .reserver = -1};
			return i;
		}
	FZ_FAIL("model: out of instances");
}

/* An evicted instance nobody holds any more is freed. */
static void
inst_maybe_free(int i)
{
	struct inst *in = &M.inst[i];
	if (in->evicted && in->pins == 0 && in->reserver < 0)
		in->used = false;
}

static void
expect(const char *op, int h, int key, int got, int want)
{
	if (got == want)
		return;
	char ks[PXS_KEY_STRLEN] = "-";
	if (key >= 0)
		pxs_key_format(M.keys[key].k, ks);
	FZ_FAIL("op %d %s(h%d, key %d %s, state %d): got %d (%s), model "
		"says %d (%s)",
		M.ops, op, h, key, ks, key >= 0 ? (int)M.keys[key].state : -1,
		got, pxs_strerror(got), want, pxs_strerror(want));
}

/* pxs_stat through handle h against the model. Other processes may
 * attach to the segment meanwhile (`proxyshm ls-segments` attaches to every
 * segment in /dev/shm: the campaign once caught one doing so), so the
 * process count is a lower bound. */
static void
check_stat(int h)
{
	pxs_stats st;
	int rc = pxs_stat(M.h[h], &st);
	expect("stat", h, -1, rc, 0);
	uint32_t objects = 0, pending = 0, abandoned = 0, evicted = 0, pins = 0;
	for (int i = 0; i < NINST; i++) {
		const struct inst *in = &M.inst[i];
		if (!in->used)
			continue;
		pins += (uint32_t)in->pins;
		if (in->evicted) {
			evicted++;
			continue;
		}
		switch (M.keys[in->key].state) {
		case M_READY:
			objects++;
			break;
		case M_PENDING:
		case M_RESERVED:
			pending++;
			break;
		case M_ABANDONED:
			abandoned++;
			break;
		default:
			FZ_FAIL("model: live instance of an absent key");
		}
	}
	FZ_CHECK(st.objects == objects && st.pending == pending &&
			 st.abandoned == abandoned &&
			 st.evicted_pinned == evicted && st.pins == pins &&
			 st.processes >= 2 && st.waiters == 0,
		 "op %d stat: objects %u/%u pending %u/%u abandoned %u/%u "
		 "evicted %u/%u pins %u/%u processes %u",
		 M.ops, st.objects, objects, st.pending, pending, st.abandoned,
		 abandoned, st.evicted_pinned, evicted, st.pins, pins,
		 st.processes);
}

static void
verify_views(void)
{
	for (int i = 0; i < NVIEW; i++) {
		const struct mview *w = &M.views[i];
		if (!w->used)
			continue;
		const struct inst *in = &M.inst[w->inst];
		FZ_CHECK(w->v.size == in->size,
			 "op %d: view %d size %zu, "
			 "model %zu",
			 M.ops, i, w->v.size, in->size);
		for (size_t j = 0; j < w->v.size; j++)
			FZ_CHECK(((const uint8_t *)w->v.data)[j] ==
					 pattern(in->fill, j),
				 "op %d: view %d byte %zu changed", M.ops, i,
				 j);
	}
}

static int
view_slot(void)
{
	for (int i = 0; i < NVIEW; i++)
		if (!M.views[i].used)
			return i;
	return -1;
}

static int
key_slot(void)
{
	for (int i = NFIX; i < NKEY; i++)
		if (!M.keys[i].used)
			return i;
	return -1;
}

/* A pin returned by get or wait. */
static void
pinned(int h, int key, int vi, const pxs_view *v)
{
	struct mkey *k = &M.keys[key];
	M.inst[k->inst].pins++;
	M.views[vi] =
		(struct mview){.used = true, .h = h, .inst = k->inst, .v = *v};
	FZ_CHECK(hx_view_inside(M.h[h], v->data, v->size),
		 "op %d: view outside the heap", M.ops);
}

static void
drop_view(int vi)
{
	struct mview *w = &M.views[vi];
	M.inst[w->inst].pins--;
	inst_maybe_free(w->inst);
	w->used = false;
}

/* What closing handle h does: its views go, its futures are abandoned,
 * its evicted reservations are freed. */
static void
model_close(int h)
{
	for (int i = 0; i < NVIEW; i++)
		if (M.views[i].used && M.views[i].h == h)
			drop_view(i);
	for (int i = 0; i < NKEY; i++) {
		struct mkey *k = &M.keys[i];
		if (!k->used || k->owner != h ||
		    (k->state != M_PENDING && k->state != M_RESERVED))
			continue;
		k->state = M_ABANDONED;
		k->owner = -1;
		M.inst[k->inst].reserver = -1;
		M.inst[k->inst].size = 0;
	}
	for (int i = 0; i < NINST; i++)
		if (M.inst[i].used && M.inst[i].evicted &&
		    M.inst[i].reserver == h) {
			M.inst[i].reserver = -1;
			inst_maybe_free(i);
		}
}

/* What an insertion of key k (put_at, future_new_at) must return. An
 * abandoned key is taken over (a restart): its instance holds nothing
 * from now on. */
static int
want_insert(struct mkey *k)
{
	if (k->state == M_ABANDONED) {
		M.inst[k->inst].used = false;
		return 0;
	}
	return k->state != M_ABSENT ? -EEXIST
	       : live_count() >= CAP ? -ENOSPC
				     : 0;
}

void
fz_ops_empty(const char *name)
{
	pxs_store *f;
	pxs_stats st;
	pxs_check_report r;
	FZ_CHECK(pxs_open(name, NULL, &f) == 0, "%s: final attach", name);
	FZ_CHECK(pxs_stat(f, &st) == 0, "%s: final stat", name);
	/* Each process's pin directory and its arrays, one per table. */
	uint64_t pin_array = (PXS_MAX_TABLES * 8 + 47) & ~15ull;
	for (uint32_t t = 0; t < pxs__ntab(f); t++)
		pin_array += ((uint64_t)pxs__tab_slots(f, t) * 2 + 47) & ~15ull;
	FZ_CHECK(st.objects == 0 && st.pending == 0 && st.abandoned == 0 &&
			 st.evicted_pinned == 0 && st.pins == 0 &&
			 st.heap_used <= pin_array * st.processes,
		 "%s not empty at the end: objects %u pending %u evicted %u "
		 "pins %u heap_used %llu",
		 name, st.objects, st.pending, st.evicted_pinned, st.pins,
		 (unsigned long long)st.heap_used);
	FZ_CHECK(pxs_check(f, &r) == 0 && r.errors == 0,
		 "%s: final check: %s", name, r.first_error);
	pxs_close(f);
	shm_unlink(name);
}

static void
do_op(struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	if (b >= STREAM_OPS) {
		fzs_op((uint8_t)(b - STREAM_OPS), in);
		return;
	}
	int op = b % NOPS, h = (b / NOPS) & 1;
	int key = fz_u8(in) % NKEY;
	size_t size = (size_t)(fz_u8(in) % 64) * 61;
	uint8_t fill = fz_u8(in);
	struct mkey *k = &M.keys[key];
	pxs_store *s = M.h[h];
	const char *name = op_names[op];
	static uint8_t data[64 * 61];
	pxs_view v;
	void *buf;
	int rc, want, vi;

	fill_buf(data, size, fill);
	if (!k->used && op != 1 && op != 7) /* a dynamic key not handed out */
		return;
	switch (op) {
	case 0: /* put_at */
		want = want_insert(k);
		rc = pxs_put_at(s, k->k, data, size);
		expect(name, h, key, rc, want);
		if (rc == 0) {
			k->state = M_READY;
			k->owner = -1;
			k->inst = inst_new(key);
			M.inst[k->inst].size = size;
			M.inst[k->inst].fill = fill;
		}
		break;
	case 1: /* put */
	case 7: /* future_new */
		if ((key = key_slot()) < 0)
			return;
		k = &M.keys[key];
		want = live_count() >= CAP ? -ENOSPC : 0;
		rc = op == 1 ? pxs_put(s, data, size, &k->k)
			     : pxs_future_new(s, &k->k);
		expect(name, h, -1, rc, want);
		if (rc == 0) {
			k->used = true;
			k->state = op == 1 ? M_READY : M_PENDING;
			k->owner = op == 1 ? -1 : h;
			k->inst = inst_new(key);
			M.inst[k->inst].size = op == 1 ? size : 0;
			M.inst[k->inst].fill = fill;
		}
		break;
	case 2:  /* get */
	case 13: /* wait with timeout 0 */
		if ((vi = view_slot()) < 0)
			return;
		switch (k->state) {
		case M_ABSENT:
			want = -ENOENT;
			break;
		case M_READY:
			want = 0;
			break;
		case M_ABANDONED:
			want = -EOWNERDEAD;
			break;
		default:
			want = op == 2 ? -EAGAIN : -ETIMEDOUT;
		}
		rc = op == 2 ? pxs_get(s, k->k, &v)
			     : pxs_future_wait(s, k->k, 0, &v);
		expect(name, h, key, rc, want);
		if (rc == 0)
			pinned(h, key, vi, &v);
		break;
	case 3: /* release a view (chosen by the key byte) */
		vi = key % NVIEW;
		for (int t = 0; t < NVIEW && !M.views[vi].used; t++)
			vi = (vi + 1) % NVIEW;
		if (!M.views[vi].used)
			return;
		rc = pxs_release(M.h[M.views[vi].h], &M.views[vi].v);
		expect(name, M.views[vi].h, -1, rc, 0);
		FZ_CHECK(M.views[vi].v.data == NULL, "release kept the view");
		drop_view(vi);
		break;
	case 4: /* exists */
		rc = pxs_exists(s, k->k);
		expect(name, h, key, rc, k->state == M_READY);
		break;
	case 5: /* evict */
		want = k->state == M_ABSENT ? -ENOENT : 0;
		rc = pxs_evict(s, k->k);
		expect(name, h, key, rc, want);
		if (rc == 0) {
			struct inst *i = &M.inst[k->inst];
			if ((k->state == M_READY && i->pins > 0) ||
			    k->state == M_RESERVED)
				i->evicted = true;
			else
				i->used = false;
			k->state = M_ABSENT;
			k->owner = -1;
		}
		break;
	case 6: /* future_new_at */
		want = want_insert(k);
		rc = pxs_future_new_at(s, k->k);
		expect(name, h, key, rc, want);
		if (rc == 0) {
			k->state = M_PENDING;
			k->owner = h;
			k->inst = inst_new(key);
		}
		break;
	case 8:  /* set */
	case 9:  /* reserve (+ write) */
	case 11: /* claim */
		switch (k->state) {
		case M_ABSENT:
			want = -ENOENT;
			break;
		case M_READY:
			want = -EALREADY;
			break;
		case M_ABANDONED:
			want = -EOWNERDEAD;
			break;
		case M_RESERVED:
			want = op == 11 && M.inst[k->inst].reserver == h
				       ? 0
				       : -EBUSY;
			break;
		default:
			want = 0;
		}
		if (op == 8)
			rc = pxs_future_set(s, k->k, data, size);
		else if (op == 9)
			rc = pxs_future_reserve(s, k->k, size, &buf);
		else
			rc = pxs_future_claim(s, k->k);
		expect(name, h, key, rc, want);
		if (rc != 0 || k->state == M_RESERVED)
			break;
		if (op == 8) {
			k->state = M_READY;
			k->owner = -1;
			M.inst[k->inst].size = size;
			M.inst[k->inst].fill = fill;
		} else if (op == 9) {
			pxs_view bv = {.data = buf, .size = size};
			FZ_CHECK(hx_view_inside(s, bv.data, size),
				 "reserve: buffer outside the heap");
			fill_buf(buf, size, fill);
			k->state = M_RESERVED;
			k->owner = h;
			M.inst[k->inst].reserver = h;
			M.inst[k->inst].size = size;
			M.inst[k->inst].fill = fill;
		} else {
			k->owner = h;
		}
		break;
	case 10: { /* commit */
		/* A reservation of the caller's on the key is published; else an
		 * evicted reservation of the caller's on this key (even if the
		 * key was used again since) is given back with -ENOENT; else the
		 * key's state decides. */
		int ev = -1;
		for (int i = 0; i < NINST && ev < 0; i++)
			if (M.inst[i].used && M.inst[i].evicted &&
			    M.inst[i].key == key && M.inst[i].reserver == h)
				ev = i;
		switch (k->state) {
		case M_RESERVED:
			want = M.inst[k->inst].reserver == h ? 0 : -EPERM;
			break;
		case M_ABSENT:
			want = -ENOENT;
			break;
		case M_PENDING:
			want = -EAGAIN;
			break;
		case M_READY:
			want = -EALREADY;
			break;
		default:
			want = -EOWNERDEAD;
		}
		if (want != 0 && ev >= 0)
			want = -ENOENT;
		else
			ev = -1;
		rc = pxs_future_commit(s, k->k);
		expect(name, h, key, rc, want);
		if (ev >= 0) { /* the evicted reservation is given back */
			M.inst[ev].reserver = -1;
			inst_maybe_free(ev);
		}
		if (rc == 0) {
			k->state = M_READY;
			k->owner = -1;
			M.inst[k->inst].reserver = -1;
		}
		break;
	}
	case 12: /* done */
		want = k->state == M_READY       ? 1
		       : k->state == M_ABSENT    ? -ENOENT
		       : k->state == M_ABANDONED ? -EOWNERDEAD
						 : 0;
		rc = pxs_future_done(s, k->k);
		expect(name, h, key, rc, want);
		break;
	case 14:
		check_stat(h);
		break;
	case 15: {
		pxs_check_report r;
		rc = pxs_check(s, &r);
		FZ_CHECK(rc == 0 && r.errors == 0, "op %d: pxs_check %d: %s",
			 M.ops, rc, r.first_error);
		break;
	}
	case 16:
		verify_views();
		break;
	default: /* reopen handle h */
		model_close(h);
		FZ_CHECK(pxs_close(s) == 0, "close");
		rc = pxs_open(M.name, NULL, &M.h[h]);
		FZ_CHECK(rc == 0, "reopen: %d", rc);
		break;
	}
	check_stat(h ^ 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL,
			 .size = 4 * HX_MiB,
			 .capacity = CAP};
	memset(M.keys, 0, sizeof M.keys);
	memset(M.inst, 0, sizeof M.inst);
	memset(M.views, 0, sizeof M.views);
	M.ops = 0;
	for (int i = 0; i < NFIX; i++) {
		M.keys[i].used = true;
		/* half of them collide in the hash table's home slot */
		M.keys[i].k = (pxs_key){0xabc0 + (uint64_t)i,
					i % 2 ? 5 : (uint64_t)i * 977 + 1};
		M.keys[i].owner = -1;
	}
	shm_unlink(M.name);
	FZ_CHECK(pxs_open(M.name, &o, &M.h[0]) == 0, "create");
	FZ_CHECK(pxs_open(M.name, NULL, &M.h[1]) == 0, "attach");
	fzs_begin(M.name);
	while (in.n && M.ops < 2000) {
		do_op(&in);
		M.ops++;
	}
	verify_views();
	/* Quiesce: release, evict, close; the heap must be empty again. */
	for (int i = 0; i < NVIEW; i++)
		if (M.views[i].used) {
			expect("release", M.views[i].h, -1,
			       pxs_release(M.h[M.views[i].h], &M.views[i].v),
			       0);
			drop_view(i);
		}
	for (int i = 0; i < NKEY; i++)
		if (M.keys[i].used && M.keys[i].state != M_ABSENT)
			expect("evict", 0, i, pxs_evict(M.h[0], M.keys[i].k),
			       0);
	pxs_check_report r;
	int rc = pxs_check(M.h[0], &r);
	FZ_CHECK(rc == 0, "final check: %s", r.first_error);
	pxs_close(M.h[1]);
	pxs_close(M.h[0]);
	fz_ops_empty(M.name);
	fzs_end();
	return 0;
}
