/* errors.c - error texts and the version string.
 *
 * Owns: pxs_strerror() and pxs_version(). Both return static strings and
 * are thread-safe; strerror(3) is not, so it is never called: codes this
 * library does not produce get a generic text instead.
 */
#include "internal.h"

#include <limits.h>

/*
 * One entry per errno value a pxs_ function can return, worded for what it
 * means here rather than what it means to the kernel (-EPROTO is "not a
 * proxyshm segment", not "protocol error"), in the words of someone who
 * uses a store, not of its code: one short line, no flag or function names
 * (the CLI prints them as they are). Indexed by the positive errno
 * value; gaps are NULL. The first block is the library's own meanings (see
 * the header's Errors section), the second the ordinary ones from the
 * @return lists, the third what a syscall underneath could still pass up.
 */
static const char *const error_texts[] = {
	[0] = "success",

	[EPROTO] = "not a proxyshm segment, a different version, or damaged",
	[EOWNERDEAD] = "future abandoned: its owner went away before setting it",
	[ECANCELED] = "future evicted while waiting for it",
	[EALREADY] = "already set (a future), ended or joined (a stream)",
	[EAGAIN] = "future still pending",
	[ENOTRECOVERABLE] = "segment damaged beyond repair by a crashed process; "
			    "recreate it",

	[ETIMEDOUT] = "timed out",
	[EPROTONOSUPPORT] = "Redis stores are not supported by this build "
			    "(built without hiredis)",
	[ECONNREFUSED] = "connection refused by the Redis server",
	[EHOSTUNREACH] = "Redis server unreachable (or its host unknown)",
	[ECONNRESET] = "connection to the Redis server lost",
	[ENOSPC] = "store full, or no room left in /dev/shm",
	[EEXIST] = "already exists",
	[ENOENT] = "no such segment or key",
	[EINVAL] = "invalid argument",
	[EBUSY] = "being written and not yet committed",
	[EPERM] = "not permitted: the segment or future belongs to someone else",
	[EACCES] = "permission denied",
	[EOVERFLOW] = "too many views of one value held at once",
	[EUSERS] = "too many processes attached to the segment",
	[EMFILE] = "too many open files in this process",
	[ENFILE] = "too many open files in the system",
	[ENOMEM] = "out of memory",
	[ENAMETOOLONG] = "name too long",

	[EINTR] = "interrupted system call",
	[EIO] = "input/output error",
	[EBADF] = "bad file descriptor",
	[EFAULT] = "bad address",
	[ENOSYS] = "function not implemented by this system",
	[ENOTSUP] = "operation not supported by this kind of store or system",
	[EFBIG] = "file too large",
	[ENODEV] = "no such device (shared memory unavailable)",
	[EROFS] = "read-only file system",
	[EDEADLK] = "resource deadlock avoided",
	[ESRCH] = "no such process",
	[ERANGE] = "item no longer in the stream (slid out of its window)",
	[EPIPE] = "stream ended: no more items",
	[EIDRM] = "stream deleted while the call was using it",
};

#define N_ERROR_TEXTS (sizeof(error_texts) / sizeof(error_texts[0]))

const char *
pxs_strerror(int err)
{
	/* Negate in unsigned arithmetic: -INT_MIN would overflow. */
	unsigned code = err < 0 ? 0u - (unsigned)err : (unsigned)err;

	if (code < N_ERROR_TEXTS && error_texts[code] != NULL)
		return error_texts[code];
	return "unknown error";
}

/* Two levels, so that the macros expand before # quotes them. */
#define PXS_STR_(x) #x
#define PXS_STR(x) PXS_STR_(x)

const char *
pxs_version(void)
{
	return PXS_STR(PXS_VERSION_MAJOR) "." PXS_STR(PXS_VERSION_MINOR) "."
		PXS_STR(PXS_VERSION_PATCH);
}
