/* fuzz_key.c - PLAN G2: bytes -> pxs_key_parse, against the grammar.
 *
 * Oracle: parse accepts exactly the strings of 32 lowercase hex digits
 * that are not all zero; when it accepts, format gives the same string
 * back and parse(format(k)) == k. Also pxs_key_from_name on the raw bytes
 * (never the zero key) and pxs__name_check against its grammar.
 */
#include "fuzz.h"
#include "hostile.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char out[PXS_KEY_STRLEN];
	pxs_key k = {0x1111, 0x2222}, back;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	int rc = pxs_key_parse(s, &k);
	FZ_CHECK(rc == 0 || rc == -EINVAL, "parse returned %d", rc);
	FZ_CHECK((rc == 0) == hx_ref_key(s, strlen(s)), "parse(\"%s\") = %d",
		 s, rc);
	if (rc == 0) {
		FZ_CHECK(pxs_key_format(k, out) == 0, "format failed");
		FZ_CHECK(strcmp(out, s) == 0, "format(parse(%s)) = %s", s, out);
		FZ_CHECK(pxs_key_parse(out, &back) == 0 &&
				 pxs_key_equal(back, k),
			 "parse(format(k)) != k");
	} else {
		FZ_CHECK(k.hi == 0x1111 && k.lo == 0x2222,
			 "a failed parse wrote its output");
	}
	/* The same bytes as a name. */
	pxs_key nk = pxs_key_from_name(data, size);
	FZ_CHECK(!pxs__key_is_zero(nk), "pxs_key_from_name gave the zero key");
	FZ_CHECK(pxs_key_equal(nk, pxs_key_from_name(data, size)),
		 "pxs_key_from_name is not a function");
	rc = pxs__name_check(s);
	FZ_CHECK((rc == 0) == hx_ref_store_name(s, strlen(s)),
		 "name_check(\"%s\") = %d", s, rc);
	free(s);
	return 0;
}
