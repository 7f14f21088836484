/* layout.h - the on-segment structures, and nothing else.
 *
 * A segment is one shm object mapped at a different address in every
 * process, so it holds offsets from its first byte, never pointers. Its
 * geometry is a pure function of (size, capacity): pxs__geometry() computes
 * it, the creator writes it, and every attacher recomputes it and refuses a
 * header that disagrees. After attach the geometry is used from the
 * process-local copy only, never re-read from the segment.
 *
 *   0                procs_off        table_off              heap_off        size
 *   +----------------+----------------+----------------------+---------------+
 *   | pxs_seg_hdr    | pxs_seg_proc   | pxs_seg_slot         | payload heap  |
 *   | (locks, heap   | x PXS_MAX_PROCS| x nslots (table 0,   | (alloc.c;     |
 *   |  control,      | (liveness)     |  power of two)       |  tables 1, 2, |
 *   |  tables)       |                |                      |  ... too)     |
 *   +----------------+----------------+----------------------+---------------+
 *
 * The slot table is a chain of tables (chain.c): table 0 above, tables 1,
 * 2, ... blocks of the heap, published in the header's `tables` one by one
 * (`ntables`). Only the geometry of table 0 is a function of (size,
 * capacity); every later descriptor is checked when a handle first uses it.
 *
 * Any change to these structs must bump PXS_LAYOUT_VERSION.
 */
#ifndef PXS_LAYOUT_H
#define PXS_LAYOUT_H

#include "alloc.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PXS_MAGIC 0x314d485358505850ull /**< "PXPXSHM1" little-endian */
#define PXS_LAYOUT_VERSION 6u
#define PXS_MAX_PROCS 1024u /**< attached processes at once */
#define PXS_PROC_BITS 10u   /**< log2(PXS_MAX_PROCS) */
#define PXS_PAGE 4096u
/** Tables in a chain (chain.c): table t has n0 << t slots, so 17 tables of
 *  a 1,024-slot table 0 hold more than PXS_MAX_CAPACITY keys. */
#define PXS_MAX_TABLES 17u
/** Slots of table 0 of a store whose table grows (capacity 0). */
#define PXS_TABLE0_SLOTS 1024u
#define PXS_BELLS 64u       /**< doorbells for absent keys (bell.c) */
#define PXS_PROC_WAITS 24u  /**< slots one process may sleep on at once, counted */
#define PXS_LINE __attribute__((aligned(64))) /**< a cache line of its own */
/** Liveness locks: process entry i holds an OFD write lock on this byte + i
 *  of the segment file for as long as it is attached (see procs.c). */
#define PXS_LIVENESS_LOCK_BASE ((off_t)1 << 40)

/** Slot states. The state word is the publication point: every other field
 *  of a slot is written before the state that makes it meaningful (release
 *  store) and read after it (acquire load). */
enum pxs_slot_state {
	/** Never used since the last sweep: ends probes. */
	PXS_SLOT_EMPTY = 0,
	/** Free, but probes continue past it. */
	PXS_SLOT_TOMB = 1,
	/** Holds a value (object or set future). */
	PXS_SLOT_READY = 2,
	/** Future without value. */
	PXS_SLOT_PENDING = 3,
	/** Future whose owner is writing its value. */
	PXS_SLOT_RESERVED = 4,
	/** Future whose owner died: terminal. */
	PXS_SLOT_ABANDONED = 5,
	/** Key gone; block kept for pins or a producer. */
	PXS_SLOT_EVICTED = 6,
	PXS_SLOT_NSTATES
};

/** Per-process counters (summed by pxs_stat). */
enum pxs_ctr {
	PXS_CTR_PUTS,
	PXS_CTR_GETS,
	PXS_CTR_EVICTIONS,
	PXS_CTR_WAITS,
	PXS_CTR_TIMEOUTS,
	PXS_CTR_RECOVERIES,
	PXS_CTR_N
};

/** One hash-table entry: an object or a future. 128 bytes, two cache lines:
 *  the first holds what lookups read (state and key) and what changes only
 *  when the slot does; the second the lock and what waiters use. Pins are
 *  not here: each process counts its own in its pin array (pins.c), so
 *  that readers of a value write no line they share (pins.c, PINS). */
struct pxs_seg_slot {
	/* -- read by lookups; written on insert, state change and free -- */
	/** enum pxs_slot_state; written under lock, release store. */
	uint32_t state;
	/** Bumped whenever the slot is freed: views and waiters check it. */
	uint32_t gen;
	/** The key (high, low), valid when state is not EMPTY/TOMB. */
	uint64_t key_hi;
	uint64_t key_lo;
	/** Payload offset in the heap, 0 when none. */
	uint64_t off;
	/** Payload bytes. */
	uint64_t size;
	/** CLOCK_REALTIME of creation, for tools. */
	uint64_t created_ns;
	/** Owner token of the producing process (futures), 0 = none. */
	uint32_t owner;
	uint32_t pad0_;
	/** CLOCK_MONOTONIC deadline after which the key is absent (expire.c),
	 *  0 = none; written under the lock, read by lock-free lookups. */
	uint64_t expires_ns;
	/* -- written by changes and waits -- */
	/** Robust, process-shared; guards every change (lookups and pins read
	 *  without it). */
	pthread_mutex_t lock PXS_LINE;
	/** Futex word: bumped (under lock) on every change waiters care
	 *  about. */
	uint32_t seq;
	/** Threads asleep on seq: the sum of the wait records (below) that
	 *  name this slot and its generation, plus the PXS_WAITERS_UNCOUNTED
	 *  bit once a waiter without a free record has slept here; changed
	 *  under the lock (waits.c). */
	uint32_t waiters;
	/** Heap offset of the slot's name block (slotname.c): the name a
	 *  future was created under, 0 = none; set under the lock after the
	 *  insertion, freed with the slot. A hint, checked before use. */
	uint64_t name_off;
} __attribute__((aligned(64)));

/** In a slot's `waiters`: some thread without a free wait record has
 *  slept on this occupant, uncounted; setters wake it all the same. The
 *  bit goes with the occupant (insertion zeroes the word). */
#define PXS_WAITERS_UNCOUNTED 0x80000000u
/** The counted waiters of a slot's `waiters` word. */
#define PXS_WAITERS_COUNT(w) ((w) & ~PXS_WAITERS_UNCOUNTED)

/** A process's record of its threads asleep on one slot (waits.c):
 *  written by that process under the slot's lock, read by recounts under
 *  the same lock. n == 0: the record is free. */
struct pxs_seg_wait {
	/** Slot index. */
	uint32_t slot;
	/** The slot's generation when they registered. */
	uint32_t gen;
	/** Its threads asleep there. */
	uint32_t n;
};

/** A doorbell: where waiters for an absent key sleep (bell.c). The key
 *  picks the bell; a creator of a key rings its bell only if `waiters` is
 *  non-zero, so a put costs one read of a line nobody writes until
 *  somebody waits. */
struct pxs_seg_bell {
	/** Robust; guards `waiters` and the processes' bell counts for this
	 *  bell. */
	pthread_mutex_t lock;
	/** Futex word: bumped when a key of this bell is created while
	 *  someone waits. */
	uint32_t seq;
	/** Sum of the processes' bell_waits[] here. */
	uint32_t waiters;
	/** Heap offset of the slot's name block (slotname.c): the name a
	 *  future was created under, 0 = none; set under the lock after the
	 *  insertion, freed with the slot. A hint, checked before use. */
	uint64_t name_off;
} __attribute__((aligned(64)));

enum pxs_proc_state { PXS_PROC_FREE = 0, PXS_PROC_LIVE = 1 };

/** One attached process (one pxs_store handle). 512 bytes. */
struct pxs_seg_proc {
	/** enum pxs_proc_state; changed under hdr->proc_lock. */
	uint32_t state;
	/** Bumped each time the entry is acquired; part of the owner token. */
	uint32_t gen;
	/** For display only: liveness is the lock, not the pid. */
	int32_t pid;
	uint32_t pad0_;
	/** CLOCK_REALTIME of attach. */
	uint64_t attach_ns;
	/** Heap offset of its pin directory, uint64_t[PXS_MAX_TABLES]: entry
	 *  t is the heap offset of its pin array for table t, uint16_t[n0 <<
	 *  t], the pins this process holds on each slot of that table (0 =
	 *  none yet); written by this process only, atomically (pins.c). */
	uint64_t pins_off;
	/** Counters, relaxed atomic adds by the owner. */
	uint64_t ctr[PXS_CTR_N];
	/** Its insertions under way (the insertion gate); atomic, changed by
	 *  the owner only. */
	uint32_t inserting;
	/** Its threads asleep on each bell; changed under that bell's lock. */
	uint16_t bell_waits[PXS_BELLS];
	/** The slots its threads sleep on (waits.c). */
	struct pxs_seg_wait waits[PXS_PROC_WAITS];
	uint8_t pad_[512 - 36 - 8 * PXS_CTR_N - 2 * PXS_BELLS -
		     12 * PXS_PROC_WAITS];
};

/** One table of the chain (chain.c). Written once by its grower, under the
 *  table lock with the insertion gate closed, before `ntables` publishes
 *  it; only `live` changes afterwards. */
struct pxs_seg_table {
	/** Segment offset of its first slot: table_off for table 0, a heap
	 *  block for the others. */
	uint64_t off;
	/** Its slots: n0 << t. */
	uint32_t nslots;
	/** Its occupied slots (not EMPTY/TOMB) plus insertions that reserved
	 *  one; atomic. */
	uint32_t live;
	/** Nonzero: the heap had no room for the next table when this one
	 *  reached its growth threshold, so it fills further (table.c). */
	uint32_t crowded;
	uint32_t pad_;
};

/** Segment header: geometry, global locks, heap control block. */
struct pxs_seg_hdr {
	/** PXS_MAGIC, written last by the creator. */
	uint64_t magic;
	/** PXS_LAYOUT_VERSION. */
	uint32_t version;
	/** pxs__layout_fingerprint(): ABI of this build. */
	uint32_t fingerprint;
	/** Total bytes. */
	uint64_t size;
	/** Max live slots as the creator asked; 0: the table grows. */
	uint32_t capacity;
	/** Slots of table 0: a power of two >= 2 * capacity, or
	 *  PXS_TABLE0_SLOTS. */
	uint32_t nslots;
	/** Geometry: offsets of the process table, slot table and heap. */
	uint64_t procs_off, table_off, heap_off, heap_end;
	/** CLOCK_REALTIME of creation. */
	uint64_t created_ns;
	int32_t creator_pid;
	/** Nonzero: unrepairable, every call -ENOTRECOVERABLE. */
	uint32_t poisoned;
	/** Nonzero: insertions wait for the table lock (the insertion gate);
	 *  set and cleared under it. */
	uint32_t insert_gate;
	/** 1 + the highest process entry ever acquired (grows under
	 *  proc_lock): pin scans stop there. */
	uint32_t procs_hi;
	/** Tables of the chain published (1..PXS_MAX_TABLES): written with a
	 *  release store under the table lock, after the new descriptor. */
	uint32_t ntables;
	/* Every call reads the line above; each lock below starts a line of
	 * its own, shared only with what it guards, so that taking one does
	 * not steal the others' lines, nor this one, from other CPUs. */
	/** Whole-table scans that must see no insertion: recounts and
	 *  pxs_check() (table.c, THE GATE). Insertions do not take it. */
	pthread_mutex_t table_lock PXS_LINE;
	/** A slot lock holder died: recount the tables' `live` under the
	 *  table lock. */
	uint32_t live_suspect;
	/** Heap offset of a table block a grower allocated and had not
	 *  published yet (0: none); under the table lock. */
	uint64_t growing_off;
	/** The owner token its grower tagged that block with. */
	uint32_t growing_token;
	/** The chain; the first `ntables` are valid. */
	struct pxs_seg_table tables[PXS_MAX_TABLES];
	/** Claiming and freeing process entries. */
	pthread_mutex_t proc_lock PXS_LINE;
	/** Counters of processes that left; atomic. */
	uint64_t ctr_gone[PXS_CTR_N];
	/** Guards everything in heap. */
	pthread_mutex_t heap_lock PXS_LINE;
	/** Allocator control block. */
	struct pxs_seg_heap heap;
	/** Where waiters for absent keys sleep (bell.c): read by every
	 *  insertion, written only while somebody waits. */
	struct pxs_seg_bell bells[PXS_BELLS] PXS_LINE;
};

_Static_assert(sizeof(struct pxs_seg_slot) == 128, "slot is two cache lines");
_Static_assert(sizeof(struct pxs_seg_proc) == 512, "proc entry size");
_Static_assert(offsetof(struct pxs_seg_slot, lock) == 64,
	       "a slot's first line holds what lookups read");
_Static_assert(offsetof(struct pxs_seg_hdr, magic) == 0, "magic first");
_Static_assert(offsetof(struct pxs_seg_slot, name_off) + sizeof(uint64_t) <= 128,
	       "the name offset fits the slot's second line");
_Static_assert((1u << PXS_PROC_BITS) == PXS_MAX_PROCS, "proc bits");

/** Geometry derived from (size, capacity): nslots is table 0's. */
struct pxs_geom {
	uint64_t size;
	uint32_t capacity, nslots;
	uint64_t procs_off, table_off, heap_off, heap_end;
};

/** A number that changes when any struct above changes size or alignment,
 *  or when pthread types differ (another libc or ABI): LMDB's LOCK_FORMAT. */
static inline uint32_t
pxs__layout_fingerprint(void)
{
	uint64_t f = PXS_LAYOUT_VERSION;
	f = f * 1000003u ^ sizeof(pthread_mutex_t);
	f = f * 1000003u ^ _Alignof(pthread_mutex_t);
	f = f * 1000003u ^ sizeof(struct pxs_seg_hdr);
	f = f * 1000003u ^ sizeof(struct pxs_seg_slot);
	f = f * 1000003u ^ sizeof(struct pxs_seg_proc);
	f = f * 1000003u ^ sizeof(struct pxs_seg_heap);
	f = f * 1000003u ^ offsetof(struct pxs_seg_slot, seq);
	f = f * 1000003u ^ offsetof(struct pxs_seg_slot, name_off);
	f = f * 1000003u ^ offsetof(struct pxs_seg_hdr, heap);
	f = f * 1000003u ^ offsetof(struct pxs_seg_hdr, bells);
	f = f * 1000003u ^ sizeof(struct pxs_seg_bell);
	f = f * 1000003u ^ sizeof(struct pxs_seg_table);
	f = f * 1000003u ^ PXS_MAX_TABLES;
	f = f * 1000003u ^ sizeof(void *);
	return (uint32_t)(f ^ (f >> 32));
}

#endif
