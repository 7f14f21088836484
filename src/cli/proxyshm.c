/* proxyshm.c - the proxyshm command: the subcommand table, --help, error
 * lines and exit codes.
 *
 * Owns: main(), dispatch, the help texts and the errno -> exit code map.
 * The subcommands live in cmd_segment.c (segments), cmd_value.c (objects)
 * and cmd_future.c (futures); helpers in util.c. Public API only.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct cli_cmd *cli_cmd_now;

static const struct cli_cmd commands[] = {
	{ "create", cli_create,
	  "NAME [--size SIZE] [--capacity N] [--mode MODE] [--exist-ok]",
	  "create a segment",
	  "  -s, --size SIZE      segment bytes: 4096, 64K, 512M, 4G"
	  " (default 256M)\n"
	  "  -c, --capacity N     max live objects + futures"
	  " (default size / 16K)\n"
	  "  -m, --mode MODE      octal permission bits (default 0600)\n"
	  "  -e, --exist-ok       attach if it exists instead of failing\n" },
	{ "rm", cli_rm, "[-f] NAME...",
	  "remove segments (attached processes keep theirs)",
	  "  -f, --force          ignore segments that do not exist\n" },
	{ "ls-segments", cli_ls_segments, "[--json]",
	  "list the proxyshm segments in /dev/shm with size and use",
	  "      --json           one JSON array\n" },
	{ "stat", cli_stat, "NAME [--json]",
	  "sizes, heap use, objects, futures, pins, processes, counters",
	  "      --json           one JSON object\n" },
	{ "ls", cli_ls, "NAME [--pending] [--json]",
	  "one line per object or future, oldest first",
	  "  -p, --pending        only futures not set yet\n"
	  "      --json           one JSON array\n" },
	{ "put", cli_put,
	  "NAME [--key HEX | --name KEYNAME] [--proxy] [FILE|-]",
	  "store FILE (default stdin) as an object; print its key",
	  "  -k, --key HEX        store under this key (32 hex digits)\n"
	  "  -n, --name KEYNAME   store under the key derived from KEYNAME\n"
	  "  -p, --proxy          print a proxy string instead of the key\n" },
	{ "get", cli_get,
	  "NAME KEY|PROXY | PROXY | NAME --name KEYNAME [-o FILE]",
	  "write a value's bytes to stdout or FILE (never waits)",
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "  -o, --output FILE    write to FILE instead of stdout\n" },
	{ "evict", cli_evict, "NAME KEY|PROXY | PROXY | NAME --name KEYNAME",
	  "remove a value or future (waiters on it exit with code 4)",
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n" },
	{ "future", cli_future, "NAME [--name KEYNAME] [--timeout SECONDS]",
	  "create a pending future and print its proxy string",
	  "  -n, --name KEYNAME   the key derived from KEYNAME"
	  " (default random)\n"
	  "  -t, --timeout SECS   abandon the future if not set within SECS\n"
	  "A background keeper process owns the future until it is set,\n"
	  "evicted, its segment removed, or the timeout ends; killing the\n"
	  "keeper (its pid is the future's owner in `ls`) abandons it.\n" },
	{ "set", cli_set, "PROXY [FILE|-]",
	  "set a future to FILE's bytes (default stdin), waking its waiters",
	  "Also accepts NAME KEY [FILE] and NAME --name KEYNAME [FILE].\n"
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n" },
	{ "wait", cli_wait, "PROXY [--timeout SECONDS] [-o FILE]",
	  "block until a future is set, then write its bytes",
	  "Also accepts NAME KEY and NAME --name KEYNAME.\n"
	  "  -t, --timeout SECS   give up after SECS (exit 3); default never\n"
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "  -o, --output FILE    write to FILE instead of stdout\n" },
	{ "check", cli_check, "NAME [--json]",
	  "validate the whole segment; exit 6 if anything is wrong",
	  "      --json           one JSON object\n" },
	{ "reap", cli_reap, "NAME",
	  "reclaim what dead processes left: pins, reservations, futures", "" },
	{ "watch", cli_watch, "NAME [--interval SECONDS] [--count N]",
	  "redraw stat every second until interrupted",
	  "  -i, --interval SECS  seconds between redraws (default 1)\n"
	  "  -n, --count N        stop after N redraws\n" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char exit_codes[] =
	"Exit codes:\n"
	"  0  success\n"
	"  1  usage error: bad option, argument, name, key or size\n"
	"  2  not found: no such segment or key\n"
	"  3  timed out (wait --timeout), or not set yet (get)\n"
	"  4  the future will never be set: abandoned by its owner, or "
	"evicted\n"
	"  5  any other error (permission, out of space, corrupt segment)\n"
	"  6  check found the segment inconsistent\n"
	"  7  already exists: segment, key, or future already set\n";

static void
print_main_help(FILE *f)
{
	fprintf(f, "Usage: proxyshm [--trust-owner USER] COMMAND [ARGS]"
		"   (proxyshm COMMAND --help)\n"
		"Inspect and use proxyshm shared-memory stores.\n\n"
		"Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\nNAME is a segment name, with or without its leading '/'."
		"\nKEY is 32 hex digits; PROXY is pxs://NAME/KEY. A Redis store "
		"is named\nredis://HOST:PORT/NAME (every command but "
		"ls-segments), its proxies\nredis://HOST:PORT/NAME/KEY.\n"
		"--trust-owner USER also accepts segments owned by USER (a name"
		" or a uid),\nsuch as a store shared with your group"
		" (create --mode 0660).\n\n%s",
		exit_codes);
}

int
cli_help(void)
{
	const struct cli_cmd *c = cli_cmd_now;

	printf("Usage: proxyshm %s %s\n%s.\n\n%s", c->name, c->usage,
	       c->summary, c->help);
	printf("  -h, --help           show this help\n\n%s", exit_codes);
	return CLI_OK;
}

int
cli_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return CLI_OK;
	case -EINVAL:
		return CLI_USAGE;
	case -ENOENT:
		return CLI_NOTFOUND;
	case -ETIMEDOUT:
	case -EAGAIN:
		return CLI_TIMEOUT;
	case -EOWNERDEAD:
	case -ECANCELED:
		return CLI_ABANDONED;
	case -EEXIST:
	case -EALREADY:
		return CLI_EXISTS;
	default:
		return CLI_ERROR;
	}
}

int
cli_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "proxyshm %s: ", cli_cmd_now->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", pxs_strerror(rc));
	return cli_exit_code(rc);
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "proxyshm %s: ", cli_cmd_now->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'proxyshm %s --help')\n", cli_cmd_now->name);
	return CLI_USAGE;
}

int
cli_bad_option(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char opt[3] = { '-', (char)optopt, '\0' };

	/* a long option is named by its argument, a short one by optopt */
	if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 128)
		arg = opt;
	if (c == ':')
		return cli_usage("option '%s' needs a value", arg);
	return cli_usage("unknown option '%s'", arg);
}

int
main(int argc, char **argv)
{
	opterr = 0;	/* cli_bad_option() reports, in one line */
	if (argc < 2) {
		print_main_help(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		print_main_help(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("proxyshm %s\n", pxs_version());
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--trust-owner")) {
		if (argc < 3 || cli_trust_owner(argv[2]) != CLI_OK)
			return CLI_USAGE;
		argc -= 2;
		argv += 2;
		if (argc < 2) {
			print_main_help(stderr);
			return CLI_USAGE;
		}
	}
	if (!strcmp(argv[1], "help") && argc > 2) {
		/* "help CMD" is "CMD --help" */
		argv[1] = argv[2];
		argv[2] = (char *)"--help";
		argc = 3;
	} else if (!strcmp(argv[1], "help")) {
		print_main_help(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		cli_cmd_now = &commands[i];
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "proxyshm: unknown command '%s' (try 'proxyshm "
		"--help')\n", argv[1]);
	return CLI_USAGE;
}
