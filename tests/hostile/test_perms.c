/* test_perms.c - PLAN D1, D4, D5 (the parts that need no root): exact
 * modes whatever the umask, links in /dev/shm, descriptors and mappings
 * neither leaked nor inherited across exec.
 *
 * The test binary doubles as its own exec'd helper: run with
 * "--fd-check" it lists /proc/self/fd and exits 1 if any descriptor
 * refers to /dev/shm (libuv's way: one binary, helper chosen by argv[1]).
 */
#include "hostile.h"
#include "pxs_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB HX_MiB

static mode_t
file_mode(const char *name)
{
	char path[128];
	struct stat st;
	hx_path(path, sizeof path, name);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

START_TEST(d1_mode_exact_whatever_the_umask)
{
	const mode_t umasks[] = {0, 022, 027, 077, 0777};
	const mode_t modes[] = {0, 0600, 0660, 0640, 0666, 0644, 0400, 0700};
	for (size_t u = 0; u < sizeof umasks / sizeof *umasks; u++) {
		mode_t old = umask(umasks[u]);
		for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
			char name[64];
			pxs_store *s, *t;
			pxs_test_name(name, sizeof name);
			pxs_options o = {.flags = PXS_CREATE | PXS_EXCL,
					 .size = 2 * MiB,
					 .mode = modes[m]};
			ck_assert_int_eq(pxs_open(name, &o, &s), 0);
			mode_t want = modes[m] ? modes[m] : 0600;
			ck_assert_msg(file_mode(name) == want,
				      "umask %03o mode %03o: got %03o",
				      umasks[u], modes[m], file_mode(name));
			/* Attaching with CREATE and another mode changes
			 * nothing. */
			o.flags = PXS_CREATE;
			o.mode = 0666;
			ck_assert_int_eq(pxs_open(name, &o, &t), 0);
			ck_assert_uint_eq(file_mode(name), want);
			pxs_close(t);
			pxs_test_done(s, name);
		}
		umask(old);
	}
}
END_TEST

/* A symlink at the segment's name is never followed: not to attach, not
 * to create, whatever it points at; the answer is -EPROTO ("not a
 * segment"; it was an undocumented -ELOOP: test_bugs.c, symlink_code). */
START_TEST(d4_symlink_not_followed)
{
	char name[64], path[128], target[128], seg[64], segpath[128];
	pxs_store *s = NULL;
	pxs_options o = {.flags = PXS_CREATE, .size = 2 * MiB};
	/* (a) to an ordinary file outside /dev/shm */
	snprintf(target, sizeof target, "/tmp/pxs-hx-target-%ld",
		 (long)getpid());
	int fd = open(target, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "precious", 8), 8);
	close(fd);
	pxs_test_name(name, sizeof name);
	hx_path(path, sizeof path, name);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &s), -EPROTO);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(pxs_open(name, &o, &s), -EPROTO);
	ck_assert_ptr_null(s);
	struct stat st;
	ck_assert_int_eq(stat(target, &st), 0);
	ck_assert_int_eq(st.st_size, 8); /* not truncated, not sized */
	char b[16] = {0};
	fd = open(target, O_RDONLY);
	ck_assert_int_eq(read(fd, b, sizeof b), 8);
	close(fd);
	ck_assert_str_eq(b, "precious");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISLNK(st.st_mode)); /* not replaced either */
	ck_assert_int_eq(unlink(path), 0);
	unlink(target);
	/* (b) dangling: nothing is created at the target */
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(pxs_open(name, &o, &s), -EPROTO);
	ck_assert_int_eq(access(target, F_OK), -1);
	ck_assert_int_eq(unlink(path), 0);
	/* (c) to another, valid segment: not attached through the link */
	s = pxs_test_store(seg, 2 * MiB, 64);
	ck_assert_int_eq(pxs_put_at(s, (pxs_key){1, 1}, "x", 1), 0);
	hx_path(segpath, sizeof segpath, seg);
	ck_assert_int_eq(symlink(segpath, path), 0);
	pxs_store *t = (pxs_store *)&t;
	ck_assert_int_eq(pxs_open(name, NULL, &t), -EPROTO);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(pxs_open(name, &o, &t), -EPROTO);
	ck_assert_int_eq(unlink(path), 0);
	pxs_test_done(s, seg);
}
END_TEST

/* ---- D5: descriptors ----------------------------------------------------- */

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Mappings of shm objects (other mappings come and go with malloc and
 * the sanitizers). */
static int
count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, "/dev/shm/") != NULL;
	fclose(f);
	return n;
}

/* The exec'd helper: 0 if no descriptor refers to /dev/shm. */
static int
fd_check(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int bad = 0;
	while ((de = readdir(d)) != NULL) {
		char link[300], path[300];
		snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/dev/shm/", 9) == 0) {
			fprintf(stderr, "inherited fd %s -> %s\n", de->d_name,
				link);
			bad = 1;
		}
	}
	closedir(d);
	return bad;
}

START_TEST(d5_no_fd_inherited_across_exec)
{
	char name[64], proxy[PXS_PROXY_STRLEN];
	pxs_store *s = pxs_test_store(name, 2 * MiB, 64), *t;
	pxs_key k;
	ck_assert_int_eq(pxs_put(s, "v", 1, &k), 0);
	ck_assert_int_eq(pxs_open(name, NULL, &t), 0);
	pxs_proxy *p;
	const void *d;
	size_t n;
	ck_assert_int_eq(pxs_proxy_new(name, k, &p), 0);
	ck_assert_int_eq(pxs_proxy_resolve(p, 0, &d, &n), 0);
	ck_assert_int_gt(pxs_proxy_format(p, proxy, sizeof proxy), 0);
	/* exec directly, and from a forked child whose handles were
	 * re-opened by the atfork handler */
	for (int via_fork_use = 0; via_fork_use < 2; via_fork_use++) {
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			if (via_fork_use && pxs_put(s, "c", 1, &k) != 0)
				_exit(3);
			execl("/proc/self/exe", "test-hostile-perms",
			      "--fd-check", (char *)NULL);
			_exit(2);
		}
		ck_assert_int_eq(pxs_test_reap(pid, 30), 0);
	}
	pxs_proxy_free(p);
	pxs_close(t);
	pxs_test_done(s, name);
}
END_TEST

/* Failed opens leave no descriptor and no mapping behind, and a
 * successful open + close leaves none either. */
START_TEST(d5_no_leak_on_failure)
{
	char name[64], exist[64], junk[64];
	pxs_store *s = pxs_test_store(exist, 2 * MiB, 64);
	pxs_close(s);
	pxs_test_name(junk, sizeof junk);
	ck_assert_int_eq(hx_shm_write(junk, "junk", 4, 2 * MiB), 0);
	pxs_test_name(name, sizeof name);
	int fds = count_fds(), maps = count_maps();
	for (int i = 0; i < 100; i++) {
		pxs_options excl = {.flags = PXS_CREATE | PXS_EXCL};
		pxs_options small = {.flags = PXS_CREATE, .size = 4096};
		ck_assert_int_eq(pxs_open(name, NULL, &s), -ENOENT);
		ck_assert_int_eq(pxs_open(exist, &excl, &s), -EEXIST);
		ck_assert_int_eq(pxs_open(junk, NULL, &s), -EPROTO);
		ck_assert_int_eq(pxs_open(junk, &excl, &s), -EEXIST);
		ck_assert_int_eq(pxs_open(name, &small, &s), -EINVAL);
		ck_assert_int_eq(pxs_open(exist, NULL, &s), 0);
		ck_assert_int_eq(pxs_close(s), 0);
	}
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_int_eq(count_maps(), maps);
	pxs_unlink(exist);
	pxs_unlink(junk);
}
END_TEST

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--fd-check") == 0)
		return fd_check();
	Suite *s = suite_create("hostile-perms");
	TCase *tc = tcase_create("perms");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, d1_mode_exact_whatever_the_umask);
	tcase_add_test(tc, d4_symlink_not_followed);
	tcase_add_test(tc, d5_no_fd_inherited_across_exec);
	tcase_add_test(tc, d5_no_leak_on_failure);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
