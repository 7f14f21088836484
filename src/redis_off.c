/* redis_off.c - the Redis backend of a build without hiredis: a redis://
 * name is well formed but not supported (-EPROTONOSUPPORT).
 */
#include "internal.h"

int
pxs__redis_open(const struct pxs__redis_url *u, const char *name,
		const pxs_options *o, pxs_store **out)
{
	return -EPROTONOSUPPORT;
}

int
pxs__redis_unlink(const struct pxs__redis_url *u)
{
	return -EPROTONOSUPPORT;
}
