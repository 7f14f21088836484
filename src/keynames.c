/* keynames.c - the names that keys were derived from, kept with the values
 * and the futures.
 *
 * Owns: pxs_put_named, pxs_future_new_named and pxs_key_name on a
 * shared-memory store. The record a name is kept in, and the name block of
 * a future, are slotname.c's.
 *
 * WHERE A NAME LIVES. A key made from a name (pxs_key_from_name()) is a
 * hash: the name cannot be had back from it. pxs_put_named() stores the
 * name in the value's own heap block, right after the value's bytes:
 *
 *     | value (slot.size bytes) | u16 n (native order) | n name bytes |
 *
 * The slot is unchanged (its size is still the value's, so views, pins and
 * the lock-free lookups see nothing new), the record is written before the
 * insertion publishes the block, and it is freed with the block. So a name
 * is never half there: a writer that dies before the insertion leaves an
 * unpublished block that the reaper frees, with its record.
 *
 * A future has no value block until somebody sets it, and the setter need
 * not know the name: pxs_future_new_named() gives the slot a name block of
 * its own (slotname.c), which stays through the set or commit and goes
 * with the slot. pxs_key_name() looks there first, then after the value.
 *
 * WHY A NAME NEEDS NO FLAG. Nothing in the slot says that a record
 * follows the value. pxs_key_name() reads whatever lies after the value and
 * accepts it only if it is a name whose key is the slot's key: a value put
 * without a name (its block's spare bytes hold anything), a record
 * scribbled over, or one read from a block reused since, hashes to another
 * key (XXH3-128: a false match is a 2^-128 event) and is reported as no
 * name. And a name that does hash to the key is that key's name, whoever
 * wrote it.
 */
#include "internal.h"

#include <string.h>

int
pxs__named_key(const char *name, pxs_key *key)
{
	size_t n = name ? strnlen(name, PXS_KEY_NAME_MAX + 1) : 0;

	if (n == 0 || n > PXS_KEY_NAME_MAX)
		return -EINVAL;
	*key = pxs_key_from_name(name, n);
	return (int)n;
}

int
pxs__shm_put_named(pxs_store *s, const char *name, const void *data,
		   size_t size, pxs_key *key_out)
{
	unsigned char rec[sizeof(uint16_t) + PXS_KEY_NAME_MAX];
	pxs_key key;
	int len = pxs__named_key(name, &key);

	if (len < 0)
		return len;
	size_t rl = pxs__name_record_write(rec, name, (size_t)len);
	int rc = pxs__shm_put_tail(s, key, data, size, rec, rl);
	if (rc == 0 && key_out)
		*key_out = key;
	return rc;
}

/* The name kept for slot @p sl, if it is one of @p key, into buf[len]:
 * its length, 0 for none, -ENOSPC if it does not fit. A future's name
 * block first, then the record after a value. */
static int
read_name(struct pxs_store *s, const struct pxs_seg_slot *sl, pxs_key key,
	  char *buf, size_t len)
{
	char tmp[PXS_KEY_NAME_MAX];
	int n;

	pxs__slot_name_block(s, sl, key, tmp, &n);
	if (n == 0) {
		uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_ACQUIRE),
			 size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) ==
			    PXS_SLOT_READY &&
		    off)
			n = pxs__name_record_read(s, off, size, key, tmp);
	}
	if (n && (size_t)n >= len)
		return -ENOSPC;
	memcpy(buf, tmp, (size_t)n);
	buf[n] = '\0';
	return n;
}

int
pxs__shm_key_name(pxs_store *s, pxs_key key, char *buf, size_t len)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;

	if (rc < 0)
		return rc;
	if (!buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (s->rdonly) {
		/* No locks on a read-only mapping: read, and believe what was
		 * read only if it hashes to the key (a torn or reused block
		 * cannot) and the slot kept its generation meanwhile. */
		if (pxs__table_find(s, key, &idx) < 0)
			return -ENOENT;
		const struct pxs_seg_slot *sl = pxs__slot(s, idx);
		uint32_t gen = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
		rc = read_name(s, sl, key, buf, len);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&sl->gen, __ATOMIC_RELAXED) != gen) {
			buf[0] = '\0';
			rc = 0;
		}
		return rc;
	}
	if ((rc = pxs__lock_key(s, key, NULL, &idx)) < 0)
		return rc;
	/* Under the slot lock the value's block cannot be freed or reused. */
	rc = read_name(s, pxs__slot(s, idx), key, buf, len);
	pxs__slot_unlock(s, idx);
	return rc;
}

/*
 * A NAMED FUTURE. The name block is allocated first (as a put's block,
 * reaping and retrying once if the heap is full), then the future is
 * inserted as pxs_future_new_at() inserts it, then the slot is given the
 * block under its lock. The two steps cannot be one without passing the
 * name through the insertion, so for a moment the future is there without
 * its name; a process that dies in that moment leaves a future whose owner
 * is dead (abandoned, as any) and an unreferenced block of its own, which
 * its reaper frees. A key taken over from an abandoned future whose slot
 * has a name block already keeps that one (it is this key's name too), and
 * the new block is freed; so is a block whose future was evicted, or set
 * and evicted, before it could be given one.
 */
int
pxs__shm_future_new_named(pxs_store *s, const char *name, pxs_key *key_out)
{
	pxs_key key;
	uint64_t nb;
	uint32_t idx;
	int len = pxs__named_key(name, &key);
	int rc = pxs__enter_args(s, true);

	if (rc < 0)
		return rc;
	if (len < 0)
		return len;
	PXS_REAP_RETRY(s, rc, pxs__name_block_new(s, name, (size_t)len, &nb));
	if (rc < 0)
		return rc;
	if ((rc = pxs__shm_future_new_at(s, key)) < 0) {
		pxs__block_free(s, nb);
		return rc;
	}
	PXS_FAILPOINT(FP_NAMED_FUTURE_INSERTED);
	if (pxs__lock_key(s, key, NULL, &idx) == 0) {
		struct pxs_seg_slot *sl = pxs__slot(s, idx);
		if (!pxs__slot_name_block(s, sl, key, NULL, NULL)) {
			__atomic_store_n(&sl->name_off, nb, __ATOMIC_RELEASE);
			nb = 0;
		}
		pxs__slot_unlock(s, idx);
	}
	if (nb)
		pxs__block_free(s, nb);
	if (key_out)
		*key_out = key;
	return 0;
}
