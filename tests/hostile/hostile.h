/* hostile.h - helpers shared by the hostile-input tests and the fuzzers.
 *
 * Owns: the table of errors that include/proxyshm.h documents for each
 * function, a "did anything change?" snapshot of a whole store, a victim
 * script that calls every API function and checks every result, raw
 * segment images, and lock re-initialisation for images written by hand.
 * No Check here (the fuzzers link it): functions report with a return
 * value and a message, never with ck_assert.
 */
#ifndef PXS_HOSTILE_H
#define PXS_HOSTILE_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HX_MiB ((size_t)1 << 20)

/** The public functions, for hx_documented(). */
enum hx_fn {
	HX_OPEN,
	HX_CLOSE,
	HX_UNLINK,
	HX_PUT,
	HX_PUT_AT,
	HX_GET,
	HX_RELEASE,
	HX_EXISTS,
	HX_EVICT,
	HX_FNEW,
	HX_FNEW_AT,
	HX_FSET,
	HX_FRESERVE,
	HX_FCOMMIT,
	HX_FCLAIM,
	HX_FWAIT,
	HX_FWAIT_ANY,
	HX_FDONE,
	HX_STAT,
	HX_LIST,
	HX_PROC_LIST,
	HX_CHECK,
	HX_REAP,
	HX_KEY_FORMAT,
	HX_KEY_PARSE,
	HX_PROXY_NEW,
	HX_PROXY_FORMAT,
	HX_PROXY_PARSE,
	HX_PROXY_RESOLVE,
	HX_SNEW,
	HX_SAPPEND,
	HX_SRESERVE,
	HX_SCOMMIT,
	HX_SREAD,
	HX_SEND,
	HX_SSTAT,
	HX_SJOIN,
	HX_SLEAVE,
	HX_STAKE,
	HX_SACK,
	HX_SDELETE,
	HX_NFN
};

/** Known library bugs that hx_victim() tolerates unless this is set (the
 * hostile-known-bugs tests set it): see hx_known_bug(). */
extern bool hx_strict;

/** Non-NULL (the bug's id) if @p rc from @p fn is a known, reported
 *  library bug rather than a new finding. */
const char *hx_known_bug(enum hx_fn fn, int rc);

/** hx_documented(), or (unless hx_strict) a known bug. */
bool hx_acceptable(enum hx_fn fn, int rc);

/** Name of @p fn ("pxs_get"). */
const char *hx_fn_name(enum hx_fn fn);

/** 1 if @p rc is a result that the header documents for @p fn: 0, the
 *  documented non-negative results, or a listed negative errno. */
bool hx_documented(enum hx_fn fn, int rc);
/** Does @p fn's own @return list name errno value @p err (positive)? */
bool hx_doc_lists(enum hx_fn fn, int err);

/** Write a fresh segment name with @p tag, unique to this process. */
void hx_name(char *buf, size_t len, const char *tag);

/** "/dev/shm/<name without '/'>" */
void hx_path(char *buf, size_t len, const char *name);

/** Create shm object @p name (O_EXCL, mode 0600), size it to @p size and
 *  write @p n bytes of @p bytes at offset 0. 0 or -errno. */
int hx_shm_write(const char *name, const void *bytes, size_t n, size_t size);

/** XXH3-64 of the whole file behind shm object @p name; 0 if missing. */
uint64_t hx_shm_hash(const char *name);

/** Read all of shm object @p name into a malloc'd buffer (*len bytes). */
unsigned char *hx_shm_read(const char *name, size_t *len);

/** Give every lock of an image in @p base (@p len bytes) a freshly
 *  initialised robust mutex, if its header describes a geometry that
 *  attach would accept. Scribbling over lock words is a documented
 *  limitation, so images written by hand (fuzzers) start with sane locks. */
void hx_reinit_locks(unsigned char *base, size_t len);

/** A snapshot of everything a failed call must not change. */
struct hx_snap {
	pxs_stats st;
	uint32_t nslots;
	struct hx_slot {
		uint32_t state, owner, gen;
		uint64_t key_hi, key_lo, off, size, hash;
	} * slots;
};

/** Take a snapshot (slots read directly, payload bytes hashed). */
int hx_snap_take(pxs_store *s, struct hx_snap *out);
/** 0 if equal, else -1 with a description in @p why. */
int hx_snap_cmp(const struct hx_snap *a, const struct hx_snap *b, char *why,
		size_t len);
void hx_snap_free(struct hx_snap *sn);

/** 1 if [data, data + size) lies inside the heap of @p s. */
bool hx_view_inside(const pxs_store *s, const void *data, size_t size);

/** Options for hx_victim(). */
struct hx_victim_opts {
	const pxs_key *keys; /**< keys to try (plus a few fresh ones) */
	size_t nkeys;
	uint64_t seed;   /**< drives sizes and the order of calls */
	unsigned rounds; /**< passes over the keys */
	bool mutate;     /**< also evict, claim, set, reserve and commit */
	bool check_allowed_to_fail; /**< pxs_check may report errors */
};

/**
 * Call every API function on @p s with the given keys and check that every
 * result is documented for its function and that every view lies inside
 * the heap. Never blocks (waits use timeout 0). Returns 0, or -1 with the
 * first violation in @p why.
 */
int hx_victim(pxs_store *s, const struct hx_victim_opts *o, char *why,
	      size_t len);

/** In a forked child: die of SIGALRM after @p secs (a hang detector).
 *  Check's own SIGALRM handler, inherited through fork, would kill the
 *  whole process group instead: this restores the default first. */
void hx_deadline(unsigned secs);

/* ---- the reference grammar of keys and proxy strings ------------------ */
/* What the parsers must accept, exactly, written from the header's words
 * and nothing of the library: the fuzzer (fuzz_proxy.c, fuzz_key.c) and
 * the bad-argument tests (test_badargs.c) judge the parsers by it. */

/** A character of a store name: [A-Za-z0-9._-]. */
bool hx_ref_name_char(char c);
/** A key's hex form: exactly 32 lowercase hex digits, not all zero. */
bool hx_ref_key(const char *s, size_t n);
/** A segment store name in @p n bytes: "/" NAME (below). */
bool hx_ref_store_name(const char *s, size_t n);
/** NAME "/" KEY in @p n bytes: NAME 1..PXS_NAME_MAX of name characters,
 *  not "." or "..", nor reserved (".pxs-..."). */
bool hx_ref_name_key(const char *s, size_t n);
/** "pxs://" NAME "/" KEY in @p n bytes. */
bool hx_ref_pxs_proxy(const char *s, size_t n);
/** "redis://" HOST ":" PORT "/" NAME "/" KEY, in the string @p s (HOST:
 *  1..253 of [A-Za-z0-9.-], or "[" 2..45 of [0-9A-Fa-f:.] "]"; PORT
 *  1..65535 without leading zeros). *@p store_len: the length of its store
 *  part, up to the last '/'. */
bool hx_ref_redis_proxy(const char *s, size_t *store_len);

/** xorshift64* step. */
static inline uint64_t
hx_rand(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

#endif
