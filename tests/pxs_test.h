/* pxs_test.h - helpers shared by the test programs: unique names, stores,
 * child processes, "is it asleep in the kernel?", self-verifying payloads.
 *
 * Children never call ck_* (a failed assertion in a forked child does not
 * fail the test): they _exit() with a code and the parent asserts it.
 */
#ifndef PXS_TEST_H
#define PXS_TEST_H

#include "proxyshm.h"
#include <check.h>
#include <stdint.h>
#include <sys/types.h>

/** Write a fresh segment name, unique to this process and call. */
void pxs_test_name(char *buf, size_t len);
/** Create a fresh store (PXS_CREATE|PXS_EXCL); name written to name[64]. */
pxs_store *pxs_test_store(char name[64], size_t size, uint32_t capacity);
/** pxs_stat(), asserted to succeed. */
pxs_stats pxs_test_stat(pxs_store *s);
/** Close and unlink. */
void pxs_test_done(pxs_store *s, const char *name);

/** Fork; the child runs fn(arg) and _exit()s with its return value. */
pid_t pxs_test_spawn(int (*fn)(void *), void *arg);
/** Wait up to timeout_s for pid; returns its exit code, 128+signal if
 *  killed, or -1 on timeout (the child is then SIGKILLed and reaped). */
int pxs_test_reap(pid_t pid, int timeout_s);
/** Poll until the thread `tid` (a pid for single-threaded processes) is
 *  blocked in the futex (or futex_waitv) syscall; 0, or -1 after timeout_ms. */
int pxs_test_wait_blocked(pid_t tid, int timeout_ms);

/** Bytes needed by a self-verifying payload carrying n data bytes. */
#define PXS_TEST_HDR 40u
/** Fill buf[len] (len >= PXS_TEST_HDR): header with key, length and XXH3
 *  of the data, then data derived from seed. */
void pxs_test_fill(void *buf, size_t len, pxs_key k, uint64_t seed);
/** 0 if buf[len] is a valid payload for key k, else -1. */
int pxs_test_verify(const void *buf, size_t len, pxs_key k);

/** Run a suite; returns the process exit code (0 when all passed). */
int pxs_test_run(Suite *s);

/** Milliseconds on CLOCK_MONOTONIC. */
double pxs_test_ms(void);

#endif
