/* fuzz_ops_stream.c - the stream half of the "ops" target: stream calls
 * decoded from the same byte stream, on two handles of a store of their
 * own, checked against a model of what the header promises.
 *
 * The model keeps, per stream, its window, mode, next and first numbers,
 * ended, each handle's reader position and reservation, the two groups'
 * next item and taken list, and the fill of each retained item. Every
 * return code must be the model's (timeouts are 0, so a wait that would
 * sleep is -ETIMEDOUT: in a Block stream when the items committed or in
 * flight reach the window past the slowest reader or group), every
 * pxs_stream_stat() must match it field by field, and every pinned view
 * must keep its bytes, also after its item slid out or its stream was
 * deleted. At the end every view is released, every stream deleted and
 * both handles closed: the store must be empty again (a reservation
 * evicted by a delete comes back at its handle's close).
 */
#include "fuzz.h"
#include "hostile.h"

#include <string.h>
#include <sys/mman.h>

#define NS 4       /* streams */
#define WMAX 4     /* largest window the input picks */
#define NG 2       /* groups per stream */
#define NSV 32     /* views */
#define SIZE_UNIT 29

struct mgroup {
	bool used;
	uint64_t next;
	uint32_t ntaken;
	uint64_t taken[PXS_STREAM_TAKEN_MAX];
};

struct mstream {
	bool used, ended, block;
	uint32_t window;
	uint64_t next, first;
	bool joined[2];
	uint64_t pos[2];
	bool resv[2];
	size_t resv_size[2];
	uint8_t resv_fill[2];
	struct mgroup g[NG];
	size_t size[WMAX];   /* item seq at seq % window */
	uint8_t fill[WMAX];
};

struct sview {
	bool used;
	int h;
	pxs_view v;
	size_t size;
	uint8_t fill;
};

static struct {
	char name[64];
	pxs_store *h[2];
	pxs_key key[NS];
	struct mstream st[NS];
	struct sview views[NSV];
	int ops;
} S;

static const char *const group_names[NG] = {"g0", "workers"};
static const char *const sop_names[] = {
	"s.new",  "s.append", "s.reserve", "s.commit", "s.read",
	"s.end",  "s.stat",   "s.join",    "s.leave",  "s.take",
	"s.ack",  "s.delete", "s.release", "s.verify",
};
#define NSOPS (int)(sizeof sop_names / sizeof *sop_names)

static uint8_t
spattern(uint8_t fill, size_t j)
{
	return (uint8_t)(fill * 3 + j * 13);
}

static void
sexpect(const char *op, int h, int st, int got, int want)
{
	FZ_CHECK(got == want,
		 "stream op %d %s(h%d, stream %d): got %d (%s), model says "
		 "%d (%s)",
		 S.ops, op, h, st, got, pxs_strerror(got), want,
		 pxs_strerror(want));
}

/* Lowest seq a reader or group still needs (next if none). */
static uint64_t
model_slowest(const struct mstream *m)
{
	uint64_t low = m->next;
	for (int h = 0; h < 2; h++)
		if (m->joined[h] && m->pos[h] < low)
			low = m->pos[h];
	for (int i = 0; i < NG; i++) {
		const struct mgroup *g = &m->g[i];
		if (!g->used)
			continue;
		if (g->next < low)
			low = g->next;
		for (uint32_t j = 0; j < g->ntaken; j++)
			if (g->taken[j] < low)
				low = g->taken[j];
	}
	return low;
}

static int
nresv(const struct mstream *m)
{
	return m->resv[0] + m->resv[1];
}

/* What reserve (and the reserve half of append) must return. */
static int
want_reserve(const struct mstream *m, int h)
{
	if (!m->used)
		return -ENOENT;
	if (m->resv[h])
		return -EBUSY;
	if (m->ended)
		return -EPIPE;
	if (m->block &&
	    m->next + (uint64_t)nresv(m) - model_slowest(m) >= m->window)
		return -ETIMEDOUT;
	return 0;
}

static void
model_append(struct mstream *m, size_t size, uint8_t fill)
{
	if (m->next - m->first >= m->window)
		m->first++;
	m->size[m->next % m->window] = size;
	m->fill[m->next % m->window] = fill;
	m->next++;
}

static void
check_sstat(int h, int st)
{
	const struct mstream *m = &S.st[st];
	pxs_stream_stats o;
	int rc = pxs_stream_stat(S.h[h], S.key[st], &o);
	sexpect("s.stat", h, st, rc, m->used ? 0 : -ENOENT);
	if (rc < 0)
		return;
	uint32_t groups = 0, taken = 0;
	for (int i = 0; i < NG; i++)
		if (m->g[i].used) {
			groups++;
			taken += m->g[i].ntaken;
		}
	FZ_CHECK(o.first == m->first && o.next == m->next &&
			 o.ended == m->ended && o.window == m->window &&
			 o.flags == (m->block ? PXS_STREAM_BLOCK : 0u) &&
			 o.readers == (uint32_t)(m->joined[0] + m->joined[1]) &&
			 o.groups == groups && o.taken == taken &&
			 o.reserved == (uint32_t)nresv(m) &&
			 o.slowest == model_slowest(m) &&
			 o.position == (m->joined[h] ? m->pos[h] : UINT64_MAX),
		 "stream op %d stat(h%d, stream %d): first %llu/%llu next "
		 "%llu/%llu ended %d/%d readers %u groups %u/%u taken %u/%u "
		 "reserved %u/%d slowest %llu/%llu",
		 S.ops, h, st, (unsigned long long)o.first,
		 (unsigned long long)m->first, (unsigned long long)o.next,
		 (unsigned long long)m->next, o.ended, m->ended, o.readers,
		 o.groups, groups, o.taken, taken, o.reserved, nresv(m),
		 (unsigned long long)o.slowest,
		 (unsigned long long)model_slowest(m));
}

static void
sverify(void)
{
	for (int i = 0; i < NSV; i++) {
		const struct sview *w = &S.views[i];
		if (!w->used)
			continue;
		FZ_CHECK(w->v.size == w->size, "stream op %d: view %d size",
			 S.ops, i);
		for (size_t j = 0; j < w->size; j++)
			FZ_CHECK(((const uint8_t *)w->v.data)[j] ==
					 spattern(w->fill, j),
				 "stream op %d: view %d byte %zu changed", S.ops,
				 i, j);
	}
}

static int
sview_slot(void)
{
	for (int i = 0; i < NSV; i++)
		if (!S.views[i].used)
			return i;
	return -1;
}

static void
spinned(int vi, int h, const struct mstream *m, uint64_t seq,
	const pxs_view *v)
{
	S.views[vi] = (struct sview){.used = true,
				     .h = h,
				     .v = *v,
				     .size = m->size[seq % m->window],
				     .fill = m->fill[seq % m->window]};
	FZ_CHECK(hx_view_inside(S.h[h], v->data, v->size),
		 "stream op %d: view outside the heap", S.ops);
	sverify();
}

void
fzs_begin(const char *base)
{
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL,
			 .size = 8 * HX_MiB,
			 .capacity = 128};
	memset(&S, 0, sizeof S);
	snprintf(S.name, sizeof S.name, "%s-st", base);
	for (int i = 0; i < NS; i++)
		S.key[i] = (pxs_key){0x57, (uint64_t)i + 1};
	shm_unlink(S.name);
	FZ_CHECK(pxs_open(S.name, &o, &S.h[0]) == 0, "stream store: create");
	FZ_CHECK(pxs_open(S.name, NULL, &S.h[1]) == 0, "stream store: attach");
}

void
fzs_op(uint8_t b, struct fz_in *in)
{
	int op = b % NSOPS, h = (b / NSOPS) & 1;
	uint8_t a = fz_u8(in);
	int st = a % NS;
	uint8_t arg = (uint8_t)(a / NS);
	size_t size = (size_t)(fz_u8(in) % 32) * SIZE_UNIT;
	uint8_t fill = fz_u8(in);
	struct mstream *m = &S.st[st];
	pxs_store *s = S.h[h];
	pxs_key k = S.key[st];
	const char *name = sop_names[op];
	static uint8_t data[32 * SIZE_UNIT];
	pxs_view v;
	uint64_t seq;
	void *buf;
	int rc, want, vi;

	for (size_t j = 0; j < size; j++)
		data[j] = spattern(fill, j);
	S.ops++;
	switch (op) {
	case 0: { /* new: window arg % (WMAX + 1), 0 is invalid */
		uint32_t w = arg % (WMAX + 1);
		bool block = (arg / (WMAX + 1)) & 1;
		pxs_stream_options so = {.window = w,
					 .flags = block ? PXS_STREAM_BLOCK : 0};
		want = w == 0 ? -EINVAL : m->used ? -EEXIST : 0;
		rc = pxs_stream_new(s, k, &so);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			memset(m, 0, sizeof *m);
			m->used = true;
			m->window = w;
			m->block = block;
		}
		break;
	}
	case 1: /* append */
		want = want_reserve(m, h);
		rc = pxs_stream_append(s, k, data, size, 0, &seq);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			FZ_CHECK(seq == m->next, "append: seq %llu, model %llu",
				 (unsigned long long)seq,
				 (unsigned long long)m->next);
			model_append(m, size, fill);
		}
		break;
	case 2: /* reserve, then write the item in place */
		want = want_reserve(m, h);
		rc = pxs_stream_reserve(s, k, size, 0, &buf);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			FZ_CHECK(hx_view_inside(s, buf, size),
				 "reserve: buffer outside the heap");
			memcpy(buf, data, size);
			m->resv[h] = true;
			m->resv_size[h] = size;
			m->resv_fill[h] = fill;
		}
		break;
	case 3: /* commit */
		want = !m->used      ? -ENOENT
		       : !m->resv[h] ? -EINVAL
		       : m->ended    ? -EPIPE
				     : 0;
		rc = pxs_stream_commit(s, k, &seq);
		sexpect(name, h, st, rc, want);
		if (m->used && m->resv[h]) {
			m->resv[h] = false;
			if (rc == 0) {
				FZ_CHECK(seq == m->next, "commit: seq");
				model_append(m, m->resv_size[h],
					     m->resv_fill[h]);
			}
		}
		break;
	case 4: { /* read, timeout 0, around the window */
		if ((vi = sview_slot()) < 0)
			return;
		uint64_t q = (m->next > WMAX + 1 ? m->next - WMAX - 1 : 0) +
			     arg % (WMAX + 3);
		want = !m->used         ? -ENOENT
		       : q < m->first   ? -ERANGE
		       : q < m->next    ? 0
		       : m->ended       ? -EPIPE
					: -ETIMEDOUT;
		rc = pxs_stream_read(s, k, q, 0, &v);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			spinned(vi, h, m, q, &v);
			uint64_t p = m->pos[h] < m->first ? m->first
							  : m->pos[h];
			if (m->joined[h] && p == q)
				m->pos[h] = q + 1;
		}
		break;
	}
	case 5: /* end */
		want = !m->used ? -ENOENT : m->ended ? -EALREADY : 0;
		rc = pxs_stream_end(s, k);
		sexpect(name, h, st, rc, want);
		if (rc == 0)
			m->ended = true;
		break;
	case 6:
		check_sstat(h, st);
		break;
	case 7: { /* join */
		uint64_t from = (m->next > 2 ? m->next - 2 : 0) + arg % 4;
		want = !m->used           ? -ENOENT
		       : from < m->first  ? -ERANGE
		       : m->joined[h]     ? -EALREADY
					  : 0;
		rc = pxs_stream_join(s, k, from);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			m->joined[h] = true;
			m->pos[h] = from;
		}
		break;
	}
	case 8: /* leave */
		want = m->used && m->joined[h] ? 0 : -ENOENT;
		rc = pxs_stream_leave(s, k);
		sexpect(name, h, st, rc, want);
		if (rc == 0)
			m->joined[h] = false;
		break;
	case 9: { /* take, timeout 0 */
		if ((vi = sview_slot()) < 0)
			return;
		struct mgroup *g = &m->g[arg % NG];
		uint64_t q = 0;
		if (!m->used) {
			want = -ENOENT;
		} else {
			if (!g->used) /* made by its first take */
				*g = (struct mgroup){.used = true,
						     .next = m->first};
			if (g->next < m->next && g->ntaken < PXS_STREAM_TAKEN_MAX) {
				if (g->next < m->first)
					g->next = m->first;
				q = g->next;
				want = 0;
			} else {
				want = m->ended && g->next >= m->next &&
					       g->ntaken == 0
					       ? -EPIPE
					       : -ETIMEDOUT;
			}
		}
		rc = pxs_stream_take(s, k, group_names[arg % NG], 0, &seq, &v);
		sexpect(name, h, st, rc, want);
		if (rc == 0) {
			FZ_CHECK(seq == q, "take: seq %llu, model %llu",
				 (unsigned long long)seq, (unsigned long long)q);
			g->next = q + 1;
			g->taken[g->ntaken++] = q;
			spinned(vi, h, m, q, &v);
		}
		break;
	}
	case 10: { /* ack: one of the taken (by the size byte) or any seq */
		struct mgroup *g = &m->g[arg % NG];
		uint64_t q = fill;
		int j = -1;
		if (m->used && g->used && g->ntaken && !(fill & 0x80)) {
			j = (int)(size / SIZE_UNIT % g->ntaken);
			q = g->taken[j];
		} else if (m->used && g->used) {
			for (uint32_t i = 0; i < g->ntaken && j < 0; i++)
				if (g->taken[i] == q)
					j = (int)i;
		}
		want = j >= 0 ? 0 : -ENOENT;
		rc = pxs_stream_ack(s, k, group_names[arg % NG], q);
		sexpect(name, h, st, rc, want);
		if (rc == 0)
			g->taken[j] = g->taken[--g->ntaken];
		break;
	}
	case 11: /* delete */
		want = m->used ? 0 : -ENOENT;
		rc = pxs_stream_delete(s, k);
		sexpect(name, h, st, rc, want);
		if (rc == 0)
			memset(m, 0, sizeof *m);
		sverify();
		break;
	case 12: /* release a view (chosen by the stream byte) */
		vi = a % NSV;
		for (int t = 0; t < NSV && !S.views[vi].used; t++)
			vi = (vi + 1) % NSV;
		if (!S.views[vi].used)
			return;
		rc = pxs_release(S.h[S.views[vi].h], &S.views[vi].v);
		sexpect(name, S.views[vi].h, -1, rc, 0);
		S.views[vi].used = false;
		break;
	default:
		sverify();
		break;
	}
}

void
fzs_end(void)
{
	sverify();
	for (int i = 0; i < NSV; i++)
		if (S.views[i].used) {
			sexpect("s.release", S.views[i].h, -1,
				pxs_release(S.h[S.views[i].h], &S.views[i].v),
				0);
			S.views[i].used = false;
		}
	for (int i = 0; i < NS; i++)
		if (S.st[i].used)
			sexpect("s.delete", 0, i,
				pxs_stream_delete(S.h[0], S.key[i]), 0);
	pxs_close(S.h[1]);
	pxs_close(S.h[0]);
	fz_ops_empty(S.name);
}
