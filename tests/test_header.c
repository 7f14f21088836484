/* test_header.c - proxyshm.h compiles alone under -std=c99 -pedantic-errors
 * and its declarations link against the shared library. */
#include "proxyshm.h"
#include <string.h>

int
main(void)
{
	pxs_key k = pxs_key_from_name("x", 1);
	char buf[PXS_KEY_STRLEN];
	pxs_options o;
	memset(&o, 0, sizeof o);
	o.flags = PXS_CREATE | PXS_EXCL;
	return pxs_key_format(k, buf) == 0 && strlen(buf) == 32 &&
			       pxs_version()[0] != '\0'
		       ? 0
		       : 1;
}
