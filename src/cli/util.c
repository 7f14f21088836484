/* util.c - helpers shared by the proxyshm subcommands.
 *
 * Owns: parsing of names, sizes, durations, keys and proxy strings; reading
 * a whole input (mapped when it is a regular file, so a large put costs one
 * copy into the segment); writing a value out; human and JSON formatting.
 * Errors are printed here, once, and returned as exit codes.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- arguments ---------------------------------------------------------- */

/* The characters of a segment name (after its '/'), as pxs_open() checks. */
static int
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int
cli_store_name(const char *arg, char *buf)
{
	const char *bare = arg[0] == '/' ? arg + 1 : arg;
	size_t i, n = strlen(bare);

	if (!strncmp(arg, "redis://", 8)) { /* a Redis store, whole */
		if (strlen(arg) > PXS_STORE_NAME_MAX)
			return cli_usage("store name '%s' is too long (at most "
					 "%d characters)", arg,
					 PXS_STORE_NAME_MAX);
		memcpy(buf, arg, strlen(arg) + 1);
		return CLI_OK;
	}
	if (!strncmp(arg, "pxs:", 4))
		return cli_usage("'%s' is a proxy: give the segment NAME "
				 "(like /sim) here", arg);
	for (i = 0; i < n && name_char(bare[i]); i++)
		;
	if (n == 0 || n > PXS_NAME_MAX || i < n || !strcmp(bare, ".") ||
	    !strcmp(bare, "..") || !strncmp(bare, ".pxs-", 5))
		return cli_usage("bad segment name '%s': 1 to %d letters, "
				 "digits, '.', '_' or '-' after an optional "
				 "'/', not starting with '.pxs-'", arg,
				 PXS_NAME_MAX);
	buf[0] = '/';
	memcpy(buf + 1, bare, n + 1);
	return CLI_OK;
}

int
cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int
cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;
	unsigned long long v;
	const char *u;
	unsigned shift = 0;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, end[0] >= 'a' ? end[0] - 'a' + 'A' : end[0]);
		if (!u || !*u)
			return -EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
		end++;
		/* 64K, 64KB, 64KiB (all powers of 1024) */
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (~0ULL >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int
cli_parse_seconds(const char *s, long *ms)
{
	char *end;
	double v;

	if ((s[0] < '0' || s[0] > '9') && s[0] != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* at most ~24 days, so the result fits a 32-bit long too */
	if (errno || *end || !(v >= 0) || v > 2e6)
		return -EINVAL;
	*ms = (long)(v * 1000.0 + 0.5);
	return 0;
}

int
cli_parse_proxy(const char *s, struct cli_ref *r)
{
	pxs_proxy *p;
	size_t len;
	int rc = pxs_proxy_parse(s, &p);

	if (rc < 0)
		return rc;
	/*
	 * The parse is strict, so the string is exactly
	 * "pxs://" NAME "/" 32-hex-digits: the store name is what lies
	 * between. (The API has no accessor for a proxy's store name.)
	 */
	if (!strncmp(s, "redis://", 8)) {
		/* "redis://HOST:PORT/NAME" "/" 32-hex-digits */
		len = strlen(s) - 1 - 32;
		memcpy(r->store, s, len);
		r->store[len] = '\0';
		r->key = pxs_proxy_key(p);
		pxs_proxy_free(p);
		return 0;
	}
	len = strlen(s) - strlen("pxs://") - 1 - 32;
	r->store[0] = '/';
	memcpy(r->store + 1, s + strlen("pxs://"), len);
	r->store[len + 1] = '\0';
	r->key = pxs_proxy_key(p);
	pxs_proxy_free(p);
	return 0;
}

/* --trust-owner: whose segments are accepted besides ours. */
static bool trust_set;
static uid_t trust_uid;

int
cli_trust_owner(const char *user)
{
	const struct passwd *pw = getpwnam(user);
	char *end;
	unsigned long v;

	if (pw) {
		trust_uid = pw->pw_uid;
	} else {
		errno = 0;
		v = strtoul(user, &end, 10);
		if (!*user || *end || errno || v > (uid_t)-1 - 1) {
			fprintf(stderr, "proxyshm: --trust-owner: no user "
				"'%s'\n", user);
			return CLI_USAGE;
		}
		trust_uid = (uid_t)v;
	}
	trust_set = true;
	return CLI_OK;
}

/* Options of an attach of store @p name, with @p flags. */
static pxs_options
attach_options(const char *name, unsigned flags)
{
	pxs_options o = { .flags = 0 };

	if (name[0] != '/') /* Redis: neither flag applies */
		return o;
	o.flags = flags | (trust_set ? PXS_TRUST_OWNER : 0);
	o.trusted_owner = trust_uid;
	return o;
}

/* Attach @p name with @p flags; a missing segment is said in words. */
static int
open_with(const char *name, unsigned flags, pxs_store **s)
{
	pxs_options o = attach_options(name, flags);
	int rc = pxs_open(name, &o, s);

	if (rc == -ENOENT && name[0] == '/') {
		fprintf(stderr, "proxyshm %s: segment %s does not exist (create "
			"it with 'proxyshm create %s')\n", cli_cmd_now->name,
			name, name);
		return CLI_NOTFOUND;
	}
	if (rc < 0)
		return cli_fail(rc, "segment %s", name);
	return CLI_OK;
}

int
cli_open(const char *name, pxs_store **s)
{
	return open_with(name, 0, s);
}

pxs_options
cli_inspect_options(const char *name)
{
	/* A Redis store has no read-only attach; it takes no locks anyway. */
	return attach_options(name, PXS_RDONLY);
}

int
cli_open_inspect(const char *name, pxs_store **s)
{
	return open_with(name, PXS_RDONLY, s);
}

int
cli_key_fail(int rc, const char *verb, const struct cli_ref *r)
{
	char key[PXS_KEY_STRLEN];

	pxs_key_format(r->key, key);
	if (rc == -ENOENT) {
		fprintf(stderr, "proxyshm %s: no key %s in %s\n",
			cli_cmd_now->name, key, r->store);
		return CLI_NOTFOUND;
	}
	return cli_fail(rc, "%s %s in %s", verb, key, r->store);
}

int
cli_proxy_string(const char *store, pxs_key key, char *buf)
{
	pxs_proxy *p;
	int rc = pxs_proxy_new(store, key, &p);

	if (rc == 0)
		rc = pxs_proxy_format(p, buf, PXS_PROXY_STRLEN);
	pxs_proxy_free(p);
	return rc < 0 ? rc : 0;
}

/* ---- input and output --------------------------------------------------- */

/* "proxyshm CMD: read stdin: <strerror>" */
static int
io_error(const char *what, const char *path)
{
	fprintf(stderr, "proxyshm %s: %s %s: %s\n", cli_cmd_now->name, what,
		path, strerror(errno));
	return errno == ENOENT ? CLI_NOTFOUND : CLI_ERROR;
}

int
cli_input_read(const char *path, struct cli_input *in)
{
	int fd = STDIN_FILENO;
	struct stat st;
	size_t cap = 0;
	ssize_t n;
	void *p;

	memset(in, 0, sizeof *in);
	if (path && !strcmp(path, "-"))
		path = NULL;
	if (path && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return io_error("open", path);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    lseek(fd, 0, SEEK_CUR) == 0) {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
			 0);
		if (p != MAP_FAILED) {
			in->map = p;
			in->data = p;
			in->size = (size_t)st.st_size;
			goto out;
		}
	}
	for (;;) {
		if (in->size == cap) {
			cap = cap ? cap * 2 : 65536;
			if (!(p = realloc(in->buf, cap))) {
				errno = ENOMEM;
				goto fail;
			}
			in->buf = p;
		}
		n = read(fd, (char *)in->buf + in->size, cap - in->size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		in->size += (size_t)n;
	}
	in->data = in->buf;
out:
	if (path)
		close(fd);
	return CLI_OK;
fail:
	io_error("read", path ? path : "stdin");
	if (path)
		close(fd);
	cli_input_free(in);
	return CLI_ERROR;
}

void
cli_input_free(struct cli_input *in)
{
	if (in->map)
		munmap(in->map, in->size);
	free(in->buf);
	memset(in, 0, sizeof *in);
}

int
cli_output_write(const char *path, const void *data, size_t size)
{
	const char *p = data;
	int fd = STDOUT_FILENO;
	ssize_t n;

	if (path && !strcmp(path, "-"))
		path = NULL;
	if (path && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			       0666)) < 0)
		return io_error("open", path);
	while (size > 0) {
		n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		p += n;
		size -= (size_t)n;
	}
	if (size > 0 || (path && close(fd) < 0)) {
		io_error("write", path ? path : "stdout");
		if (path && size > 0)
			close(fd);
		return CLI_ERROR;
	}
	return CLI_OK;
}

/* ---- formatting --------------------------------------------------------- */

void
cli_human_size(uint64_t n, char buf[16])
{
	static const char units[] = "KMGTPE";
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, 16, "%uB", (unsigned)n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v || v >= 100)
		snprintf(buf, 16, "%.0f%c", v, units[u]);
	else
		snprintf(buf, 16, "%.1f%c", v, units[u]);
}

uint64_t
cli_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Seconds, minutes, hours or days in buf[16]: "42s", "5m", "3h", "2d". */
static void
human_seconds(uint64_t s, char buf[16])
{
	if (s < 120)
		snprintf(buf, 16, "%us", (unsigned)s);
	else if (s < 7200)
		snprintf(buf, 16, "%um", (unsigned)(s / 60));
	else if (s < 172800)
		snprintf(buf, 16, "%uh", (unsigned)(s / 3600));
	else /* at most 10 digits: a store does not live 11 million years */
		snprintf(buf, 16, "%ud",
			 (unsigned)(s / 86400 < UINT32_MAX ? s / 86400
							    : UINT32_MAX));
}

void
cli_human_age(uint64_t then_ns, char buf[16])
{
	uint64_t now = cli_now_ns();

	if (then_ns == 0)
		snprintf(buf, 16, "-");
	else
		human_seconds(now > then_ns ? (now - then_ns) / 1000000000u : 0,
			      buf);
}

void
cli_human_ttl(int64_t ttl_ms, char buf[16])
{
	if (ttl_ms < 0)
		snprintf(buf, 16, "-");
	else
		human_seconds(((uint64_t)ttl_ms + 999) / 1000, buf);
}

const char *
cli_state_name(pxs_state st)
{
	switch (st) {
	case PXS_STATE_VALUE:
		return "value";
	case PXS_STATE_PENDING:
		return "pending";
	case PXS_STATE_RESERVED:
		return "reserved";
	case PXS_STATE_ABANDONED:
		return "abandoned";
	case PXS_STATE_EVICTED:
		return "evicted";
	}
	return "unknown";
}

void
cli_json_string(FILE *f, const char *s)
{
	cli_json_bytes(f, s, strlen(s));
}

void
cli_json_bytes(FILE *f, const void *data, size_t len)
{
	const unsigned char *s = data, *end = s + len;

	fputc('"', f);
	for (; s < end; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void
cli_shm_path(const char *store, char *buf, size_t len)
{
	snprintf(buf, len, "/dev/shm%s", store);
}
