/* bench_alloc_churn.c - the payload heap under a long run of mixed sizes.
 *
 * Case (case 6) "churn": 10^6 pxs_put / pxs_evict operations of
 * mixed sizes (60% 16..512 B, 30% 512 B..16 KiB, 10% 16..256 KiB), keeping
 * the heap about 70% full: below the target a step puts with probability
 * 3/4, above it evicts a random live object with probability 3/4. Reports
 * ops/s (median and p99 over batches of 10^4 operations), puts refused with
 * -ENOSPC, and at the end the largest free block as a fraction of the free
 * bytes (pxs_check: the largest allocation the heap guarantees now, and
 * every free byte, the untouched top included).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 10000u

struct live {
	pxs_key key;
	size_t size;
};

static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static size_t
uniform(size_t lo, size_t hi)
{
	return lo + (size_t)(rng() % (uint64_t)(hi - lo + 1));
}

static size_t
mixed_size(void)
{
	unsigned p = (unsigned)(rng() % 100);

	if (p < 60)
		return uniform(16, 512);
	if (p < 90)
		return uniform(513, 16384);
	return uniform(16385, 262144);
}

/* What an n-byte value costs the heap (alloc.c: 16-byte header, 16-byte
 * rounding, 32 bytes at least): the occupancy target counts these. */
static size_t
block_cost(size_t n)
{
	size_t s = (n + 16 + 15) & ~(size_t)15;

	return s < 32 ? 32 : s;
}

static void
run(const struct bench_opts *o, size_t heap_mib, const char *label)
{
	size_t total = bench_iters(o, 1000000, 20000, 1000);
	size_t nb = total / BATCH, cap = o->quick ? 4096 : 16384, nlive = 0;
	char name[80];
	pxs_store *s = bench_store(name, "churn", heap_mib << 20,
				   (uint32_t)cap);
	struct live *live = malloc(cap * sizeof(*live));
	unsigned char *src = malloc(262144);
	double *v = malloc((nb ? nb : 1) * sizeof(*v));
	uint64_t used = 0, puts = 0, evicts = 0, enospc = 0, seed;
	pxs_stats st;
	pxs_check_report cr;
	struct bench_stats bs;
	uint64_t target;
	int rc;

	if (!live || !src || !v)
		bench_die("out of memory");
	pxs_unlink(name);
	memset(src, 0x33, 262144);
	if ((rc = pxs_stat(s, &st)) < 0)
		bench_die("pxs_stat: %s", pxs_strerror(rc));
	target = st.heap_free * 7 / 10;
	seed = 0x5eed0000u + (uint64_t)heap_mib;
	rng_state = seed;
	if (bench_ncpus() > 1)
		bench_pin(0, bench_cpu(0));
	for (size_t b = 0; b < nb; b++) {
		uint64_t t0 = bench_now_ns();

		for (unsigned k = 0; k < BATCH; k++) {
			int below = used < target;
			int put = nlive == 0 ||
				  (nlive < cap / 2 &&
				   (rng() % 4 != 0) == below);

			if (put) {
				size_t n = mixed_size();
				pxs_key key;

				rc = pxs_put(s, src, n, &key);
				if (rc == -ENOSPC) {
					enospc++;
					continue;
				}
				if (rc < 0)
					bench_die("put: %s", pxs_strerror(rc));
				live[nlive].key = key;
				live[nlive++].size = n;
				used += block_cost(n);
				puts++;
			} else {
				size_t i = (size_t)(rng() % nlive);

				if ((rc = pxs_evict(s, live[i].key)) < 0)
					bench_die("evict: %s",
						  pxs_strerror(rc));
				used -= block_cost(live[i].size);
				live[i] = live[--nlive];
				evicts++;
			}
		}
		v[b] = (double)(bench_now_ns() - t0) / BATCH / 1e3;
	}
	bench_pin(0, -1);
	bench_stats(v, nb, &bs);
	if ((rc = pxs_stat(s, &st)) < 0)
		bench_die("pxs_stat: %s", pxs_strerror(rc));
	rc = pxs_check(s, &cr);
	if (rc < 0)
		bench_die("pxs_check: %s (%s)", pxs_strerror(rc),
			  cr.first_error);
	bench_emit("case=churn mech=pxs heap=%s ops=%zu seed=%llu n=%zu "
		   "p50_us=%.4f p99_us=%.4f ops_s=%.0f puts=%llu evicts=%llu "
		   "enospc=%llu live=%zu heap_size=%llu heap_used=%llu "
		   "free_bytes=%llu largest_free=%llu free_blocks=%llu "
		   "stat_largest_free=%llu largest_frac=%.4f occupancy=%.4f",
		   label, nb * (size_t)BATCH, (unsigned long long)seed, bs.n,
		   bs.p50, bs.p99, bs.p50 > 0 ? 1e6 / bs.p50 : 0,
		   (unsigned long long)puts, (unsigned long long)evicts,
		   (unsigned long long)enospc, nlive,
		   (unsigned long long)cr.heap_size,
		   (unsigned long long)cr.bytes_used,
		   (unsigned long long)cr.bytes_free,
		   (unsigned long long)cr.largest_free,
		   (unsigned long long)cr.blocks_free,
		   (unsigned long long)st.heap_largest_free,
		   cr.bytes_free ? (double)cr.largest_free /
				   (double)cr.bytes_free : 0,
		   cr.heap_size ? (double)cr.bytes_used /
				  (double)cr.heap_size : 0);
	for (size_t i = 0; i < nlive; i++)
		pxs_evict(s, live[i].key);
	pxs_close(s);
	free(v);
	free(src);
	free(live);
}

int
main(int argc, char **argv)
{
	struct bench_opts o;

	bench_parse(argc, argv, "alloc_churn", &o);
	if (bench_want(&o, "churn"))
		run(&o, o.quick ? 16 : 128, o.quick ? "16MiB" : "128MiB");
	return 0;
}
