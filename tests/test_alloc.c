/* test_alloc.c - unit tests for alloc.c, the TLSF payload heap, over a plain
 * malloc'd buffer (no shared memory): round trips, -ENOSPC, coalescing, the
 * commit callback, bad frees, crash repair, random corruption and churn.
 *
 * The buffer ends exactly at the heap's end and its first START bytes (below
 * the heap) are poisoned under ASan; the control block is a separate
 * allocation. So any access outside [base + start, base + end) and the
 * control block is an ASan report. The seed is printed; PXS_TEST_SEED
 * overrides it.
 */
#include "alloc.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define START 4096u
#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define CHUNK (2 * MiB) /* alloc.c's commit granularity */
#define MAX_LIVE 20000

/* Header layout, from the HOW IT WORKS comment in alloc.c: the tests below
 * poke at it to simulate crashes. */
#define SF(f, off) ((uint64_t *)((f)->mem + (off) - 16))
#define F_FREE 1u
#define F_PREV_FREE 2u
#define F_PREV_MIN 4u

/* Check records every passing ck_assert_* with a write(2) to the runner, which
 * dominates loops of millions of checks: those use EXPECT, which reports only
 * failures. */
#define EXPECT(cond, ...)                                                   \
	do {                                                                \
		if (!(cond))                                                \
			ck_abort_msg(__VA_ARGS__);                          \
	} while (0)
#define EXPECT_EQ(a, b)                                                     \
	EXPECT((a) == (b), "line %d: %s == %s: %" PRIu64 " != %" PRIu64,    \
	       __LINE__, #a, #b, (uint64_t)(a), (uint64_t)(b))

static uint64_t seed;

struct fx {
	unsigned char *mem;       /* the "segment"; [0, START) is poisoned */
	struct pxs_seg_heap *ctl; /* the control block, allocated apart */
	struct pxs_heap hp;
	uint64_t size;            /* heap bytes */
};

struct live {
	uint64_t off, cap, tag;
	uint32_t owner;
};

/* ---- helpers ----------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* 2^k plus a uniform part, k uniform: log-uniform-ish over [lo, 2 hi). */
static uint64_t
rnd_size(uint64_t *s, unsigned lo_log2, unsigned hi_log2)
{
	unsigned k = lo_log2 + (unsigned)(rnd(s) % (hi_log2 - lo_log2 + 1));

	return ((uint64_t)1 << k) + rnd(s) % ((uint64_t)1 << k);
}

/* A fresh heap over the same buffer. */
static void
fx_format(struct fx *f)
{
	/* Garbage, not zeroes: the heap must not rely on a zeroed segment. */
	memset(f->ctl, 0xa5, sizeof(*f->ctl));
	memset(f->mem + START, 0x5a, f->size);
	f->hp = (struct pxs_heap){ .base = f->mem, .h = f->ctl };
	pxs__heap_init(&f->hp, START, START + f->size);
	EXPECT_EQ(f->hp.start, START);
	EXPECT_EQ(f->hp.end, START + f->size);
}

static void
fx_init(struct fx *f, uint64_t heap_bytes)
{
	f->size = heap_bytes;
	f->mem = aligned_alloc(4096, START + heap_bytes);
	f->ctl = malloc(sizeof(*f->ctl));
	ck_assert_ptr_nonnull(f->mem);
	ck_assert_ptr_nonnull(f->ctl);
	POISON(f->mem, START);
	fx_format(f);
}

static void
fx_done(struct fx *f)
{
	UNPOISON(f->mem, START);
	free(f->mem);
	free(f->ctl);
}

/* A copy of the control block and the heap bytes, to prove "no change". */
struct snap {
	struct pxs_seg_heap ctl;
	unsigned char *heap;
};

static void
snap_take(const struct fx *f, struct snap *s)
{
	s->ctl = *f->ctl;
	s->heap = malloc(f->size);
	ck_assert_ptr_nonnull(s->heap);
	memcpy(s->heap, f->mem + START, f->size);
}

static void
snap_same(const struct fx *f, struct snap *s, const char *what)
{
	/* The change counter moves on every call that may change the heap,
	 * refused or not (readers without the lock only walk again): the
	 * rest of the control block is what must be the same. */
	ck_assert_msg(memcmp(&s->ctl, f->ctl,
			     offsetof(struct pxs_seg_heap, changes)) == 0,
		      "%s changed the control block", what);
	ck_assert_msg(!(f->ctl->changes & 1),
		      "%s left a change under way", what);
	ck_assert_msg(memcmp(s->heap, f->mem + START, f->size) == 0,
		      "%s changed the heap", what);
	free(s->heap);
	s->heap = NULL;
}

/* pxs__heap_check() is clean and its figures agree with each other and with
 * pxs__heap_usage(). */
#define assert_clean(f) assert_clean_at((f), __LINE__)
static struct pxs_heap_report
assert_clean_at(struct fx *f, int line)
{
	struct pxs_heap_report r;
	uint64_t used, fr, largest;
	int rc = pxs__heap_check(&f->hp, &r);

	EXPECT(rc == 0 && r.errors == 0,
	       "line %d: check %d, %u errors, first: %s", line, rc, r.errors,
	       r.first_error);
	EXPECT_EQ(r.bytes_free + r.bytes_used, f->size);
	EXPECT_EQ(r.bytes_overhead, 16 * r.blocks_used);
	pxs__heap_usage(&f->hp, &used, &fr, &largest);
	EXPECT_EQ(used, r.bytes_used);
	EXPECT_EQ(fr, r.bytes_free);
	EXPECT_EQ(largest, r.largest_free);
	return r;
}

static void
fill(struct fx *f, const struct live *l)
{
	uint64_t s = l->tag, *p = (uint64_t *)(f->mem + l->off);

	for (uint64_t i = 0; i < l->cap / 8; i++)
		p[i] = rnd(&s);
}

static void
verify(struct fx *f, const struct live *l)
{
	uint64_t s = l->tag, *p = (uint64_t *)(f->mem + l->off);

	for (uint64_t i = 0; i < l->cap / 8; i++)
		EXPECT(p[i] == rnd(&s), "payload at %" PRIu64
		       " damaged at word %" PRIu64, l->off, i);
}

/* Allocate, check what pxs__heap_block() says, and fill with a pattern. */
static int
get(struct fx *f, uint64_t size, uint32_t owner, struct live *l)
{
	uint64_t cap;
	uint32_t o;
	int rc = pxs__heap_alloc(&f->hp, size, owner, &l->off);

	if (rc < 0)
		return rc;
	EXPECT_EQ(l->off % PXS_HEAP_ALIGN, 0);
	EXPECT(l->off >= f->hp.start + 16, "payload below the heap");
	EXPECT_EQ(pxs__heap_block(&f->hp, l->off, &cap, &o), 0);
	EXPECT(cap >= size, "capacity %" PRIu64 " < %" PRIu64, cap, size);
	/* LIMITATIONS: an n-byte request uses at most n + 47 bytes */
	EXPECT(cap <= size + 47 - 16, "capacity %" PRIu64 " for %" PRIu64,
	       cap, size);
	EXPECT(l->off + cap <= f->hp.end, "payload past the heap");
	EXPECT_EQ(o, owner);
	l->cap = cap;
	l->owner = owner;
	l->tag = l->off * 0x9e3779b97f4a7c15ull ^ owner;
	fill(f, l);
	return 0;
}

static int
cmp_off(const void *a, const void *b)
{
	const struct live *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Blocks (headers included) are disjoint, inside the heap, and intact. */
static void
verify_all(struct fx *f, struct live *lv, size_t n)
{
	struct live *s = malloc((n + 1) * sizeof(*s));

	EXPECT(s != NULL, "out of memory");
	memcpy(s, lv, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_off);
	for (size_t i = 0; i < n; i++) {
		EXPECT(s[i].off - 16 >= f->hp.start &&
		       s[i].off + s[i].cap <= f->hp.end,
		       "block %" PRIu64 " outside the heap", s[i].off);
		EXPECT(i == 0 || s[i - 1].off + s[i - 1].cap <= s[i].off - 16,
		       "blocks %" PRIu64 " and %" PRIu64 " overlap",
		       s[i - 1].off, s[i].off);
		verify(f, &s[i]);
	}
	free(s);
}

struct seen {
	struct live v[64];
	size_t n;
};

static void
visit(void *ctx, uint64_t off, uint64_t cap, uint32_t owner)
{
	struct seen *s = ctx;

	if (s->n < 64)
		s->v[s->n] = (struct live){ .off = off, .cap = cap,
					    .owner = owner };
	s->n++;
}

static void
count_visit(void *ctx, uint64_t off, uint64_t cap, uint32_t owner)
{
	++*(uint64_t *)ctx;
}

/* ---- round trips ------------------------------------------------------- */

static const uint64_t sizes[] = { 0, 1, 15, 16, 17, 4096, MiB };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

START_TEST(roundtrip_sizes)
{
	static const unsigned order[NSIZES] = { 3, 0, 6, 1, 5, 2, 4 };
	struct fx f;
	struct live lv[NSIZES], sorted[NSIZES];
	struct seen seen = { .n = 0 };
	uint32_t owner;

	fx_init(&f, 4 * MiB);
	assert_clean(&f);
	for (size_t i = 0; i < NSIZES; i++) {
		ck_assert_int_eq(get(&f, sizes[i], (uint32_t)i + 1, &lv[i]),
				 0);
		assert_clean(&f);
		verify_all(&f, lv, i + 1);
	}
	ck_assert_uint_eq(f.ctl->nalloc, NSIZES);

	/* The walk visits exactly the live blocks, in address order. */
	ck_assert_int_eq(pxs__heap_walk(&f.hp, visit, &seen), 0);
	ck_assert_uint_eq(seen.n, NSIZES);
	memcpy(sorted, lv, sizeof(lv));
	qsort(sorted, NSIZES, sizeof(sorted[0]), cmp_off);
	for (size_t i = 0; i < NSIZES; i++) {
		ck_assert_uint_eq(seen.v[i].off, sorted[i].off);
		ck_assert_uint_eq(seen.v[i].cap, sorted[i].cap);
		ck_assert_uint_eq(seen.v[i].owner, sorted[i].owner);
	}

	ck_assert_int_eq(pxs__heap_set_owner(&f.hp, lv[4].off, 77), 0);
	ck_assert_int_eq(pxs__heap_block(&f.hp, lv[4].off, NULL, &owner), 0);
	ck_assert_uint_eq(owner, 77);
	verify_all(&f, lv, NSIZES);

	for (size_t i = 0; i < NSIZES; i++) {
		struct live left[NSIZES];
		size_t n = 0;

		ck_assert_int_eq(pxs__heap_free(&f.hp, lv[order[i]].off), 0);
		lv[order[i]].cap = 0;
		assert_clean(&f);
		for (size_t j = 0; j < NSIZES; j++)
			if (lv[j].cap)
				left[n++] = lv[j];
		verify_all(&f, left, n);
	}
	/* Everything went back into the wilderness. */
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	ck_assert_uint_eq(f.ctl->used, 0);
	ck_assert_uint_eq(f.ctl->nalloc, 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);

	/* Each size alone, twice: the same place each time. */
	for (size_t i = 0; i < NSIZES; i++) {
		struct live a, b;

		ck_assert_int_eq(get(&f, sizes[i], 9, &a), 0);
		ck_assert_int_eq(pxs__heap_free(&f.hp, a.off), 0);
		ck_assert_int_eq(get(&f, sizes[i], 9, &b), 0);
		ck_assert_uint_eq(a.off, b.off);
		assert_clean(&f);
		ck_assert_int_eq(pxs__heap_free(&f.hp, b.off), 0);
		ck_assert_uint_eq(assert_clean(&f).bytes_used, 0);
	}
	fx_done(&f);
}
END_TEST

START_TEST(init_normalises_geometry)
{
	struct fx f;
	struct live l;

	fx_init(&f, 64 * KiB);
	pxs__heap_init(&f.hp, START + 4, START + 64 * KiB - 3);
	ck_assert_uint_eq(f.hp.start, START + 16);
	ck_assert_uint_eq(f.hp.end, START + 64 * KiB - 16);
	f.size = f.hp.end - f.hp.start;
	assert_clean(&f);
	ck_assert_int_eq(get(&f, f.size - 16, 1, &l), 0);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 0, 1, &l.off), -ENOSPC);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

/* ---- exhaustion -------------------------------------------------------- */

START_TEST(enospc_changes_nothing)
{
	static const uint64_t big[] = { 0, 1, 4000, 256 * KiB, UINT64_MAX,
					UINT64_MAX - 4096, UINT64_MAX - 15 };
	struct fx f;
	struct live lv[100];
	struct snap s;
	size_t n = 0;
	uint64_t off, used, fr, largest, used2, fr2, largest2;

	fx_init(&f, 256 * KiB);
	while (n < 100 && get(&f, 4000, (uint32_t)n, &lv[n]) == 0)
		n++;
	ck_assert_uint_lt(n, 100);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 4000, 0, &off), -ENOSPC);
	/* Fill the tail too, then nothing at all fits. */
	while (n < 100 && get(&f, 0, (uint32_t)n, &lv[n]) == 0)
		n++;
	ck_assert_uint_lt(n, 100);
	assert_clean(&f);
	verify_all(&f, lv, n);

	pxs__heap_usage(&f.hp, &used, &fr, &largest);
	ck_assert_uint_lt(fr, 32);
	ck_assert_uint_eq(largest, 0);
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		snap_take(&f, &s);
		ck_assert_int_eq(pxs__heap_alloc(&f.hp, big[i], 1, &off),
				 -ENOSPC);
		snap_same(&f, &s, "a failed alloc");
	}
	pxs__heap_usage(&f.hp, &used2, &fr2, &largest2);
	ck_assert_uint_eq(used, used2);
	ck_assert_uint_eq(fr, fr2);
	assert_clean(&f);

	/* Free one in the middle: that size fits again, in that place. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, lv[10].off), 0);
	assert_clean(&f);
	off = lv[10].off;
	ck_assert_int_eq(get(&f, 4000, 10, &lv[10]), 0);
	ck_assert_uint_eq(lv[10].off, off);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 4000, 0, &off), -ENOSPC);
	assert_clean(&f);
	verify_all(&f, lv, n);
	fx_done(&f);
}
END_TEST

/* ---- coalescing -------------------------------------------------------- */

START_TEST(coalesce_neighbours)
{
	struct fx f;
	struct live v[5];
	struct pxs_heap_report r;

	fx_init(&f, 64 * KiB);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get(&f, 1000, (uint32_t)i, &v[i]), 0);

	ck_assert_int_eq(pxs__heap_free(&f.hp, v[1].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 1);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[3].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 2);
	/* The middle one joins both neighbours: one block of three. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[2].off), 0);
	r = assert_clean(&f);
	ck_assert_uint_eq(r.blocks_free, 1);
	ck_assert_uint_eq(r.bytes_free - (f.hp.end - f.ctl->top),
			  3 * (v[1].cap + 16));
	/* The first joins it from below: still one. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[0].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 1);
	verify(&f, &v[4]);
	/* The last one takes everything back into top. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[4].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);

	/* 32-byte blocks have no footer: the block after finds them through
	 * F_PREV_MIN instead. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get(&f, i == 2 ? 100 : 0, (uint32_t)i, &v[i]),
				 0);
	ck_assert_uint_eq(v[1].cap, 16);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[1].off), 0);
	assert_clean(&f);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[2].off), 0); /* joins v[1] */
	r = assert_clean(&f);
	ck_assert_uint_eq(r.blocks_free, 1);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[3].off), 0); /* joins both */
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 1);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[0].off), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, v[4].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	fx_done(&f);
}
END_TEST

/* pxs__heap_alloc_run(): n ordinary blocks from one search, from the top
 * and from a listed free block (whose remainder goes back to its list);
 * each frees on its own; a run that does not fit falls back to one. */
START_TEST(alloc_run_splits_into_ordinary_blocks)
{
	struct fx f;
	uint64_t offs[32], cap, gap, keep;
	uint32_t owner;
	struct pxs_heap_report r;

	fx_init(&f, 64 * KiB);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 32, 7, offs), 32);
	r = assert_clean(&f);
	ck_assert_uint_eq(r.blocks_used, 32);
	ck_assert_uint_eq(r.bytes_used, 32 * 80);
	for (int i = 0; i < 32; i++) {
		ck_assert_int_eq(pxs__heap_block(&f.hp, offs[i], &cap, &owner),
				 0);
		ck_assert_uint_eq(cap, 64);
		ck_assert_uint_eq(owner, 7);
		ck_assert_uint_eq(offs[i], f.hp.start + 16 + 80 * (uint64_t)i);
		memset(f.mem + offs[i], i, 64);
	}
	/* Freed in any order, they merge back into the top. */
	for (int i = 0; i < 32; i += 2)
		ck_assert_int_eq(pxs__heap_free(&f.hp, offs[i]), 0);
	for (int i = 1; i < 32; i += 2) {
		ck_assert_uint_eq(f.mem[offs[i]], i);
		ck_assert_int_eq(pxs__heap_free(&f.hp, offs[i]), 0);
	}
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);

	/* From a listed free block: a hole of 20 blocks of 80 bytes. */
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 20 * 80 - 16, 1, &gap), 0);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 16, 1, &keep), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, gap), 0);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 8, 9, offs), 8);
	ck_assert_uint_eq(offs[0], gap); /* the lowest fit */
	r = assert_clean(&f);
	ck_assert_uint_eq(r.blocks_used, 9);
	ck_assert_uint_eq(r.blocks_free, 1); /* 12 blocks' worth left */
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pxs__heap_free(&f.hp, offs[i]), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, keep), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);

	/* No room for the run: one block, if that fits. */
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 64 * KiB - 200, 1, &keep), 0);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 32, 3, offs), 1);
	assert_clean(&f);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 32, 3, offs + 1), 1);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 32, 3, offs + 2),
			 -ENOSPC);
	ck_assert_int_eq(pxs__heap_alloc_run(&f.hp, 64, 0, 3, offs + 2), 0);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

/* A header swallowed by the wilderness is wiped: otherwise user data
 * written later over its first byte (a block's payload reaching just past
 * it) turned a stale free header into one that reads as a live block, and
 * the carve that later reached it took it for corruption (-EPROTO; seen
 * with 8 threads on one handle). */
START_TEST(wilderness_headers_are_wiped)
{
	struct fx f;
	uint64_t p1, a, b, c, d;

	fx_init(&f, 64 * KiB);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 64, 1, &p1), 0); /* 80 B */
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 256, 1, &a), 0); /* 272 B */
	ck_assert_int_eq(pxs__heap_free(&f.hp, a), 0); /* into top */
	ck_assert_int_eq(pxs__heap_free(&f.hp, p1), 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	/* b covers a's old header; its payload ends one byte into it. */
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 65, 1, &b), 0);
	ck_assert_uint_eq(b, p1);
	memset(f.mem + b, 0, (a - 16) + 1 - b);
	ck_assert_int_eq(pxs__heap_free(&f.hp, b), 0);
	/* Carve up to where a's header was, then past it. */
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 64, 1, &c), 0);
	ck_assert_uint_eq(f.ctl->top, a - 16);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 64, 1, &d), 0);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

START_TEST(coalesce_random_order)
{
	struct fx f;
	struct live *lv = malloc(MAX_LIVE * sizeof(*lv)), big;
	uint64_t s = seed ^ 0xc0a1;
	size_t n = 0;

	ck_assert_ptr_nonnull(lv);
	fx_init(&f, MiB);
	while (n < MAX_LIVE && get(&f, rnd_size(&s, 4, 10), (uint32_t)n,
				   &lv[n]) == 0)
		n++;
	ck_assert_uint_gt(n, 100);
	assert_clean(&f);
	for (size_t i = n; i > 1; i--) { /* shuffle */
		size_t j = rnd(&s) % i;
		struct live t = lv[i - 1];

		lv[i - 1] = lv[j];
		lv[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		verify(&f, &lv[i]);
		EXPECT_EQ(pxs__heap_free(&f.hp, lv[i].off), 0);
		if (i % 16 == 0)
			assert_clean(&f);
	}
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	/* The whole heap, in one piece (far more than 90 %). */
	ck_assert_int_eq(get(&f, f.size - 16, 1, &big), 0);
	assert_clean(&f);
	ck_assert_int_eq(pxs__heap_free(&f.hp, big.off), 0);
	assert_clean(&f);
	free(lv);
	fx_done(&f);
}
END_TEST

/* ---- placement --------------------------------------------------------- */

/* alloc.c, HOW IT WORKS, ALLOC: of the first 8 entries of s's own class and
 * of the first class above it whose blocks all fit, the lowest-addressed
 * block that fits wins, and top comes last. The blocks are freed lowest
 * first, so the lists (newest first) hold them highest first. */
START_TEST(address_ordered)
{
	struct fx f;
	struct live v[17], l;
	uint64_t top;

	fx_init(&f, MiB);
	/* 1008-byte blocks, class [960, 1024); v[16] keeps them off top. */
	for (int i = 0; i < 17; i++)
		ck_assert_int_eq(get(&f, 990, (uint32_t)i, &v[i]), 0);
	for (int i = 0; i < 16; i += 2)
		ck_assert_int_eq(pxs__heap_free(&f.hp, v[i].off), 0);
	assert_clean(&f);
	top = f.ctl->top;
	/* The same size: lowest first. */
	for (int i = 0; i < 8; i += 2) {
		ck_assert_int_eq(get(&f, 990, 100, &l), 0);
		ck_assert_uint_eq(l.off, v[i].off);
	}
	/* A 976-byte block from its own class, not from top. */
	for (int i = 8; i < 16; i += 2) {
		ck_assert_int_eq(get(&f, 960, 100, &l), 0);
		ck_assert_uint_eq(l.off, v[i].off);
	}
	ck_assert_uint_eq(f.ctl->top, top);
	assert_clean(&f);

	/* Small requests go to the lowest block of a bigger class. */
	for (int i = 1; i < 16; i += 2)
		ck_assert_int_eq(pxs__heap_free(&f.hp, v[i].off), 0);
	for (int i = 1; i < 6; i += 2) {
		ck_assert_int_eq(get(&f, 500, 100, &l), 0);
		ck_assert_uint_eq(l.off, v[i].off);
	}
	ck_assert_uint_eq(f.ctl->top, top);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

/* ---- the commit callback ----------------------------------------------- */

struct commit_ctx {
	int calls;
	int refuse;      /* 0, or the error to return */
	uint64_t last;   /* the last need granted */
	uint64_t end;
};

static int
commit_cb(void *ctx, uint64_t need)
{
	struct commit_ctx *c = ctx;

	c->calls++;
	if (c->refuse)
		return c->refuse;
	EXPECT(need > c->last && need <= c->end, "need %" PRIu64, need);
	EXPECT(need % CHUNK == 0 || need == c->end, "need %" PRIu64, need);
	c->last = need;
	return 0;
}

START_TEST(commit_grows_monotonically)
{
	struct fx f;
	struct commit_ctx c = { 0 };
	struct live l;
	uint64_t prev, changes = 0;
	int rc;

	fx_init(&f, 8 * MiB);
	c.end = f.hp.end;
	f.hp.commit = commit_cb;
	f.hp.commit_ctx = &c;
	ck_assert_uint_eq(f.ctl->committed, f.hp.start);
	prev = f.ctl->committed;
	/* Big blocks until they no longer fit, then small ones to the end. */
	for (uint64_t size = 100 * KiB; size; size = size > 1000 ? 1000 : 0) {
		while ((rc = get(&f, size, 1, &l)) == 0) {
			EXPECT(f.ctl->committed >= f.ctl->top, "uncommitted");
			EXPECT(f.ctl->committed <= f.hp.end, "past end");
			EXPECT(f.ctl->committed >= prev, "committed shrank");
			if (f.ctl->committed != prev) {
				changes++;
				EXPECT_EQ(f.ctl->committed, c.last);
			}
			prev = f.ctl->committed;
		}
		ck_assert_int_eq(rc, -ENOSPC);
	}
	/* 2, 4, 6, 8 MiB, then the end (8 MiB + START). */
	ck_assert_int_eq(c.calls, 5);
	ck_assert_uint_eq(changes, 5);
	ck_assert_uint_eq(f.ctl->committed, f.hp.end);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

START_TEST(commit_refused_changes_nothing)
{
	struct fx f;
	struct commit_ctx c = { 0 };
	struct live l;
	struct snap s;
	uint64_t committed, off;
	int calls, rc;

	fx_init(&f, 8 * MiB);
	c.end = f.hp.end;
	f.hp.commit = commit_cb;
	f.hp.commit_ctx = &c;
	ck_assert_int_eq(get(&f, 100, 1, &l), 0);
	ck_assert_int_eq(c.calls, 1);
	committed = f.ctl->committed;
	ck_assert_uint_eq(committed, CHUNK);

	c.refuse = -ENOSPC;
	for (;;) {
		calls = c.calls;
		snap_take(&f, &s);
		rc = pxs__heap_alloc(&f.hp, 100 * KiB, 2, &off);
		if (rc == 0) {
			free(s.heap);
			ck_assert_int_eq(c.calls, calls);
			continue;
		}
		break;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	/* A whole chunk, then just the request, both refused. */
	ck_assert_int_eq(c.calls, calls + 2);
	snap_same(&f, &s, "a refused commit");
	ck_assert_uint_eq(f.ctl->committed, committed);
	assert_clean(&f);

	/* Other errors come back as they are. */
	c.refuse = -EIO;
	snap_take(&f, &s);
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 100 * KiB, 2, &off), -EIO);
	snap_same(&f, &s, "a failed commit");

	/* A small block below committed needs no call. */
	calls = c.calls;
	ck_assert_int_eq(pxs__heap_alloc(&f.hp, 0, 2, &off), 0);
	ck_assert_int_eq(c.calls, calls);

	c.refuse = 0;
	ck_assert_int_eq(get(&f, 100 * KiB, 3, &l), 0);
	ck_assert_uint_eq(f.ctl->committed, 2 * CHUNK);
	assert_clean(&f);
	fx_done(&f);
}
END_TEST

/* ---- bad frees --------------------------------------------------------- */

static void
assert_rejected(struct fx *f, uint64_t off)
{
	struct snap s;
	uint64_t cap;
	uint32_t owner;

	snap_take(f, &s);
	ck_assert_msg(pxs__heap_free(&f->hp, off) == -EPROTO,
		      "free(%" PRIu64 ") accepted", off);
	ck_assert_int_eq(pxs__heap_set_owner(&f->hp, off, 5), -EPROTO);
	ck_assert_int_eq(pxs__heap_block(&f->hp, off, &cap, &owner), -EPROTO);
	snap_same(f, &s, "a rejected free");
	assert_clean(f);
}

START_TEST(bad_free_is_eproto)
{
	struct fx f;
	struct live a, b, c, x, y, z;
	uint64_t end;

	fx_init(&f, 256 * KiB);
	end = f.hp.end;
	ck_assert_int_eq(get(&f, 1000, 1, &a), 0);
	ck_assert_int_eq(get(&f, 1000, 2, &b), 0);
	ck_assert_int_eq(get(&f, 1000, 3, &c), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, b.off), 0);

	const uint64_t forged[] = {
		0, 1, 15, 16, START, START + 8, START + 16 + 8,
		a.off + 8, a.off + 16, a.off + 512, a.off + a.cap,
		b.off,          /* double free of a listed block */
		b.off + 16, c.off + c.cap, /* == top */
		f.ctl->top + 16, end - 16, end, end + 16, UINT64_MAX,
		UINT64_MAX - 15, (uint64_t)1 << 63,
	};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
		assert_rejected(&f, forged[i]);
	verify(&f, &a);
	verify(&f, &c);

	/* c merges with b and both go back to top: a second free of c finds
	 * its header in the wilderness. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, c.off), 0);
	ck_assert_uint_eq(f.ctl->top, b.off - 16);
	assert_rejected(&f, c.off);
	assert_rejected(&f, b.off);

	/* y merges into x below it: y's old header is wiped. */
	ck_assert_int_eq(get(&f, 500, 4, &x), 0);
	ck_assert_int_eq(get(&f, 500, 5, &y), 0);
	ck_assert_int_eq(get(&f, 500, 6, &z), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, x.off), 0);
	ck_assert_int_eq(pxs__heap_free(&f.hp, y.off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 1);
	assert_rejected(&f, y.off);
	assert_rejected(&f, x.off);
	/* ... and when z's neighbour above is taken again, z still frees. */
	ck_assert_int_eq(pxs__heap_free(&f.hp, a.off), 0);
	assert_rejected(&f, a.off);
	ck_assert_int_eq(pxs__heap_free(&f.hp, z.off), 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	assert_rejected(&f, z.off);
	fx_done(&f);
}
END_TEST

/* ---- crash repair ------------------------------------------------------ */

/* A heap with live blocks between free ones: lv[0..*n) stay live. */
static void
scene(struct fx *f, uint64_t *s, struct live *lv, size_t *n)
{
	struct live all[80];

	fx_init(f, MiB);
	for (size_t i = 0; i < 80; i++)
		ck_assert_int_eq(get(f, rnd_size(s, 4, 12), (uint32_t)i,
				     &all[i]), 0);
	*n = 0;
	for (size_t i = 0; i < 80; i++) {
		/* free runs of 1..3 blocks, and the last block sometimes */
		if (i % 5 == 1 || i % 5 == 2 || (i % 7 == 3) ||
		    (i == 79 && rnd(s) % 2))
			ck_assert_int_eq(pxs__heap_free(&f->hp, all[i].off), 0);
		else
			lv[(*n)++] = all[i];
	}
	assert_clean(f);
}

/* Which crash, or which corruption of the index, to simulate. */
enum crash {
	CRASH_INDEX_ZEROED,   /* heads and bitmaps wiped */
	CRASH_HEAD_DROPPED,   /* a head moved on without fixing links */
	CRASH_HEAD_EMPTIED,   /* bitmap says non-empty, list is empty */
	CRASH_COUNTERS,       /* used/nalloc/committed garbage */
	CRASH_FREE_MARKED,    /* free() died after marking the block free */
	CRASH_SPLIT_HALF,     /* alloc() died after writing the remainder */
	CRASH_TOP_STALE,      /* free() to top died before moving top */
	CRASH_FLAGS,          /* prev-free flags wrong */
	CRASH_FREE_INDEX,     /* free() merged headers, index not updated */
	CRASH_LINKS,          /* a list link half-updated */
	NCRASH
};

static int
first_head(const struct fx *f, unsigned *fl, unsigned *sl)
{
	for (*fl = 0; *fl < PXS_HEAP_FL; (*fl)++)
		for (*sl = 0; *sl < PXS_HEAP_SL; (*sl)++)
			if (f->ctl->heads[*fl][*sl])
				return 1;
	return 0;
}

static void
crash(struct fx *f, enum crash k, struct live *lv, size_t *n)
{
	struct pxs_seg_heap *h = f->ctl;
	unsigned fl, sl;
	uint64_t *sf, top, old;
	struct snap s;
	struct live t;

	switch (k) {
	case CRASH_INDEX_ZEROED:
		memset(h->heads, 0, sizeof(h->heads));
		memset(h->sl_bitmap, 0, sizeof(h->sl_bitmap));
		h->fl_bitmap_lo = h->fl_bitmap_hi = 0;
		break;
	case CRASH_HEAD_DROPPED:
		ck_assert(first_head(f, &fl, &sl));
		/* next link: the first payload word of a free block */
		old = h->heads[fl][sl];
		h->heads[fl][sl] = *(uint64_t *)(f->mem + old + 16);
		break;
	case CRASH_HEAD_EMPTIED:
		ck_assert(first_head(f, &fl, &sl));
		h->heads[fl][sl] = 0;
		break;
	case CRASH_COUNTERS:
		h->used = 12345;
		h->nalloc = 99999;
		h->committed = UINT64_MAX;
		break;
	case CRASH_FREE_MARKED:
		*SF(f, lv[3].off) |= F_FREE;
		*SF(f, lv[10].off) |= F_FREE;
		lv[10] = lv[--*n];
		lv[3] = lv[--*n];
		break;
	case CRASH_SPLIT_HALF:
		/* Do a real split, then undo the store that shrank the block:
		 * the remainder's header is left inside a free block. */
		snap_take(f, &s);
		ck_assert_int_eq(get(f, 16, 1000, &t), 0);
		ck_assert_uint_lt(t.off, h->top);
		sf = SF(f, t.off);
		memcpy(sf, s.heap + (t.off - 16 - START), 8);
		ck_assert(*sf & F_FREE);
		free(s.heap);
		break;
	case CRASH_TOP_STALE:
		/* free() marks the block, then moves top (then wipes what
		 * the wilderness swallowed): it died in between. */
		top = h->top;
		for (size_t i = 0; i < *n; i++)
			if (lv[i].off + lv[i].cap == top) {
				*SF(f, lv[i].off) |= F_FREE;
				lv[i] = lv[--*n];
				break;
			}
		break;
	case CRASH_FLAGS:
		*SF(f, lv[0].off) |= F_PREV_FREE | F_PREV_MIN;
		*SF(f, lv[5].off) ^= F_PREV_MIN;
		break;
	case CRASH_FREE_INDEX:
		/* A real free() that merges (lv[2] is block 5, and the scene
		 * freed block 6), then the control block as it was before:
		 * merged headers, stale lists and counters. */
		old = h->used;
		snap_take(f, &s);
		ck_assert_int_eq(pxs__heap_free(&f->hp, lv[2].off), 0);
		ck_assert_uint_lt(h->used, old);
		*h = s.ctl;
		free(s.heap);
		lv[2] = lv[--*n];
		break;
	case CRASH_LINKS:
		ck_assert(first_head(f, &fl, &sl));
		/* the head's prev link points somewhere else */
		*(uint64_t *)(f->mem + h->heads[fl][sl] + 24) =
			f->hp.start + 64;
		break;
	case NCRASH:
		break;
	}
}

START_TEST(rebuild_after_crash)
{
	enum crash k = (enum crash)_i;
	struct fx f;
	struct live lv[80], more[40];
	struct snap s;
	struct pxs_heap_report r;
	uint64_t sd = seed ^ (0x51ull * (unsigned)k), nm = 0;
	size_t n;

	scene(&f, &sd, lv, &n);
	crash(&f, k, lv, &n);
	ck_assert_int_eq(pxs__heap_check(&f.hp, &r), -EPROTO);

	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), 0);
	r = assert_clean(&f);
	verify_all(&f, lv, n);
	ck_assert_uint_eq(r.blocks_used, n);

	/* Idempotent: a second rebuild writes the same bytes. */
	snap_take(&f, &s);
	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), 0);
	snap_same(&f, &s, "a second rebuild");

	/* And the heap works on. */
	for (size_t i = 0; i < 40; i++)
		if (get(&f, rnd_size(&sd, 4, 12), 500 + (uint32_t)i,
			&more[nm]) == 0)
			nm++;
	assert_clean(&f);
	verify_all(&f, lv, n);
	verify_all(&f, more, nm);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pxs__heap_free(&f.hp, lv[i].off), 0);
	for (size_t i = 0; i < nm; i++)
		ck_assert_int_eq(pxs__heap_free(&f.hp, more[i].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	fx_done(&f);
}
END_TEST

START_TEST(rebuild_refuses_broken_chain)
{
	struct fx f;
	struct live lv[80];
	struct snap s;
	uint64_t sd = seed ^ 0xb0c, top;
	size_t n;

	scene(&f, &sd, lv, &n);
	/* A header's check word: the walk cannot pass it. */
	f.mem[lv[4].off - 3] ^= 0x10;
	snap_take(&f, &s);
	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), -EPROTO);
	snap_same(&f, &s, "a failed rebuild");
	f.mem[lv[4].off - 3] ^= 0x10;

	/* top inside a block. */
	top = f.ctl->top;
	f.ctl->top = lv[4].off;
	snap_take(&f, &s);
	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), -EPROTO);
	snap_same(&f, &s, "a failed rebuild");
	f.ctl->top = top;

	/* A size that jumps past top. */
	*SF(&f, lv[4].off) += 1 << 20;
	snap_take(&f, &s);
	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), -EPROTO);
	snap_same(&f, &s, "a failed rebuild");
	*SF(&f, lv[4].off) -= 1 << 20;

	ck_assert_int_eq(pxs__heap_rebuild(&f.hp), 0);
	assert_clean(&f);
	verify_all(&f, lv, n);
	fx_done(&f);
}
END_TEST

/* ---- random corruption ------------------------------------------------- */

/* A value that is likely to get past a first check: an offset inside the
 * heap, a small size, or anything. */
static uint64_t
plausible(const struct fx *f, uint64_t *s)
{
	switch (rnd(s) % 4) {
	case 0:
		return f->hp.start + (rnd(s) % f->size & ~(uint64_t)15);
	case 1:
		return (rnd(s) % 4096) & ~(uint64_t)15;
	case 2:
		return rnd(s) % 64;
	default:
		return rnd(s);
	}
}

static void
scribble(struct fx *f, uint64_t *s, const struct live *lv, size_t n)
{
	unsigned char *ctl = (unsigned char *)f->ctl;
	uint64_t v = plausible(f, s), at;

	switch (rnd(s) % 5) {
	case 0: /* a control-block word */
		at = rnd(s) % (sizeof(*f->ctl) / 8) * 8;
		memcpy(ctl + at, &v, 8);
		break;
	case 1: /* a control-block byte */
		at = rnd(s) % sizeof(*f->ctl);
		ctl[at] ^= (unsigned char)(1 + rnd(s) % 255);
		break;
	case 2: /* a header word (live block or old offset) */
		at = lv[rnd(s) % n].off - 16 + (rnd(s) % 2) * 8;
		memcpy(f->mem + at, &v, 8);
		break;
	case 3: /* a byte of a header, its links or its footer */
		at = lv[rnd(s) % n].off - 16 + rnd(s) % 48;
		if (at < f->hp.end)
			f->mem[at] ^= (unsigned char)(1 + rnd(s) % 255);
		break;
	default: /* any heap word */
		at = f->hp.start + (rnd(s) % f->size & ~(uint64_t)7);
		memcpy(f->mem + at, &v, 8);
		break;
	}
}

START_TEST(corruption_never_crashes)
{
	struct fx f;
	struct live all[48], fresh[16];
	struct pxs_heap_report r;
	uint64_t s = seed ^ 0xbad, off, cap, u, fr, lg, visits;
	uint32_t owner;
	unsigned repaired = 0, refused = 0;

	fx_init(&f, 64 * KiB);
	for (int round = 0; round < 20000; round++) {
		size_t n = 0, nf = 0;

		fx_format(&f);
		while (n < 48 && get(&f, rnd_size(&s, 3, 10), (uint32_t)n,
				     &all[n]) == 0)
			n++;
		for (size_t i = 0; i < n; i++)
			if (rnd(&s) % 3 == 0)
				EXPECT_EQ(pxs__heap_free(&f.hp, all[i].off),
					  0);
		for (int k = 1 + (int)(rnd(&s) % 4); k > 0; k--)
			scribble(&f, &s, all, n);

		/* Anything goes, but no crash, no hang. */
		(void)pxs__heap_check(&f.hp, &r);
		pxs__heap_usage(&f.hp, &u, &fr, &lg);
		visits = 0;
		(void)pxs__heap_walk(&f.hp, count_visit, &visits);
		for (int op = 0; op < 24; op++) {
			uint64_t x = all[rnd(&s) % n].off;

			switch (rnd(&s) % 5) {
			case 0:
				(void)pxs__heap_alloc(&f.hp,
						      rnd_size(&s, 3, 12), 7,
						      &off);
				break;
			case 1:
			case 2:
				(void)pxs__heap_free(&f.hp, x);
				break;
			case 3:
				(void)pxs__heap_free(&f.hp,
						     plausible(&f, &s));
				break;
			default:
				(void)pxs__heap_block(&f.hp, x, &cap, &owner);
				(void)pxs__heap_set_owner(&f.hp, x, 8);
				break;
			}
		}
		(void)pxs__heap_check(&f.hp, &r);

		/* A rebuild either refuses or leaves a consistent heap that
		 * keeps working. */
		if (pxs__heap_rebuild(&f.hp) != 0) {
			refused++;
			(void)pxs__heap_alloc(&f.hp, 100, 7, &off);
			(void)pxs__heap_check(&f.hp, &r);
			continue;
		}
		repaired++;
		assert_clean(&f);
		for (size_t i = 0; i < 16; i++) {
			int rc = get(&f, rnd_size(&s, 3, 11), 9, &fresh[nf]);

			EXPECT(rc == 0 || rc == -ENOSPC, "alloc: %d", rc);
			nf += rc == 0;
		}
		assert_clean(&f);
		verify_all(&f, fresh, nf);
		for (size_t i = 0; i < nf; i++)
			EXPECT_EQ(pxs__heap_free(&f.hp, fresh[i].off), 0);
		assert_clean(&f);
	}
	fx_done(&f);
	printf("corruption: %u rounds repaired, %u refused by rebuild\n",
	       repaired, refused);
	ck_assert_uint_gt(repaired, 0);
	ck_assert_uint_gt(refused, 0);
}
END_TEST

/* ---- churn ------------------------------------------------------------- */

/* Free space is what lies between allocated blocks (free blocks never touch
 * each other or top), so the walk of allocated blocks measures it exactly. */
struct gaps {
	uint64_t end, largest, total;
};

static void
gap_visit(void *ctx, uint64_t off, uint64_t cap, uint32_t owner)
{
	struct gaps *g = ctx;
	uint64_t gap = off - 16 - g->end;

	g->largest = gap > g->largest ? gap : g->largest;
	g->total += gap;
	g->end = off + cap;
}

/* The two churn workloads: random sizes, about 70% of the heap in use, a
 * random live block freed at each step that does not allocate. The first
 * draws sizes log-uniformly from 16 B to 64 KiB; the second is the mix of
 * bench_alloc_churn (60% 16..512 B, 30% 513 B..16 KiB, 10% 16..256 KiB).
 * min_pct bounds the largest allocatable block as a share of the free
 * bytes at the end. The run is deterministic for a given seed. With the
 * default seed, alloc.c's address-ordered good fit gives 80.5% and 64.3%
 * (77-81% and 61-71% with PXS_TEST_SEED=1..12), where the LIFO TLSF it
 * replaced gave 54.4% and 25.5% (52-60% and 18-32%). */
static const struct {
	const char *name;
	uint64_t heap, ops;
	bool mix;
	unsigned min_pct;
} churns[] = {
	{ "log-uniform 16 B..64 KiB", 64 * MiB, 200000, false, 65 },
	{ "bench mix 16 B..256 KiB", 128 * MiB, 300000, true, 50 },
};

static uint64_t
churn_size(uint64_t *s, bool mix)
{
	uint64_t p;

	if (!mix)
		return rnd_size(s, 4, 15);
	p = rnd(s) % 100;
	if (p < 60)
		return 16 + rnd(s) % 497;
	if (p < 90)
		return 513 + rnd(s) % (16 * KiB - 512);
	return 16 * KiB + 1 + rnd(s) % (256 * KiB - 16 * KiB);
}

START_TEST(churn)
{
	struct fx f;
	struct live *lv = malloc(MAX_LIVE * sizeof(*lv)), l;
	struct pxs_heap_report r;
	struct gaps g = { 0 };
	uint64_t s = seed ^ 0xc4a2 ^ (uint64_t)_i, used, fr, lg, enospc = 0;
	uint64_t inner;
	size_t n = 0;
	double occ;

	ck_assert_ptr_nonnull(lv);
	fx_init(&f, churns[_i].heap);
	for (uint32_t op = 1; op <= churns[_i].ops; op++) {
		pxs__heap_usage(&f.hp, &used, &fr, &lg);
		occ = (double)used / (double)f.size;
		bool alloc = n == 0 || (rnd(&s) % 4 != 0) == (occ < 0.70);

		if (alloc && n < MAX_LIVE) {
			uint64_t sz = churn_size(&s, churns[_i].mix);
			int rc = pxs__heap_alloc(&f.hp, sz, op, &l.off);

			if (rc == 0) {
				EXPECT_EQ(pxs__heap_block(&f.hp, l.off, &l.cap,
							  &l.owner), 0);
				EXPECT(l.cap >= sz, "capacity %" PRIu64, l.cap);
				l.tag = rnd(&s);
				/* tags at both ends catch overlaps cheaply */
				memcpy(f.mem + l.off, &l.tag, 8);
				memcpy(f.mem + l.off + l.cap - 8, &l.tag, 8);
				lv[n++] = l;
				continue;
			}
			EXPECT_EQ(rc, -ENOSPC);
			enospc++;
		}
		if (n) {
			size_t i = rnd(&s) % n;
			uint64_t a, b;

			memcpy(&a, f.mem + lv[i].off, 8);
			memcpy(&b, f.mem + lv[i].off + lv[i].cap - 8, 8);
			EXPECT(a == lv[i].tag && b == lv[i].tag,
			       "block %" PRIu64 " overwritten", lv[i].off);
			EXPECT_EQ(pxs__heap_free(&f.hp, lv[i].off), 0);
			lv[i] = lv[--n];
		}
		if (op % 10000 == 0) {
			r = assert_clean(&f);
			EXPECT_EQ(r.blocks_used, n);
		}
	}
	r = assert_clean(&f);
	g.end = f.hp.start;
	ck_assert_int_eq(pxs__heap_walk(&f.hp, gap_visit, &g), 0);
	inner = g.largest;              /* largest free block below top */
	ck_assert_uint_eq(g.end, f.ctl->top);
	g.total += f.hp.end - g.end;    /* the wilderness */
	g.largest = f.hp.end - g.end > inner ? f.hp.end - g.end : inner;
	ck_assert_uint_eq(g.total, r.bytes_free);
	ck_assert_uint_le(r.largest_free + 16, g.largest);
	printf("churn (%s): %" PRIu64 " ops, %zu live, %.1f%% used, %" PRIu64
	       " -ENOSPC; free %" PRIu64 " B = %" PRIu64 " blocks (%" PRIu64
	       " B, largest %" PRIu64 " B = %.1f%%) + wilderness %" PRIu64
	       " B; largest free region %.1f%% of free, largest allocatable"
	       " %" PRIu64 " B (%.1f%%, bound %u%%)\n",
	       churns[_i].name, churns[_i].ops,
	       n, 100.0 * (double)r.bytes_used / (double)f.size, enospc,
	       r.bytes_free, r.blocks_free, g.total - (f.hp.end - g.end),
	       inner, 100.0 * (double)inner /
	       (double)(g.total - (f.hp.end - g.end)), f.hp.end - g.end,
	       100.0 * (double)g.largest / (double)r.bytes_free,
	       r.largest_free,
	       100.0 * (double)r.largest_free / (double)r.bytes_free,
	       churns[_i].min_pct);
	fflush(stdout);
	ck_assert_msg(r.largest_free * 100 >=
		      r.bytes_free * churns[_i].min_pct,
		      "fragmented: largest allocatable %" PRIu64
		      " B < %u%% of %" PRIu64 " free bytes",
		      r.largest_free, churns[_i].min_pct, r.bytes_free);
	while (n)
		EXPECT_EQ(pxs__heap_free(&f.hp, lv[--n].off), 0);
	ck_assert_uint_eq(assert_clean(&f).blocks_free, 0);
	ck_assert_uint_eq(f.ctl->top, f.hp.start);
	free(lv);
	fx_done(&f);
}
END_TEST

static Suite *
alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_test(tc, roundtrip_sizes);
	tcase_add_test(tc, init_normalises_geometry);
	tcase_add_test(tc, enospc_changes_nothing);
	tcase_add_test(tc, coalesce_neighbours);
	tcase_add_test(tc, coalesce_random_order);
	tcase_add_test(tc, alloc_run_splits_into_ordinary_blocks);
	tcase_add_test(tc, wilderness_headers_are_wiped);
	tcase_add_test(tc, address_ordered);
	tcase_add_test(tc, commit_grows_monotonically);
	tcase_add_test(tc, commit_refused_changes_nothing);
	tcase_add_test(tc, bad_free_is_eproto);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("repair");
	tcase_add_loop_test(tc, rebuild_after_crash, 0, NCRASH);
	tcase_add_test(tc, rebuild_refuses_broken_chain);
	tcase_add_test(tc, corruption_never_crashes);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_add_loop_test(tc, churn, 0,
			    (int)(sizeof(churns) / sizeof(churns[0])));
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *env = getenv("PXS_TEST_SEED");
	SRunner *sr;
	int failed;

	seed = env ? strtoull(env, NULL, 0) : 0x5eed2026;
	printf("test_alloc: seed %#" PRIx64 " (set PXS_TEST_SEED to vary)\n",
	       seed);
	fflush(stdout);
	sr = srunner_create(alloc_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
