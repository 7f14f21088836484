/* fuzz.h - what every fuzz target in tests/fuzz/ provides and may use.
 *
 * A target is one LLVMFuzzerTestOneInput(). Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary (tests/fuzz/run.sh); linked
 * with replay.c instead it is the regression runner that `meson test`
 * runs over tests/fuzz/regress/<target>/ and the seed corpus, in any
 * build. A target reports a finding by printing why and calling abort().
 */
#ifndef PXS_FUZZ_H
#define PXS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxyshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/** A finding: print and abort (libFuzzer saves the input). */
#define FZ_FAIL(...)                                                           \
	do {                                                                   \
		fprintf(stderr, "FUZZ FINDING: " __VA_ARGS__);                 \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

#define FZ_CHECK(cond, ...)                                                    \
	do {                                                                   \
		if (!(cond))                                                   \
			FZ_FAIL(__VA_ARGS__);                                  \
	} while (0)

struct pxs_store;
/** One round of hostile.c's victim over @p keys (mutating, a failing
 *  pxs_check allowed), seeded with @p seed: returns only if every result
 *  was documented. */
void fz_victim(struct pxs_store *s, const pxs_key *keys, size_t nk,
	       uint64_t seed);
/** The call script of fuzz_attach and fuzz_corrupt (fuzz_script.c):
 *  returns only if every result was documented. */
void fz_script(struct pxs_store *s, const uint8_t *seed, size_t n);

/** Reads input bytes one by one; 0 once they run out. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

/** The stream half of fuzz_ops (fuzz_ops_stream.c): make its store (named
 *  after @p base), run one stream op of op byte @p b and its argument
 *  bytes from @p in, and at the end empty, close and check its store. */
void fzs_begin(const char *base);
void fzs_op(uint8_t b, struct fz_in *in);
void fzs_end(void);
/** fuzz_ops: with every handle closed, the store @p name must be empty
 *  (heap back to the pin arrays) and pass pxs_check(); then unlinked. */
void fz_ops_empty(const char *name);

static inline uint8_t
fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t
fz_u16(struct fz_in *in)
{
	uint16_t lo = fz_u8(in);
	return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t
fz_u32(struct fz_in *in)
{
	uint32_t lo = fz_u16(in);
	return lo | (uint32_t)fz_u16(in) << 16;
}

#endif
