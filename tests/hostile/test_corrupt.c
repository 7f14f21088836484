/* test_corrupt.c - PLAN E1-E8: a peer with write access scribbles on the
 * segment; the library may fail calls (-EPROTO and other documented
 * codes) but must never crash, hang, or touch memory outside the mapping.
 *
 * Harness: the fixture process builds a populated 4 MiB store (20
 * self-verifying objects, futures, a pinned view) and maps the file a
 * second time, raw, as the corruptor. After each injection a victim
 * *process* attaches and runs: the undamaged keys must still verify (for
 * injections local to one slot), every call on the damaged key and the
 * generic victim script (hostile.c) must return documented codes, every
 * view must lie inside the heap, and all of it must finish before an
 * alarm. The fixture's pxs_check must report the injected class. Lock
 * words are left alone except in E7 (a documented limitation).
 */
#include "hostile.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB HX_MiB
#define NK 20
#define DAMAGED 5 /* the key most injections hit */

struct fix {
	char name[64];
	pxs_store *s;
	pxs_key keys[NK];
	size_t sizes[NK];
	uint32_t idx[NK]; /* slot of each key */
	uint64_t off[NK]; /* payload offset of each key */
	pxs_key fpend, fres, fset;
	pxs_view pin;       /* on keys[0] */
	unsigned char *raw; /* the corruptor's own mapping */
	size_t len;
};

static struct fix F;

static struct pxs_seg_slot *
raw_slot(uint32_t idx)
{
	return (struct pxs_seg_slot *)(F.raw + F.s->g.table_off) + idx;
}

static struct pxs_seg_hdr *
raw_hdr(void)
{
	return (struct pxs_seg_hdr *)F.raw;
}

static uint64_t *
raw_u64(uint64_t off)
{
	return (uint64_t *)(F.raw + off);
}

static void
fix_setup(void)
{
	memset(&F, 0, sizeof F);
	F.s = pxs_test_store(F.name, 4 * MiB, 64);
	for (int i = 0; i < NK; i++) {
		F.keys[i] = pxs_key_from_name(&i, sizeof i);
		F.sizes[i] = PXS_TEST_HDR + (size_t)(i * i * 97 % 40000);
		unsigned char *b = malloc(F.sizes[i]);
		pxs_test_fill(b, F.sizes[i], F.keys[i], (uint64_t)i);
		ck_assert_int_eq(pxs_put_at(F.s, F.keys[i], b, F.sizes[i]), 0);
		free(b);
		ck_assert_int_eq(pxs__table_find(F.s, F.keys[i], &F.idx[i]), 0);
		F.off[i] = F.s->slots[F.idx[i]].off;
	}
	void *w;
	ck_assert_int_eq(pxs_future_new(F.s, &F.fpend), 0);
	ck_assert_int_eq(pxs_future_new(F.s, &F.fres), 0);
	ck_assert_int_eq(pxs_future_reserve(F.s, F.fres, 100, &w), 0);
	ck_assert_int_eq(pxs_future_new(F.s, &F.fset), 0);
	ck_assert_int_eq(pxs_future_set(F.s, F.fset, "set", 3), 0);
	ck_assert_int_eq(pxs_get(F.s, F.keys[0], &F.pin), 0);
	int fd = shm_open(F.name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	F.len = F.s->g.size;
	F.raw = mmap(NULL, F.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert(F.raw != MAP_FAILED);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(F.s, &r), 0);
}

static void
fix_teardown(void)
{
	munmap(F.raw, F.len);
	/* The pin may have been invalidated by the injection. */
	pxs_release(F.s, &F.pin);
	pxs_test_done(F.s, F.name);
}

/* ---- the victim process -------------------------------------------------- */

enum undamaged {
	U_VERIFY, /* every other key gets and verifies */
	U_DOC,    /* every other key: documented codes, views inside */
};

struct victim_args {
	int damaged;        /* index of the damaged key, -1 for none */
	enum undamaged und; /* what is required of the others */
	bool mutate;        /* run the mutating victim script too */
};

static int
victim(void *arg)
{
	struct victim_args *a = arg;
	pxs_store *s;
	char why[256];
	hx_deadline(60);
	int rc = pxs_open(F.name, NULL, &s);
	if (rc < 0) {
		if (hx_documented(HX_OPEN, rc))
			return 0;
		fprintf(stderr, "victim: open %d\n", rc);
		return 2;
	}
	for (int i = 0; i < NK; i++) {
		pxs_view v;
		rc = pxs_get(s, F.keys[i], &v);
		if (i == a->damaged || a->und == U_DOC) {
			if (!hx_acceptable(HX_GET, rc)) {
				fprintf(stderr, "victim: get %d: %d\n", i, rc);
				return 3;
			}
			if (rc == 0) {
				if (!hx_view_inside(s, v.data, v.size)) {
					fprintf(stderr, "victim: view %d\n", i);
					return 4;
				}
				pxs_release(s, &v);
			}
			continue;
		}
		if (rc == -ENOSPC)
			continue; /* documented: a damaged heap had no room for
				   * this handle's pin records */
		if (rc != 0 || pxs_test_verify(v.data, v.size, F.keys[i]) ||
		    pxs_release(s, &v) != 0) {
			fprintf(stderr, "victim: undamaged key %d: %d (%s)\n",
				i, rc, pxs_strerror(rc));
			return 5;
		}
	}
	pxs_key keys[NK + 3];
	memcpy(keys, F.keys, sizeof F.keys);
	keys[NK] = F.fpend;
	keys[NK + 1] = F.fres;
	keys[NK + 2] = F.fset;
	struct hx_victim_opts o = {.keys = keys,
				   .nkeys = NK + 3,
				   .seed = 7,
				   .rounds = 2,
				   .mutate = a->mutate,
				   .check_allowed_to_fail = true};
	if (hx_victim(s, &o, why, sizeof why) < 0) {
		fprintf(stderr, "victim: %s\n", why);
		return 6;
	}
	pxs_close(s);
	return 0;
}

/* Run the victim (read-only first, then mutating) in children. */
static void
run_victims(const char *what, int damaged, enum undamaged und)
{
	for (int m = 0; m < 2; m++) {
		struct victim_args a = {.damaged = damaged,
					.und = m ? U_DOC : und,
					.mutate = m};
		pid_t p = pxs_test_spawn(victim, &a);
		int rc = pxs_test_reap(p, 90);
		ck_assert_msg(rc == 0, "%s: victim (%s) ended with %d (%s)",
			      what, m ? "mutating" : "reading", rc,
			      rc == 128 + SIGALRM ? "hang"
			      : rc > 128          ? "signal"
						  : "bad result");
	}
}

static void
expect_check_error(const char *what)
{
	pxs_check_report r;
	int rc = pxs_check(F.s, &r);
	ck_assert_msg(rc == -EPROTO && r.errors >= 1,
		      "%s: pxs_check found nothing (%d)", what, rc);
}

/* ---- E1: slot payload offset and size ------------------------------------ */

START_TEST(e1_slot_offsets)
{
	fix_setup();
	const uint64_t size = F.len, heap = F.s->g.heap_off;
	const uint64_t off5 = F.off[DAMAGED], off6 = F.off[DAMAGED + 1];
	const uint64_t sz5 = F.sizes[DAMAGED];
	const struct {
		const char *what;
		uint64_t off, size;
	} cases[] = {
		{"past the end", size + 4096, sz5},
		{"at the end", size, 16},
		{"into the header", 16, sz5},
		{"into the process table", F.s->g.procs_off + 64, 64},
		{"into the slot table", F.s->g.table_off + 16, 64},
		{"just below the heap", heap - 16, 64},
		{"misaligned", off5 + 8, 16},
		{"inside its payload", off5 + 32, 16},
		{"off = size - 8, size 16", size - 8, 16},
		{"off = size - 16, size 16", size - 16, 16},
		{"off = 2^63", 1ull << 63, sz5},
		{"off = UINT64_MAX", UINT64_MAX, 1},
		{"size = 2^63", off5, 1ull << 63},
		{"size = UINT64_MAX", off5, UINT64_MAX},
		{"size = block + 1", off5, ((sz5 + 31) & ~15ull) + 1},
		{"off 0 with a size", 0, 100},
		{"off + size wraps", off5, UINT64_MAX - off5 + 16},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct pxs_seg_slot *sl = raw_slot(F.idx[DAMAGED]);
		uint64_t o_off = sl->off, o_size = sl->size;
		sl->off = cases[i].off;
		sl->size = cases[i].size;
		expect_check_error(cases[i].what);
		run_victims(cases[i].what, DAMAGED, U_VERIFY);
		/* the mutating victim may have evicted it: restore a sane
		 * fixture for the next case */
		fix_teardown();
		fix_setup();
		(void)o_off;
		(void)o_size;
	}
	/* Two slots naming one block (evict both: never a double free). */
	raw_slot(F.idx[DAMAGED])->off = off6;
	raw_slot(F.idx[DAMAGED])->size = F.sizes[DAMAGED + 1];
	expect_check_error("two slots, one block");
	ck_assert_int_eq(pxs_evict(F.s, F.keys[DAMAGED]), 0);
	int rc = pxs_evict(F.s, F.keys[DAMAGED + 1]);
	ck_assert_msg(rc == -EPROTO, "second evict of one block: %d", rc);
	pxs_check_report r;
	pxs_check(F.s, &r);
	run_victims("two slots, one block", -1, U_DOC);
	fix_teardown();
}
END_TEST

/* A slot pointing at a forged block header: inside the heap, so a view
 * may come back, but it stays inside the heap; check notices. */
START_TEST(e1_forged_block_header)
{
	fix_setup();
	uint64_t base = F.off[DAMAGED + 2] + 64; /* inside another payload */
	uint64_t forged[2] = {1024, 0};
	((uint32_t *)&forged[1])[1] = pxs__heap_check_word(base);
	memcpy(F.raw + base, forged, 16);
	raw_slot(F.idx[DAMAGED])->off = base + 16;
	raw_slot(F.idx[DAMAGED])->size = 1000;
	expect_check_error("forged header");
	/* A forged header claiming the rest of the heap. */
	forged[0] = (F.len - base) & ~15ull;
	memcpy(F.raw + base, forged, 16);
	raw_slot(F.idx[DAMAGED])->size = forged[0] - 16;
	run_victims("forged header", DAMAGED, U_DOC);
	fix_teardown();
}
END_TEST

/* ---- E2: slot state, key, pin records, waiters, owner -------------------- */

enum field { F_STATE, F_KEY, F_PINS, F_WAITERS, F_OWNER, F_GEN, F_SEQ };

static void
poke(uint32_t idx, enum field f, uint64_t v)
{
	struct pxs_seg_slot *sl = raw_slot(idx);
	switch (f) {
	case F_STATE:
		sl->state = (uint32_t)v;
		break;
	case F_KEY:
		sl->key_hi = v;
		sl->key_lo = v;
		break;
	case F_PINS: /* the fixture handle's pin record for the slot */
		__atomic_store_n(pxs__my_pin(F.s, idx), (uint16_t)v,
				 __ATOMIC_RELAXED);
		break;
	case F_WAITERS:
		sl->waiters = (uint32_t)v;
		break;
	case F_OWNER:
		sl->owner = (uint32_t)v;
		break;
	case F_GEN:
		sl->gen = (uint32_t)v;
		break;
	case F_SEQ:
		sl->seq = (uint32_t)v;
		break;
	}
}

START_TEST(e2_slot_fields)
{
	static const struct {
		const char *what;
		enum field f;
		uint64_t v;
		bool detect;        /* pxs_check must see it */
		enum undamaged und; /* what the other keys get */
		int key;            /* which key (index, or NK+n futures) */
	} cases[] = {
		{"state 0xdeadbeef", F_STATE, 0xdeadbeef, true, U_VERIFY,
		 DAMAGED},
		{"state NSTATES", F_STATE, PXS_SLOT_NSTATES, true, U_VERIFY,
		 DAMAGED},
		{"state EMPTY", F_STATE, PXS_SLOT_EMPTY, false, U_DOC, DAMAGED},
		{"state TOMB", F_STATE, PXS_SLOT_TOMB, false, U_VERIFY,
		 DAMAGED},
		{"state PENDING", F_STATE, PXS_SLOT_PENDING, true, U_VERIFY,
		 DAMAGED},
		{"state RESERVED", F_STATE, PXS_SLOT_RESERVED, false, U_VERIFY,
		 DAMAGED},
		{"state ABANDONED", F_STATE, PXS_SLOT_ABANDONED, true, U_VERIFY,
		 DAMAGED},
		{"state EVICTED", F_STATE, PXS_SLOT_EVICTED, false, U_VERIFY,
		 DAMAGED},
		{"key 0", F_KEY, 0, false, U_VERIFY, DAMAGED},
		{"key all ones", F_KEY, UINT64_MAX, false, U_VERIFY, DAMAGED},
		/* Pins are the processes' own records: a bogus count
		 * looks like real pins (the value is kept until the
		 * process leaves), so pxs_check cannot tell. */
		{"pin record 65535", F_PINS, UINT16_MAX, false, U_VERIFY,
		 DAMAGED},
		{"pin record 0 while pinned", F_PINS, 0, false, U_VERIFY, 0},
		{"waiters UINT32_MAX", F_WAITERS, UINT32_MAX, false, U_VERIFY,
		 DAMAGED},
		{"owner garbage (object)", F_OWNER, 0xa5a5a5a5, false, U_VERIFY,
		 DAMAGED},
		{"owner garbage (pending)", F_OWNER, 0xa5a5a5a5, false,
		 U_VERIFY, NK},
		{"owner garbage (reserved)", F_OWNER, 0xa5a5a5a5, false,
		 U_VERIFY, NK + 1},
		{"owner 0 (reserved)", F_OWNER, 0, false, U_VERIFY, NK + 1},
		{"gen changed under a pin", F_GEN, 12345, false, U_VERIFY, 0},
		{"seq garbage", F_SEQ, UINT32_MAX, false, U_VERIFY, DAMAGED},
		{"pin record 1 on a pending future", F_PINS, 1, false,
		 U_VERIFY, NK},
		{"state READY on a pending future", F_STATE, PXS_SLOT_READY,
		 false, U_VERIFY, NK},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fix_setup();
		pxs_key fut[3] = {F.fpend, F.fres, F.fset};
		uint32_t idx;
		if (cases[i].key < NK)
			idx = F.idx[cases[i].key];
		else
			ck_assert_int_eq(pxs__table_find(F.s,
							 fut[cases[i].key - NK],
							 &idx),
					 0);
		poke(idx, cases[i].f, cases[i].v);
		if (cases[i].detect)
			expect_check_error(cases[i].what);
		run_victims(cases[i].what,
			    cases[i].key < NK ? cases[i].key : -1,
			    cases[i].und);
		/* Evict and release paths on the damaged slot, here. */
		if (cases[i].key < NK) {
			int rc = pxs_evict(F.s, F.keys[cases[i].key]);
			ck_assert(hx_documented(HX_EVICT, rc));
		}
		int rc = pxs_release(F.s, &F.pin);
		ck_assert(hx_documented(HX_RELEASE, rc));
		fix_teardown();
	}
}
END_TEST

/* ---- E2b: the process table ---------------------------------------------- */

static struct pxs_seg_proc *
raw_proc(uint32_t i)
{
	return (struct pxs_seg_proc *)(F.raw + F.s->g.procs_off) + i;
}

/* A forged "dead process" whose pin records are someone else's bytes, or
 * lie outside the heap; garbage states and generations. The reaper runs on
 * them at the victim's attach: documented codes, no crash, no hang. */
START_TEST(e2_process_table)
{
	const struct {
		const char *what;
		uint32_t state, gen;
		int pins; /* -1: 0; -2: out of the heap; -3: the live fixture's
			   * own pin records; k >= 0: key k's payload */
	} cases[] = {
		{"dead entry, pins in a live object", PXS_PROC_LIVE, 7, 3},
		{"dead entry, pins outside the heap", PXS_PROC_LIVE, 7, -2},
		{"dead entry, the live process's pins", PXS_PROC_LIVE, 7, -3},
		{"dead entry, no pins", PXS_PROC_LIVE, 0, -1},
		{"state garbage", 0xdeadbeef, 7, -1},
		{"state garbage, pins in a live object", 0xa5a5a5a5, 1, 3},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fix_setup();
		uint32_t me = pxs__token_idx(F.s->token);
		uint32_t victim_entry = me + 5; /* a free entry */
		struct pxs_seg_proc *p = raw_proc(victim_entry);
		uint64_t pins = 0;
		if (cases[i].pins >= 0)
			pins = F.off[cases[i].pins];
		else if (cases[i].pins == -2)
			pins = F.len + 4096;
		else if (cases[i].pins == -3)
			pins = raw_proc(me)->pins_off;
		p->gen = cases[i].gen;
		p->pid = 1;
		p->pins_off = pins;
		p->state = cases[i].state;
		run_victims(cases[i].what, -1, U_DOC);
		pxs_check_report r;
		int rc = pxs_check(F.s, &r);
		ck_assert(hx_documented(HX_CHECK, rc));
		rc = pxs_release(F.s, &F.pin);
		ck_assert(hx_documented(HX_RELEASE, rc));
		fix_teardown();
	}
}
END_TEST

/* ---- E3: the allocator --------------------------------------------------- */

/* The offset of the heap control block's fields in the raw mapping. */
#define HEAP(f)                                                                \
	(offsetof(struct pxs_seg_hdr, heap) + offsetof(struct pxs_seg_heap, f))

/* After a put that succeeded on a damaged heap: does its block overlap
 * the block of any other slot that holds one? (The allocator must never
 * hand out memory that a live object uses.) */
static bool
overlaps_live(pxs_store *s, pxs_key k)
{
	uint32_t idx;
	if (pxs__table_find(s, k, &idx) < 0)
		return false;
	uint64_t a = s->slots[idx].off, an = s->slots[idx].size;
	if (!a || !an)
		return false;
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		const struct pxs_seg_slot *sl = &s->slots[i];
		uint32_t st = sl->state;
		uint64_t b = sl->off, bn = sl->size;
		if (i == idx || !b || !bn ||
		    (st != PXS_SLOT_READY && st != PXS_SLOT_EVICTED &&
		     st != PXS_SLOT_RESERVED))
			continue;
		if (a < b + bn && b < a + an)
			return true;
	}
	return false;
}

#define FLAG (1ull << 62) /* in e3 cases: v holds flag bits to set */

START_TEST(e3_allocator)
{
	static const struct {
		const char *what;
		size_t where; /* offset in the header, or 0 = block header */
		int key;      /* block header of this key when where == 0 */
		uint64_t v;
		bool detect;
	} cases[] = {
		{"top past the end", HEAP(top), 0, 64 * MiB, true},
		{"top misaligned", HEAP(top), 0, 0x100008, true},
		{"top below start", HEAP(top), 0, 16, true},
		{"committed 0", HEAP(committed), 0, 0, true},
		{"committed UINT64_MAX", HEAP(committed), 0, UINT64_MAX, true},
		{"used UINT64_MAX", HEAP(used), 0, UINT64_MAX, true},
		{"nalloc 0", HEAP(nalloc), 0, 0, true},
		{"fl bitmap all ones", HEAP(fl_bitmap_lo), 0, UINT64_MAX, true},
		{"sl bitmaps all ones", HEAP(sl_bitmap), 0, UINT64_MAX, true},
		{"list head -> allocated block", HEAP(heads), DAMAGED, 0, true},
		{"list head -> garbage", HEAP(heads[1][2]), 0, 0x12345670,
		 true},
		{"list head -> 16", HEAP(heads[0][3]), 0, 16, true},
		{"block size 0", 0, DAMAGED, 0, true},
		{"block size 16", 0, DAMAGED, 16, true},
		{"block size > heap", 0, DAMAGED, 64 * MiB, true},
		{"block size 2^63", 0, DAMAGED, 1ull << 63, true},
		{"block marked free", 0, DAMAGED, 1 | FLAG, true},
		{"block prev-free flag", 0, DAMAGED, 2 | FLAG, true},
		{"block prev-min flag", 0, DAMAGED, 6 | FLAG, true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fix_setup();
		uint64_t hdr = F.off[cases[i].key] - 16;
		if (cases[i].where == HEAP(heads) && cases[i].key) {
			/* head of the 48-byte class -> a live block */
			*raw_u64(HEAP(heads[0][3])) = hdr;
			raw_hdr()->heap.sl_bitmap[0] |= 1u << 3;
			raw_hdr()->heap.fl_bitmap_lo |= 1;
		} else if (cases[i].where == HEAP(sl_bitmap)) {
			memset(F.raw + HEAP(sl_bitmap), 0xff,
			       sizeof raw_hdr()->heap.sl_bitmap);
		} else if (cases[i].where) {
			*raw_u64(cases[i].where) = cases[i].v;
		} else if (cases[i].v & FLAG) { /* set flag bits */
			*raw_u64(hdr) |= cases[i].v & 15;
		} else {
			*raw_u64(hdr) = cases[i].v | (*raw_u64(hdr) & 15);
		}
		if (cases[i].detect)
			expect_check_error(cases[i].what);
		run_victims(cases[i].what, cases[i].where ? -1 : DAMAGED,
			    cases[i].where ? U_DOC : U_VERIFY);
		/* Allocations on the damaged heap: documented codes and never
		 * a block overlapping a live object. */
		for (int n = 0; n < 50; n++) {
			pxs_key k;
			unsigned char b[3000];
			memset(b, n, sizeof b);
			int rc = pxs_put(F.s, b, (size_t)(n * 61 % 3000), &k);
			ck_assert_msg(hx_documented(HX_PUT, rc), "%s: put %d",
				      cases[i].what, rc);
			if (rc == 0)
				ck_assert_msg(!overlaps_live(F.s, k),
					      "%s: put got live memory",
					      cases[i].what);
		}
		fix_teardown();
	}
}
END_TEST

/* Free-list cycles: two free blocks of one class pointing at each other,
 * and a block listed as its own successor. Allocation walks stay bounded
 * (they only ever look at list heads and neighbours). */
START_TEST(e3_free_list_cycle)
{
	fix_setup();
	/* keys 3 and 7 have the same size class only by luck; make two
	 * free blocks of one class: put two 1000-byte objects between live
	 * ones, evict both. */
	pxs_key a = pxs_key_from_name("a", 1), b = pxs_key_from_name("b", 1),
		sep = pxs_key_from_name("sep", 3),
		tail = pxs_key_from_name("t", 1);
	static unsigned char buf[1000];
	ck_assert_int_eq(pxs_put_at(F.s, a, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_put_at(F.s, sep, buf, 16), 0);
	ck_assert_int_eq(pxs_put_at(F.s, b, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_put_at(F.s, tail, buf, 16), 0);
	uint32_t ia, ib;
	ck_assert_int_eq(pxs__table_find(F.s, a, &ia), 0);
	ck_assert_int_eq(pxs__table_find(F.s, b, &ib), 0);
	uint64_t ha = F.s->slots[ia].off - 16, hb = F.s->slots[ib].off - 16;
	ck_assert_int_eq(pxs_evict(F.s, a), 0);
	ck_assert_int_eq(pxs_evict(F.s, b), 0);
	/* b heads the list, a follows: make a -> b -> a. */
	*raw_u64(ha + 16) = hb; /* a.next = b */
	*raw_u64(hb + 24) = ha; /* b.prev = a */
	expect_check_error("a -> b -> a");
	run_victims("free-list cycle", -1, U_VERIFY);
	for (int n = 0; n < 20; n++) {
		pxs_key k;
		int rc = pxs_put(F.s, buf, 1000, &k);
		ck_assert(hx_documented(HX_PUT, rc));
		if (rc == 0)
			ck_assert(!overlaps_live(F.s, k));
	}
	fix_teardown();
	/* A block that is its own successor. */
	fix_setup();
	ck_assert_int_eq(pxs_put_at(F.s, a, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_put_at(F.s, sep, buf, 16), 0);
	ck_assert_int_eq(pxs__table_find(F.s, a, &ia), 0);
	ha = F.s->slots[ia].off - 16;
	ck_assert_int_eq(pxs_evict(F.s, a), 0);
	*raw_u64(ha + 16) = ha;
	expect_check_error("a -> a");
	run_victims("self loop", -1, U_VERIFY);
	fix_teardown();
}
END_TEST

/* ---- E4: a table full of strangers --------------------------------------- */

START_TEST(e4_all_slots_occupied)
{
	fix_setup();
	uint32_t n = F.s->g.nslots;
	uint64_t rng = 99;
	for (uint32_t i = 0; i < n; i++) {
		struct pxs_seg_slot *sl = raw_slot(i);
		if (sl->state >= PXS_SLOT_READY)
			continue;
		sl->key_hi = hx_rand(&rng);
		sl->key_lo = hx_rand(&rng);
		sl->off = 0;
		sl->size = 0;
		sl->state = PXS_SLOT_READY;
	}
	double t0 = pxs_test_ms();
	pxs_view v;
	pxs_key k;
	ck_assert_int_eq(pxs_get(F.s, pxs_key_from_name("x", 1), &v), -ENOENT);
	ck_assert_int_eq(pxs_exists(F.s, pxs_key_from_name("x", 1)), 0);
	ck_assert_int_eq(pxs_put(F.s, "x", 1, &k), -ENOSPC);
	ck_assert_int_eq(pxs_future_new(F.s, &k), -ENOSPC);
	ck_assert_int_eq(pxs_get(F.s, F.keys[3], &v), 0); /* still found */
	ck_assert_int_eq(pxs_test_verify(v.data, v.size, F.keys[3]), 0);
	ck_assert_int_eq(pxs_release(F.s, &v), 0);
	printf("E4: lookups and inserts on a full table: %.2f ms\n",
	       pxs_test_ms() - t0);
	expect_check_error("all slots occupied");
	run_victims("all slots occupied", -1, U_VERIFY);
	fix_teardown();
}
END_TEST

/* ---- E5: header geometry rewritten after attach -------------------------- */

static int e5_go[2], e5_ready[2];

static int
e5_victim(void *arg)
{
	pxs_store *s;
	char c;
	hx_deadline(60);
	if (pxs_open(F.name, NULL, &s) != 0)
		return 2;
	if (write(e5_ready[1], "r", 1) != 1 || read(e5_go[0], &c, 1) != 1)
		return 3;
	/* The header now lies about the geometry: this handle uses its
	 * own validated copy. Full use must keep working. */
	for (int i = 0; i < NK; i++) {
		pxs_view v;
		if (pxs_get(s, F.keys[i], &v) != 0 ||
		    pxs_test_verify(v.data, v.size, F.keys[i]) ||
		    pxs_release(s, &v) != 0)
			return 4;
	}
	unsigned char buf[5000];
	for (int i = 0; i < 50; i++) {
		pxs_key k = {77, (uint64_t)i + 1};
		pxs_view v;
		pxs_test_fill(buf, sizeof buf, k, (uint64_t)i);
		if (pxs_put_at(s, k, buf, sizeof buf) != 0 ||
		    pxs_get(s, k, &v) != 0 ||
		    pxs_test_verify(v.data, v.size, k) ||
		    pxs_release(s, &v) != 0 || pxs_evict(s, k) != 0)
			return 5;
	}
	pxs_close(s);
	return 0;
}

START_TEST(e5_geometry_rewritten_after_attach)
{
	const struct {
		size_t off;
		uint64_t v;
	} lies[] = {
		{offsetof(struct pxs_seg_hdr, size), 1ull << 40},
		{offsetof(struct pxs_seg_hdr, nslots), 1u << 20},
		{offsetof(struct pxs_seg_hdr, capacity), 1u << 20},
		{offsetof(struct pxs_seg_hdr, table_off), 4096},
		{offsetof(struct pxs_seg_hdr, heap_off), 4096},
		{offsetof(struct pxs_seg_hdr, heap_end), 1ull << 40},
		{offsetof(struct pxs_seg_hdr, procs_off), 1ull << 40},
		{HEAP(start), 16},
		{HEAP(end), 1ull << 40},
	};
	for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
		fix_setup();
		ck_assert_int_eq(pipe(e5_go), 0);
		ck_assert_int_eq(pipe(e5_ready), 0);
		pid_t p = pxs_test_spawn(e5_victim, NULL);
		char c;
		ck_assert_int_eq(read(e5_ready[0], &c, 1), 1);
		uint64_t saved;
		memcpy(&saved, F.raw + lies[i].off, 8);
		bool narrow =
			lies[i].off == offsetof(struct pxs_seg_hdr, nslots) ||
			lies[i].off == offsetof(struct pxs_seg_hdr, capacity);
		if (narrow)
			*(uint32_t *)(F.raw + lies[i].off) =
				(uint32_t)lies[i].v;
		else
			*raw_u64(lies[i].off) = lies[i].v;
		ck_assert_int_eq(write(e5_go[1], "g", 1), 1);
		ck_assert_msg(pxs_test_reap(p, 60) == 0, "lie %zu", i);
		/* A new attacher is refused (or, for the heap control
		 * block's copy of the geometry, not misled). */
		pxs_store *t;
		int rc = pxs_open(F.name, NULL, &t);
		if (lies[i].off < offsetof(struct pxs_seg_hdr, heap))
			ck_assert_int_eq(rc, -EPROTO);
		else if (rc == 0)
			pxs_close(t);
		memcpy(F.raw + lies[i].off, &saved, 8);
		for (int j = 0; j < 2; j++) {
			close(e5_go[j]);
			close(e5_ready[j]);
		}
		fix_teardown();
	}
}
END_TEST

/* ---- E6: a racing corruptor (double fetch) ------------------------------- */

static int
e6_corruptor(void *arg)
{
	/* Flip DAMAGED's (off, size) between valid and invalid pairs, and
	 * its state between READY and garbage, as fast as possible. */
	struct pxs_seg_slot *sl = raw_slot(F.idx[DAMAGED]);
	const uint64_t off5 = F.off[DAMAGED], off6 = F.off[DAMAGED + 1];
	const uint64_t pairs[][2] = {
		{off5, F.sizes[DAMAGED]}, {off6, F.sizes[DAMAGED + 1]},
		{off5, 1ull << 40},       {F.len - 8, 16},
		{1ull << 63, 8},          {off5, F.sizes[DAMAGED] + 4096},
	};
	hx_deadline(120);
	for (unsigned long n = 0;; n++) {
		const uint64_t *p = pairs[n % 6];
		__atomic_store_n(&sl->off, p[0], __ATOMIC_RELAXED);
		__atomic_store_n(&sl->size, p[1], __ATOMIC_RELAXED);
		if (n % 7 == 0)
			__atomic_store_n(&sl->state,
					 n % 14 ? 0xdeadbeefu : PXS_SLOT_READY,
					 __ATOMIC_RELAXED);
		else
			__atomic_store_n(&sl->state, PXS_SLOT_READY,
					 __ATOMIC_RELAXED);
	}
	return 0;
}

START_TEST(e6_racing_corruptor)
{
	fix_setup();
	pid_t c = pxs_test_spawn(e6_corruptor, NULL);
	pxs_store *s;
	ck_assert_int_eq(pxs_open(F.name, NULL, &s), 0);
	unsigned long ok = 0, proto = 0, other = 0, verified = 0;
	/* payload capacities, from the block headers */
	const uint64_t cap5 = (*raw_u64(F.off[DAMAGED] - 16) & ~15ull) - 16;
	const uint64_t cap6 = (*raw_u64(F.off[DAMAGED + 1] - 16) & ~15ull) - 16;
	for (int i = 0; i < 100000; i++) {
		pxs_view v;
		int rc = i % 2 ? pxs_get(s, F.keys[DAMAGED], &v)
			       : pxs_future_wait(s, F.keys[DAMAGED], 0, &v);
		ck_assert_msg(hx_documented(i % 2 ? HX_GET : HX_FWAIT, rc),
			      "iteration %d: %d", i, rc);
		if (rc == 0) {
			ok++;
			ck_assert(hx_view_inside(s, v.data, v.size));
			/* Never more than the block it points into. */
			const unsigned char *d = v.data;
			uint64_t off = (uint64_t)(d - s->base);
			ck_assert_msg(
				(off == F.off[DAMAGED] && v.size <= cap5) ||
					(off == F.off[DAMAGED + 1] &&
					 v.size <= cap6),
				"view at %llu size %zu",
				(unsigned long long)off, v.size);
			if (off == F.off[DAMAGED] &&
			    v.size == F.sizes[DAMAGED] &&
			    pxs_test_verify(v.data, v.size, F.keys[DAMAGED]) ==
				    0)
				verified++;
			/* Release needs a valid state: while the corruptor
			 * shows garbage it is -EPROTO or -EINVAL: retry, for
			 * up to 10 s (the corruptor may be descheduled). */
			int r = -EPROTO;
			double until = pxs_test_ms() + 10000;
			while ((r == -EPROTO || r == -EINVAL) &&
			       pxs_test_ms() < until) {
				r = pxs_release(s, &v);
				if (r == -EPROTO || r == -EINVAL)
					sched_yield();
			}
			ck_assert_int_eq(r, 0);
		} else if (rc == -EPROTO) {
			proto++;
		} else {
			other++;
		}
	}
	kill(c, SIGKILL);
	pxs_test_reap(c, 10);
	printf("E6: 100000 get/wait against a racing corruptor: %lu views "
	       "(%lu verified), %lu -EPROTO, %lu other documented\n",
	       ok, verified, proto, other);
	pxs_close(s);
	fix_teardown();
}
END_TEST

/* ---- E7: lock words (documented limitation, best effort) ----------------- */

static int
e7_victim(void *arg)
{
	pxs_store *s;
	pxs_view v;
	hx_deadline(30);
	if (pxs_open(F.name, NULL, &s) != 0)
		return 2;
	/* A timed wait on the slot with the scribbled lock returns. */
	double t0 = pxs_test_ms();
	int rc = pxs_future_wait(s, F.keys[DAMAGED], 300, &v);
	double ms = pxs_test_ms() - t0;
	printf("E7: wait(300 ms) on a slot whose lock is garbage: %d (%s) "
	       "after %.0f ms\n",
	       rc, pxs_strerror(rc), ms);
	fflush(stdout);
	if (rc == 0)
		pxs_release(s, &v);
	/* Other slots are unaffected. */
	for (int i = 0; i < NK; i++) {
		if (i == DAMAGED)
			continue;
		if (pxs_get(s, F.keys[i], &v) != 0 ||
		    pxs_test_verify(v.data, v.size, F.keys[i]) ||
		    pxs_release(s, &v) != 0)
			return 3;
	}
	return ms < 5000 ? 0 : 4;
}

START_TEST(e7_lock_words)
{
	const unsigned char fills[] = {0xa5, 0xff, 0x00};
	for (size_t i = 0; i < sizeof fills / sizeof *fills; i++) {
		fix_setup();
		memset(&raw_slot(F.idx[DAMAGED])->lock, fills[i],
		       sizeof(pthread_mutex_t));
		pid_t p = pxs_test_spawn(e7_victim, NULL);
		int rc = pxs_test_reap(p, 60);
		ck_assert_msg(rc == 0, "fill %#x: victim %d", fills[i], rc);
		/* restore a working lock for teardown */
		pxs__mutex_init(&raw_slot(F.idx[DAMAGED])->lock);
		fix_teardown();
	}
}
END_TEST

/* ---- E8: random bit flips in metadata ----------------------------------- */

static bool
in_lock(uint64_t off)
{
	const struct pxs_geom *g = &F.s->g;
	size_t ml = sizeof(pthread_mutex_t);
	static const size_t hl[] = {offsetof(struct pxs_seg_hdr, table_lock),
				    offsetof(struct pxs_seg_hdr, heap_lock),
				    offsetof(struct pxs_seg_hdr, proc_lock)};
	for (int i = 0; i < 3; i++)
		if (off >= hl[i] && off < hl[i] + ml)
			return true;
	size_t sl = offsetof(struct pxs_seg_slot, lock),
	       rel = (off - g->table_off) % sizeof(struct pxs_seg_slot);
	if (off >= g->table_off && off < g->heap_off)
		return rel >= sl && rel < sl + ml;
	return false;
}

START_TEST(e8_random_bit_flips)
{
	unsigned seeds = 150;
	const char *env = getenv("PXS_E8_SEEDS");
	if (env)
		seeds = (unsigned)atoi(env);
	for (unsigned seed = 1; seed <= seeds; seed++) {
		fix_setup();
		uint64_t rng = seed * 0x9e3779b97f4a7c15ull;
		/* The validated geometry fields would only make attach refuse:
		 * flip bits in what attach does not validate. */
		const uint64_t hdr_lo =
			offsetof(struct pxs_seg_hdr, created_ns);
		int flips = 1 + (int)(hx_rand(&rng) % 16);
		for (int f = 0; f < flips; f++) {
			uint64_t off;
			do {
				switch (hx_rand(&rng) % 4) {
				case 0: /* header past the geometry */
					off = hdr_lo +
					      hx_rand(&rng) %
						      (sizeof(struct
							      pxs_seg_hdr) -
						       hdr_lo);
					break;
				case 1: /* process table */
					off = F.s->g.procs_off +
					      hx_rand(&rng) %
						      (F.s->g.table_off -
						       F.s->g.procs_off);
					break;
				case 2: /* slot table */
					off = F.s->g.table_off +
					      hx_rand(&rng) %
						      (F.s->g.heap_off -
						       F.s->g.table_off);
					break;
				default: /* a block header */
					off = F.off[hx_rand(&rng) % NK] - 16 +
					      hx_rand(&rng) % 16;
				}
			} while (in_lock(off));
			F.raw[off] ^=
				(unsigned char)(1u << (hx_rand(&rng) % 8));
		}
		struct victim_args a = {
			.damaged = -1, .und = U_DOC, .mutate = seed % 2};
		pid_t p = pxs_test_spawn(victim, &a);
		int rc = pxs_test_reap(p, 90);
		ck_assert_msg(rc == 0, "seed %u (%d flips): victim %d", seed,
			      flips, rc);
		pxs_check_report r;
		rc = pxs_check(F.s, &r);
		ck_assert(hx_documented(HX_CHECK, rc));
		fix_teardown();
	}
	printf("E8: %u seeds of random bit flips, no crash or hang\n", seeds);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hostile-corrupt");
	TCase *tc = tcase_create("corrupt");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, e1_slot_offsets);
	tcase_add_test(tc, e1_forged_block_header);
	tcase_add_test(tc, e2_slot_fields);
	tcase_add_test(tc, e2_process_table);
	tcase_add_test(tc, e3_allocator);
	tcase_add_test(tc, e3_free_list_cycle);
	tcase_add_test(tc, e4_all_slots_occupied);
	tcase_add_test(tc, e5_geometry_rewritten_after_attach);
	tcase_add_test(tc, e6_racing_corruptor);
	tcase_add_test(tc, e7_lock_words);
	tcase_add_test(tc, e8_random_bit_flips);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
