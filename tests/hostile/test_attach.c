/* test_attach.c - PLAN C4, C5: attaching to foreign, damaged, truncated
 * and garbage segments.
 *
 * Extends test_store.c's attach_refuses_foreign_and_damaged_segments
 * (empty file, 0xa5 garbage, odd size, one bit of eight header fields,
 * truncation to half): every header field set to hostile values, files of
 * every small size, random and 0xff contents, sparse and huge files,
 * directories and FIFOs. Each refused attach must return -EPROTO, must not
 * change a byte of the file, and must not crash (SIGBUS) or hang. Fields
 * that attach does not validate must still leave a usable, crash-free
 * store (the victim script runs in a child with a deadline).
 */
#include "hostile.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB HX_MiB

/* A real, closed 2 MiB segment with a few objects, futures and a pin. */
static void
make_segment(char name[64])
{
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k;
	pxs_view v;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(pxs_put(s, "payload", 7, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_future_new(s, &k), 0);
	pxs_close(s); /* pin and future go with the handle */
}

static void
patch(const char *name, size_t off, const void *bytes, size_t n)
{
	int fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* pxs_open must refuse with @p want and leave the file as it was. */
static void
refused(const char *name, int want, const char *what)
{
	uint64_t before = hx_shm_hash(name);
	pxs_store *s = (pxs_store *)&s;
	pxs_options create = {.flags = PXS_CREATE, .size = 2 * MiB};
	int rc = pxs_open(name, NULL, &s);
	ck_assert_msg(rc == want, "%s: attach gave %d (%s), want %d", what, rc,
		      pxs_strerror(rc), want);
	ck_assert_ptr_null(s);
	rc = pxs_open(name, &create, &s);
	ck_assert_msg(rc == want, "%s: create gave %d (%s), want %d", what, rc,
		      pxs_strerror(rc), want);
	ck_assert(hx_documented(HX_OPEN, rc));
	ck_assert_msg(hx_shm_hash(name) == before, "%s: the file changed",
		      what);
}

/* Run the victim script against @p name in a child; it must exit 0 within
 * the deadline: every result documented, no crash, no hang. */
static int
victim_child(void *arg)
{
	const char *name = arg;
	pxs_store *s;
	hx_deadline(20);
	int rc = pxs_open(name, NULL, &s);
	if (rc < 0)
		return hx_documented(HX_OPEN, rc) ? 0 : 2;
	pxs_key keys[4] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}};
	uint64_t cur = 0;
	pxs_entry e;
	for (int i = 0; i < 4 && pxs_list(s, &cur, &e) == 1; i++)
		keys[i] = e.key;
	struct hx_victim_opts o = {.keys = keys,
				   .nkeys = 4,
				   .seed = 42,
				   .rounds = 3,
				   .mutate = true,
				   .check_allowed_to_fail = true};
	char why[256];
	rc = hx_victim(s, &o, why, sizeof why);
	if (rc < 0)
		fprintf(stderr, "victim on %s: %s\n", name, why);
	pxs_close(s);
	return rc < 0 ? 1 : 0;
}

static void
usable(const char *name, const char *what)
{
	pid_t p = pxs_test_spawn(victim_child, (void *)name);
	int rc = pxs_test_reap(p, 30);
	ck_assert_msg(rc == 0, "%s: victim child ended with %d", what, rc);
}

#define FIELD(f)                                                               \
	offsetof(struct pxs_seg_hdr, f), sizeof(((struct pxs_seg_hdr *)0)->f), \
		#f

START_TEST(c4_header_fields_refused)
{
	static const struct {
		size_t off, size;
		const char *name;
	} fields[] = {
		{FIELD(magic)},     {FIELD(version)},   {FIELD(fingerprint)},
		{FIELD(size)},      {FIELD(capacity)},  {FIELD(nslots)},
		{FIELD(procs_off)}, {FIELD(table_off)}, {FIELD(heap_off)},
		{FIELD(heap_end)},
	};
	/* Values to write, truncated to the field's width. */
	const uint64_t values[] = {0,
				   1,
				   UINT64_MAX,
				   UINT32_MAX,
				   0x8000000000000000ull,
				   2 * MiB + 4096,
				   2 * MiB - 4096,
				   4096,
				   PXS_MAGIC >> 8,
				   __builtin_bswap64(PXS_MAGIC)};
	char name[64];
	make_segment(name);
	unsigned char *orig;
	size_t len;
	ck_assert_ptr_nonnull(orig = hx_shm_read(name, &len));
	ck_assert_uint_eq(len, 2 * MiB);
	const struct pxs_seg_hdr *h = (const struct pxs_seg_hdr *)orig;
	for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			unsigned char b[8];
			uint64_t x = values[v];
			if (fields[f].size == 4)
				memcpy(b, &(uint32_t){(uint32_t)x}, 4);
			else
				memcpy(b, &x, 8);
			if (!memcmp(orig + fields[f].off, b, fields[f].size))
				continue; /* the valid value itself */
			patch(name, fields[f].off, b, fields[f].size);
			char what[96];
			snprintf(what, sizeof what, "%s = %#llx",
				 fields[f].name, (unsigned long long)x);
			refused(name, -EPROTO, what);
			patch(name, fields[f].off, orig + fields[f].off,
			      fields[f].size);
		}
		/* Off by one either way. (Not capacity: 63 and 65 make
		 * consistent headers, checked below.) */
		for (int d = -1; d <= 1; d += 2) {
			if (fields[f].off ==
			    offsetof(struct pxs_seg_hdr, capacity))
				break;
			uint64_t x = 0;
			memcpy(&x, orig + fields[f].off, fields[f].size);
			x += (uint64_t)(int64_t)d;
			patch(name, fields[f].off, &x, fields[f].size);
			refused(name, -EPROTO, fields[f].name);
			patch(name, fields[f].off, orig + fields[f].off,
			      fields[f].size);
		}
	}
	/* A capacity that gives the same table size is a consistent header:
	 * attach takes it at its word. */
	uint32_t cap = h->capacity - 1;
	patch(name, offsetof(struct pxs_seg_hdr, capacity), &cap, 4);
	pxs_store *c;
	pxs_stats st;
	ck_assert_int_eq(pxs_open(name, NULL, &c), 0);
	ck_assert_int_eq(pxs_stat(c, &st), 0);
	ck_assert_uint_eq(st.capacity, cap);
	pxs_close(c);
	patch(name, offsetof(struct pxs_seg_hdr, capacity), &h->capacity, 4);
	/* Version + 1 with everything else valid (a newer library). */
	uint32_t ver = h->version + 1;
	patch(name, offsetof(struct pxs_seg_hdr, version), &ver, 4);
	refused(name, -EPROTO, "version + 1");
	/* The original still attaches. */
	patch(name, 0, orig, sizeof *h);
	pxs_store *s;
	ck_assert_int_eq(pxs_open(name, NULL, &s), 0);
	pxs_close(s);
	free(orig);
	pxs_unlink(name);
}
END_TEST

/* Fields attach does not validate (counters, creation data, the heap
 * control block, the poison flag): the store may refuse work, but every
 * call returns a documented code and nothing crashes. */
START_TEST(c4_unvalidated_fields_are_safe)
{
	static const struct {
		size_t off, size;
		const char *name;
	} fields[] = {
		{FIELD(created_ns)},
		{FIELD(creator_pid)},
		{offsetof(struct pxs_seg_hdr, tables[0].live), 4,
		 "tables[0].live"},
		{offsetof(struct pxs_seg_hdr, tables[0].crowded), 4,
		 "tables[0].crowded"},
		{FIELD(poisoned)},
		{FIELD(ctr_gone)},
		{offsetof(struct pxs_seg_hdr, heap.start), 8, "heap.start"},
		{offsetof(struct pxs_seg_hdr, heap.end), 8, "heap.end"},
		{offsetof(struct pxs_seg_hdr, heap.top), 8, "heap.top"},
		{offsetof(struct pxs_seg_hdr, heap.committed), 8,
		 "heap.committed"},
		{offsetof(struct pxs_seg_hdr, heap.used), 8, "heap.used"},
		{offsetof(struct pxs_seg_hdr, heap.nalloc), 8, "heap.nalloc"},
		{offsetof(struct pxs_seg_hdr, heap.fl_bitmap_lo), 8,
		 "heap.fl_bitmap"},
		{offsetof(struct pxs_seg_hdr, heap.sl_bitmap), 16,
		 "heap.sl_bitmap"},
		{offsetof(struct pxs_seg_hdr, heap.heads), 64, "heap.heads"},
	};
	const uint64_t values[] = {0,
				   1,
				   16,
				   UINT64_MAX,
				   0x7fffffffffffff0ull,
				   2 * MiB - 16,
				   0xa5a5a5a5a5a5a5a5ull};
	char name[64];
	make_segment(name);
	unsigned char *orig;
	size_t len;
	ck_assert_ptr_nonnull(orig = hx_shm_read(name, &len));
	for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			unsigned char b[64];
			for (size_t i = 0; i < fields[f].size; i += 8) {
				size_t n = fields[f].size - i < 8
						   ? fields[f].size - i
						   : 8;
				memcpy(b + i, &values[v], n);
			}
			patch(name, fields[f].off, b, fields[f].size);
			char what[96];
			snprintf(what, sizeof what, "%s = %#llx",
				 fields[f].name, (unsigned long long)values[v]);
			usable(name, what);
			patch(name, 0, orig, len);
		}
	}
	free(orig);
	pxs_unlink(name);
}
END_TEST

/* A store whose table grew to several tables: every scribbled descriptor
 * (a count beyond the chain or beyond PXS_MAX_TABLES, an offset outside
 * the heap or off its block, a wrong size) is refused at attach; the
 * original attaches again and checks clean. */
START_TEST(c4_table_descriptors_refused)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 8 * MiB, 0);
	pxs_key k;
	pxs_stats st;
	int n = 0;
	do {
		ck_assert_int_eq(pxs_put(s, "payload", 7, &k), 0);
		ck_assert_int_eq(pxs_stat(s, &st), 0);
	} while (st.tables < 3 && ++n < 100000);
	ck_assert_uint_eq(st.tables, 3);
	pxs_close(s);
	unsigned char *orig;
	size_t len;
	ck_assert_ptr_nonnull(orig = hx_shm_read(name, &len));
	const struct pxs_seg_hdr *h = (const struct pxs_seg_hdr *)orig;
	const size_t nt = offsetof(struct pxs_seg_hdr, ntables);
	const uint32_t counts[] = {0, 4, PXS_MAX_TABLES, PXS_MAX_TABLES + 1,
				   UINT32_MAX};
	for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
		patch(name, nt, &counts[i], 4);
		char what[64];
		snprintf(what, sizeof what, "ntables = %u", counts[i]);
		refused(name, -EPROTO, what);
		patch(name, nt, &h->ntables, 4);
	}
	for (uint32_t t = 0; t < 3; t++) {
		const size_t o = offsetof(struct pxs_seg_hdr, tables) +
				 t * sizeof(struct pxs_seg_table);
		const struct pxs_seg_table *d = &h->tables[t];
		const uint64_t offs[] = {0,
					 d->off + 64,
					 d->off - 64,
					 h->heap_end,
					 h->heap_end - 64,
					 h->procs_off,
					 UINT64_MAX - 63};
		for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
			patch(name, o + offsetof(struct pxs_seg_table, off),
			      &offs[i], 8);
			char what[64];
			snprintf(what, sizeof what, "tables[%u].off = %#llx", t,
				 (unsigned long long)offs[i]);
			refused(name, -EPROTO, what);
			patch(name, o, d, sizeof *d);
		}
		const uint32_t sizes[] = {0, d->nslots / 2, d->nslots * 2,
					  d->nslots + 1, UINT32_MAX};
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			patch(name, o + offsetof(struct pxs_seg_table, nslots),
			      &sizes[i], 4);
			char what[64];
			snprintf(what, sizeof what, "tables[%u].nslots = %u", t,
				 sizes[i]);
			refused(name, -EPROTO, what);
			patch(name, o, d, sizeof *d);
		}
	}
	ck_assert_int_eq(pxs_open(name, NULL, &s), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.tables, 3);
	ck_assert_uint_eq(st.objects, (uint32_t)n + 1);
	pxs_close(s);
	free(orig);
	pxs_unlink(name);
}
END_TEST

START_TEST(c5_small_and_garbage_files)
{
	char name[64];
	size_t sizes[] = {0,
			  1,
			  sizeof(struct pxs_seg_hdr) - 1,
			  sizeof(struct pxs_seg_hdr),
			  4095,
			  4096,
			  65536,
			  PXS_MIN_SIZE - 4096,
			  PXS_MIN_SIZE - 1,
			  PXS_MIN_SIZE + 1};
	unsigned char *junk = malloc(2 * MiB);
	uint64_t rng = 0x1234567;
	for (size_t i = 0; i < 2 * MiB; i++)
		junk[i] = (unsigned char)hx_rand(&rng);
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		for (int fill = 0; fill < 3; fill++) {
			unsigned char *b = junk;
			if (fill == 1)
				memset(b = malloc(sizes[i] + 1), 0xff,
				       sizes[i] + 1);
			pxs_test_name(name, sizeof name);
			ck_assert_int_eq(hx_shm_write(name, b,
						      fill == 2 ? 0 : sizes[i],
						      sizes[i]),
					 0);
			char what[64];
			snprintf(what, sizeof what, "%zu bytes, fill %d",
				 sizes[i], fill);
			refused(name, -EPROTO, what);
			pxs_unlink(name);
			if (b != junk)
				free(b);
		}
	}
	/* 2 MiB of random bytes, of 0xff, and random with a valid magic. */
	pxs_test_name(name, sizeof name);
	ck_assert_int_eq(hx_shm_write(name, junk, 2 * MiB, 2 * MiB), 0);
	refused(name, -EPROTO, "2 MiB random");
	uint64_t magic = PXS_MAGIC;
	patch(name, 0, &magic, 8);
	refused(name, -EPROTO, "2 MiB random, valid magic");
	pxs_unlink(name);
	memset(junk, 0xff, 2 * MiB);
	ck_assert_int_eq(hx_shm_write(name, junk, 2 * MiB, 2 * MiB), 0);
	refused(name, -EPROTO, "2 MiB of 0xff");
	pxs_unlink(name);
	free(junk);
}
END_TEST

START_TEST(c5_truncated_segments)
{
	char name[64];
	unsigned char *orig;
	size_t len;
	make_segment(name);
	ck_assert_ptr_nonnull(orig = hx_shm_read(name, &len));
	pxs_unlink(name);
	const struct pxs_seg_hdr *h = (const struct pxs_seg_hdr *)orig;
	/* The file cut at each region boundary, one page short, and with
	 * only the header written over a file of the right size. */
	size_t cuts[] = {sizeof *h,   4096,       h->procs_off, h->table_off,
			 h->heap_off, len - 4096, len - 1,      len + 4096};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		pxs_test_name(name, sizeof name);
		size_t n = cuts[i] < len ? cuts[i] : len;
		ck_assert_int_eq(hx_shm_write(name, orig, n, cuts[i]), 0);
		char what[64];
		snprintf(what, sizeof what, "cut at %zu", cuts[i]);
		refused(name, -EPROTO, what);
		pxs_unlink(name);
	}
	/* The right size but only the first n bytes present (the rest
	 * zero): attach may succeed (zero is a valid empty table) but the
	 * store must be crash-free. */
	size_t parts[] = {sizeof *h, h->procs_off, h->table_off, h->heap_off};
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		pxs_test_name(name, sizeof name);
		ck_assert_int_eq(hx_shm_write(name, orig, parts[i], len), 0);
		usable(name, "partly written");
		pxs_unlink(name);
	}
	free(orig);
}
END_TEST

/* A sparse 1 TiB file (a hole where the header should be), a 64 TiB one,
 * and a valid segment truncated under a live handle's feet is not here:
 * that SIGBUS is a documented limitation. */
START_TEST(c5_sparse_huge_files)
{
	char name[64];
	off_t sizes[] = {(off_t)1 << 40, (off_t)1 << 46,
			 ((off_t)1 << 46) + 4096};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		pxs_test_name(name, sizeof name);
		int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		if (ftruncate(fd, sizes[i]) < 0) {
			close(fd);
			pxs_unlink(name);
			continue; /* the filesystem does not allow it */
		}
		close(fd);
		pxs_store *s;
		int rc = pxs_open(name, NULL, &s);
		ck_assert_msg(rc == -EPROTO || rc == -ENOMEM,
			      "sparse %lld: %d (%s)", (long long)sizes[i], rc,
			      pxs_strerror(rc));
		pxs_unlink(name);
	}
}
END_TEST

/* Things in /dev/shm that are not regular files. */
START_TEST(c5_not_a_regular_file)
{
	char name[64], path[128];
	pxs_store *s;
	pxs_test_name(name, sizeof name);
	hx_path(path, sizeof path, name);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	refused(name, -EPROTO, "a FIFO");
	ck_assert_int_eq(unlink(path), 0);
	/* A hard link: two names for one segment. */
	char name2[64], path2[128];
	make_segment(name);
	hx_path(path, sizeof path, name);
	pxs_test_name(name2, sizeof name2);
	hx_path(path2, sizeof path2, name2);
	ck_assert_int_eq(link(path, path2), 0);
	refused(name, -EPROTO, "hard link (original name)");
	refused(name2, -EPROTO, "hard link (new name)");
	ck_assert_int_eq(unlink(path2), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &s), 0); /* one link again */
	pxs_close(s);
	pxs_unlink(name);
}
END_TEST

/* An uninitialised segment (magic 0: a creator died before publishing,
 * or someone else's file) and one whose creator is formatting it under a
 * private name: neither is ever attached. */
START_TEST(c5_magic_zero_and_private_names)
{
	char name[64];
	unsigned char *orig;
	size_t len;
	make_segment(name);
	ck_assert_ptr_nonnull(orig = hx_shm_read(name, &len));
	uint64_t zero = 0;
	patch(name, 0, &zero, 8);
	refused(name, -EPROTO, "magic 0");
	pxs_unlink(name);
	free(orig);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hostile-attach");
	TCase *tc = tcase_create("attach");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, c4_header_fields_refused);
	tcase_add_test(tc, c4_unvalidated_fields_are_safe);
	tcase_add_test(tc, c4_table_descriptors_refused);
	tcase_add_test(tc, c5_small_and_garbage_files);
	tcase_add_test(tc, c5_truncated_segments);
	tcase_add_test(tc, c5_sparse_huge_files);
	tcase_add_test(tc, c5_not_a_regular_file);
	tcase_add_test(tc, c5_magic_zero_and_private_names);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
