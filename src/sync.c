/* sync.c - process-shared robust mutexes, the futex condition, and clocks.
 *
 * Owns: every pthread mutex operation and every futex syscall in the
 * library, so that EOWNERDEAD is handled in exactly one place.
 *
 * WHY NOT pthread_cond_t. glibc's process-shared condition variable keeps
 * per-waiter group references inside the condvar; a waiter SIGKILLed while
 * it sleeps never drops its reference, and a later broadcast blocks forever
 * (glibc bug 21422). We pair each robust mutex with a bare 32-bit sequence
 * word instead: a waiter reads it under the mutex, unlocks, and sleeps in
 * FUTEX_WAIT_BITSET while the word still has that value; a writer bumps it
 * under the mutex and calls FUTEX_WAKE after unlocking. The kernel keeps the
 * waiter list, so a dead waiter leaves nothing behind in shared memory.
 *
 * Robust mutexes report a dead holder as EOWNERDEAD to the next locker
 * (from lock, timedlock and clocklock alike). pxs__lock() then runs the
 * caller's repair function, which rebuilds the guarded state from ground
 * truth, and only then pthread_mutex_consistent(). A repair that fails
 * poisons the segment (-ENOTRECOVERABLE for everyone) rather than guessing.
 */
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* THE KIND WORD. A lock word in the segment may be garbage (a scribbler,
 * a stale image). Given a kind it never had, glibc may take paths whose
 * assertions abort the process (a priority-inheritance mutex with an
 * owner-died bit that is not robust), so every lock first compares the
 * kind word with the one pxs__mutex_init writes: anything else is -EPROTO,
 * "not a lock", and glibc is not called. The word is written only by
 * pthread_mutex_init, so a genuine lock never fails the comparison. */
#ifdef __GLIBC__
static int mutex_kind = -1;

static int
our_kind(void)
{
	int k = __atomic_load_n(&mutex_kind, __ATOMIC_RELAXED);
	if (PXS_UNLIKELY(k == -1)) {
		pthread_mutex_t m;
		if (pxs__mutex_init(&m) < 0)
			return -1;
		k = m.__data.__kind;
		pthread_mutex_destroy(&m);
		__atomic_store_n(&mutex_kind, k, __ATOMIC_RELAXED);
	}
	return k;
}

static inline bool
not_a_lock(pthread_mutex_t *m)
{
	int k = our_kind();
	return k != -1 && __atomic_load_n(&m->__data.__kind,
					  __ATOMIC_RELAXED) != k;
}
#else
static inline bool
not_a_lock(pthread_mutex_t *m)
{
	(void)m;
	return false;
}
#endif

int
pxs__mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc)
		return -rc;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

/* We hold m, whose previous holder died inside its critical section:
 * repair what it guards, then mark it consistent. */
static int
after_owner_died(struct pxs_store *s, pthread_mutex_t *m,
		 int (*repair)(struct pxs_store *, void *), void *arg)
{
	int r = repair ? repair(s, arg) : 0;
	if (r < 0)
		__atomic_store_n(&s->hdr->poisoned, 1, __ATOMIC_RELEASE);
	pthread_mutex_consistent(m);
	pxs__count(s, PXS_CTR_RECOVERIES);
	if (r < 0) {
		pthread_mutex_unlock(m);
		return -ENOTRECOVERABLE;
	}
	return 0;
}

/* Robust mutexes never spin in glibc: a locker that finds one held
 * sleeps in the kernel at once, and on a virtual machine waking it again
 * from another CPU costs tens of microseconds, a hundred times a critical
 * section of ours. So look a little first: re-read the lock word (no
 * write, so the holder's cache line stays put) and try again once it
 * reads free. LOCK_SPINS rounds of a pause are about a microsecond. */
#define LOCK_SPINS 128

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* 0 when the lock word reads free (or when we cannot tell). */
static inline int
lock_word(pthread_mutex_t *m)
{
#ifdef __GLIBC__
	return __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
#else
	(void)m;
	return 0;
#endif
}

static int
spin_trylock(pthread_mutex_t *m)
{
	for (int i = 0; i < LOCK_SPINS; i++) {
		if (lock_word(m) == 0) {
			int rc = pthread_mutex_trylock(m);
			if (rc != EBUSY)
				return rc;
		}
		cpu_relax();
	}
	return EBUSY;
}

#if defined(__SANITIZE_THREAD__)
#define PXS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PXS_TSAN 1
#endif
#endif

/* Lock @p m or give up at @p deadline (CLOCK_MONOTONIC). ThreadSanitizer
 * intercepts pthread_mutex_timedlock but not pthread_mutex_clocklock
 * (LLVM 14): a lock it does not see taken makes every access the mutex
 * guards look like a race. So a TSan build uses timedlock with the same
 * deadline moved to CLOCK_REALTIME (a clock step during the wait then
 * moves the deadline, which a test build can live with). */
static int
clocklock(pthread_mutex_t *m, const struct timespec *deadline)
{
#ifdef PXS_TSAN
	uint64_t at = (uint64_t)deadline->tv_sec * 1000000000u +
		      (uint64_t)deadline->tv_nsec;
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
	struct timespec rt;

	pxs__ts_from_ns(&rt, pxs__now_ns(CLOCK_REALTIME) +
				     (at > now ? at - now : 0));
	return pthread_mutex_timedlock(m, &rt);
#else
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline);
#endif
}

/* Whether m may be locked by this handle at all: a read-only mapping
 * cannot take a lock (a lock is a write; its callers read without it, as
 * a snapshot), and a word that is not a robust mutex of ours must not
 * reach glibc, which would assert on it. */
static inline int
lockable(const struct pxs_store *s, pthread_mutex_t *m)
{
	if (PXS_UNLIKELY(s->rdonly))
		return -EROFS;
	if (PXS_UNLIKELY(not_a_lock(m)))
		return -EPROTO;
	return 0;
}

/* What a pthread_mutex_*lock() result rc means to our callers: 0, a
 * repaired lock after its holder died, or a negative errno (anything
 * unexpected means the word is not our lock). */
static inline int
taken(struct pxs_store *s, pthread_mutex_t *m, int rc,
      int (*repair)(struct pxs_store *, void *), void *arg)
{
	if (PXS_LIKELY(rc == 0))
		return 0;
	if (rc == EOWNERDEAD)
		return after_owner_died(s, m, repair, arg);
	return rc == ETIMEDOUT	     ? -ETIMEDOUT
	       : rc == EBUSY	     ? -EBUSY
	       : rc == ENOTRECOVERABLE ? -ENOTRECOVERABLE
				       : -EPROTO;
}

int
pxs__lock(struct pxs_store *s, pthread_mutex_t *m,
	  const struct timespec *deadline,
	  int (*repair)(struct pxs_store *, void *), void *arg)
{
	int rc = lockable(s, m);
	if (rc < 0)
		return rc;
	rc = pthread_mutex_trylock(m);
	if (rc == EBUSY && (rc = spin_trylock(m)) == EBUSY)
		rc = deadline ? clocklock(m, deadline) : pthread_mutex_lock(m);
	return taken(s, m, rc, repair, arg);
}

int
pxs__trylock(struct pxs_store *s, pthread_mutex_t *m,
	     int (*repair)(struct pxs_store *, void *), void *arg)
{
	int rc = lockable(s, m);
	return rc < 0 ? rc : taken(s, m, pthread_mutex_trylock(m), repair, arg);
}

void
pxs__unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

int
pxs__futex_wait(uint32_t *word, uint32_t val, const struct timespec *deadline)
{
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (plain
     * FUTEX_WAIT would take a relative one). Not FUTEX_PRIVATE_FLAG: the
     * word is shared between processes. */
	long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, deadline,
			  NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0; /* woken, value changed (EAGAIN), or EINTR: caller rechecks */
}

bool
pxs__futex_spin(const uint32_t *word, uint32_t val, uint64_t until_ns)
{
	for (;;) {
		for (int i = 0; i < 16; i++) {
			if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val)
				return true;
			cpu_relax();
		}
		if (pxs__now_ns(CLOCK_MONOTONIC) >= until_ns)
			return false;
	}
}

int
pxs__futex_waitv(uint32_t *const *words, const uint32_t *vals, size_t n,
		 const struct timespec *deadline)
{
	struct futex_waitv w[FUTEX_WAITV_MAX];
	if (n == 0 || n > FUTEX_WAITV_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		w[i] = (struct futex_waitv){.val = vals[i],
					    .uaddr = (uintptr_t)words[i],
					    .flags = FUTEX_32};
	/* Shared words (no FUTEX_PRIVATE_FLAG); an absolute deadline. */
	long rc = syscall(SYS_futex_waitv, w, (unsigned)n, 0u, deadline,
			  CLOCK_MONOTONIC);
	if (rc == -1 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	if (rc == -1 && errno == ENOSYS)
		return -ENOSYS;
	return 0; /* woken, a value changed (EAGAIN), or EINTR: recheck */
}

void
pxs__futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t
pxs__now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
pxs__ts_from_ns(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

void
pxs__deadline(struct timespec *ts, long ms)
{
	/* Cap far deadlines so the arithmetic cannot overflow (~292 years). */
	uint64_t add = (uint64_t)(ms > 0 ? ms : 0);
	if (add > (uint64_t)1 << 42)
		add = (uint64_t)1 << 42;
	pxs__ts_from_ns(ts, pxs__now_ns(CLOCK_MONOTONIC) + add * 1000000u);
}

uint64_t
pxs__wait_deadline(long timeout_ms, struct timespec *ts,
		   const struct timespec **dl)
{
	*dl = NULL;
	if (timeout_ms <= 0)
		return UINT64_MAX;
	pxs__deadline(ts, timeout_ms);
	*dl = ts;
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}
