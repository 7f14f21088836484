/* keys.c - 128-bit keys: derived from names, random, and their hex form.
 *
 * Owns: pxs_key_from_name/format/parse/equal, the store-name rule
 * (pxs__name_check) and the per-process random key generator
 * (pxs__key_random). Pure computation: no shared memory, no locks on the
 * hot path, no allocation.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Key generation sits on the put path, so let the compiler inline XXH3
 * instead of calling into libxxhash. The hash values are identical. */
#define XXH_INLINE_ALL
#include <xxhash.h>

/* pxs_key_from_name() never returns the zero key, which means "no key"
 * everywhere. The one name in 2^128 whose hash is zero gets this fixed
 * key instead (the first 128 fractional bits of the golden ratio). */
static const pxs_key zero_hash_remap = {
	.hi = 0x9e3779b97f4a7c15u,
	.lo = 0xf39cc0605cedc834u,
};

static const char hex_digits[16] = "0123456789abcdef";

pxs_key
pxs_key_from_name(const void *name, size_t len)
{
	XXH128_hash_t h;
	pxs_key k;

	/* The API allows NULL only with len 0; treat a NULL name as empty
	 * rather than reading through it. */
	if (name == NULL)
		len = 0;
	h = XXH3_128bits(len ? name : "", len);
	k.hi = h.high64;
	k.lo = h.low64;
	return pxs__key_is_zero(k) ? zero_hash_remap : k;
}

static void
format_u64(uint64_t v, char *out)
{
	for (int i = 15; i >= 0; i--) {
		out[i] = hex_digits[v & 0xf];
		v >>= 4;
	}
}

int
pxs_key_format(pxs_key k, char buf[PXS_KEY_STRLEN])
{
	if (buf == NULL)
		return -EINVAL;
	format_u64(k.hi, buf);
	format_u64(k.lo, buf + 16);
	buf[32] = '\0';
	return 0;
}

/* Value of one lowercase hex digit, or -1 for anything else (including
 * 'A'-'F', so that every key has exactly one spelling). */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parse 16 digits; stops at the first non-digit, so it never reads past
 * a NUL. */
static bool
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		int d = hex_value(s[i]);

		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return true;
}

int
pxs_key_parse(const char *s, pxs_key *k)
{
	pxs_key r;

	if (s == NULL || k == NULL)
		return -EINVAL;
	if (!parse_u64(s, &r.hi) || !parse_u64(s + 16, &r.lo))
		return -EINVAL;
	if (s[32] != '\0' || pxs__key_is_zero(r))
		return -EINVAL;
	*k = r;
	return 0;
}

int
pxs_key_equal(pxs_key a, pxs_key b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

static bool
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int
pxs__name_check(const char *name)
{
	size_t n;

	if (name == NULL || name[0] != '/')
		return -EINVAL;
	/* Bounded scan: a name one character too long is already invalid,
	 * so an unterminated or huge string is never read further. */
	for (n = 0; n <= PXS_NAME_MAX && name[1 + n] != '\0'; n++) {
		if (!is_name_char(name[1 + n]))
			return -EINVAL;
	}
	if (n == 0 || n > PXS_NAME_MAX)
		return -EINVAL;
	/* "/." and "/.." would name /dev/shm itself or its parent; "/.pxs-"
	 * names are reserved for creators' private, unfinished segments. */
	if (strcmp(name, "/.") == 0 || strcmp(name, "/..") == 0 ||
	    strncmp(name, "/.pxs-", 6) == 0)
		return -EINVAL;
	return 0;
}

/*
 * Random keys
 * ===========
 *
 * HOW IT WORKS. Each process holds a secret (a 64-bit hash seed and a
 * 128-bit mask) drawn once from getrandom(), and a 64-bit counter. Key
 * number c is
 *
 *	XXH3_128bits_withSeed(&c, 8, seed) XOR mask
 *
 * For an 8-byte input XXH3-128 multiplies the (seed-keyed) input by an odd
 * constant into 128 bits and then applies only invertible steps
 * (xorshifts, odd multiplies, add/xor of one half into the other), so
 * within one process distinct counters give distinct keys: uniqueness
 * between threads follows from never using a counter value twice, without
 * relying on luck. Between processes the secrets differ, and two keys
 * collide with probability about 2^-128.
 *
 * SPEED. Threads do not share the counter on every call: one atomic add
 * of the global counter hands a thread COUNTER_BLOCK values, which it then
 * uses up in thread-local storage. A fetch-add on one shared cache line
 * cost ~35 ns per call with two threads; a call now costs a TLS lookup
 * and a dozen arithmetic instructions (~10-15 ns), with no lock and no
 * syscall.
 *
 * FORK. A child starts with a copy of the parent's secret and counters,
 * so without help it would hand out exactly the keys the parent hands out
 * next. An atfork child handler (registered once, with the first seeding)
 * reseeds the secret in the child. The new secret also mixes in the old
 * one and the child's pid, so the child differs from its parent even if
 * every entropy source failed. Only the forking thread exists in the
 * child while the handler runs, so the plain (non-atomic) writes to the
 * secret race with nothing; elsewhere the secret is written only inside
 * pthread_once(), which orders it before every reader.
 *
 * ZERO. The zero key is invalid. At most one counter value per secret maps
 * to it; that value is skipped.
 *
 * LIMITATIONS. A child created by a raw clone() syscall, bypassing fork()
 * and its atfork handlers, shares the parent's sequence.
 */

struct key_secret {
	uint64_t seed;
	uint64_t mask_hi;
	uint64_t mask_lo;
};

/* Read-mostly: the secret and the once flag are read on every call. */
static struct key_secret secret;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

/* The next unclaimed counter value. Alone on its cache line, so that its
 * increments do not evict the secret from other cores' caches: the
 * alignment rounds the struct's size up to the whole 64-byte line. */
static struct {
	_Alignas(64) atomic_uint_fast64_t value;
} counter;
_Static_assert(sizeof(counter) == 64, "the counter fills its cache line");

/* This thread's claimed, unused counter values: [next, end). */
#define COUNTER_BLOCK 4096
static _Thread_local struct {
	uint64_t next, end;
} block;

/* Fill @p buf from getrandom() or /dev/urandom; false if neither worked.
 * Async-signal-safe (it runs in the atfork child handler). */
static bool
read_entropy(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;
	int fd;

	while (got < len) {
		ssize_t r = getrandom(p + got, len - got, GRND_NONBLOCK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == len)
		return true;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return got == len;
}

/* Replace the secret with a hash of fresh entropy, the old secret, the pid,
 * two clocks and a stack address. If the entropy sources fail, the rest
 * still makes the secret differ between processes. Async-signal-safe. */
static void
reseed(void)
{
	struct {
		uint64_t random[3];
		struct key_secret old;
		struct timespec mono, real;
		uint64_t pid;
		uint64_t stack;
	} mix;
	XXH128_hash_t m;
	int saved_errno = errno;

	memset(&mix, 0, sizeof(mix)); /* no uninitialised padding */
	(void)read_entropy(mix.random, sizeof(mix.random));
	mix.old = secret;
	clock_gettime(CLOCK_MONOTONIC, &mix.mono);
	clock_gettime(CLOCK_REALTIME, &mix.real);
	mix.pid = (uint64_t)getpid();
	mix.stack = (uint64_t)(uintptr_t)&mix;

	m = XXH3_128bits_withSeed(&mix, sizeof(mix), 1);
	secret.mask_hi = m.high64;
	secret.mask_lo = m.low64;
	secret.seed = XXH3_64bits_withSeed(&mix, sizeof(mix), 2);
	errno = saved_errno;
}

static void
secret_init(void)
{
	reseed();
	/* If registration fails (ENOMEM), keys stay unique within and
	 * between unrelated processes; only a forked child could repeat
	 * its parent's. There is no way to report it from here. */
	(void)pthread_atfork(NULL, NULL, reseed);
}

pxs_key
pxs__key_random(void)
{
	pxs_key k;

	pthread_once(&secret_once, secret_init);
	do {
		XXH128_hash_t h;
		uint64_t c;

		if (PXS_UNLIKELY(block.next == block.end)) {
			block.next = atomic_fetch_add_explicit(&counter.value,
					COUNTER_BLOCK, memory_order_relaxed);
			block.end = block.next + COUNTER_BLOCK;
		}
		c = block.next++;
		h = XXH3_128bits_withSeed(&c, sizeof(c), secret.seed);
		k.hi = h.high64 ^ secret.mask_hi;
		k.lo = h.low64 ^ secret.mask_lo;
	} while (PXS_UNLIKELY(pxs__key_is_zero(k)));
	return k;
}
