/* test_table.c - the slot table on its own: insertion, lookup, tombstones,
 * the sweep, a full table and the insertion gate, through the internal
 * pxs__ calls of slot.c and table.c (no put, get or future call).
 *
 * Keys are made with hi = 0, so that a key's home slot is lo & mask and a
 * test can choose where its keys collide. Payloads are empty (off 0), so
 * that no block is involved: the heap is block.c's business.
 */
#include "internal.h"
#include "pxs_test.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAP 8u /* capacity: nslots is 16 */

struct table {
	pxs_store *s;
	char name[64];
};

static struct table
table_new(void)
{
	struct table t;
	t.s = pxs_test_store(t.name, (size_t)4 << 20, CAP);
	ck_assert_uint_eq(t.s->g.nslots, 2 * CAP);
	return t;
}

/* The j-th key (j >= 1) whose home is slot h. */
static pxs_key
key_at(const struct table *t, uint32_t h, uint32_t j)
{
	return (pxs_key){.hi = 0, .lo = h + (uint64_t)j * t->s->g.nslots};
}

static uint32_t
state(const struct table *t, uint32_t idx)
{
	return __atomic_load_n(&t->s->slots[idx].state, __ATOMIC_ACQUIRE);
}

static uint32_t
live(const struct table *t)
{
	return __atomic_load_n(&t->s->hdr->tables[0].live, __ATOMIC_ACQUIRE);
}

/* Insert k READY with an empty payload: its slot index. */
static uint32_t
insert(const struct table *t, pxs_key k)
{
	uint32_t idx = UINT32_MAX, stale;
	ck_assert_int_eq(pxs__table_insert(t->s, k, PXS_SLOT_READY, 0, 0, 0,
					   &idx, &stale),
			 0);
	ck_assert_uint_eq(stale, UINT32_MAX);
	ck_assert_uint_lt(idx, t->s->g.nslots);
	return idx;
}

/* Insert n keys that share home h (key_at(h, 1..n)) into k[]: they take
 * the slots h, h+1, ... */
static void
insert_run(const struct table *t, uint32_t h, pxs_key *k, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
		k[j] = key_at(t, h, j + 1);
		ck_assert_uint_eq(insert(t, k[j]), (h + j) & t->s->mask);
	}
}

/* Free k's slot as every freer does: lock, tombstone, unlock, reclaim. */
static void
free_key(const struct table *t, pxs_key k)
{
	uint32_t idx;
	ck_assert_int_eq(pxs__lock_key(t->s, k, NULL, &idx), 0);
	ck_assert_uint_eq(pxs__slot_tombstone(t->s, idx), 0);
	ck_assert_uint_eq(state(t, idx), PXS_SLOT_TOMB);
	ck_assert_int_eq(pxs__slot_unlock_reclaim(t->s, idx, false, true, 0),
			 0);
}

/* k is found, at slot idx. */
static void
assert_at(const struct table *t, pxs_key k, uint32_t idx)
{
	uint32_t got = UINT32_MAX;
	ck_assert_int_eq(pxs__table_find(t->s, k, &got), 0);
	ck_assert_uint_eq(got, idx);
}

static void
assert_absent(const struct table *t, pxs_key k)
{
	uint32_t got;
	ck_assert_int_eq(pxs__table_find(t->s, k, &got), -ENOENT);
	ck_assert_int_eq(pxs__lock_key(t->s, k, NULL, &got), -ENOENT);
}

START_TEST(insert_then_find)
{
	struct table t = table_new();
	pxs_key k = key_at(&t, 5, 1);
	assert_absent(&t, k);
	uint32_t idx = insert(&t, k);
	ck_assert_uint_eq(idx, pxs__home(t.s, k));
	assert_at(&t, k, idx);
	ck_assert_uint_eq(live(&t), 1);
	const struct pxs_seg_slot *sl = &t.s->slots[idx];
	ck_assert_uint_eq(sl->state, PXS_SLOT_READY);
	ck_assert(sl->key_hi == k.hi && sl->key_lo == k.lo);
	ck_assert_uint_eq(sl->owner, 0);
	/* The same key again: -EEXIST, and its reservation given back. */
	uint32_t other = UINT32_MAX, stale;
	ck_assert_int_eq(pxs__table_insert(t.s, k, PXS_SLOT_READY, 0, 0, 0,
					   &other, &stale),
			 -EEXIST);
	ck_assert_uint_eq(other, UINT32_MAX);
	ck_assert_uint_eq(live(&t), 1);
	/* Locked lookup: the slot lock is held (a second try is -EBUSY). */
	ck_assert_int_eq(pxs__lock_key(t.s, k, NULL, &other), 0);
	ck_assert_uint_eq(other, idx);
	ck_assert_int_eq(pxs__slot_trylock(t.s, idx), -EBUSY);
	pxs__slot_unlock(t.s, idx);
	ck_assert_int_eq(pxs__slot_trylock(t.s, idx), 0);
	pxs__slot_unlock(t.s, idx);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(collisions_probe_linearly_and_wrap)
{
	struct table t = table_new();
	uint32_t h = 3, last = t.s->g.nslots - 1;
	pxs_key run[3];
	insert_run(&t, h, run, 3);
	/* A key whose home is taken by another's collision goes further. */
	ck_assert_uint_eq(insert(&t, key_at(&t, h + 1, 1)), h + 3);
	/* At the end of the table the probe wraps to slot 0. */
	ck_assert_uint_eq(insert(&t, key_at(&t, last, 1)), last);
	ck_assert_uint_eq(insert(&t, key_at(&t, last, 2)), 0);
	for (uint32_t j = 0; j < 3; j++)
		assert_at(&t, run[j], h + j);
	assert_at(&t, key_at(&t, h + 1, 1), h + 3);
	assert_at(&t, key_at(&t, last, 2), 0);
	ck_assert_uint_eq(live(&t), 6);
	/* A colliding key that is not there: the probe stops at EMPTY. */
	assert_absent(&t, key_at(&t, h, 9));
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(tombstone_keeps_later_keys_findable)
{
	struct table t = table_new();
	uint32_t h = 7;
	pxs_key run[3], b, c;
	insert_run(&t, h, run, 3);
	b = run[1];
	c = run[2];
	free_key(&t, b);
	/* Not swept: the slot after it holds c, which lies beyond it. */
	ck_assert_uint_eq(state(&t, h + 1), PXS_SLOT_TOMB);
	assert_absent(&t, b);
	assert_at(&t, c, h + 2);
	ck_assert_uint_eq(live(&t), 2);
	/* The first free slot of the probe is the tombstone: reused. */
	pxs_key d = key_at(&t, h, 4);
	ck_assert_uint_eq(insert(&t, d), h + 1);
	assert_at(&t, d, h + 1);
	assert_at(&t, c, h + 2);
	/* A key that is absent is not taken for one in a tombstone. */
	free_key(&t, d);
	assert_absent(&t, d);
	assert_absent(&t, b);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(sweep_empties_trailing_tombstones)
{
	struct table t = table_new();
	uint32_t h = 9;
	pxs_key run[3], a, b, c;
	insert_run(&t, h, run, 3);
	a = run[0];
	b = run[1];
	c = run[2];
	/* The last of the run, followed by EMPTY: it becomes EMPTY. */
	free_key(&t, c);
	ck_assert_uint_eq(state(&t, h + 2), PXS_SLOT_EMPTY);
	/* The first: a tombstone, since b lies beyond it. */
	free_key(&t, a);
	ck_assert_uint_eq(state(&t, h), PXS_SLOT_TOMB);
	assert_at(&t, b, h + 1);
	/* The one between: the whole run, b's slot and a's, becomes EMPTY. */
	free_key(&t, b);
	ck_assert_uint_eq(state(&t, h + 1), PXS_SLOT_EMPTY);
	ck_assert_uint_eq(state(&t, h), PXS_SLOT_EMPTY);
	ck_assert_uint_eq(live(&t), 0);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(sweep_gives_up_on_a_busy_lock)
{
	struct table t = table_new();
	uint32_t h = 2;
	pxs_key a = key_at(&t, h, 1);
	insert(&t, a);
	/* The EMPTY slot after it is locked: the sweep never waits. */
	ck_assert_int_eq(pxs__slot_lock(t.s, h + 1, NULL), 0);
	free_key(&t, a);
	ck_assert_uint_eq(state(&t, h), PXS_SLOT_TOMB);
	pxs__slot_unlock(t.s, h + 1);
	/* A later sweep finishes the job. */
	pxs__table_sweep(t.s, h);
	ck_assert_uint_eq(state(&t, h), PXS_SLOT_EMPTY);
	/* A sweep of a slot that is not a tombstone changes nothing. */
	pxs_key b = key_at(&t, h, 2);
	ck_assert_uint_eq(insert(&t, b), h);
	pxs__table_sweep(t.s, h);
	ck_assert_uint_eq(state(&t, h), PXS_SLOT_READY);
	assert_at(&t, b, h);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(full_table_refuses_and_changes_nothing)
{
	struct table t = table_new();
	pxs_key k[CAP];
	uint32_t at[CAP];
	for (uint32_t i = 0; i < CAP; i++) {
		k[i] = key_at(&t, (i * 5) & t.s->mask, 1 + i);
		at[i] = insert(&t, k[i]);
	}
	ck_assert_uint_eq(live(&t), CAP);
	uint32_t idx = UINT32_MAX, stale;
	pxs_key more = key_at(&t, 0, 99);
	ck_assert_int_eq(pxs__table_insert(t.s, more, PXS_SLOT_READY, 0, 0, 0,
					   &idx, &stale),
			 -ENOSPC);
	ck_assert_uint_eq(idx, UINT32_MAX);
	ck_assert_uint_eq(live(&t), CAP);
	ck_assert_int_eq(t.s->hdr->live_suspect, 0);
	for (uint32_t i = 0; i < CAP; i++)
		assert_at(&t, k[i], at[i]);
	assert_absent(&t, more);
	/* One freed: room for one more. */
	free_key(&t, k[3]);
	insert(&t, more);
	ck_assert_uint_eq(live(&t), CAP);
	/* A count left high (a crash mid-insert) is recounted before a
	 * refusal: the table is really full, -ENOSPC, and the count exact. */
	__atomic_store_n(&t.s->hdr->live_suspect, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pxs__table_insert(t.s, k[3], PXS_SLOT_READY, 0, 0, 0,
					   &idx, &stale),
			 -ENOSPC);
	ck_assert_uint_eq(live(&t), CAP);
	ck_assert_int_eq(t.s->hdr->live_suspect, 0);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(count_left_high_is_recounted)
{
	struct table t = table_new();
	insert(&t, key_at(&t, 1, 1));
	/* As if a process died between a free and its count: one too high. */
	__atomic_store_n(&t.s->hdr->tables[0].live, CAP, __ATOMIC_RELEASE);
	/* Refusing would be wrong: the insertion recounts first. */
	insert(&t, key_at(&t, 1, 2));
	ck_assert_uint_eq(live(&t), 2);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(expired_slot_is_absent_and_reported_stale)
{
	struct table t = table_new();
	uint32_t h = 4;
	pxs_key a = key_at(&t, h, 1);
	uint32_t idx = insert(&t, a);
	__atomic_store_n(&t.s->slots[idx].expires_ns, 1, __ATOMIC_RELEASE);
	assert_absent(&t, a);
	/* The same key goes beside it; the insertion names it stale. */
	uint32_t again = UINT32_MAX, stale = 0;
	ck_assert_int_eq(pxs__table_insert(t.s, a, PXS_SLOT_READY, 0, 0, 0,
					   &again, &stale),
			 0);
	ck_assert_uint_eq(stale, idx);
	ck_assert_uint_eq(again, h + 1);
	assert_at(&t, a, h + 1);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(find_evicted_by_owner)
{
	struct table t = table_new();
	pxs_key a = key_at(&t, 6, 1);
	uint32_t idx = insert(&t, a), got;
	ck_assert_int_eq(pxs__slot_lock(t.s, idx, NULL), 0);
	t.s->slots[idx].owner = t.s->token;
	pxs__slot_set_state(&t.s->slots[idx], PXS_SLOT_EVICTED);
	pxs__slot_unlock(t.s, idx);
	/* Not live: a lookup misses it; the owner's search finds it. */
	assert_absent(&t, a);
	ck_assert_int_eq(pxs__table_find_evicted(t.s, a, t.s->token, &got), 0);
	ck_assert_uint_eq(got, idx);
	ck_assert_int_eq(pxs__table_find_evicted(t.s, a, t.s->token + 1, &got),
			 -ENOENT);
	pxs_test_done(t.s, t.name);
}
END_TEST

START_TEST(abandoned_key_is_replaced_in_place)
{
	struct table t = table_new();
	pxs_key a = key_at(&t, 10, 1), b = key_at(&t, 10, 2);
	uint32_t idx = insert(&t, a), got = UINT32_MAX, stale;
	/* A live key is not replaced. */
	ck_assert_int_eq(pxs__table_replace(t.s, a, PXS_SLOT_PENDING, 0, 0,
					    t.s->token, &got),
			 -EEXIST);
	ck_assert_int_eq(pxs__table_replace(t.s, b, PXS_SLOT_PENDING, 0, 0,
					    t.s->token, &got),
			 -ENOENT);
	ck_assert_uint_eq(got, UINT32_MAX);
	/* A pending future whose producer died: abandoned, then taken over. */
	ck_assert_int_eq(pxs__table_insert(t.s, b, PXS_SLOT_PENDING, 0, 0,
					   t.s->token, &got, &stale),
			 0);
	ck_assert_int_eq(pxs__slot_lock(t.s, got, NULL), 0);
	pxs__slot_abandon(t.s, got);
	pxs__slot_unlock(t.s, got);
	ck_assert_uint_eq(state(&t, got), PXS_SLOT_ABANDONED);
	uint32_t was = got, live0 = live(&t), gen = t.s->slots[was].gen;
	ck_assert_int_eq(pxs__table_replace(t.s, b, PXS_SLOT_PENDING, 0, 0,
					    t.s->token, &got),
			 0);
	ck_assert_uint_eq(got, was);
	ck_assert_uint_eq(state(&t, got), PXS_SLOT_PENDING);
	ck_assert_uint_eq(t.s->slots[got].owner, t.s->token);
	ck_assert_uint_eq(t.s->slots[got].gen, gen);
	ck_assert_uint_eq(live(&t), live0);
	assert_at(&t, a, idx);
	pxs_test_done(t.s, t.name);
}
END_TEST

/* ---- the gate ------------------------------------------------------------ */

struct inserter {
	const struct table *t;
	pxs_key k;
	pid_t tid;
	int rc;
	uint32_t idx;
};

static void *
insert_thread(void *arg)
{
	struct inserter *in = arg;
	uint32_t stale;
	__atomic_store_n(&in->tid, (pid_t)syscall(SYS_gettid),
			 __ATOMIC_RELEASE);
	in->rc = pxs__table_insert(in->t->s, in->k, PXS_SLOT_READY, 0, 0, 0,
				   &in->idx, &stale);
	return NULL;
}

START_TEST(closed_gate_holds_insertions_back)
{
	struct table t = table_new();
	ck_assert_int_eq(pxs__table_lock(t.s, NULL), 0);
	ck_assert(pxs__gate_close(t.s, 1000));
	ck_assert_uint_eq(t.s->hdr->insert_gate, 1);
	struct inserter in = {.t = &t, .k = key_at(&t, 12, 1), .rc = 1};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, insert_thread, &in), 0);
	pid_t tid;
	while (!(tid = __atomic_load_n(&in.tid, __ATOMIC_ACQUIRE)))
		sched_yield();
	/* It waits on the table lock, counted as inserting no more. */
	ck_assert_int_eq(pxs_test_wait_blocked(tid, 10000), 0);
	assert_absent(&t, in.k);
	ck_assert_uint_eq(live(&t), 0);
	ck_assert_uint_eq(
		t.s->procs[pxs__token_idx(t.s->token)].inserting, 0);
	pxs__gate_open(t.s);
	pxs__unlock(&t.s->hdr->table_lock);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(in.rc, 0);
	assert_at(&t, in.k, in.idx);
	pxs_test_done(t.s, t.name);
}
END_TEST

/* A child that dies counted as inserting, as if killed mid-insertion. */
static int
die_inserting(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	pxs_options o = {0};
	if (pxs_open(name, &o, &s) < 0)
		return 1;
	__atomic_store_n(&s->procs[pxs__token_idx(s->token)].inserting, 1,
			 __ATOMIC_SEQ_CST);
	return 0; /* _exit() without closing: the entry stays, dead */
}

START_TEST(gate_ignores_dead_inserters)
{
	struct table t = table_new();
	pid_t pid = pxs_test_spawn(die_inserting, t.name);
	ck_assert_int_eq(pxs_test_reap(pid, 30), 0);
	ck_assert_int_eq(pxs__table_lock(t.s, NULL), 0);
	/* Its count stays up, but it is dead: the gate closes at once. */
	ck_assert(pxs__gate_close(t.s, 1000));
	pxs__gate_open(t.s);
	pxs__unlock(&t.s->hdr->table_lock);
	/* And insertion is not held back by it. */
	insert(&t, key_at(&t, 0, 1));
	pxs_test_done(t.s, t.name);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("table");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, insert_then_find);
	tcase_add_test(tc, collisions_probe_linearly_and_wrap);
	tcase_add_test(tc, tombstone_keeps_later_keys_findable);
	tcase_add_test(tc, sweep_empties_trailing_tombstones);
	tcase_add_test(tc, sweep_gives_up_on_a_busy_lock);
	tcase_add_test(tc, full_table_refuses_and_changes_nothing);
	tcase_add_test(tc, count_left_high_is_recounted);
	tcase_add_test(tc, expired_slot_is_absent_and_reported_stale);
	tcase_add_test(tc, find_evicted_by_owner);
	tcase_add_test(tc, abandoned_key_is_replaced_in_place);
	tcase_add_test(tc, closed_gate_holds_insertions_back);
	tcase_add_test(tc, gate_ignores_dead_inserters);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
