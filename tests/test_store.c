/* test_store.c - stores and objects: open/attach/create rules, put, get,
 * release, exists, evict, stat, and every error path of those. */
#include "internal.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static pxs_options
create_opts(size_t size, uint32_t cap)
{
	return (pxs_options){
		.size = size, .capacity = cap, .flags = PXS_CREATE};
}

/* pxs_stat fields that a failed call must leave unchanged. */
static void
assert_same(const pxs_stats *a, const pxs_stats *b)
{
	ck_assert_uint_eq(a->heap_used, b->heap_used);
	ck_assert_uint_eq(a->heap_free, b->heap_free);
	ck_assert_uint_eq(a->objects, b->objects);
	ck_assert_uint_eq(a->pending, b->pending);
	ck_assert_uint_eq(a->pins, b->pins);
	ck_assert_uint_eq(a->evicted_pinned, b->evicted_pinned);
}

/* Pin once, so that this handle's pin array exists before a baseline. */
static void
warm_up(pxs_store *s)
{
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_put(s, "w", 1, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
}

START_TEST(open_rejects_bad_arguments)
{
	pxs_store *s = (pxs_store *)1;
	pxs_options o = create_opts(0, 0);
	const char *bad[] = {"",    "/",    "x",    "//x", "/.",
			     "/..", "/a b", "/a/b", "/é",  "/a\n"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s = (pxs_store *)1;
		ck_assert_int_eq(pxs_open(bad[i], &o, &s), -EINVAL);
		ck_assert_ptr_null(s);
	}
	char longname[PXS_NAME_MAX + 3];
	memset(longname, 'a', sizeof longname);
	longname[0] = '/';
	longname[PXS_NAME_MAX + 2] = 0;
	ck_assert_int_eq(pxs_open(longname, &o, &s), -EINVAL);
	ck_assert_int_eq(pxs_open(NULL, &o, &s), -EINVAL);
	ck_assert_int_eq(pxs_open("/ok", &o, NULL), -EINVAL);
	pxs_options bado[] = {
		{.flags = PXS_CREATE | 0x100},
		{.flags = PXS_EXCL},
		{.flags = PXS_CREATE, .mode = 01777},
		{.flags = PXS_CREATE, .size = 4096},
		{.flags = PXS_CREATE, .capacity = PXS_MAX_CAPACITY + 1},
	};
	char name[64];
	pxs_test_name(name, sizeof name);
	for (size_t i = 0; i < sizeof bado / sizeof *bado; i++)
		ck_assert_int_eq(pxs_open(name, &bado[i], &s), -EINVAL);
	/* Capacity too large for the size: the table would not fit. */
	pxs_options big = {
		.flags = PXS_CREATE, .size = 2 * MiB, .capacity = 1u << 20};
	ck_assert_int_eq(pxs_open(name, &big, &s), -EINVAL);
	ck_assert_int_eq(pxs_open(name, NULL, &s),
			 -ENOENT); /* nothing was created */
	ck_assert_int_eq(pxs_unlink(name), -ENOENT);
	ck_assert_int_eq(pxs_unlink("bad"), -EINVAL);
}
END_TEST

START_TEST(open_create_attach_excl)
{
	char name[64];
	pxs_test_name(name, sizeof name);
	pxs_store *a, *b, *c;
	ck_assert_int_eq(pxs_open(name, NULL, &a), -ENOENT);
	pxs_options o = create_opts(4 * MiB, 100);
	o.flags |= PXS_EXCL;
	ck_assert_int_eq(pxs_open(name, &o, &a), 0);
	ck_assert_str_eq(pxs_store_name(a), name);
	ck_assert_int_eq(pxs_open(name, &o, &b), -EEXIST);
	ck_assert_ptr_null(b);
	o.flags = PXS_CREATE;
	o.size = 64 * MiB; /* ignored: it exists */
	ck_assert_int_eq(pxs_open(name, &o, &b), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &c), 0);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(b, &st), 0);
	ck_assert_uint_eq(st.segment_size, 4 * MiB);
	ck_assert_uint_eq(st.capacity, 100);
	ck_assert_uint_eq(st.processes, 3); /* three handles, three entries */
	pxs_key k;
	ck_assert_int_eq(pxs_put(a, "hello", 5, &k), 0);
	pxs_view v;
	ck_assert_int_eq(pxs_get(c, k, &v), 0);
	ck_assert_mem_eq(v.data, "hello", 5);
	ck_assert_int_eq(pxs_release(c, &v), 0);
	ck_assert_int_eq(pxs_unlink(name), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &c), -ENOENT);
	ck_assert_int_eq(pxs_get(b, k, &v),
			 0); /* attached handles keep working */
	ck_assert_int_eq(pxs_release(b, &v), 0);
	ck_assert_int_eq(pxs_close(a), 0);
	ck_assert_int_eq(pxs_close(b), 0);
	ck_assert_int_eq(pxs_close(NULL), 0);
}
END_TEST

START_TEST(mode_is_exact_whatever_the_umask)
{
	mode_t modes[] = {0, 0640, 0666};
	mode_t want[] = {0600, 0640, 0666};
	mode_t old = umask(077);
	for (int i = 0; i < 3; i++) {
		char name[64], path[128];
		pxs_test_name(name, sizeof name);
		pxs_options o = create_opts(2 * MiB, 0);
		o.mode = modes[i];
		pxs_store *s;
		ck_assert_int_eq(pxs_open(name, &o, &s), 0);
		snprintf(path, sizeof path, "/dev/shm%s", name);
		struct stat sb;
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_uint_eq(sb.st_mode & 07777, want[i]);
		pxs_test_done(s, name);
	}
	umask(old);
}
END_TEST

/* Write raw bytes as a shm object of the given size. */
static void
write_raw(const char *name, const void *bytes, size_t n, size_t size)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (n)
		ck_assert_int_eq(pwrite(fd, bytes, n, 0), (ssize_t)n);
	close(fd);
}

START_TEST(attach_refuses_foreign_and_damaged_segments)
{
	char name[64];
	pxs_store *s;
	pxs_test_name(name, sizeof name);
	write_raw(name, NULL, 0, 0); /* empty */
	ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
	ck_assert_int_eq(
		pxs_open(name, &(pxs_options){.flags = PXS_CREATE}, &s),
		-EPROTO);
	pxs_unlink(name);
	char junk[4096];
	memset(junk, 0xa5, sizeof junk);
	write_raw(name, junk, sizeof junk, 2 * MiB); /* garbage */
	ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
	pxs_unlink(name);
	write_raw(name, NULL, 0, 1000); /* odd size */
	ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
	pxs_unlink(name);

	/* A real segment with one header field changed at a time. */
	size_t offs[] = {offsetof(struct pxs_seg_hdr, magic),
			 offsetof(struct pxs_seg_hdr, version),
			 offsetof(struct pxs_seg_hdr, fingerprint),
			 offsetof(struct pxs_seg_hdr, size),
			 offsetof(struct pxs_seg_hdr, capacity),
			 offsetof(struct pxs_seg_hdr, nslots),
			 offsetof(struct pxs_seg_hdr, table_off),
			 offsetof(struct pxs_seg_hdr, heap_off)};
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		s = pxs_test_store(name, 2 * MiB, 64);
		pxs_close(s);
		int fd = shm_open(name, O_RDWR, 0);
		unsigned char b;
		ck_assert_int_eq(pread(fd, &b, 1, (off_t)offs[i]), 1);
		b ^= 0x40;
		ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)offs[i]), 1);
		close(fd);
		ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
		pxs_unlink(name);
	}
	/* Truncated: the header says 2 MiB, the file is smaller. */
	s = pxs_test_store(name, 2 * MiB, 64);
	pxs_close(s);
	int fd = shm_open(name, O_RDWR, 0);
	ck_assert_int_eq(ftruncate(fd, MiB), 0);
	close(fd);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
	pxs_unlink(name);
}
END_TEST

START_TEST(put_get_release_sizes)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 16 * MiB, 256);
	size_t sizes[] = {0, 1, 15, 16, 17, 4096, MiB, 5 * MiB + 3};
	char *buf = malloc(6 * MiB);
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			buf[j] = (char)(j * 7 + i);
		pxs_key k;
		ck_assert_int_eq(
			pxs_put(s, sizes[i] ? buf : NULL, sizes[i], &k), 0);
		ck_assert(!pxs__key_is_zero(k));
		ck_assert_int_eq(pxs_exists(s, k), 1);
		pxs_view v, w;
		ck_assert_int_eq(pxs_get(s, k, &v), 0);
		ck_assert_int_eq(pxs_get(s, k, &w), 0);
		ck_assert_ptr_nonnull(v.data);
		ck_assert_ptr_eq(v.data,
				 w.data); /* zero copy: the same bytes */
		ck_assert_uint_eq(v.size, sizes[i]);
		ck_assert_int_eq(memcmp(v.data, buf, sizes[i]), 0);
		ck_assert_uint_eq((uintptr_t)v.data % 16, 0);
		ck_assert_int_eq(pxs_release(s, &v), 0);
		ck_assert_ptr_null(v.data);
		ck_assert_int_eq(pxs_release(s, &v),
				 0); /* released views are no-ops */
		ck_assert_int_eq(pxs_release(s, &w), 0);
	}
	free(buf);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.objects, sizeof sizes / sizeof *sizes);
	ck_assert_uint_eq(st.pins, 0);
	ck_assert_uint_eq(st.puts, sizeof sizes / sizeof *sizes);
	ck_assert_uint_eq(st.gets, 2 * sizeof sizes / sizeof *sizes);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(named_puts_keep_their_names)
{
	char name[64], buf[PXS_KEY_NAME_MAX + 1], big[PXS_KEY_NAME_MAX + 2];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k, u, f, zero = {0, 0};
	pxs_view v;

	/* the name is kept; the value is exactly what was put */
	ck_assert_int_eq(pxs_put_named(s, "sim/step/42", "abc", 3, &k), 0);
	ck_assert(pxs_key_equal(k, pxs_key_from_name("sim/step/42", 11)));
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), 11);
	ck_assert_str_eq(buf, "sim/step/42");
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_int_eq(memcmp(v.data, "abc", 3), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_key_name(s, k, buf, 11), -ENOSPC);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(pxs_put_named(s, "empty", NULL, 0, NULL), 0);
	ck_assert_int_eq(pxs_key_name(s, pxs_key_from_name("empty", 5), buf,
				      sizeof buf), 5);

	/* bad input is refused and changes nothing */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(pxs_put_named(s, NULL, "a", 1, &u), -EINVAL);
	ck_assert_int_eq(pxs_put_named(s, "", "a", 1, &u), -EINVAL);
	ck_assert_int_eq(pxs_put_named(s, big, "a", 1, &u), -EINVAL);
	ck_assert_int_eq(pxs_exists(s, pxs_key_from_name(big, sizeof big - 1)),
			 0);
	ck_assert_int_eq(pxs_put_named(s, "x", NULL, 1, &u), -EINVAL);
	ck_assert_int_eq(pxs_put_named(NULL, "x", "a", 1, &u), -EINVAL);
	ck_assert_int_eq(pxs_put_named(s, "sim/step/42", "zz", 2, &u), -EEXIST);
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), 11);
	ck_assert_int_eq(pxs_key_name(s, k, NULL, 8), -EINVAL);
	ck_assert_int_eq(pxs_key_name(s, k, buf, 0), -EINVAL);
	ck_assert_int_eq(pxs_key_name(s, zero, buf, sizeof buf), -EINVAL);
	ck_assert_int_eq(pxs_key_name(NULL, k, buf, sizeof buf), -EINVAL);

	/* no name: a value put without one, a future, an absent key */
	ck_assert_int_eq(pxs_put(s, "abc", 3, &u), 0);
	ck_assert_int_eq(pxs_key_name(s, u, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(pxs_future_new(s, &f), 0);
	ck_assert_int_eq(pxs_key_name(s, f, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_key_name(s, pxs_key_from_name("none", 4), buf,
				      sizeof buf),
			 -ENOENT);

	/* a scribbled record reads as no name, never as a wrong one */
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	char *rec = (char *)v.data + v.size;
	rec[2] ^= 1; /* a byte of the name */
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), 0);
	rec[2] ^= 1;
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), 11);
	memset(rec, 0xff, 2); /* its length */
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);

	/* the name goes with its value; the segment stays consistent */
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_key_name(s, k, buf, sizeof buf), -ENOENT);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, name);
}
END_TEST

/* The name of @p key in @p s, as a string ("" for none, "-errno" else). */
static const char *
name_of(pxs_store *s, pxs_key key)
{
	static char buf[PXS_KEY_NAME_MAX + 1];
	int rc = pxs_key_name(s, key, buf, sizeof buf);
	if (rc < 0)
		snprintf(buf, sizeof buf, "%d", rc);
	return buf;
}

START_TEST(named_futures_keep_their_names)
{
	char name[64], big[PXS_KEY_NAME_MAX + 2];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64), *ro;
	pxs_key k, f, u, zero = {0, 0};
	pxs_view v;
	void *p;

	/* what the heap holds with no key in it (this process's pins) */
	ck_assert_int_eq(pxs_put(s, "x", 1, &u), 0);
	ck_assert_int_eq(pxs_get(s, u, &v), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_evict(s, u), 0);
	uint64_t h0 = pxs_test_stat(s).heap_used;

	/* pending, set, and still named after the set */
	ck_assert_int_eq(pxs_future_new_named(s, "sim/step/42", &k), 0);
	ck_assert(pxs_key_equal(k, pxs_key_from_name("sim/step/42", 11)));
	ck_assert_str_eq(name_of(s, k), "sim/step/42");
	ck_assert_int_eq(pxs_future_set(s, k, "abc", 3), 0);
	ck_assert_str_eq(name_of(s, k), "sim/step/42");
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_uint_eq(v.size, 3);
	ck_assert_int_eq(memcmp(v.data, "abc", 3), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	/* reserved, committed; a read-only handle sees the names too */
	ck_assert_int_eq(pxs_future_new_named(s, "sim/step/43", &f), 0);
	ck_assert_int_eq(pxs_future_reserve(s, f, 5, &p), 0);
	ck_assert_str_eq(name_of(s, f), "sim/step/43");
	memcpy(p, "hello", 5);
	ck_assert_int_eq(pxs_future_commit(s, f), 0);
	ck_assert_int_eq(pxs_open(name, &(pxs_options){.flags = PXS_RDONLY},
				  &ro), 0);
	ck_assert_str_eq(name_of(ro, f), "sim/step/43");
	ck_assert_str_eq(name_of(ro, k), "sim/step/42");
	ck_assert_int_eq(pxs_future_new_named(ro, "ro", &u), -EROFS);
	ck_assert_int_eq(pxs_close(ro), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);

	/* bad input is refused and changes nothing */
	pxs_stats before = pxs_test_stat(s);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	u = zero;
	ck_assert_int_eq(pxs_future_new_named(s, NULL, &u), -EINVAL);
	ck_assert_int_eq(pxs_future_new_named(s, "", &u), -EINVAL);
	ck_assert_int_eq(pxs_future_new_named(s, big, &u), -EINVAL);
	ck_assert_int_eq(pxs_future_new_named(NULL, "x", &u), -EINVAL);
	ck_assert_int_eq(pxs_future_new_named(s, "sim/step/42", &u), -EEXIST);
	ck_assert(pxs__key_is_zero(u));
	pxs_test_same_store(before, pxs_test_stat(s));
	ck_assert_str_eq(name_of(s, k), "sim/step/42");

	/* an abandoned named future is taken over and keeps its name */
	pxs_store *other;
	ck_assert_int_eq(pxs_open(name, NULL, &other), 0);
	ck_assert_int_eq(pxs_future_new_named(other, "job/7", &u), 0);
	ck_assert_int_eq(pxs_close(other), 0);
	ck_assert_int_eq(pxs_future_done(s, u), -EOWNERDEAD);
	ck_assert_str_eq(name_of(s, u), "job/7");
	ck_assert_int_eq(pxs_future_new_named(s, "job/7", &u), 0);
	ck_assert_int_eq(pxs_future_done(s, u), 0);
	ck_assert_str_eq(name_of(s, u), "job/7");
	ck_assert_int_eq(pxs_check(s, &r), 0);

	/* a scribbled name offset reads as no name, is reported by the
	 * check, and frees nothing that is not its block */
	struct pxs_seg_slot *sl = NULL;
	for (uint32_t i = 0; i < s->g.nslots; i++)
		if (s->slots[i].state == PXS_SLOT_READY &&
		    pxs__slot_has_key(&s->slots[i], k))
			sl = &s->slots[i];
	ck_assert_ptr_nonnull(sl);
	uint64_t saved = sl->name_off;
	ck_assert_uint_ne(saved, 0);
	uint64_t bad[] = {1, sl->off, s->g.heap_end - 1, UINT64_MAX, saved + 16};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sl->name_off = bad[i];
		ck_assert_str_eq(name_of(s, k), "");
		ck_assert_int_eq(pxs_check(s, &r), -EPROTO);
		ck_assert_msg(strstr(r.first_error, "name offset") != NULL,
			      "%s", r.first_error);
	}
	/* the name block's bytes scribbled: no name either */
	sl->name_off = saved;
	s->base[saved + 2] ^= 1;
	ck_assert_str_eq(name_of(s, k), "");
	ck_assert_int_eq(pxs_check(s, &r), -EPROTO);
	s->base[saved + 2] ^= 1;
	ck_assert_str_eq(name_of(s, k), "sim/step/42");
	ck_assert_int_eq(pxs_check(s, &r), 0);
	/* evicting a slot whose name offset is the value's block frees the
	 * value once, and the heap stays whole */
	sl->name_off = sl->off;
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	/* (the name block the scribble orphaned stays allocated, as any
	 * unreferenced block of a live process, until its reaper) */
	ck_assert_int_eq(pxs__block_free(s, saved), 0);

	/* every name block goes with its slot: evict all, the heap is back
	 * to what it was with none of them */
	ck_assert_int_eq(pxs_evict(s, f), 0);
	ck_assert_int_eq(pxs_evict(s, u), 0);
	ck_assert_int_eq(pxs_future_new_named(s, "gone", &u), 0);
	ck_assert_int_eq(pxs_evict(s, u), 0);
	pxs_stats st = pxs_test_stat(s);
	ck_assert_uint_eq(st.objects + st.pending + st.abandoned, 0);
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(st.heap_used, h0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(object_errors_change_nothing)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key k = pxs_key_from_name("obj", 3), zero = {0, 0};
	ck_assert_int_eq(pxs_put_at(s, k, "abc", 3), 0);
	pxs_stats before, after;
	pxs_view v;
	ck_assert_int_eq(pxs_stat(s, &before), 0);
	ck_assert_int_eq(pxs_put_at(s, k, "xyz", 3), -EEXIST);
	ck_assert_int_eq(pxs_put_at(s, zero, "xyz", 3), -EINVAL);
	ck_assert_int_eq(pxs_put_at(NULL, k, "xyz", 3), -EINVAL);
	ck_assert_int_eq(pxs_put_at(s, pxs_key_from_name("n", 1), NULL, 3),
			 -EINVAL);
	ck_assert_int_eq(pxs_put(s, "abc", 3, NULL), -EINVAL);
	ck_assert_int_eq(pxs_put(s, "abc", SIZE_MAX, &k), -ENOSPC);
	ck_assert_int_eq(pxs_put(s, "abc", SIZE_MAX - 4096, &k), -ENOSPC);
	ck_assert_int_eq(pxs_put(s, "abc", 5 * MiB, &k), -ENOSPC);
	k = pxs_key_from_name("obj", 3);
	ck_assert_int_eq(pxs_get(s, zero, &v), -EINVAL);
	ck_assert_int_eq(pxs_get(s, k, NULL), -EINVAL);
	ck_assert_int_eq(pxs_get(NULL, k, &v), -EINVAL);
	ck_assert_int_eq(pxs_get(s, pxs_key_from_name("none", 4), &v), -ENOENT);
	ck_assert_int_eq(pxs_exists(s, pxs_key_from_name("none", 4)), 0);
	ck_assert_int_eq(pxs_exists(s, zero), -EINVAL);
	ck_assert_int_eq(pxs_exists(NULL, k), -EINVAL);
	ck_assert_int_eq(pxs_evict(s, pxs_key_from_name("none", 4)), -ENOENT);
	ck_assert_int_eq(pxs_evict(s, zero), -EINVAL);
	ck_assert_int_eq(pxs_stat(s, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stat(NULL, &after), -EINVAL);
	ck_assert_int_eq(pxs_stat(s, &after), 0);
	assert_same(&before, &after);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_mem_eq(v.data, "abc", 3); /* the first value is intact */
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(release_rejects_forged_views)
{
	char name[64], name2[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_store *t = pxs_test_store(name2, 2 * MiB, 64);
	pxs_key k;
	pxs_view v, f;
	ck_assert_int_eq(pxs_put(s, "abc", 3, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_release(t, &v), -EINVAL); /* another store */
	ck_assert_int_eq(pxs_release(NULL, &v), -EINVAL);
	f = v;
	f.priv[0] = 0xffffffffu;
	ck_assert_int_eq(pxs_release(s, &f), -EINVAL); /* index out of range */
	f = v;
	f.priv[0] ^= (uint64_t)1 << 40;
	ck_assert_int_eq(pxs_release(s, &f), -EINVAL); /* wrong generation */
	ck_assert_int_eq(pxs_release(s, NULL), 0);
	pxs_view saved = v;
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_release(s, &saved),
			 -EINVAL); /* double release: no pin left */
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.pins, 0);
	pxs_test_done(s, name);
	pxs_test_done(t, name2);
}
END_TEST

START_TEST(evict_keeps_pinned_views_and_frees_on_release)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_stats base, st;
	warm_up(s);
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	char buf[100000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)i;
	pxs_key k;
	pxs_view v;
	ck_assert_int_eq(pxs_put(s, buf, sizeof buf, &k), 0);
	ck_assert_int_eq(pxs_get(s, k, &v), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_exists(s, k), 0);
	ck_assert_int_eq(pxs_get(s, k, &(pxs_view){0}), -ENOENT);
	ck_assert_int_eq(pxs_evict(s, k), -ENOENT);
	/* The key can be reused while the old value is still pinned. */
	ck_assert_int_eq(pxs_put_at(s, k, "new", 3), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.evicted_pinned, 1);
	ck_assert_int_eq(memcmp(v.data, buf, sizeof buf), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	ck_assert_int_eq(pxs_evict(s, k), 0);
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.evicted_pinned, 0);
	ck_assert_uint_eq(st.heap_used, base.heap_used);
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.evictions, 3);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(heap_full_is_enospc_and_recovers)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 1024);
	pxs_key keys[1024];
	char buf[30000];
	memset(buf, 7, sizeof buf);
	int n = 0, rc;
	pxs_stats base;
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	while ((rc = pxs_put(s, buf, sizeof buf, &keys[n])) == 0)
		n++;
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_gt(n, 10);
	pxs_stats a, b;
	ck_assert_int_eq(pxs_stat(s, &a), 0);
	ck_assert_int_eq(pxs_put(s, buf, sizeof buf, &keys[n]), -ENOSPC);
	ck_assert_int_eq(pxs_stat(s, &b), 0);
	assert_same(&a, &b);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pxs_evict(s, keys[i]), 0);
	/* Everything coalesced: one object of most of the heap fits. */
	ck_assert_int_eq(pxs_stat(s, &b), 0);
	ck_assert_uint_eq(b.heap_used, base.heap_used);
	ck_assert_int_eq(pxs_put(s, buf, sizeof buf, &keys[0]), 0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(table_full_is_enospc)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64);
	pxs_key k[65];
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(pxs_put(s, &i, sizeof i, &k[i]), 0);
	ck_assert_int_eq(pxs_put(s, "x", 1, &k[64]), -ENOSPC);
	ck_assert_int_eq(pxs_future_new(s, &k[64]), -ENOSPC);
	/* Churn: tombstones never make a free slot unreachable. */
	for (int r = 0; r < 2000; r++) {
		int i = r % 64;
		ck_assert_int_eq(pxs_evict(s, k[i]), 0);
		ck_assert_int_eq(pxs_put(s, &r, sizeof r, &k[i]), 0);
	}
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(pxs_exists(s, k[i]), 1);
	pxs_test_done(s, name);
}
END_TEST

struct thr {
	pxs_store *s;
	int id;
	int errors;
};

static void *
thread_churn(void *arg)
{
	struct thr *t = arg;
	char buf[2048] = {0};
	for (int i = 0; i < 3000; i++) {
		pxs_key k;
		size_t n = PXS_TEST_HDR + (size_t)(i * 37 + t->id) % 2000;
		if (pxs_put(t->s, buf, n, &k) != 0) {
			t->errors++;
			continue;
		}
		pxs_view v;
		/* Write the self-check after the key is known, via put_at. */
		pxs_key k2 = pxs_key_from_name(&k, sizeof k);
		pxs_test_fill(buf, n, k2, (uint64_t)i);
		if (pxs_put_at(t->s, k2, buf, n) != 0 ||
		    pxs_get(t->s, k2, &v) != 0 ||
		    pxs_test_verify(v.data, v.size, k2) != 0 ||
		    pxs_release(t->s, &v) != 0 || pxs_evict(t->s, k2) != 0 ||
		    pxs_evict(t->s, k) != 0)
			t->errors++;
	}
	return NULL;
}

START_TEST(many_threads_one_handle)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 32 * MiB, 4096);
	pxs_stats base, st;
	warm_up(s);
	ck_assert_int_eq(pxs_stat(s, &base), 0);
	pthread_t th[8];
	struct thr t[8];
	for (int i = 0; i < 8; i++) {
		t[i] = (struct thr){s, i, 0};
		pthread_create(&th[i], NULL, thread_churn, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].errors, 0);
	}
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.heap_used, base.heap_used);
	pxs_test_done(s, name);
}
END_TEST

struct race {
	const char *name;
	int fd;
};

static int
racing_creator(void *arg)
{
	struct race *r = arg;
	char c;
	if (read(r->fd, &c, 1) != 1) /* barrier: start together */
		return 10;
	pxs_store *s;
	pxs_options o = {.size = 8 * MiB, .flags = PXS_CREATE};
	if (pxs_open(r->name, &o, &s) != 0)
		return 11;
	pxs_key k = pxs_key_from_name(&(pid_t){getpid()}, sizeof(pid_t));
	int rc = pxs_put_at(s, k, "x", 1) == 0 ? 0 : 12;
	pxs_close(s);
	return rc;
}

START_TEST(concurrent_creators_share_one_segment)
{
	for (int round = 0; round < 10; round++) {
		char name[64];
		pxs_test_name(name, sizeof name);
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		struct race r = {name, p[0]};
		pid_t kids[6];
		for (int i = 0; i < 6; i++)
			kids[i] = pxs_test_spawn(racing_creator, &r);
		close(p[0]);
		ck_assert_int_eq(write(p[1], "gggggg", 6), 6);
		close(p[1]);
		for (int i = 0; i < 6; i++)
			ck_assert_int_eq(pxs_test_reap(kids[i], 30), 0);
		pxs_store *s;
		ck_assert_int_eq(pxs_open(name, NULL, &s), 0);
		for (int i = 0; i < 6; i++)
			ck_assert_int_eq(
				pxs_exists(s, pxs_key_from_name(&kids[i],
								sizeof(pid_t))),
				1);
		pxs_test_done(s, name);
	}
}
END_TEST

static pxs_store *fork_store;

static int
child_puts(void *arg)
{
	pxs_key k = pxs_key_from_name("from-child", 10);
	pxs_view v;
	pxs_key pk = *(pxs_key *)arg;
	if (pxs_get(fork_store, pk, &v) != 0 ||
	    memcmp(v.data, "parent", 6) != 0)
		return 2;
	if (pxs_release(fork_store, &v) != 0)
		return 3;
	return pxs_put_at(fork_store, k, "child", 5) == 0 ? 0 : 1;
}

START_TEST(handle_survives_fork)
{
	char name[64];
	fork_store = pxs_test_store(name, 2 * MiB, 64);
	pxs_key pk;
	ck_assert_int_eq(pxs_put(fork_store, "parent", 6, &pk), 0);
	pid_t p = pxs_test_spawn(child_puts, &pk);
	ck_assert_int_eq(pxs_test_reap(p, 30), 0);
	pxs_view v;
	ck_assert_int_eq(
		pxs_get(fork_store, pxs_key_from_name("from-child", 10), &v),
		0);
	ck_assert_mem_eq(v.data, "child", 5);
	ck_assert_int_eq(pxs_release(fork_store, &v), 0);
	pxs_test_done(fork_store, name);
}
END_TEST

START_TEST(list_and_proc_list)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 4 * MiB, 64);
	pxs_key obj, fut, gone;
	pxs_view v;
	ck_assert_int_eq(pxs_put(s, "12345", 5, &obj), 0);
	ck_assert_int_eq(pxs_future_new(s, &fut), 0);
	ck_assert_int_eq(pxs_put(s, "x", 1, &gone), 0);
	ck_assert_int_eq(pxs_get(s, gone, &v), 0);
	ck_assert_int_eq(pxs_evict(s, gone), 0);
	uint64_t cur = 0;
	pxs_entry e;
	int seen = 0, n = 0, rc;
	while ((rc = pxs_list(s, &cur, &e)) == 1) {
		n++;
		if (pxs_key_equal(e.key, obj)) {
			ck_assert_int_eq(e.state, PXS_STATE_VALUE);
			ck_assert_uint_eq(e.size, 5);
			ck_assert_int_eq(e.owner_pid, 0);
			seen |= 1;
		} else if (pxs_key_equal(e.key, fut)) {
			ck_assert_int_eq(e.state, PXS_STATE_PENDING);
			ck_assert_int_eq(e.owner_pid, getpid());
			ck_assert_int_eq(e.owner_alive, 1);
			seen |= 2;
		} else if (pxs_key_equal(e.key, gone)) {
			ck_assert_int_eq(e.state, PXS_STATE_EVICTED);
			ck_assert_uint_eq(e.pins, 1);
			seen |= 4;
		}
		ck_assert_uint_gt(e.created_ns, 0);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(seen, 7);
	ck_assert_int_eq(pxs_list(s, &cur, &e), 0); /* stays at the end */
	ck_assert_int_eq(pxs_list(s, NULL, &e), -EINVAL);
	ck_assert_int_eq(pxs_list(NULL, &cur, &e), -EINVAL);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	pxs_store *t;
	ck_assert_int_eq(pxs_open(name, NULL, &t), 0);
	pxs_proc_info pi;
	cur = 0;
	n = 0;
	while (pxs_proc_list(s, &cur, &pi) == 1) {
		ck_assert_int_eq(pi.pid, getpid());
		ck_assert_int_eq(pi.alive, 1);
		n++;
	}
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(pxs_proc_list(s, NULL, &pi), -EINVAL);
	pxs_close(t);
	pxs_test_done(s, name);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, open_rejects_bad_arguments);
	tcase_add_test(tc, open_create_attach_excl);
	tcase_add_test(tc, mode_is_exact_whatever_the_umask);
	tcase_add_test(tc, attach_refuses_foreign_and_damaged_segments);
	tcase_add_test(tc, put_get_release_sizes);
	tcase_add_test(tc, named_puts_keep_their_names);
	tcase_add_test(tc, named_futures_keep_their_names);
	tcase_add_test(tc, object_errors_change_nothing);
	tcase_add_test(tc, release_rejects_forged_views);
	tcase_add_test(tc, evict_keeps_pinned_views_and_frees_on_release);
	tcase_add_test(tc, heap_full_is_enospc_and_recovers);
	tcase_add_test(tc, table_full_is_enospc);
	tcase_add_test(tc, many_threads_one_handle);
	tcase_add_test(tc, concurrent_creators_share_one_segment);
	tcase_add_test(tc, handle_survives_fork);
	tcase_add_test(tc, list_and_proc_list);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
