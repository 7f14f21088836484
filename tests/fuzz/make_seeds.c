/* make_seeds.c - write the seed corpora of tests/fuzz/corpus/.
 *
 * Usage: fuzz-make-seeds DIR   (DIR/<target>/ must exist or is made).
 * The segment images come from this build of the library, so run it again
 * whenever src/layout.h changes (a layout change turns the old images into
 * "another layout version" seeds, still valid but less deep).
 */
#include "hostile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;

static void
put_file(const char *target, const char *name, const void *b, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static void
put_str(const char *target, const char *name, const char *s)
{
	put_file(target, name, s, strlen(s));
}

/* A store's bytes up to the end of what is in use (the heap's top). */
static void
image_seed(const char *name, size_t size, uint32_t cap, int objects,
	   int futures, bool whole_prefix)
{
	char seg[64];
	pxs_store *s;
	pxs_options o = {
		.flags = PXS_CREATE | PXS_EXCL, .size = size, .capacity = cap};
	pxs_view v;
	hx_name(seg, sizeof seg, "seed");
	if (pxs_open(seg, &o, &s) != 0)
		exit(1);
	static unsigned char buf[3000];
	for (int i = 0; i < objects; i++) {
		memset(buf, i, sizeof buf);
		pxs_put_at(s, (pxs_key){0x100, (uint64_t)i + 1}, buf,
			   (size_t)(i * 97 % 3000));
	}
	for (int i = 0; i < futures; i++) {
		void *w;
		pxs_future_new_at(s, (pxs_key){0x200, (uint64_t)i + 1});
		if (i % 3 == 1)
			pxs_future_set(s, (pxs_key){0x200, (uint64_t)i + 1},
				       "v", 1);
		if (i % 3 == 2)
			pxs_future_reserve(s, (pxs_key){0x200, (uint64_t)i + 1},
					   64, &w);
	}
	if (objects)
		pxs_get(s, (pxs_key){0x100, 1}, &v);
	size_t n = whole_prefix ? (size_t)s->hdr->heap.top
				: (size_t)s->g.procs_off;
	put_file("attach", name, s->base, n);
	pxs_close(s);
	pxs_unlink(seg);
}

/* Header-only variants of a fresh 1 MiB image (PLAN C4, C5). */
static void
header_variants(void)
{
	char seg[64];
	pxs_store *s;
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL, .size = HX_MiB};
	hx_name(seg, sizeof seg, "seedh");
	if (pxs_open(seg, &o, &s) != 0)
		exit(1);
	size_t n = s->g.procs_off;
	unsigned char *h = malloc(n);
	struct pxs_seg_hdr *hh = (struct pxs_seg_hdr *)h;
	memcpy(h, s->base, n);
	pxs_close(s);
	pxs_unlink(seg);

	hh->version++;
	put_file("attach", "c4-version-plus-1", h, n);
	hh->version--;
	hh->fingerprint ^= 1;
	put_file("attach", "c4-fingerprint", h, n);
	hh->fingerprint ^= 1;
	hh->magic = __builtin_bswap64(hh->magic);
	put_file("attach", "c4-magic-swapped", h, n);
	hh->magic = __builtin_bswap64(hh->magic);
	hh->size += 4096;
	put_file("attach", "c4-size-mismatch", h, n);
	hh->size -= 4096;
	hh->capacity = UINT32_MAX;
	put_file("attach", "c4-capacity-overflow", h, n);
	hh->capacity = 64;
	hh->heap_off = hh->size + 4096;
	put_file("attach", "c4-heap-past-end", h, n);
	put_file("attach", "c5-empty", h, 0);
	put_file("attach", "c5-header-minus-1", h, sizeof *hh - 1);
	memset(h, 0xff, n);
	put_file("attach", "c5-all-ff", h, n);
	free(h);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);

	/* fuzz_key */
	put_str("key", "valid", "0123456789abcdef0123456789abcdef");
	put_str("key", "max", "ffffffffffffffffffffffffffffffff");
	put_str("key", "one", "00000000000000000000000000000001");
	put_str("key", "zero", "00000000000000000000000000000000");
	put_str("key", "upper", "0123456789ABCDEF0123456789abcdef");
	put_str("key", "short", "0123456789abcdef0123456789abcde");
	put_str("key", "name", "/a-valid.store_name");

	/* fuzz_proxy */
	put_str("proxy", "valid",
		"pxs://store/0123456789abcdef0123456789abcdef");
	put_str("proxy", "dots",
		"pxs://a.b-c_d/ffffffffffffffffffffffffffffffff");
	put_str("proxy", "dot", "pxs://./0123456789abcdef0123456789abcdef");
	put_str("proxy", "extra", "pxs://s/x/0123456789abcdef0123456789abcdef");
	put_str("proxy", "pct", "pxs://%41/0123456789abcdef0123456789abcdef");
	put_str("proxy", "scheme", "PXS://s/0123456789abcdef0123456789abcdef");

	/* fuzz_attach: three geometries, empty and populated */
	image_seed("empty-1m-cap64", HX_MiB, 64, 0, 0, false);
	image_seed("empty-2m-cap300", 2 * HX_MiB, 300, 0, 0, false);
	image_seed("empty-4m-cap1000", 4 * HX_MiB, 1000, 0, 0, false);
	image_seed("populated-1m-cap64", HX_MiB, 64, 12, 6, true);
	header_variants();

	/* fuzz_corrupt: no patch, and one patch in each region */
	put_file("corrupt", "none", "", 0);
	const uint8_t one[][6] = {
		{0x00, 0x40, 0x00, 0xff},             /* header */
		{0x05, 0x00, 0x00, 0x01, 0x00, 0x00}, /* process entry 0 */
		{0x1e, 0x10, 0x01, 0xef, 0xbe, 0xad}, /* a slot, 8 bytes */
		{0x23, 0x00, 0x00, 0x01},             /* first block: flip */
	};
	for (int i = 0; i < 4; i++) {
		char n[16];
		snprintf(n, sizeof n, "region-%d", i);
		put_file("corrupt", n, one[i], sizeof one[i]);
	}

	/* fuzz_ops: op, key, size, fill; op + 18 selects handle 1 */
	const uint8_t scripts[][48] = {
		/* put_at, get, evict, release, put_at again, get */
		{0, 1, 9, 7, 2, 1, 0, 0, 5,  1, 0, 0, 3,  0, 0, 0,
		 0, 1, 3, 9, 2, 1, 0, 0, 14, 0, 0, 0, 15, 0, 0, 0},
		/* new_at, reserve, other handle commits (EPERM), commit */
		{6,  2, 0, 0, 9,  2, 20, 5, 28, 2, 0, 0,
		 10, 2, 0, 0, 13, 2, 0,  0, 16, 0, 0, 0},
		/* new_at by handle 1, reopen it: abandoned */
		{24, 3, 0, 0, 35, 0, 0, 0, 12, 3, 0, 0, 8, 3, 4, 4},
		/* reserve, evict, commit: -ENOENT and freed */
		{6, 4, 0, 0, 9, 4, 30, 1, 5, 4, 0, 0, 10, 4, 0, 0, 14, 0, 0, 0},
		/* futures set by the other handle; claim; wait */
		{6,  5, 0, 0, 29, 5, 0, 0, 26, 5, 6, 6,
		 13, 5, 0, 0, 31, 5, 0, 0, 3,  0, 0, 0},
	};
	for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
		char n[16];
		snprintf(n, sizeof n, "script-%zu", i);
		put_file("ops", n, scripts[i], sizeof scripts[i]);
	}
	/* fuzz_ops stream calls: op byte 144 + op + 14 * handle, then
	 * stream + 4 * arg, size, fill (see fuzz_ops_stream.c) */
#define S_(op, h) (uint8_t)(144 + (op) + 14 * (h))
	const uint8_t sscripts[][64] = {
		/* Block window 2: join, fill it, a third append times out, read,
		 * take/ack by the other handle, reserve there, delete, its
		 * commit finds no stream */
		{S_(0, 0), 28, 0, 0, S_(7, 0), 0, 0, 0, S_(1, 0), 0, 3, 1,
		 S_(1, 0), 0, 5, 2, S_(1, 0), 0, 1, 3, S_(4, 0), 0, 0, 0,
		 S_(6, 0), 0, 0, 0, S_(9, 1), 0, 0, 0, S_(10, 1), 0, 0, 0,
		 S_(2, 1), 0, 4, 9, S_(11, 0), 0, 0, 0, S_(3, 1), 0, 0, 0,
		 S_(6, 1), 0, 0, 0, S_(12, 0), 0, 0, 0, S_(13, 0), 0, 0, 0},
		/* Discard window 1 on stream 1: slide, end, -EPIPE, groups */
		{S_(0, 1), 5, 0, 0, S_(1, 1), 1, 2, 4, S_(1, 0), 1, 2, 5,
		 S_(4, 0), 1, 0, 0, S_(4, 1), 9, 0, 0, S_(5, 0), 1, 0, 0,
		 S_(1, 0), 1, 1, 1, S_(4, 1), 13, 0, 0, S_(9, 0), 1, 0, 0,
		 S_(9, 0), 1, 0, 0, S_(6, 1), 1, 0, 0, S_(11, 1), 1, 0, 0,
		 S_(13, 0), 0, 0, 0},
	};
#undef S_
	for (size_t i = 0; i < sizeof sscripts / sizeof *sscripts; i++) {
		char n[16];
		snprintf(n, sizeof n, "stream-%zu", i);
		put_file("ops", n, sscripts[i], sizeof sscripts[i]);
	}
	printf("seeds written to %s\n", root);
	return 0;
}
