/* cmd_future.c - the subcommands that act on futures: future, set, wait.
 *
 * Owns: creating a future from the shell (ownerless, or kept by a keeper
 * process with --owned), claiming it while its value is read, and waiting.
 *
 * OWNERLESS BY DEFAULT. A future belongs to the process that created or
 * last claimed it, and is abandoned when that process detaches or dies, so
 * that waiters never hang on a producer that is gone. `proxyshm future`
 * exits as soon as it has printed the proxy string, so it gives the future
 * up (pxs_future_disown()): the future stays pending until a producer sets
 * it, and leaves no process behind. The producer's death is still seen:
 * `proxyshm set` claims the future (pxs_future_claim()) before it reads
 * its input, so a producer killed while it reads abandons the future and
 * its waiters exit 4. --timeout gives the future a lifetime (pxs_expire()):
 * then it is evicted, set or not, and its waiters exit 4.
 *
 * THE KEEPER (--owned). For a future whose creator's death should abandon
 * it before any producer has claimed it, a daemonised grandchild (own
 * session, stdio on /dev/null, no inherited descriptors, so that
 * `p=$(proxyshm future ...)` returns at once) claims the future and stays
 * attached until the future is set, evicted or abandoned, until its
 * segment is removed, or until --timeout runs out (10 minutes when not
 * given: a keeper never lives for ever); then it detaches, which abandons
 * the future only if it is still pending. The parent prints the proxy
 * string only after the keeper has claimed the future. The keeper polls
 * pxs_future_done() every 200 ms (it must not sleep in pxs_future_wait():
 * it would show up as a waiter and pin the value).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEEPER_POLL_MS 200

static uint64_t
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Is @p path still the segment file the keeper started with? */
static int
same_file(const char *path, const struct stat *was)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_ino == was->st_ino &&
	       st.st_dev == was->st_dev;
}

/* The keeper: claim, report to the parent through @p ready, then hold on. */
_Noreturn static void
keeper(pxs_store *s, const char *name, pxs_key key, long timeout_ms,
       int ready)
{
	uint64_t now, deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ?
							  timeout_ms : 0);
	char path[PXS_NAME_MAX + 16];
	struct timespec d;
	struct stat seg;
	int fd, rc = 0;

	if (chdir("/") < 0)
		rc = -errno;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	/* A segment's keeper also stops when the segment is removed; a Redis
	 * store has no file to watch (its futures go with the keys). */
	const bool shm = name[0] == '/';
	if (shm) {
		cli_shm_path(name, path, sizeof path);
		if (rc == 0 && stat(path, &seg) < 0)
			rc = -ENOENT;
	}
	if (rc == 0)
		rc = pxs_future_claim(s, key);
	while (write(ready, &rc, sizeof rc) < 0 && errno == EINTR)
		;
	close(ready);
	if (rc < 0)
		_exit(1);
	for (;;) {
		/* 1 set, <0 evicted, abandoned or broken: nothing to keep */
		if (pxs_future_done(s, key) != 0 ||
		    (shm && !same_file(path, &seg)))
			break;
		now = mono_ms();
		if (timeout_ms >= 0 && now >= deadline)
			break;
		d.tv_sec = 0;
		d.tv_nsec = KEEPER_POLL_MS * 1000000L;
		if (timeout_ms >= 0 && deadline - now < KEEPER_POLL_MS)
			d.tv_nsec = (long)(deadline - now) * 1000000L;
		nanosleep(&d, NULL);
	}
	pxs_close(s);
	_exit(0);
}

/*
 * Start the keeper (a grandchild, so that nobody needs to reap it and it
 * is not in our session) and wait until it has claimed the future.
 * Returns 0 or the negative errno of the claim.
 */
static int
start_keeper(pxs_store *s, const char *name, pxs_key key, long timeout_ms)
{
	int fds[2], rc = -ECHILD, status;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid == 0) {
		close(fds[0]);
		if (setsid() < 0 || (pid = fork()) < 0)
			_exit(1);
		if (pid > 0)
			_exit(0);
		keeper(s, name, key, timeout_ms, fds[1]);
	}
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	do
		n = read(fds[0], &rc, sizeof rc);
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	/* no report: the keeper never started or died before claiming */
	return n == (ssize_t)sizeof rc ? rc : -ECHILD;
}

/*
 * Descriptors inherited from the caller beyond stdio (a pipe that a test
 * harness or a parent script reads on fd 3, say) would stay open in the
 * keeper and keep the reader of that pipe waiting for as long as the
 * keeper lives. Nothing here needs them: close them all before the library
 * opens its own. (stdin, stdout and stderr, the write end of $(...), the
 * keeper points at /dev/null.)
 */
static void
close_inherited(void)
{
	long max = sysconf(_SC_OPEN_MAX);

	if (close_range(3, ~0u, 0) == 0)
		return;
	for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		close(fd);
}

/* --owned without --timeout: a keeper's lifetime is always bounded. */
#define KEEPER_DEFAULT_MS (600 * 1000L)

/* Give the new future @p key up, or hand it to a keeper (--owned). */
static int
let_go(const struct cli_args *a, pxs_store *s, const char *name, pxs_key key)
{
	int rc;

	if (cli_has(a, CLI_OPT_OWNED)) {
		rc = start_keeper(s, name, key, a->timeout_ms >= 0 ?
				  a->timeout_ms : KEEPER_DEFAULT_MS);
		if (rc == -ECHILD)
			fprintf(stderr, "proxyshm future: the keeper process "
				"failed\n");
		return rc == -ECHILD ? CLI_ERROR :
		       rc < 0 ? cli_fail(rc, "keep the future in %s", name) : 0;
	}
	/* A producer that knew the --name may have claimed, reserved or set
	 * the future already: then it is theirs, as it should be. */
	rc = pxs_future_disown(s, key);
	if (rc < 0 && rc != -EPERM && rc != -EBUSY && rc != -EALREADY)
		return cli_fail(rc, "give up the future in %s", name);
	if (a->timeout_ms >= 0 &&
	    (rc = pxs_expire(s, key, a->timeout_ms)) < 0)
		return cli_fail(rc, "give the future in %s a lifetime", name);
	return 0;
}

int
cli_future(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1], proxy[PXS_PROXY_STRLEN];
	const char *keyname = a->keyname;
	pxs_store *s;
	pxs_key key;
	int rc;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if (cli_has(a, CLI_OPT_OWNED))
		close_inherited();
	if ((rc = cli_open(name, &s)) != CLI_OK)
		return rc;
	if (keyname) {
		/* Kept with the future: `ls` shows it, --prefix finds it. */
		rc = pxs_future_new_named(s, keyname, &key);
	} else {
		rc = pxs_future_new(s, &key);
	}
	if (rc == -EEXIST && keyname) {
		fprintf(stderr, "proxyshm future: key '%s' is in use in %s "
			"(evict it first, or choose another --name)\n",
			keyname, name);
		rc = CLI_EXISTS;
		goto out;
	}
	if (rc < 0) {
		rc = cli_fail(rc, "new future in %s", name);
		goto out;
	}
	if ((rc = cli_proxy_string(name, key, proxy)) < 0)
		rc = cli_fail(rc, "proxy for %s", name);
	else
		rc = let_go(a, s, name, key);
	if (rc != 0) {
		pxs_evict(s, key); /* leave nothing behind */
		goto out;
	}
	printf("%s\n", proxy);
	rc = CLI_OK;
out:
	pxs_close(s);
	return rc;
}

/* ---- set, wait ---------------------------------------------------------- */

int
cli_set(const struct cli_args *a)
{
	const char *file;
	struct cli_input in;
	struct cli_ref r;
	pxs_store *s;
	int rc;

	if ((rc = cli_open_target(a, 1, &r, &s, &file)) != CLI_OK)
		return rc;
	/* Ours while we read: if we die reading, the future is abandoned
	 * (its waiters learn it) instead of staying pending for ever. */
	if ((rc = pxs_future_claim(s, r.key)) < 0) {
		rc = cli_key_fail(rc, "set", &r);
		goto out;
	}
	if ((rc = cli_input_read(file, &in)) == CLI_OK) {
		if ((rc = pxs_future_set(s, r.key, in.data, in.size)) < 0)
			rc = cli_key_fail(rc, "set", &r);
		cli_input_free(&in);
	}
	/* A set that failed for a reason of ours (no such file, heap full)
	 * leaves the future pending for another try, not abandoned. */
	if (rc != CLI_OK)
		pxs_future_disown(s, r.key);
out:
	pxs_close(s);
	return rc;
}

int
cli_wait(const struct cli_args *a)
{
	return cli_read_value(a, 1);
}
