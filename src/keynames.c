/* keynames.c - the names that keys were derived from, kept with the values.
 *
 * Owns: pxs_put_named and pxs_key_name on a shared-memory store, and the
 * name record: the bytes a named put stores after its value.
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

/* The record after a value of @p size bytes at @p off: its name's length,
 * or 0 if there is none that fits the heap. */
static size_t
record_len(const struct pxs_store *s, uint64_t off, uint64_t size)
{
	uint64_t end = s->g.heap_end;
	uint16_t n;

	if (off < s->g.heap_off || off >= end || size > end - off ||
	    end - off - size < sizeof n)
		return 0;
	memcpy(&n, s->base + off + size, sizeof n);
	if (n == 0 || n > PXS_KEY_NAME_MAX || end - off - size - sizeof n < n)
		return 0;
	return n;
}

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
	size_t n = (size_t)len;
	uint16_t n16 = (uint16_t)n;
	memcpy(rec, &n16, sizeof n16);
	memcpy(rec + sizeof n16, name, n);
	int rc = pxs__shm_put_tail(s, key, data, size, rec, sizeof n16 + n);
	if (rc == 0 && key_out)
		*key_out = key;
	return rc;
}

/* The name kept with slot @p sl's value, if it is one of @p key, into
 * buf[len]: its length, 0 for none, -ENOSPC if it does not fit. */
static int
read_name(struct pxs_store *s, const struct pxs_seg_slot *sl, pxs_key key,
	  char *buf, size_t len)
{
	char tmp[PXS_KEY_NAME_MAX];
	uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_ACQUIRE),
		 size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	size_t n = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) ==
				   PXS_SLOT_READY &&
			   off ?
			   record_len(s, off, size) :
			   0;
	if (n > sizeof tmp)
		n = 0;
	if (n) {
		memcpy(tmp, (const char *)s->base + off + size + sizeof(uint16_t),
		       n);
		if (memchr(tmp, '\0', n) ||
		    !pxs_key_equal(pxs_key_from_name(tmp, n), key))
			n = 0; /* not a name of this key */
	}
	if (n && n >= len)
		return -ENOSPC;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return (int)n;
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
