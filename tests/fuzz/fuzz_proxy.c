/* fuzz_proxy.c - PLAN G3: bytes -> pxs_proxy_parse, against the grammar.
 *
 * Oracle: parse accepts exactly "pxs://" NAME "/" KEY (NAME: 1..200 of
 * [A-Za-z0-9._-], not "." or ".."; KEY: 32 lowercase hex digits, not all
 * zero) and "redis://" HOST ":" PORT "/" NAME "/" KEY (HOST: 1..253 of
 * [A-Za-z0-9.-] or "[" 2..45 of [0-9A-Fa-f:.] "]"; PORT: 1..65535 without
 * leading zeros), the URL parser (through pxs_proxy_new) accepting the
 * store part exactly when the reference does; when it accepts, format(parse(s)) == s and parse(format(p)) has
 * the same key; pxs_proxy_new on the embedded name agrees; formatting
 * into every short buffer length gives -ENOSPC and "" without writing
 * past the buffer. The grammar is hostile.c's reference (hx_ref_*).
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
	char out[PXS_PROXY_STRLEN + 16];
	pxs_proxy *p = (pxs_proxy *)out, *q;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	int rc = pxs_proxy_parse(s, &p);
	FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "parse: %d", rc);
	size_t store_len = 0;
	const bool redis = hx_ref_redis_proxy(s, &store_len);
	FZ_CHECK((rc == 0) == (hx_ref_pxs_proxy(s, strlen(s)) || redis),
		 "parse(\"%s\") = %d", s, rc);
	if (rc < 0) {
		FZ_CHECK(p == NULL, "failed parse left *out set");
		free(s);
		return 0;
	}
	size_t n = strlen(s);
	int len = pxs_proxy_format(p, out, sizeof out);
	FZ_CHECK(len == (int)n && strcmp(out, s) == 0, "format(parse(%s)) = %s",
		 s, out);
	FZ_CHECK(pxs_proxy_parse(out, &q) == 0, "reparse failed");
	FZ_CHECK(pxs_key_equal(pxs_proxy_key(p), pxs_proxy_key(q)),
		 "keys differ after a round trip");
	pxs_proxy_free(q);
	/* Short buffers: -ENOSPC, "" and nothing past len. */
	for (size_t l = 0; l <= n; l++) {
		char b[PXS_PROXY_STRLEN + 16];
		memset(b, 'Z', sizeof b);
		FZ_CHECK(pxs_proxy_format(p, b, l) == -ENOSPC,
			 "format into %zu bytes", l);
		FZ_CHECK(l == 0 ? b[0] == 'Z' : b[0] == '\0',
			 "short buffer contents");
		for (size_t j = 1; j < sizeof b; j++)
			FZ_CHECK(b[j] == 'Z', "format wrote past byte 0");
	}
	/* The embedded name through pxs_proxy_new. */
	char name[PXS_STORE_NAME_MAX + 2];
	if (redis) {
		memcpy(name, s, store_len);
		name[store_len] = '\0';
	} else {
		const char *slash = strchr(s + 6, '/');
		name[0] = '/';
		memcpy(name + 1, s + 6, (size_t)(slash - (s + 6)));
		name[1 + (slash - (s + 6))] = '\0';
	}
	FZ_CHECK(pxs_proxy_new(name, pxs_proxy_key(p), &q) == 0,
		 "proxy_new(%s) refused a parsed name", name);
	FZ_CHECK(pxs_proxy_format(q, out, sizeof out) == len &&
			 strcmp(out, s) == 0,
		 "proxy_new + format differs");
	pxs_proxy_free(q);
	pxs_proxy_free(p);
	free(s);
	return 0;
}
