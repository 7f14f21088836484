/* shmwait.c - waiting for a segment to be created (pxs_options.wait_ms).
 *
 * Owns: the inotify watch on /dev/shm. An attacher that finds no segment
 * watches the directory for entries created or renamed into it (a creator
 * publishes with a rename: segment.c), then looks for the name again, and
 * sleeps in poll() until an event or the deadline. The watch is set up
 * before the look, so a creation between the two is an event: no polling
 * loop, and no creation missed.
 */
#include "internal.h"

#include <poll.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

int
pxs__segment_await(const char *name, uint64_t end_ns)
{
	char path[sizeof SHM_DIR + PXS_NAME_MAX + 2];
	snprintf(path, sizeof path, SHM_DIR "%s", name);
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? -errno : -ENOMEM;
	int rc = 0;
	if (inotify_add_watch(fd, SHM_DIR, IN_CREATE | IN_MOVED_TO) < 0) {
		rc = errno == ENOSPC ? -EMFILE : errno == ENOMEM ? -ENOMEM
								 : -ENOENT;
		goto out;
	}
	for (;;) {
		if (access(path, F_OK) == 0)
			break; /* there: the caller opens it */
		uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
		if (now >= end_ns) {
			rc = -ENOENT;
			break;
		}
		uint64_t ms = (end_ns - now + 999999u) / 1000000u;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, end_ns == UINT64_MAX ? -1
				   : ms > INT32_MAX ? INT32_MAX
						    : (int)ms) > 0) {
			char buf[4096]; /* drain: we look at the name itself */
			while (read(fd, buf, sizeof buf) > 0)
				;
		}
	}
out:
	close(fd);
	return rc;
}
