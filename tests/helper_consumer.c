/* helper_consumer.c - an independently started consumer: it gets a proxy
 * string in argv[1] (and a timeout in ms in argv[2]), resolves it and checks
 * the self-verifying payload. Exit 0 when the bytes verify. */
#include "proxyshm.h"
#include "pxs_test.h"

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	pxs_proxy *p;
	int rc = pxs_proxy_parse(argv[1], &p);
	if (rc < 0) {
		fprintf(stderr, "consumer: parse %s: %s\n", argv[1],
			pxs_strerror(rc));
		return 3;
	}
	const void *data;
	size_t size;
	rc = pxs_proxy_resolve(p, strtol(argv[2], NULL, 10), &data, &size);
	if (rc < 0) {
		fprintf(stderr, "consumer: resolve: %s\n", pxs_strerror(rc));
		return 4;
	}
	rc = pxs_test_verify(data, size, pxs_proxy_key(p)) == 0 ? 0 : 5;
	pxs_proxy_free(p);
	return rc;
}
