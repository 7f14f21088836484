/* fuzz_script.c - the call script that fuzz_attach and fuzz_corrupt run
 * on a store they managed to attach: every key the image lists plus a few
 * fixed ones, through hostile.c's victim (every result checked against
 * the header, every view against the heap's bounds), then pxs_check.
 */
#include "fuzz.h"
#include "hostile.h"

void
fz_victim(pxs_store *s, const pxs_key *keys, size_t nk, uint64_t seed)
{
	struct hx_victim_opts o = {.keys = keys,
				   .nkeys = nk,
				   .seed = seed,
				   .rounds = 1,
				   .mutate = true,
				   .check_allowed_to_fail = true};
	char why[256];
	if (hx_victim(s, &o, why, sizeof why) < 0)
		FZ_FAIL("%s", why);
}

void
fz_script(pxs_store *s, const uint8_t *seed, size_t n)
{
	pxs_key keys[12] = {{1, 1}, {2, 2}, {0, 1}, {1, 0}};
	size_t nk = 4;
	uint64_t cur = 0;
	pxs_entry e;
	int rc;
	for (int guard = 0; guard < 100000 && nk < 12; guard++) {
		rc = pxs_list(s, &cur, &e);
		FZ_CHECK(hx_acceptable(HX_LIST, rc), "pxs_list: %d", rc);
		if (rc != 1)
			break;
		if (!pxs__key_is_zero(e.key))
			keys[nk++] = e.key;
	}
	uint64_t sd = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n && i < 64; i++)
		sd = (sd ^ seed[i]) * 0x100000001b3ull;
	fz_victim(s, keys, nk, sd);
	pxs_check_report r;
	rc = pxs_check(s, &r);
	FZ_CHECK(hx_acceptable(HX_CHECK, rc), "pxs_check: %d", rc);
}
