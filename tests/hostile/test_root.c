/* test_root.c - PLAN D2, D3, B3 and the small-/dev/shm cases: the parts
 * that need root. CI runs as root; elsewhere the whole program prints
 * "SKIP <id>: needs root" for each scenario and exits 77 (meson: skipped).
 *
 * Permission tests drop privileges in a child (setgroups, setresgid,
 * setresuid to 65534), because root bypasses the mode bits. The /dev/shm
 * size tests run in a child that unshares its mount namespace and mounts a
 * small tmpfs over /dev/shm, so nothing outside the child sees it.
 */
#include "hostile.h"
#include "pxs_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB HX_MiB
#define NOBODY 65534

static const char *const scenarios[] = {"D2", "D3", "B3", "D5-tmpfs"};

static int
drop_privileges(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/* ---- D2: another user is denied ---------------------------------------- */

struct d2 {
	char name[64];
	int want_attach; /* what attach must return for this mode */
};

static int
d2_child(void *arg)
{
	struct d2 *d = arg;
	pxs_store *s;
	pxs_options create = {.flags = PXS_CREATE, .size = 2 * MiB};
	pxs_options excl = {.flags = PXS_CREATE | PXS_EXCL, .size = 2 * MiB};
	if (drop_privileges() < 0)
		return 10;
	if (pxs_open(d->name, NULL, &s) != d->want_attach)
		return 11;
	if (pxs_open(d->name, &create, &s) != d->want_attach)
		return 12;
	/* "exists" or "not yours": both are true, either is documented */
	int rc = pxs_open(d->name, &excl, &s);
	if (rc != -EEXIST && rc != d->want_attach)
		return 13;
	rc = pxs_unlink(d->name);
	if (rc != -EACCES && rc != -EPERM)
		return 14;
	/* Through a proxy too. */
	pxs_proxy *p;
	const void *data;
	size_t n;
	if (pxs_proxy_new(d->name, (pxs_key){1, 1}, &p) != 0)
		return 15;
	rc = pxs_proxy_resolve(p, 0, &data, &n);
	pxs_proxy_free(p);
	return rc == d->want_attach ? 0 : 16;
}

START_TEST(d2_other_user_denied)
{
	/* 0600 and 0644: the mode denies read-write (-EACCES); 0666: the
	 * mode allows it, the owner check refuses (-EPERM, D3). */
	const mode_t modes[] = {0, 0600, 0644, 0660, 0666};
	const int want[] = {-EACCES, -EACCES, -EACCES, -EACCES, -EPERM};
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
		struct d2 d = {.want_attach = want[i]};
		pxs_test_name(d.name, sizeof d.name);
		pxs_options o = {.flags = PXS_CREATE | PXS_EXCL,
				 .size = 2 * MiB,
				 .mode = modes[i]};
		pxs_store *s;
		ck_assert_int_eq(pxs_open(d.name, &o, &s), 0);
		ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 1}, "root", 4), 0);
		uint64_t before = hx_shm_hash(d.name);
		pid_t p = pxs_test_spawn(d2_child, &d);
		int rc = pxs_test_reap(p, 30);
		ck_assert_msg(rc == 0, "mode %03o: child failed at step %d",
			      modes[i], rc);
		ck_assert_msg(hx_shm_hash(d.name) == before,
			      "mode %03o: bytes changed", modes[i]);
		pxs_view v;
		ck_assert_int_eq(pxs_get(s, (pxs_key){1, 1}, &v), 0);
		ck_assert_mem_eq(v.data, "root", 4);
		ck_assert_int_eq(pxs_release(s, &v), 0);
		pxs_test_done(s, d.name);
	}
}
END_TEST

/* ---- D3: squatting ------------------------------------------------------ */

struct d3 {
	char name[64];
	bool valid_image;
};

static int
d3_squatter(void *arg)
{
	struct d3 *d = arg;
	if (drop_privileges() < 0)
		return 10;
	umask(0);
	if (d->valid_image) {
		pxs_store *s;
		pxs_options o = {.flags = PXS_CREATE | PXS_EXCL,
				 .size = 2 * MiB,
				 .mode = 0666};
		if (pxs_open(d->name, &o, &s) != 0)
			return 11;
		if (pxs_put_at(s, (pxs_key){1, 1}, "bait", 4) != 0)
			return 12;
		pxs_close(s);
		return 0;
	}
	int fd = shm_open(d->name, O_RDWR | O_CREAT | O_EXCL, 0666);
	if (fd < 0 || ftruncate(fd, 2 * MiB) < 0 ||
	    write(fd, "squatter", 8) != 8)
		return 13;
	close(fd);
	return 0;
}

START_TEST(d3_squatting_refused)
{
	for (int valid = 0; valid < 2; valid++) {
		struct d3 d = {.valid_image = valid};
		pxs_test_name(d.name, sizeof d.name);
		pid_t p = pxs_test_spawn(d3_squatter, &d);
		ck_assert_int_eq(pxs_test_reap(p, 30), 0);
		uint64_t before = hx_shm_hash(d.name);
		ck_assert_uint_ne(before, 0);
		pxs_store *s = (pxs_store *)&s;
		pxs_options create = {.flags = PXS_CREATE, .size = 2 * MiB};
		pxs_options excl = {.flags = PXS_CREATE | PXS_EXCL,
				    .size = 2 * MiB};
		ck_assert_int_eq(pxs_open(d.name, &create, &s), -EPERM);
		ck_assert_ptr_null(s);
		ck_assert_int_eq(pxs_open(d.name, NULL, &s), -EPERM);
		ck_assert_int_eq(pxs_open(d.name, &excl, &s), -EEXIST);
		pxs_proxy *px;
		const void *data;
		size_t n;
		ck_assert_int_eq(pxs_proxy_new(d.name, (pxs_key){1, 1}, &px),
				 0);
		ck_assert_int_eq(pxs_proxy_resolve(px, 0, &data, &n), -EPERM);
		pxs_proxy_free(px);
		ck_assert_msg(hx_shm_hash(d.name) == before,
			      "root wrote into the squatter's file");
		/* root may remove it, and then create its own */
		ck_assert_int_eq(pxs_unlink(d.name), 0);
		ck_assert_int_eq(pxs_open(d.name, &excl, &s), 0);
		pxs_test_done(s, d.name);
	}
}
END_TEST

/* ---- a small /dev/shm ---------------------------------------------------- */

/* In a child: a private mount namespace with a tmpfs of @p opts over
 * /dev/shm. 0 on success; 77 (skip) if the kernel or container refuses. */
static int
private_shm(const char *opts)
{
	if (unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return 77;
	return 0;
}

static int
shm_entries(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' ||
		     strncmp(de->d_name, ".pxs", 4) == 0;
	closedir(d);
	return n;
}

/* B3 and the brief's case: a 64 MiB segment on an 8 MiB tmpfs. Creation
 * may succeed (the heap is backed lazily) or fail with -ENOSPC; puts fail
 * with -ENOSPC once the tmpfs is full; no process ever gets SIGBUS. */
static int
tiny_tmpfs_child(void *arg)
{
	int rc = private_shm("size=8m");
	if (rc)
		return rc;
	hx_deadline(60);
	char name[64];
	hx_name(name, sizeof name, "tiny");
	pxs_store *s, *t;
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL, .size = 64 * MiB};
	rc = pxs_open(name, &o, &s);
	if (rc == -ENOSPC)
		return shm_entries() == 0 ? 0 : 20;
	if (rc != 0)
		return 21;
	if (pxs_open(name, NULL, &t) != 0)
		return 22;
	static unsigned char buf[MiB];
	pxs_key keys[64];
	int stored = 0;
	for (int i = 0; i < 64; i++) {
		pxs_key k = {7, (uint64_t)i + 1};
		pxs_test_fill(buf, sizeof buf, k, (uint64_t)i);
		rc = pxs_put_at(i % 2 ? s : t, k, buf, sizeof buf);
		if (rc == -ENOSPC)
			break;
		if (rc != 0)
			return 23;
		keys[stored++] = k;
	}
	if (stored == 0 || stored >= 8)
		return 24; /* 8 MiB cannot hold 8 x 1 MiB plus metadata */
	/* A reservation that cannot be backed fails too, cleanly. */
	pxs_key f;
	void *w;
	if (pxs_future_new(s, &f) != 0)
		return 25;
	rc = pxs_future_reserve(s, f, 4 * MiB, &w);
	if (rc != -ENOSPC)
		return 26;
	for (int i = 0; i < stored; i++) {
		pxs_view v;
		if (pxs_get(i % 2 ? t : s, keys[i], &v) != 0 ||
		    pxs_test_verify(v.data, v.size, keys[i]) != 0 ||
		    pxs_release(i % 2 ? t : s, &v) != 0)
			return 27;
	}
	for (int i = 0; i < stored; i++)
		if (pxs_evict(s, keys[i]) != 0)
			return 28;
	pxs_test_fill(buf, sizeof buf, keys[0], 0);
	if (pxs_put_at(t, keys[0], buf, sizeof buf) != 0)
		return 29; /* the memory is reused */
	if (pxs_future_set(s, f, buf, 1000) != 0)
		return 30;
	pxs_check_report cr;
	if (pxs_check(t, &cr) != 0)
		return 31;
	printf("D5-tmpfs: 64 MiB segment on 8 MiB tmpfs: %d x 1 MiB stored "
	       "before -ENOSPC\n",
	       stored);
	pxs_close(t);
	pxs_close(s);
	pxs_unlink(name);
	return 0;
}

START_TEST(tiny_tmpfs_no_sigbus)
{
	pid_t p = pxs_test_spawn(tiny_tmpfs_child, NULL);
	int rc = pxs_test_reap(p, 90);
	if (rc == 77) {
		printf("SKIP D5-tmpfs: cannot mount a private tmpfs\n");
		return;
	}
	ck_assert_msg(rc == 0, "child ended with %d (128+7 is SIGBUS)", rc);
}
END_TEST

/* B3: the metadata does not fit: -ENOSPC from pxs_open, nothing left;
 * a 2 MiB segment in the same tmpfs works. (An 8 MiB segment in a 4 MiB
 * tmpfs opens: the heap is backed as it is used, see tiny_tmpfs.) */
static int
metadata_too_big_child(void *arg)
{
	int rc = private_shm("size=4m");
	if (rc)
		return rc;
	hx_deadline(60);
	char name[64];
	hx_name(name, sizeof name, "meta");
	pxs_store *s;
	pxs_options o = {
		.flags = PXS_CREATE, .size = 256 * MiB, .capacity = 1u << 16};
	rc = pxs_open(name, &o, &s);
	if (rc != -ENOSPC)
		return 40;
	if (shm_entries() != 0)
		return 41; /* the private creation object was left behind */
	o.size = 2 * MiB;
	o.capacity = 64;
	if (pxs_open(name, &o, &s) != 0)
		return 42; /* a segment that fits still works */
	if (pxs_put(s, "x", 1, &(pxs_key){0, 0}) != 0)
		return 43;
	pxs_close(s);
	pxs_unlink(name);
	return 0;
}

START_TEST(b3_metadata_does_not_fit)
{
	pid_t p = pxs_test_spawn(metadata_too_big_child, NULL);
	int rc = pxs_test_reap(p, 90);
	if (rc == 77) {
		printf("SKIP B3: cannot mount a private tmpfs\n");
		return;
	}
	ck_assert_msg(rc == 0, "child ended with %d", rc);
}
END_TEST

/* A full tmpfs: a segment created before it filled keeps working for a
 * new attacher (its metadata was backed at creation). */
static int
full_tmpfs_child(void *arg)
{
	int rc = private_shm("size=4m");
	if (rc)
		return rc;
	hx_deadline(60);
	char name[64];
	hx_name(name, sizeof name, "full");
	pxs_store *s, *t;
	pxs_options o = {.flags = PXS_CREATE, .size = 16 * MiB, .capacity = 64};
	if (pxs_open(name, &o, &s) != 0)
		return 50;
	pxs_key k;
	if (pxs_put(s, "kept", 4, &k) != 0)
		return 51;
	/* Fill the rest of the tmpfs with another file. */
	int fd = open("/dev/shm/filler", O_RDWR | O_CREAT, 0600);
	static char junk[65536];
	while (write(fd, junk, sizeof junk) == (ssize_t)sizeof junk)
		;
	close(fd);
	if (pxs_open(name, NULL, &t) != 0)
		return 52;
	pxs_view v;
	rc = pxs_get(t, k, &v);
	if (rc == 0) {
		if (v.size != 4 || memcmp(v.data, "kept", 4) ||
		    pxs_release(t, &v))
			return 53;
	} else if (rc != -ENOSPC) { /* documented: no room for pin records */
		return 54;
	}
	static unsigned char big[3 * MiB];
	rc = pxs_put(t, big, sizeof big, &k);
	if (rc != -ENOSPC)
		return 55;
	pxs_close(t);
	pxs_close(s);
	return 0;
}

START_TEST(full_tmpfs_attach)
{
	pid_t p = pxs_test_spawn(full_tmpfs_child, NULL);
	int rc = pxs_test_reap(p, 90);
	if (rc == 77) {
		printf("SKIP B3: cannot mount a private tmpfs\n");
		return;
	}
	ck_assert_msg(rc == 0, "child ended with %d (128+7 is SIGBUS)", rc);
}
END_TEST

int
main(void)
{
	if (geteuid() != 0) {
		for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios;
		     i++)
			printf("SKIP %s: needs root\n", scenarios[i]);
		return 77;
	}
	Suite *s = suite_create("hostile-root");
	TCase *tc = tcase_create("root");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, d2_other_user_denied);
	tcase_add_test(tc, d3_squatting_refused);
	tcase_add_test(tc, tiny_tmpfs_no_sigbus);
	tcase_add_test(tc, b3_metadata_does_not_fit);
	tcase_add_test(tc, full_tmpfs_attach);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
