/* names.c - store names of every backend: which backend a name picks, and
 * the strict parser of Redis store names "redis://HOST:PORT/NAME".
 *
 * Pure computation on strings: no I/O, no allocation. Segment names are
 * checked by keys.c (pxs__name_check); this file adds the Redis form and
 * the check that accepts either.
 */
#include "internal.h"

#include <string.h>

#define REDIS_SCHEME "redis://"
#define REDIS_SCHEME_LEN (sizeof(REDIS_SCHEME) - 1)

int
pxs__is_redis_name(const char *name)
{
	return name != NULL &&
	       strncmp(name, REDIS_SCHEME, REDIS_SCHEME_LEN) == 0;
}

static int
is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int
is_ipv6_char(char c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/*
 * THE GRAMMAR. One spelling per store, so that two processes naming the
 * same store agree on it byte for byte (the proxy registry and the CLI
 * compare names as strings):
 *
 *   "redis://" HOST ":" PORT "/" NAME
 *   HOST = 1*253 [A-Za-z0-9.-]  |  "[" 2*45 [0-9A-Fa-f:.] "]"
 *   PORT = [1-9] 0*4 DIGIT, at most 65535
 *   NAME = a segment name without its leading '/' (pxs__name_check)
 *
 * No user, password, query, fragment or percent-escape: anything else is
 * -EINVAL. The scan is bounded by PXS_STORE_NAME_MAX, so an unterminated
 * or huge string is never read past it.
 */
int
pxs__redis_url_parse(const char *s, struct pxs__redis_url *u)
{
	char name[PXS_NAME_MAX + 2];
	const char *p, *h, *he;
	size_t n, hl;
	long port = 0;
	int digits = 0;

	if (!pxs__is_redis_name(s))
		return -EINVAL;
	n = strnlen(s, PXS_STORE_NAME_MAX + 1);
	if (n > PXS_STORE_NAME_MAX)
		return -EINVAL;
	p = s + REDIS_SCHEME_LEN;
	if (*p == '[') {
		h = ++p;
		while (is_ipv6_char(*p))
			p++;
		he = p;
		if (*p != ']' || he - h < 2 || he - h > 45)
			return -EINVAL;
		p++;
	} else {
		h = p;
		while (is_host_char(*p))
			p++;
		he = p;
		if (he == h || he - h > PXS__REDIS_HOST_MAX)
			return -EINVAL;
	}
	hl = (size_t)(he - h);
	if (*p++ != ':' || *p < '1' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9' && digits < 6) {
		port = port * 10 + (*p++ - '0');
		digits++;
	}
	if (digits > 5 || port > 65535 || *p != '/')
		return -EINVAL;
	/* *p is the '/' that begins a segment name: check it as one. */
	if (strnlen(p, PXS_NAME_MAX + 2) > PXS_NAME_MAX + 1 ||
	    pxs__name_check(p) < 0)
		return -EINVAL;
	strcpy(name, p);
	if (u != NULL) {
		memcpy(u->host, h, hl);
		u->host[hl] = '\0';
		u->port = (int)port;
		strcpy(u->name, name + 1);
	}
	return 0;
}

int
pxs__store_name_check(const char *name)
{
	if (pxs__is_redis_name(name))
		return pxs__redis_url_parse(name, NULL);
	return pxs__name_check(name);
}
