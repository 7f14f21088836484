/* args.c - the command line of every proxyshm subcommand.
 *
 * Owns: the one table of options (each long name, its short letter, whether
 * it takes a value, and how that value is parsed), the parser that every
 * subcommand runs through before its own code, and the helpers that turn
 * positional arguments into the value a command acts on (NAME KEY, PROXY,
 * NAME --name KEYNAME) and attach to its store.
 *
 * A subcommand names the options it accepts (a mask of enum cli_opt, in
 * its entry of the command table); any other option is "unknown". Values
 * are parsed and checked here, once, with one message per kind of mistake.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* One option of any subcommand. Two options may share a letter (-n is
 * --name for most commands and --count for watch) as long as no command
 * accepts both. */
struct optdef {
	const char *name;	/* "timeout" */
	char letter;		/* 't', or 0: long form only */
	int arg;		/* required_argument or no_argument */
};

static const struct optdef optdefs[CLI_OPT_COUNT] = {
	[CLI_OPT_NAME] = { "name", 'n', required_argument },
	[CLI_OPT_KEY] = { "key", 'k', required_argument },
	[CLI_OPT_TIMEOUT] = { "timeout", 't', required_argument },
	[CLI_OPT_OUTPUT] = { "output", 'o', required_argument },
	[CLI_OPT_PREFIX] = { "prefix", 'P', required_argument },
	[CLI_OPT_SIZE] = { "size", 's', required_argument },
	[CLI_OPT_CAPACITY] = { "capacity", 'c', required_argument },
	[CLI_OPT_MODE] = { "mode", 'm', required_argument },
	[CLI_OPT_INTERVAL] = { "interval", 'i', required_argument },
	[CLI_OPT_COUNT_N] = { "count", 'n', required_argument },
	[CLI_OPT_JSON] = { "json", 0, no_argument },
	[CLI_OPT_PENDING] = { "pending", 'p', no_argument },
	[CLI_OPT_PROXY] = { "proxy", 'p', no_argument },
	[CLI_OPT_FORCE] = { "force", 'f', no_argument },
	[CLI_OPT_EXIST_OK] = { "exist-ok", 'e', no_argument },
	[CLI_OPT_OWNED] = { "owned", 0, no_argument },
	[CLI_OPT_ABANDONED] = { "abandoned", 0, no_argument },
	[CLI_OPT_WINDOW] = { "window", 'w', required_argument },
	[CLI_OPT_BLOCK] = { "block", 'b', no_argument },
	[CLI_OPT_LINES] = { "lines", 'l', no_argument },
	[CLI_OPT_FROM] = { "from", 0, required_argument },
	[CLI_OPT_FOLLOW] = { "follow", 'f', no_argument },
};

const char *
cli_opt_name(enum cli_opt id)
{
	return id < CLI_OPT_COUNT ? optdefs[id].name : "?";
}

/* getopt_long's value for an option: its letter, or past every char. */
static int
opt_val(int id)
{
	return optdefs[id].letter ? optdefs[id].letter : 0x100 + id;
}

/* Parse the value of option @p id into @p a; CLI_OK or CLI_USAGE. */
static int
opt_value(int id, const char *v, struct cli_args *a)
{
	uint64_t n;
	char *end;

	switch (id) {
	case CLI_OPT_NAME:
		a->keyname = v;
		return CLI_OK;
	case CLI_OPT_KEY:
		if (pxs_key_parse(v, &a->key) < 0)
			return cli_usage("bad key '%s': a key is 32 lowercase "
					 "hex digits", v);
		return CLI_OK;
	case CLI_OPT_OUTPUT:
		a->output = v;
		return CLI_OK;
	case CLI_OPT_PREFIX:
		a->prefix = v;
		return CLI_OK;
	case CLI_OPT_TIMEOUT:
		if (cli_parse_seconds(v, &a->timeout_ms) < 0)
			return cli_usage("bad timeout '%s': give seconds, "
					 "like 2 or 0.5", v);
		return CLI_OK;
	case CLI_OPT_INTERVAL:
		if (cli_parse_seconds(v, &a->interval_ms) < 0 ||
		    a->interval_ms < 10)
			return cli_usage("bad interval '%s': give seconds, "
					 "at least 0.01", v);
		return CLI_OK;
	case CLI_OPT_COUNT_N:
		if (cli_parse_uint(v, 1, UINT64_MAX, &a->count) < 0)
			return cli_usage("bad count '%s': give a number, "
					 "at least 1", v);
		return CLI_OK;
	case CLI_OPT_WINDOW:
		if (cli_parse_uint(v, 1, PXS_STREAM_WINDOW_MAX, &a->window) < 0)
			return cli_usage("bad window '%s': give a number from "
					 "1 to %u", v, PXS_STREAM_WINDOW_MAX);
		return CLI_OK;
	case CLI_OPT_FROM:
		if (cli_parse_uint(v, 0, UINT64_MAX - 1, &a->from) < 0)
			return cli_usage("bad seq '%s': give an item's number, "
					 "like 0 or 42", v);
		return CLI_OK;
	case CLI_OPT_SIZE:
		if (cli_parse_size(v, &n) < 0 || n > SIZE_MAX)
			return cli_usage("bad size '%s': give bytes, like 1M, "
					 "64M or 4G", v);
		if (n < PXS_MIN_SIZE)
			return cli_usage("size %s is too small: a segment "
					 "needs at least 1M", v);
		a->o.size = (size_t)n;
		return CLI_OK;
	case CLI_OPT_CAPACITY:
		if (cli_parse_uint(v, 1, PXS_MAX_CAPACITY, &n) < 0)
			return cli_usage("bad capacity '%s': give a number "
					 "from 1 to %u", v, PXS_MAX_CAPACITY);
		a->o.capacity = (uint32_t)n;
		return CLI_OK;
	case CLI_OPT_MODE:
		n = strtoul(v, &end, 8);
		if (v[0] < '0' || v[0] > '7' || *end || n > 0777)
			return cli_usage("bad mode '%s': give octal permission "
					 "bits, like 0600 or 0660", v);
		a->o.mode = (mode_t)n;
		return CLI_OK;
	}
	return CLI_OK; /* a flag: its bit in a->given says it all */
}

int
cli_args_parse(unsigned accepted, int argc, char **argv, struct cli_args *a)
{
	struct option longs[CLI_OPT_COUNT + 2];
	char shorts[3 * CLI_OPT_COUNT + 4] = ":";
	size_t nl = 0, ns = 1;
	int c, id, rc;

	memset(a, 0, sizeof *a);
	a->timeout_ms = -1;
	a->interval_ms = 1000;
	a->window = 16;
	for (id = 0; id < CLI_OPT_COUNT; id++) {
		if (!(accepted & CLI_OPT(id)))
			continue;
		longs[nl++] = (struct option){ optdefs[id].name,
					       optdefs[id].arg, NULL,
					       opt_val(id) };
		if (optdefs[id].letter) {
			shorts[ns++] = optdefs[id].letter;
			if (optdefs[id].arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	longs[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns++] = 'h';
	shorts[ns] = '\0';

	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (c == 'h') {
			cli_help();
			return CLI_DONE;
		}
		for (id = 0; id < CLI_OPT_COUNT; id++)
			if ((accepted & CLI_OPT(id)) && opt_val(id) == c)
				break;
		if (id == CLI_OPT_COUNT)
			return cli_bad_option(c, argv);
		a->given |= CLI_OPT(id);
		if ((rc = opt_value(id, optarg, a)) != CLI_OK)
			return rc;
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	return CLI_OK;
}

/* ---- what a command acts on ---------------------------------------------- */

int
cli_one_name(const struct cli_args *a, char *name)
{
	if (a->npos < 1)
		return cli_usage("missing NAME (the segment, like /sim)");
	if (a->npos > 1)
		return cli_usage("unexpected argument '%s'", a->pos[1]);
	return cli_store_name(a->pos[0], name);
}

/*
 * Is @p s meant as a proxy? Everything that starts like one is, so that a
 * malformed proxy is reported as such (and not as a segment name). A Redis
 * store name is a URL too: it is a proxy only when it ends in a key.
 */
static int
looks_like_proxy(const char *s)
{
	pxs_proxy *p;

	if (!strncmp(s, "redis://", 8)) {
		if (pxs_proxy_parse(s, &p) < 0)
			return 0;
		pxs_proxy_free(p);
		return 1;
	}
	return !strncmp(s, "pxs:", 4);
}

static int
bad_proxy(const char *s)
{
	return cli_usage("bad proxy '%s': expected pxs://NAME/KEY or "
			 "redis://HOST:PORT/NAME/KEY, KEY 32 hex digits", s);
}

int
cli_key_arg(const char *store, const char *arg, pxs_key *key)
{
	struct cli_ref p;

	if (looks_like_proxy(arg)) {
		if (cli_parse_proxy(arg, &p) < 0)
			return bad_proxy(arg);
		if (strcmp(p.store, store) != 0)
			return cli_usage("proxy '%s' is not in %s", arg, store);
		*key = p.key;
		return CLI_OK;
	}
	if (pxs_key_parse(arg, key) < 0)
		return cli_usage("bad key '%s': a key is 32 lowercase hex "
				 "digits (or use --name KEYNAME)", arg);
	return CLI_OK;
}

int
cli_target(const struct cli_args *a, struct cli_ref *r)
{
	int rc;

	if (a->npos < 1)
		return -cli_usage("missing NAME or PROXY");
	if (looks_like_proxy(a->pos[0])) {
		if (a->keyname)
			return -cli_usage("--name with a PROXY: give NAME "
					  "--name KEYNAME, or the PROXY alone");
		if (cli_parse_proxy(a->pos[0], r) < 0)
			return -bad_proxy(a->pos[0]);
		return 1;
	}
	if ((rc = cli_store_name(a->pos[0], r->store)) != CLI_OK)
		return -rc;
	if (a->keyname) {
		r->key = pxs_key_from_name(a->keyname, strlen(a->keyname));
		return 1;
	}
	if (a->npos < 2)
		return -cli_usage("missing KEY after %s (or use --name "
				  "KEYNAME, or a PROXY)", r->store);
	if ((rc = cli_key_arg(r->store, a->pos[1], &r->key)) != CLI_OK)
		return -rc;
	return 2;
}

int
cli_open_target(const struct cli_args *a, int nrest, struct cli_ref *r,
		pxs_store **s, const char **rest)
{
	int used = cli_target(a, r);

	if (used < 0)
		return -used;
	if (a->npos - used > nrest)
		return cli_usage("unexpected argument '%s'",
				 a->pos[used + nrest]);
	if (rest)
		*rest = used < a->npos ? a->pos[used] : NULL;
	return cli_open(r->store, s);
}
