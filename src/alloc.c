/* alloc.c - the payload heap: TLSF free lists over boundary-tagged blocks.
 *
 * Owns the block format, the size classes, the free lists, the wilderness top
 * and the repair walk, all inside [hp->start, hp->end) plus the control block.
 * It does no locking, no system calls and no allocation, and it never uses a
 * value read from the segment before checking it against the handle.
 */
#include "alloc.h"
#include "failpoint.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* HOW IT WORKS
 *
 * BLOCKS. The heap is a chain of blocks from start up to `top`, then the
 * wilderness [top, end): free memory that is in no list and has no header.
 * Every block begins with a 16-byte header (struct blk):
 *
 *     +0   uint64 size | flags  whole block, header included; a multiple
 *                               of 16, at least 32; flags in bits 0..3
 *     +8   uint32 owner         the caller's tag, kept while allocated
 *     +12  uint32 check         pxs__heap_check_word(offset of this header)
 *     +16  payload              a free block keeps {next, prev} here
 *     last 8 bytes              a free block of 48 bytes or more keeps its
 *                               size here (the footer)
 *
 * Flags: F_FREE (this block is free), F_PREV_FREE (the block just before is
 * free) and F_PREV_MIN (that free block is a 32-byte one: its 16 payload bytes
 * hold the two links, so it has no room for a footer and its size is
 * implied). The chain is walked forwards through sizes and backwards through
 * the flags and footer: Knuth's boundary tags.
 *
 * The check word mixes a magic number with the header's own offset rather
 * than the size, so that every header change is one 8-byte store of
 * size|flags: a process killed between two stores never leaves a header whose
 * check word disagrees with it. The offset is enough to reject a stray
 * payload offset: the 16 bytes before it would have to hold a 32-bit hash of
 * their own address. When a merge swallows a header into a free block, its
 * check word is inverted, so an old offset cannot pass for a block either.
 *
 * CLASSES. TLSF (Masmano et al., 2004). A block size s >= 128 has first level
 * fl = floor(log2 s) - 6 and second level sl = the PXS_HEAP_SL_LOG2 bits below
 * the top bit: 8 classes per power of two, each 1/8 of it wide. Sizes below
 * 128 map linearly (fl 0, sl = s / 16). Each class has a doubly linked list of
 * free blocks (offsets of headers, 0 = none, newest first) and a bit in
 * sl_bitmap[fl]; bit fl of the first-level bitmap says sl_bitmap[fl] != 0.
 *
 * ALLOC(n). s = round16(n + 16), at least 32. Address-ordered good fit:
 * the candidates are the first SCAN (8) entries of at most two lists, the
 * list of s's own class (whose blocks may be smaller than s) and the first
 * non-empty class at or above the next class boundary (found with two
 * find-first-set on the bitmaps; every block there is >= s). Of those that
 * are >= s, the one at the lowest address wins; s is taken from its low end
 * and, if 32 bytes or more are left over, the rest is split off and listed.
 * If no candidate fits, s is carved from top; when that would cross
 * `committed`, hp->commit() is first asked for the new end rounded up to
 * 2 MiB (capped at end). Otherwise -ENOSPC.
 *
 * WHY ADDRESS ORDER. Plain TLSF hands out the newest block of the class
 * (LIFO lists), wherever it lies: small requests split large free blocks all
 * over the heap and the top is eaten early. Preferring low addresses packs
 * live blocks at the bottom; free blocks high up are left alone, merge as
 * their neighbours die, and flow back into top (Johnstone and Wilson, "The
 * memory fragmentation problem: solved?", 1998: address-ordered first and
 * best fit fragment least). Looking at the own class too fills the holes
 * that fit a request best instead of splitting a bigger block or top. The
 * lists themselves stay LIFO: free() is unchanged.
 *
 * Measured with the churn of bench_alloc_churn (10^6 mixed-size puts and
 * evicts at 70% occupancy in 128 MiB, 12 seeds), the largest free block as
 * a share of the free bytes: LIFO TLSF 17-28% (mean 23%; 17.9% for the
 * benchmark's own seed); this policy 66-70% (mean 68%; 69.5%, free blocks
 * 1570 -> 1308), still 65-70% after 10^7 operations. Variants (means):
 * without the own class 57%; SCAN 2 60%, 4 66%, 16 or 32 67%; best fit
 * among the scanned entries 60%; lists kept address-sorted on insertion
 * (up to 64 steps) 68% with the scan, 64% taking the lowest head of every
 * class that fits; small or large requests sent to the highest candidate
 * 36-64%; small blocks cut from the high end of a free block, or freed
 * blocks queued behind the first SCAN entries (delayed reuse), 67%.
 *
 * FREE(p). Mark the block free, then merge it with a free block before (found
 * through the flags and footer) and a free block after (through its header),
 * taking those out of their lists. The result goes onto its class list or, if
 * it ends at top, top moves down to its start.
 *
 * CRASHES. The headers are the truth; lists, bitmaps, counters, footers and
 * prev-free flags are an index that pxs__heap_rebuild() recomputes from a walk
 * of the headers. Every store of alloc and free keeps that walk valid from
 * start to top: a new header (a split remainder, a carved block) is complete
 * before the one store that makes it reachable (shrinking the block around
 * it, advancing top), and a freed block is marked F_FREE first, so that a
 * free() repeated after a crash is still seen as a double free. A block being
 * allocated loses F_FREE with its owner tag already set: if the allocating
 * process dies after that, the block is allocated but its caller never learnt
 * of it, and the owner tag is how the layer above finds and frees it
 * (pxs__heap_walk()).
 *
 * LIMITATIONS
 * - Internal waste per allocation: the 16-byte header, up to 15 bytes of
 *   rounding, and 16 more bytes when the rest of a free block is too small to
 *   split. An n-byte request uses at most n + 47 bytes; a 0-byte one uses 32.
 * - Alloc examines at most 2 * SCAN = 16 list entries, plus O(1) bitmap
 *   work; free is O(1) (three neighbours, one list push). On the churn
 *   above that is about 155 more instructions per alloc than LIFO TLSF
 *   (callgrind; +12% for alloc and free together). The lowest-addressed
 *   block of a list is found only if it is among the first SCAN entries
 *   (lists are newest first; right after a rebuild, highest address first).
 * - Fragmentation itself has no useful worst-case bound: for some sequence
 *   that never has more than M bytes live, every allocator that does not
 *   move blocks needs a heap of about (M / 2) log2(n) bytes, n the ratio of
 *   the largest block to the smallest (Robson, 1974). The policy above is a
 *   heuristic; the figures in WHY ADDRESS ORDER are measurements of one
 *   workload, not guarantees. What is guaranteed is the next item.
 * - The search skips the list of s's own class beyond its first SCAN
 *   entries, so it can miss a free block of size S >= s in that class. A free
 *   block is always found for requests up to the lower bound of its class,
 *   which is more than 8/9 of its size. So an allocation fails only when top
 *   is too small and every free block is smaller than 9/8 of the request:
 *   beyond what the block sizes themselves leave, the search wastes at most
 *   1/9 of the largest free block. The "largest" figures of
 *   pxs__heap_usage() and pxs__heap_check() are that guaranteed size: the
 *   larger of the payload top can give and the lower bound of the highest
 *   non-empty class minus the header.
 * - No locking: the caller serialises every call but pxs__heap_block().
 * - Blocks are at most 2^(PXS_HEAP_FL + 4) bytes (16 TiB); init clamps the
 *   heap to that, and a larger size read from a header is corrupt.
 * - Committed memory is never given back; the heap never shrinks.
 * - A peer that scribbles on the heap can make calls fail with -EPROTO and can
 *   lose blocks (its own data), but cannot make this code touch memory outside
 *   [base + start, base + end) and the control block, nor loop forever: chain
 *   walks advance by at least 32 bytes per step and stop at top, alloc's
 *   list scans stop after SCAN entries, and the other list walks are bounded
 *   by the number of blocks that fit in the heap. A corrupt
 *   list found half-way through alloc or free returns -EPROTO with the lists
 *   possibly half-updated; the headers stay walkable and rebuild repairs it.
 *   Double frees and forged offsets are found before anything is written.
 */

#define HDR 16u        /* header bytes before every payload */
#define MIN_BLOCK 32u  /* header + the two free-list links */
#define ALIGN_LOG2 4
#define SMALL (PXS_HEAP_SL * PXS_HEAP_ALIGN)     /* below: linear classes */
#define FL_SHIFT (PXS_HEAP_SL_LOG2 + ALIGN_LOG2) /* log2(SMALL) */
#define MAX_BLOCK ((uint64_t)1 << (PXS_HEAP_FL + 4))
#define COMMIT_CHUNK ((uint64_t)2 << 20)
#define SCAN 8u /* list entries alloc examines per class (HOW IT WORKS) */
#define FL_MASK (((uint64_t)1 << PXS_HEAP_FL) - 1)
#define SL_MASK (((uint32_t)1 << PXS_HEAP_SL) - 1)

#define F_FREE 1u
#define F_PREV_FREE 2u
#define F_PREV_MIN 4u
#define F_PREV (F_PREV_FREE | F_PREV_MIN)
#define F_MASK 15u

_Static_assert(PXS_HEAP_ALIGN == 1u << ALIGN_LOG2, "16-byte blocks");
_Static_assert(SMALL == 1u << FL_SHIFT, "linear classes end at a power of 2");
_Static_assert(PXS_HEAP_FL < 64 && PXS_HEAP_SL <= 32, "bitmaps fit");
_Static_assert(PXS_HEAP_FL + 4 - FL_SHIFT + 1 < PXS_HEAP_FL,
	       "a search for a MAX_BLOCK block stays inside the class table");

/* A block header. */
struct blk {
	uint64_t sf;    /**< block size (header included) | F_* flags */
	uint32_t owner; /**< caller's tag; meaningful while allocated */
	uint32_t check; /**< pxs__heap_check_word(offset of this header) */
};

/* The first payload bytes of a free block: its place in its class list. */
struct links {
	uint64_t next; /**< header offset of the next block in the list, or 0 */
	uint64_t prev; /**< header offset of the previous one, 0 at the head */
};

_Static_assert(sizeof(struct blk) == HDR, "header size");
_Static_assert(HDR + sizeof(struct links) == MIN_BLOCK, "minimum block");

/* Segment memory is read and written through volatile lvalues, so that each
 * value is fetched exactly once into the local that is then validated: the
 * compiler may not re-read a checked offset from memory a peer can change. */
typedef volatile struct pxs_seg_heap vctl;
typedef volatile struct blk vblk;
typedef volatile struct links vlinks;

/* Header words are also read without the heap lock: pxs__heap_block() runs
 * under a slot lock only, while freeing or splitting a neighbour rewrites
 * the F_PREV bits of the same size word under the heap lock (the size bits
 * stay the same). So every access to a header word (sf, owner, check) is a
 * relaxed atomic: a single untorn load or store, never split, repeated or
 * merged. Relaxed is enough: whatever else the reader needs of the block
 * was ordered before it by the slot lock under which the block was
 * published. */
#define HDR_LOAD(w) __atomic_load_n(&(w), __ATOMIC_RELAXED)
#define HDR_STORE(w, v) __atomic_store_n(&(w), (v), __ATOMIC_RELAXED)

/* A validated header: where, how big, what it said. */
struct bref {
	uint64_t off, size;
	uint32_t flags, owner;
};

/* A validated free block and its list neighbourhood. */
struct node {
	struct bref b;
	uint64_t next, prev;
	unsigned fl, sl;
};

/* ---- segment access ---------------------------------------------------- */

static vblk *
blk_at(const struct pxs_heap *hp, uint64_t b)
{
	return (vblk *)(hp->base + b);
}

static vlinks *
links_at(const struct pxs_heap *hp, uint64_t b)
{
	return (vlinks *)(hp->base + b + HDR);
}

static volatile uint64_t *
word_at(const struct pxs_heap *hp, uint64_t off)
{
	return (volatile uint64_t *)(hp->base + off);
}

uint32_t
pxs__heap_check_word(uint64_t b)
{
	uint64_t x = b ^ 0x7078735f68656170ull; /* "pxs_heap" */

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)x;
}

/* Load the header at @p b into @p r if it is a block lying wholly inside
 * [hp->start, lim), where lim is a validated top or hp->end. Offset 0 is
 * "none" in the lists, so it is never a block. */
static bool
blk_load(const struct pxs_heap *hp, uint64_t b, uint64_t lim, struct bref *r)
{
	vblk *k;
	uint64_t sf;

	if (b == 0 || b < hp->start || b >= lim || b % PXS_HEAP_ALIGN ||
	    lim - b < MIN_BLOCK)
		return false;
	k = blk_at(hp, b);
	if (HDR_LOAD(k->check) != pxs__heap_check_word(b))
		return false;
	sf = HDR_LOAD(k->sf);
	r->off = b;
	r->size = sf & ~(uint64_t)F_MASK;
	r->flags = (uint32_t)(sf & F_MASK);
	r->owner = HDR_LOAD(k->owner);
	return r->size >= MIN_BLOCK && r->size <= lim - b &&
	       r->size <= MAX_BLOCK;
}

static bool
free_load(const struct pxs_heap *hp, uint64_t b, uint64_t lim, struct bref *r)
{
	return blk_load(hp, b, lim, r) && (r->flags & F_FREE);
}

/* The allocated block whose payload is at @p off, inside [start, lim). */
static bool
used_load(const struct pxs_heap *hp, uint64_t off, uint64_t lim,
	  struct bref *r)
{
	return off >= HDR && blk_load(hp, off - HDR, lim, r) &&
	       !(r->flags & F_FREE);
}

static int
load_top(const struct pxs_heap *hp, uint64_t *top)
{
	uint64_t t = hp->h->top;

	if (t < hp->start || t > hp->end || t % PXS_HEAP_ALIGN)
		return -EPROTO;
	*top = t;
	return 0;
}

/* One step of the walk from hp->start to @p top: 1 with the block at *cur
 * in @p r (and *cur moved past it), 0 at top, -EPROTO at a bad header. Each
 * step advances at least MIN_BLOCK bytes and never passes top, so a walk
 * takes at most (top - start) / 32 steps. */
static int
chain_next(const struct pxs_heap *hp, uint64_t top, uint64_t *cur,
	   struct bref *r)
{
	if (*cur == top)
		return 0;
	if (!blk_load(hp, *cur, top, r))
		return -EPROTO;
	*cur += r->size;
	return 1;
}

static uint64_t
top_payload(const struct pxs_heap *hp, uint64_t top)
{
	uint64_t room = hp->end - top;

	room = room > MAX_BLOCK ? MAX_BLOCK : room;
	return room >= MIN_BLOCK ? room - HDR : 0;
}

/* ---- size classes ------------------------------------------------------ */

static void
class_of(uint64_t size, unsigned *fl, unsigned *sl)
{
	unsigned f;

	if (size < SMALL) {
		*fl = 0;
		*sl = (unsigned)(size >> ALIGN_LOG2);
		return;
	}
	f = 63u - (unsigned)__builtin_clzll(size);
	*fl = f - FL_SHIFT + 1;
	*sl = (unsigned)(size >> (f - PXS_HEAP_SL_LOG2)) & (PXS_HEAP_SL - 1);
}

/* The first class whose every block is >= @p size. */
static void
class_search(uint64_t size, unsigned *fl, unsigned *sl)
{
	if (size >= SMALL)
		size += ((uint64_t)1 << (63u - (unsigned)__builtin_clzll(size) -
					 PXS_HEAP_SL_LOG2)) - 1;
	class_of(size, fl, sl);
}

/* The smallest block size in class (fl, sl). */
static uint64_t
class_floor(unsigned fl, unsigned sl)
{
	if (fl == 0)
		return (uint64_t)sl << ALIGN_LOG2;
	return (uint64_t)(PXS_HEAP_SL + sl)
	       << (fl - 1 + FL_SHIFT - PXS_HEAP_SL_LOG2);
}

static uint64_t
fl_map(vctl *h)
{
	return ((uint64_t)h->fl_bitmap_hi << 32 | h->fl_bitmap_lo) & FL_MASK;
}

static void
fl_map_set(vctl *h, uint64_t m)
{
	h->fl_bitmap_lo = (uint32_t)m;
	h->fl_bitmap_hi = (uint32_t)(m >> 32);
}

static void
index_clear(vctl *h)
{
	for (unsigned fl = 0; fl < PXS_HEAP_FL; fl++) {
		for (unsigned sl = 0; sl < PXS_HEAP_SL; sl++)
			h->heads[fl][sl] = 0;
		h->sl_bitmap[fl] = 0;
	}
	fl_map_set(h, 0);
}

/* ---- free lists -------------------------------------------------------- */

/* Is @p x a free block of class (fl, sl) below @p top? */
static bool
peer_ok(const struct pxs_heap *hp, uint64_t top, uint64_t x, unsigned fl,
	unsigned sl)
{
	struct bref r;
	unsigned f, s;

	if (!free_load(hp, x, top, &r))
		return false;
	class_of(r.size, &f, &s);
	return f == fl && s == sl;
}

/* Load the free block at @p b and check that it sits in its class list:
 * its neighbours are free blocks of the same class that point back at it,
 * and it heads the list if it has no predecessor. */
static bool
node_load(const struct pxs_heap *hp, uint64_t top, uint64_t b, struct node *n)
{
	vlinks *l;

	if (!free_load(hp, b, top, &n->b))
		return false;
	class_of(n->b.size, &n->fl, &n->sl);
	l = links_at(hp, b);
	n->next = l->next;
	n->prev = l->prev;
	if (n->next == b || n->prev == b)
		return false;
	if (n->next && !(peer_ok(hp, top, n->next, n->fl, n->sl) &&
			 links_at(hp, n->next)->prev == b))
		return false;
	if (n->prev)
		return peer_ok(hp, top, n->prev, n->fl, n->sl) &&
		       links_at(hp, n->prev)->next == b;
	return hp->h->heads[n->fl][n->sl] == b;
}

static void
node_unlink(const struct pxs_heap *hp, const struct node *n)
{
	vctl *h = hp->h;

	if (n->prev) {
		links_at(hp, n->prev)->next = n->next;
	} else {
		h->heads[n->fl][n->sl] = n->next;
		if (!n->next) {
			h->sl_bitmap[n->fl] &= ~(1u << n->sl);
			if (!(h->sl_bitmap[n->fl] & SL_MASK))
				fl_map_set(h, fl_map(h) &
					      ~((uint64_t)1 << n->fl));
		}
	}
	if (n->next)
		links_at(hp, n->next)->prev = n->prev;
}

static int
unlink_at(const struct pxs_heap *hp, uint64_t top, uint64_t b)
{
	struct node n;

	if (!node_load(hp, top, b, &n))
		return -EPROTO;
	node_unlink(hp, &n);
	return 0;
}

/* Put the free block [b, b + size) at the head of its class list. */
static int
node_push(const struct pxs_heap *hp, uint64_t top, uint64_t b, uint64_t size)
{
	vctl *h = hp->h;
	vlinks *l = links_at(hp, b);
	unsigned fl, sl;
	uint64_t old;

	class_of(size, &fl, &sl);
	old = h->heads[fl][sl];
	if (old && !(peer_ok(hp, top, old, fl, sl) &&
		     links_at(hp, old)->prev == 0))
		return -EPROTO;
	l->next = old;
	l->prev = 0;
	if (old)
		links_at(hp, old)->prev = b;
	h->heads[fl][sl] = b;
	h->sl_bitmap[fl] |= 1u << sl;
	fl_map_set(h, fl_map(h) | (uint64_t)1 << fl);
	return 0;
}

/* Lower *best to the lowest-addressed block of at least @p s bytes among
 * the first SCAN entries of list (fl, sl), which the bitmaps say is not
 * empty. This is the hot loop of alloc, so an entry is only checked to lie
 * where a block can (aligned, its header and links below top) before its
 * size and next link are read; the size is only compared, and the block
 * chosen is then validated in full by node_load(). The walk stops after
 * SCAN entries, so a corrupt list can neither lead it outside the heap nor
 * round a cycle forever; a bad entry that is not chosen is left for free()
 * or check to find. */
static int
scan_class(const struct pxs_heap *hp, uint64_t top, unsigned fl, unsigned sl,
	   uint64_t s, uint64_t *best)
{
	uint64_t x = hp->h->heads[fl][sl], size;

	if (!x)
		return -EPROTO;
	for (unsigned i = 0; i < SCAN && x; i++) {
		if (x < hp->start || x >= top || x % PXS_HEAP_ALIGN ||
		    top - x < MIN_BLOCK)
			return -EPROTO;
		size = HDR_LOAD(blk_at(hp, x)->sf) & ~(uint64_t)F_MASK;
		if (size >= s && (!*best || x < *best))
			*best = x;
		x = links_at(hp, x)->next;
	}
	return 0;
}

/* Address-ordered good fit (HOW IT WORKS): 1 with the chosen block loaded
 * into @p n, 0 if no candidate fits, -EPROTO if the index lies. */
static int
find_fit(const struct pxs_heap *hp, uint64_t top, uint64_t s, struct node *n)
{
	vctl *h = hp->h;
	unsigned ofl, osl, fl, sl;
	uint64_t best = 0, flm;
	uint32_t slm;
	int rc;

	class_of(s, &ofl, &osl);
	if ((h->sl_bitmap[ofl] >> osl & 1) &&
	    (rc = scan_class(hp, top, ofl, osl, s, &best)) < 0)
		return rc;
	class_search(s, &fl, &sl);
	if (fl < PXS_HEAP_FL) {
		slm = h->sl_bitmap[fl] & SL_MASK & (~0u << sl);
		if (!slm) {
			flm = fl_map(h) & (~(uint64_t)0 << fl << 1);
			fl = flm ? (unsigned)__builtin_ctzll(flm) : PXS_HEAP_FL;
			slm = flm ? h->sl_bitmap[fl] & SL_MASK : 0;
			if (flm && !slm)
				return -EPROTO;
		}
		sl = slm ? (unsigned)__builtin_ctz(slm) : 0;
		if (slm && !(fl == ofl && sl == osl) &&
		    (rc = scan_class(hp, top, fl, sl, s, &best)) < 0)
			return rc;
	}
	if (!best)
		return 0;
	return node_load(hp, top, best, n) ? 1 : -EPROTO;
}

/* ---- block surgery ----------------------------------------------------- */

static uint32_t
prev_bits(uint64_t prev_free_size)
{
	if (!prev_free_size)
		return 0;
	return prev_free_size == MIN_BLOCK ? F_PREV : F_PREV_FREE;
}

/* Tell block @p x whether the block before it is free (prev_free_size != 0)
 * and, through F_PREV_MIN, whether that one has a footer. */
static void
set_prev(const struct pxs_heap *hp, const struct bref *x,
	 uint64_t prev_free_size)
{
	HDR_STORE(blk_at(hp, x->off)->sf,
		  x->size | (x->flags & F_FREE) | prev_bits(prev_free_size));
}

/* Write the header (and footer) of a free block [b, b + size) whose previous
 * block is allocated. It is not listed yet. */
static void
make_free(const struct pxs_heap *hp, uint64_t b, uint64_t size)
{
	vblk *k = blk_at(hp, b);

	HDR_STORE(k->check, pxs__heap_check_word(b));
	HDR_STORE(k->sf, size | F_FREE);
	if (size > MIN_BLOCK)
		*word_at(hp, b + size - 8) = size;
}

/* Invert the check word of a header that a merge swallowed. */
static void
wipe(const struct pxs_heap *hp, uint64_t b)
{
	HDR_STORE(blk_at(hp, b)->check, ~pxs__heap_check_word(b));
}

/* Is there a valid header of an allocated block at b (committed memory)? */
static bool
live_header_at(const struct pxs_heap *hp, uint64_t b)
{
	struct bref r;
	return blk_load(hp, b, hp->end, &r) && !(r.flags & F_FREE);
}

/* The free block just before @p x, which has F_PREV_FREE set. */
static bool
prev_load(const struct pxs_heap *hp, uint64_t top, const struct bref *x,
	  struct bref *p)
{
	uint64_t psize = MIN_BLOCK;

	if (x->off - hp->start < MIN_BLOCK)
		return false;
	if (!(x->flags & F_PREV_MIN)) {
		psize = *word_at(hp, x->off - 8);
		if (psize <= MIN_BLOCK || psize > x->off - hp->start)
			return false;
	}
	return free_load(hp, x->off - psize, top, p) && p->size == psize;
}

/* Allocate @p s bytes from the listed free block @p n; *got is the size of
 * the block handed out (s, or all of n when the rest is too small). */
static int
take(struct pxs_heap *hp, uint64_t top, const struct node *n, uint64_t s,
     uint32_t owner, uint64_t *got)
{
	vblk *k = blk_at(hp, n->b.off);
	uint64_t end = n->b.off + n->b.size, rest = n->b.size - s;
	struct bref next;
	bool has_next = end < top;
	int rc;

	if (has_next && !blk_load(hp, end, top, &next))
		return -EPROTO;
	node_unlink(hp, n);
	PXS_FAILPOINT(FP_ALLOC_SPLIT);
	if (rest < MIN_BLOCK) {
		s = n->b.size;
		rest = 0;
	} else {
		make_free(hp, n->b.off + s, rest);
		if ((rc = node_push(hp, top, n->b.off + s, rest)) < 0)
			return rc;
	}
	HDR_STORE(k->owner, owner);
	HDR_STORE(k->sf, s | (n->b.flags & F_PREV));
	if (has_next)
		set_prev(hp, &next, rest);
	*got = s;
	return 0;
}

/* Make sure [0, need) is committed, asking for whole chunks. */
static int
grow(struct pxs_heap *hp, uint64_t need)
{
	vctl *h = hp->h;
	uint64_t have = h->committed, want;
	int rc;

	if (need <= have && have <= hp->end)
		return 0;
	want = ((need - 1) | (COMMIT_CHUNK - 1)) + 1; /* need > 0 */
	/* want wraps to 0 when need is in the last chunk below 2^64. */
	/* cppcheck-suppress knownConditionTrueFalse ; it misses the wrap */
	if (want == 0 || want > hp->end)
		want = hp->end;
	if (hp->commit && (rc = hp->commit(hp->commit_ctx, want)) != 0) {
		/* Short of a whole chunk, the request itself may still fit. */
		uint64_t just = ((need - 1) | 4095) + 1;
		if (just > hp->end)
			just = hp->end;
		if (rc != -ENOSPC || just >= want ||
		    (rc = hp->commit(hp->commit_ctx, just)) != 0)
			return rc < 0 ? rc : -ENOSPC;
		want = just;
	}
	h->committed = want;
	return 0;
}

/* Allocate the block [top, top + s). */
static int
carve(struct pxs_heap *hp, uint64_t top, uint64_t s, uint32_t owner)
{
	vblk *k = blk_at(hp, top);
	int rc;

	if ((rc = grow(hp, top + s)) < 0)
		return rc;
	/* Nothing live lies at or above top: a live header there means a
	 * peer moved top back over live data. (Read only once committed.) */
	if (live_header_at(hp, top))
		return -EPROTO;
	HDR_STORE(k->owner, owner);
	HDR_STORE(k->check, pxs__heap_check_word(top));
	HDR_STORE(k->sf, s);
	PXS_FAILPOINT(FP_ALLOC_CARVE);
	hp->h->top = top + s;
	return 0;
}

/* The block that holds @p size payload bytes (size <= MAX_BLOCK). */
static uint64_t
block_size(uint64_t size)
{
	uint64_t s = (size + HDR + PXS_HEAP_ALIGN - 1) &
		     ~(uint64_t)(PXS_HEAP_ALIGN - 1);
	return s < MIN_BLOCK ? MIN_BLOCK : s;
}

/* ---- the interface ----------------------------------------------------- */

/* A handle built by hand for an existing heap (an attacher's) must carry the
 * same start and end as this function wrote: aligned, start > 0. */
void
pxs__heap_init(struct pxs_heap *hp, uint64_t start, uint64_t end)
{
	vctl *h = hp->h;
	uint64_t a = PXS_HEAP_ALIGN - 1;

	start = (start + a) & ~a;
	start = start ? start : PXS_HEAP_ALIGN;
	end = end & ~a;
	end = end < start ? start : end;
	if (end - start > MAX_BLOCK)
		end = start + MAX_BLOCK;
	hp->start = start;
	hp->end = end;
	h->start = start;
	h->end = end;
	h->top = start;
	h->committed = start;
	h->used = 0;
	h->nalloc = 0;
	h->changes = 0;
	index_clear(h);
}

static int
heap_alloc(struct pxs_heap *hp, uint64_t size, uint32_t owner,
		uint64_t *off)
{
	vctl *h = hp->h;
	uint64_t top, s, b, got;
	struct node n;
	int rc;

	if ((rc = load_top(hp, &top)) < 0)
		return rc;
	if (size > hp->end - hp->start || size > MAX_BLOCK - MIN_BLOCK)
		return -ENOSPC;
	s = block_size(size);

	if ((rc = find_fit(hp, top, s, &n)) < 0)
		return rc;
	if (rc > 0) {
		if ((rc = take(hp, top, &n, s, owner, &got)) < 0)
			return rc;
		b = n.b.off;
	} else {
		if (hp->end - top < s)
			return -ENOSPC;
		if ((rc = carve(hp, top, s, owner)) < 0)
			return rc;
		b = top;
		got = s;
	}
	h->used += got;
	h->nalloc += 1;
	*off = b + HDR;
	return 0;
}

static int
heap_alloc_run(struct pxs_heap *hp, uint64_t size, uint32_t n,
		    uint32_t owner, uint64_t *offs)
{
	uint64_t s, first, b, whole, sf;
	vblk *k;
	int rc;

	if (n == 0 || size > MAX_BLOCK - MIN_BLOCK)
		return n == 0 ? 0 : -ENOSPC;
	s = block_size(size);
	if (n > 1 && s > MAX_BLOCK / n)
		n = 1;
	/* One allocation for all n (a block of n * s bytes), else one. */
	rc = n > 1 ? heap_alloc(hp, n * s - HDR, owner, &first) : -ENOSPC;
	if (rc == -ENOSPC) {
		n = 1;
		rc = heap_alloc(hp, size, owner, &first);
	}
	if (rc < 0)
		return rc;
	b = first - HDR;
	k = blk_at(hp, b);
	sf = HDR_LOAD(k->sf);
	whole = sf & ~(uint64_t)F_MASK; /* may exceed n * s: see take() */
	/* Split it: headers from the last block down, unreachable by a walk
	 * until the first block's size word shrinks, in one store. A holder
	 * that dies before it leaves one block of n * s, tagged with it. */
	for (uint32_t i = n - 1; i >= 1; i--) {
		uint64_t bi = b + i * s;
		vblk *ki = blk_at(hp, bi);
		HDR_STORE(ki->owner, owner);
		HDR_STORE(ki->check, pxs__heap_check_word(bi));
		HDR_STORE(ki->sf, i == n - 1 ? whole - i * s : s);
		offs[i] = bi + HDR;
	}
	if (n > 1) {
		PXS_FAILPOINT(FP_ALLOC_RUN_SPLIT);
		HDR_STORE(k->sf, s | (sf & F_PREV));
		hp->h->nalloc += n - 1;
	}
	offs[0] = first;
	return (int)n;
}

static int
heap_free(struct pxs_heap *hp, uint64_t off)
{
	vctl *h = hp->h;
	struct bref b, p, next, after;
	struct node pn, nn;
	uint64_t top, lo, hi; /* the merged free block is [lo, hi) */
	bool merge_prev, merge_next = false;
	int rc;

	/* Check everything first: a bad offset changes nothing. */
	if ((rc = load_top(hp, &top)) < 0)
		return rc;
	if (!used_load(hp, off, top, &b))
		return -EPROTO;
	lo = b.off;
	hi = b.off + b.size;
	merge_prev = b.flags & F_PREV_FREE;
	if (merge_prev) {
		if (!prev_load(hp, top, &b, &p) ||
		    !node_load(hp, top, p.off, &pn))
			return -EPROTO;
		lo = p.off;
	}
	if (hi < top) {
		if (!blk_load(hp, hi, top, &next))
			return -EPROTO;
		after = next;
		merge_next = next.flags & F_FREE;
		if (merge_next) {
			if (!node_load(hp, top, next.off, &nn))
				return -EPROTO;
			hi += next.size;
			if (hi < top && !blk_load(hp, hi, top, &after))
				return -EPROTO;
		}
	}

	HDR_STORE(blk_at(hp, b.off)->sf, b.size | (b.flags & F_PREV) | F_FREE);
	PXS_FAILPOINT(FP_FREE_COALESCE);
	if (merge_prev)
		node_unlink(hp, &pn);
	/* Reloaded: unlinking the block before may have moved its links. */
	if (merge_next && (rc = unlink_at(hp, top, next.off)) < 0)
		return rc;
	if (hi == top) {
		h->top = lo;
		/* Swallowed by the wilderness: no header there may still pass
		 * for a block. User data written later over part of one (a
		 * size byte) could make it read as a live block at top, which
		 * carve() takes for corruption. Top moved first: a holder that
		 * dies here leaves nothing below top wiped. */
		wipe(hp, b.off);
		if (merge_prev)
			wipe(hp, p.off);
		if (merge_next)
			wipe(hp, next.off);
	} else {
		make_free(hp, lo, hi - lo);
		set_prev(hp, &after, hi - lo);
		if (merge_prev)
			wipe(hp, b.off);
		if (merge_next)
			wipe(hp, next.off);
		PXS_FAILPOINT(FP_FREE_LINK);
		if ((rc = node_push(hp, top, lo, hi - lo)) < 0)
			return rc;
	}
	h->used -= b.size;
	h->nalloc -= 1;
	return 0;
}

int
pxs__heap_block(const struct pxs_heap *hp, uint64_t off, uint64_t *cap,
		uint32_t *owner)
{
	struct bref r;

	if (!used_load(hp, off, hp->end, &r))
		return -EPROTO;
	if (cap)
		*cap = r.size - HDR;
	if (owner)
		*owner = r.owner;
	return 0;
}

static int
heap_set_owner(struct pxs_heap *hp, uint64_t off, uint32_t owner)
{
	struct bref r;
	uint64_t top;

	if (load_top(hp, &top) < 0 || !used_load(hp, off, top, &r))
		return -EPROTO;
	HDR_STORE(blk_at(hp, r.off)->owner, owner);
	return 0;
}

/* @p fn must not allocate or free: the walk has already read where the next
 * block starts, and a merge may wipe that header. */
int
pxs__heap_walk(const struct pxs_heap *hp, pxs_heap_visit_fn fn, void *ctx)
{
	struct bref r;
	uint64_t top, cur = hp->start;
	int rc;

	if ((rc = load_top(hp, &top)) < 0)
		return rc;
	while ((rc = chain_next(hp, top, &cur, &r)) > 0)
		if (!(r.flags & F_FREE))
			fn(ctx, r.off + HDR, r.size - HDR, r.owner);
	return rc;
}

/* REBUILD
 *
 * The repair after a process died inside alloc() or free() (or inside an
 * earlier rebuild). Only the headers are trusted, and only if the walk from
 * start lands exactly on top: that is checked first, in a read-only pass, so
 * an unrepairable heap is left as it was. The second pass empties the index,
 * then walks again: every run of adjacent free blocks becomes one free block
 * (the swallowed headers are wiped) with a fresh footer and list entry, or
 * moves top down if it ends there; every allocated block gets its prev-free
 * flags from what the walk saw and is counted. committed is clamped into
 * [top, end] (a wild value costs at most a repeated commit call).
 *
 * Each store leaves the walk valid, so a rebuild killed half-way is finished
 * by the next one, and a rebuild of a rebuilt heap writes the same bytes.
 */
static int
heap_rebuild(struct pxs_heap *hp)
{
	vctl *h = hp->h;
	struct bref r, x;
	uint64_t top, cur, run, committed;
	uint64_t used = 0, nalloc = 0, prev_free = 0;
	int rc;

	if ((rc = load_top(hp, &top)) < 0)
		return rc;
	for (cur = hp->start; (rc = chain_next(hp, top, &cur, &r)) > 0;)
		;
	if (rc < 0)
		return rc;

	index_clear(h);
	cur = hp->start;
	while ((rc = chain_next(hp, top, &cur, &r)) > 0) {
		if (!(r.flags & F_FREE)) {
			set_prev(hp, &r, prev_free);
			used += r.size;
			nalloc++;
			prev_free = 0;
			continue;
		}
		run = r.off;
		while (cur < top && free_load(hp, cur, top, &x))
			cur += x.size;
		if (cur == top) {
			/* Into the wilderness, headers wiped as in free. */
			h->top = top = run;
			for (uint64_t y = run; y < cur && free_load(hp, y, cur, &x);
			     y += x.size)
				wipe(hp, y);
			break;
		}
		make_free(hp, run, cur - run);
		for (uint64_t y = run + r.size; y < cur; y += x.size) {
			if (!blk_load(hp, y, cur, &x))
				return -EPROTO;
			wipe(hp, y);
		}
		if ((rc = node_push(hp, top, run, cur - run)) < 0)
			return rc;
		prev_free = cur - run;
	}
	if (rc < 0)
		return rc;
	h->used = used;
	h->nalloc = nalloc;
	committed = h->committed;
	if (committed < top || committed > hp->end)
		h->committed = committed = top;
	/* A carve that died after writing its header but before moving top
	 * left a header of a block never handed out: wipe it, or the next
	 * carve would take it for live data above top. */
	if (top + MIN_BLOCK <= committed && live_header_at(hp, top))
		wipe(hp, top);
	h->start = hp->start;
	h->end = hp->end;
	return 0;
}

static void
report(struct pxs_heap_report *r, const char *what, uint64_t at)
{
	if (r->errors++ == 0)
		snprintf(r->first_error, sizeof(r->first_error),
			 "%s at offset %llu", what, (unsigned long long)at);
}

/* The free lists against the bitmaps; returns how many entries they hold.
 * An entry must be a free block of the list's class below top whose prev
 * link names the entry before it. The total is bounded by the number of
 * blocks that fit in the heap, which stops cycles. */
static uint64_t
check_lists(const struct pxs_heap *hp, uint64_t top, struct pxs_heap_report *r)
{
	vctl *h = hp->h;
	uint64_t entries = 0, limit = (hp->end - hp->start) / MIN_BLOCK;
	uint64_t flm = (uint64_t)h->fl_bitmap_hi << 32 | h->fl_bitmap_lo;

	if (flm & ~FL_MASK)
		report(r, "first-level bitmap has bits past the table", flm);
	for (unsigned fl = 0; fl < PXS_HEAP_FL; fl++) {
		uint32_t slm = h->sl_bitmap[fl];

		if (slm & ~SL_MASK)
			report(r, "second-level bitmap has stray bits", fl);
		if (!(flm >> fl & 1) != !(slm & SL_MASK))
			report(r, "first-level bit disagrees", fl);
		for (unsigned sl = 0; sl < PXS_HEAP_SL; sl++) {
			uint64_t x = h->heads[fl][sl], prev = 0;

			if (!(slm >> sl & 1) != !x)
				report(r, "second-level bit disagrees", x);
			for (; x; prev = x, x = links_at(hp, x)->next) {
				if (entries++ >= limit ||
				    !peer_ok(hp, top, x, fl, sl) ||
				    links_at(hp, x)->prev != prev) {
					report(r, "bad free-list entry", x);
					break;
				}
			}
		}
	}
	return entries;
}

/* CHECK
 *
 * Read-only. The walk must land on top; every block's prev-free flags must
 * match its predecessor; a free block must have a free-less predecessor, a
 * successor that is not top, a matching footer, and list links that point
 * back at it. The lists must hold exactly as many entries as the walk found
 * free blocks, each a free block of the list's class (with the links check
 * above, that makes every free block listed once, in its own class). The
 * counters must equal the walk's sums, which add up to top - start because
 * the walk reached top.
 */
int
pxs__heap_check(const struct pxs_heap *hp, struct pxs_heap_report *r)
{
	vctl *h = hp->h;
	struct bref b;
	struct node n;
	uint64_t top, cur = hp->start, v, prev_free = 0, floor, best = 0;
	uint64_t free_bytes = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	if (load_top(hp, &top) < 0) {
		report(r, "top outside the heap", h->top);
		return -EPROTO;
	}
	if (h->start != hp->start || h->end != hp->end)
		report(r, "geometry differs from the handle's", h->start);
	v = h->committed;
	if (v < top || v > hp->end)
		report(r, "committed outside [top, end]", v);

	while ((rc = chain_next(hp, top, &cur, &b)) > 0) {
		if ((b.flags & F_PREV) != prev_bits(prev_free))
			report(r, "prev-free flags disagree with the walk",
			       b.off);
		if (!(b.flags & F_FREE)) {
			r->blocks_used++;
			r->bytes_used += b.size;
			prev_free = 0;
			continue;
		}
		r->blocks_free++;
		free_bytes += b.size;
		if (prev_free)
			report(r, "two adjacent free blocks", b.off);
		if (cur == top)
			report(r, "free block next to top", b.off);
		if (b.size > MIN_BLOCK && *word_at(hp, cur - 8) != b.size)
			report(r, "footer disagrees with header", b.off);
		if (!node_load(hp, top, b.off, &n))
			report(r, "free block badly linked", b.off);
		else if ((floor = class_floor(n.fl, n.sl)) > best)
			best = floor;
		prev_free = b.size;
	}
	if (rc < 0)
		report(r, "block chain broken", cur);

	if (check_lists(hp, top, r) != r->blocks_free)
		report(r, "list entries differ from free blocks",
		       r->blocks_free);
	if (h->used != r->bytes_used || h->nalloc != r->blocks_used)
		report(r, "counters disagree with the blocks", h->used);

	r->bytes_free = free_bytes + (hp->end - top);
	r->bytes_overhead = (uint64_t)HDR * r->blocks_used;
	r->largest_free = top_payload(hp, top);
	if (best > HDR && best - HDR > r->largest_free)
		r->largest_free = best - HDR;
	return r->errors ? -EPROTO : 0;
}

/* From the counters and bitmaps only: *used is h->used (clamped to the heap
 * size), *free_bytes the rest of the heap, wilderness included, and *largest
 * a payload size that alloc is sure to find right now (if commit succeeds):
 * see LIMITATIONS above. A corrupt index makes these figures wrong but never
 * makes this function read outside the control block. */
void
pxs__heap_usage(const struct pxs_heap *hp, uint64_t *used,
		uint64_t *free_bytes, uint64_t *largest)
{
	vctl *h = hp->h;
	uint64_t size = hp->end - hp->start, u = h->used, top, flm, best = 0;
	uint32_t slm;
	unsigned fl, sl;

	u = u > size ? size : u;
	*used = u;
	*free_bytes = size - u;
	*largest = load_top(hp, &top) < 0 ? 0 : top_payload(hp, top);
	flm = fl_map(h);
	if (flm) {
		fl = 63u - (unsigned)__builtin_clzll(flm);
		slm = h->sl_bitmap[fl] & SL_MASK;
		sl = 31u - (unsigned)__builtin_clz(slm | 1);
		best = slm ? class_floor(fl, sl) : 0;
	}
	if (best > HDR && best - HDR > *largest)
		*largest = best - HDR;
}

/*
 * THE CHANGE COUNTER. Readers without the heap lock (a PXS_RDONLY handle's
 * pxs_check(), a check beside a stopped lock holder) walk a heap that may
 * be changing under them, and a walk that crossed a change can find what
 * looks like damage. Every change therefore goes between two bumps of
 * `changes`, under the heap lock, seqlock style: odd while a change is
 * under way, even between changes, never the same even value on both sides
 * of one. A reader that saw the same even value before and after its walk
 * saw no change, and what it found is the heap's; otherwise it walks again
 * (check.c). A holder that dies mid-change leaves it odd; the rebuild that
 * repairs the heap is a change too, and leaves it even again.
 */
static void
change_begin(struct pxs_heap *hp)
{
	uint64_t c = __atomic_load_n(&hp->h->changes, __ATOMIC_RELAXED);
	__atomic_store_n(&hp->h->changes, c | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* before the change's writes */
}

static void
change_end(struct pxs_heap *hp)
{
	uint64_t c = __atomic_load_n(&hp->h->changes, __ATOMIC_RELAXED);
	__atomic_store_n(&hp->h->changes, (c | 1) + 1, __ATOMIC_RELEASE);
}

uint64_t
pxs__heap_changes(const struct pxs_heap *hp)
{
	return __atomic_load_n(&hp->h->changes, __ATOMIC_ACQUIRE);
}

/* One change of the heap, between the bumps. */
#define CHANGE(hp, call)                                                       \
	do {                                                                   \
		change_begin(hp);                                              \
		int rc_ = (call);                                              \
		change_end(hp);                                                \
		return rc_;                                                    \
	} while (0)

int
pxs__heap_alloc(struct pxs_heap *hp, uint64_t size, uint32_t owner,
		uint64_t *off)
{
	CHANGE(hp, heap_alloc(hp, size, owner, off));
}

int
pxs__heap_alloc_run(struct pxs_heap *hp, uint64_t size, uint32_t n,
		    uint32_t owner, uint64_t *offs)
{
	CHANGE(hp, heap_alloc_run(hp, size, n, owner, offs));
}

int
pxs__heap_free(struct pxs_heap *hp, uint64_t off)
{
	CHANGE(hp, heap_free(hp, off));
}

int
pxs__heap_set_owner(struct pxs_heap *hp, uint64_t off, uint32_t owner)
{
	CHANGE(hp, heap_set_owner(hp, off, owner));
}

int
pxs__heap_rebuild(struct pxs_heap *hp)
{
	CHANGE(hp, heap_rebuild(hp));
}
