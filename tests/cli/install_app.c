/* install_app.c - a user's program, built outside the tree against the
 * installed library (test_install.sh) or a subproject (test_subproject.sh):
 * a future set by a forked child, read by the parent.
 * Usage: app SEGMENT-NAME   (creates it, removes it) */
#define _POSIX_C_SOURCE 200809L
#include <proxyshm.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	pxs_options o = { .size = 4 << 20, .flags = PXS_CREATE | PXS_EXCL };
	pxs_store *s;
	pxs_key k;
	pxs_view v;
	int rc, st;

	if (argc != 2)
		return 2;
	if ((rc = pxs_open(argv[1], &o, &s)) < 0 ||
	    (rc = pxs_future_new(s, &k)) < 0) {
		fprintf(stderr, "app: %s\n", pxs_strerror(rc));
		return 1;
	}
	if (fork() == 0)
		_exit(pxs_future_set(s, k, "installed", 10) == 0 ? 0 : 1);
	rc = pxs_future_wait(s, k, 10000, &v);
	wait(&st);
	if (rc < 0 || strcmp(v.data, "installed") != 0)
		return 1;
	printf("%s %s\n", (const char *)v.data, pxs_version());
	pxs_release(s, &v);
	pxs_close(s);
	return pxs_unlink(argv[1]) == 0 ? 0 : 1;
}
