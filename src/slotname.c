/* slotname.c - name records, and the name blocks of futures.
 *
 * Owns: the name record (the bytes that keep the name a key was derived
 * from: its writer, its checked reader) and the name block a slot refers
 * to through `name_off`: its allocation, its check and its freeing.
 *
 * THE RECORD. A name is kept as
 *
 *     | u16 n (native order) | n name bytes |
 *
 * after a value in the value's block (keynames.c, pxs_put_named), or alone
 * in a block of its own for a future, whose value's block is made later by
 * whoever sets it and need not know the name. A record is believed only if
 * it lies inside the heap, its length is 1 to PXS_KEY_NAME_MAX, it holds no
 * NUL and the name hashes to the slot's key (XXH3-128: a false match is a
 * 2^-128 event). So a scribbled offset or length, a block freed and reused
 * since, or bytes read while they changed (a reader without the lock) read
 * as no name, and never make a read leave the heap.
 *
 * THE NAME BLOCK. pxs_future_new_named() allocates it (tagged with its
 * process, as every block between allocation and publication: if the
 * process dies before a slot refers to it, its reaper frees it), inserts
 * the future, then, under the slot lock, stores its offset in `name_off`.
 * From then on the slot refers to it in every state, through the set or
 * commit (the name follows the value: pxs_key_name() finds it the same),
 * until the slot is freed: pxs__slot_name_drop(), called by the tombstone,
 * tags it with the freeing process, clears `name_off` and frees it, so a
 * freer that dies half-way leaves either a referenced block or one its own
 * reaper frees. A `name_off` that does not hold a record of the slot's key
 * (a damaged segment) is cleared without freeing: it may be anybody's
 * block, and freeing it would free a value.
 */
#include "internal.h"

#include <string.h>

size_t
pxs__name_record_write(unsigned char *at, const char *name, size_t n)
{
	uint16_t n16 = (uint16_t)n;
	memcpy(at, &n16, sizeof n16);
	memcpy(at + sizeof n16, name, n);
	return sizeof n16 + n;
}

int
pxs__name_record_read(const struct pxs_store *s, uint64_t off, uint64_t skip,
		      pxs_key key, char out[PXS_KEY_NAME_MAX])
{
	uint64_t end = s->g.heap_end;
	uint16_t n;

	if (off < s->g.heap_off || off >= end || skip > end - off ||
	    end - off - skip < sizeof n)
		return 0;
	const unsigned char *at = s->base + off + skip;
	memcpy(&n, at, sizeof n);
	if (n == 0 || n > PXS_KEY_NAME_MAX ||
	    end - off - skip - sizeof n < n)
		return 0;
	memcpy(out, at + sizeof n, n);
	/* Judged on the copy: a reader without the lock may have copied a
	 * record that changed meanwhile, and the hash rejects a mix of two. */
	if (memchr(out, '\0', n) ||
	    !pxs_key_equal(pxs_key_from_name(out, n), key))
		return 0;
	return n;
}

int
pxs__name_block_new(struct pxs_store *s, const char *name, size_t n,
		    uint64_t *off)
{
	int rc = pxs__block_alloc(s, sizeof(uint16_t) + n, off);
	if (rc == 0)
		pxs__name_record_write(s->base + *off, name, n);
	return rc;
}

uint64_t
pxs__slot_name_block(struct pxs_store *s, const struct pxs_seg_slot *sl,
		     pxs_key key, char out[PXS_KEY_NAME_MAX], int *len)
{
	char tmp[PXS_KEY_NAME_MAX];
	uint64_t off = __atomic_load_n(&sl->name_off, __ATOMIC_ACQUIRE), cap;
	uint32_t owner;
	int n = 0;

	if (off && pxs__heap_block(&s->heap, off, &cap, &owner) == 0)
		n = pxs__name_record_read(s, off, 0, key, out ? out : tmp);
	if (n && (uint64_t)n + sizeof(uint16_t) > cap)
		n = 0; /* a record running past its block is not this block's */
	if (len)
		*len = n;
	return n ? off : 0;
}

void
pxs__slot_name_drop(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	pxs_key key = {.hi = sl->key_hi, .lo = sl->key_lo};

	if (!__atomic_load_n(&sl->name_off, __ATOMIC_RELAXED))
		return;
	uint64_t off = pxs__slot_name_block(s, sl, key, NULL, NULL);
	if (off) /* if we die before freeing it, our reaper frees it */
		pxs__block_tag(s, off);
	__atomic_store_n(&sl->name_off, 0, __ATOMIC_RELEASE);
	if (off)
		pxs__block_free(s, off);
}
