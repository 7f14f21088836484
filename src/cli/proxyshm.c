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

/* The options a command accepts, as a mask for its entry below. */
#define OPT(id) CLI_OPT(CLI_OPT_##id)

/*
 * The help of each command ends with examples ("  $ " lines) that run as
 * they are, in order, on a fresh machine: tests/cli/test_cli.sh runs them
 * all (with /demo renamed), so keep them working.
 */
static const struct cli_cmd commands[] = {
	{ "create", cli_create,
	  OPT(SIZE) | OPT(CAPACITY) | OPT(MODE) | OPT(EXIST_OK),
	  "NAME [--size SIZE] [--capacity N] [--mode MODE] [--exist-ok]",
	  "create a segment",
	  "  -s, --size SIZE      segment bytes: 1M (the least), 512M, 4G"
	  " (default 256M)\n"
	  "  -c, --capacity N     max live objects + futures"
	  " (default 0: grows with the heap)\n"
	  "  -m, --mode MODE      octal permission bits (default 0600)\n"
	  "  -e, --exist-ok       attach if it exists instead of failing\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 64M\n"
	  "  $ proxyshm create /demo --size 64M --exist-ok\n"
	  "  $ proxyshm rm /demo\n" },
	{ "rm", cli_rm,
	  OPT(FORCE), "[-f] NAME...",
	  "remove segments (attached processes keep theirs)",
	  "  -f, --force          ignore segments that do not exist\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 1M\n"
	  "  $ proxyshm rm /demo\n"
	  "  $ proxyshm rm -f /demo\n" },
	{ "ls-segments", cli_ls_segments,
	  OPT(JSON), "[--json]",
	  "list the files in /dev/shm: segments with size and use, others "
	  "with their problem",
	  "      --json           one JSON array\n"
	  "Examples:\n"
	  "  $ proxyshm ls-segments\n"
	  "  $ proxyshm ls-segments --json\n" },
	{ "stat", cli_stat,
	  OPT(JSON), "NAME [--json]",
	  "sizes, heap use, objects, futures, pins, processes, counters",
	  "      --json           one JSON object\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ proxyshm stat /demo\n"
	  "  $ proxyshm stat /demo --json\n" },
	{ "ls", cli_ls,
	  OPT(PENDING) | OPT(PREFIX) | OPT(JSON),
	  "NAME [--pending] [--prefix P] [--json]",
	  "one line per object or future, oldest first",
	  "  -p, --pending        only futures not set yet\n"
	  "  -P, --prefix P       only values and futures stored with a name"
	  "\n"
	  "                       (put/future --name) that starts with P\n"
	  "      --json           one JSON array\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ echo hello | proxyshm put /demo --name greeting\n"
	  "  $ proxyshm ls /demo\n"
	  "  $ proxyshm ls /demo --prefix greet\n"
	  "  $ proxyshm ls /demo --pending --json\n" },
	{ "put", cli_put,
	  OPT(KEY) | OPT(NAME) | OPT(PROXY),
	  "NAME [--key HEX | --name KEYNAME] [--proxy] [FILE|-]",
	  "store FILE (default stdin) as an object; print its key",
	  "  -k, --key HEX        store under this key (32 hex digits)\n"
	  "  -n, --name KEYNAME   store under the key derived from KEYNAME,"
	  " and keep\n"
	  "                       KEYNAME with the value (ls shows it)\n"
	  "  -p, --proxy          print a proxy string instead of the key\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ k=$(echo hello | proxyshm put /demo)\n"
	  "  $ echo world | proxyshm put /demo --name sim/step/1 --proxy\n"
	  "  $ proxyshm put /demo /etc/os-release\n" },
	{ "get", cli_get,
	  OPT(NAME) | OPT(OUTPUT),
	  "NAME KEY|PROXY | PROXY | NAME --name KEYNAME [-o FILE]",
	  "write a value's bytes to stdout or FILE (never waits)",
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "  -o, --output FILE    write to FILE instead of stdout\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ k=$(echo hello | proxyshm put /demo)\n"
	  "  $ proxyshm get /demo $k\n"
	  "  $ p=$(echo hi | proxyshm put /demo --name greeting --proxy)\n"
	  "  $ proxyshm get $p\n"
	  "  $ proxyshm get /demo --name greeting -o /dev/null\n" },
	{ "evict", cli_evict,
	  OPT(NAME) | OPT(ABANDONED) | OPT(PREFIX),
	  "NAME KEY|PROXY... | PROXY... | NAME --name KEYNAME | NAME "
	  "--abandoned | NAME --prefix P",
	  "remove values or futures (waiters on them exit with code 4)",
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "      --abandoned      every future whose owner died before "
	  "setting it\n"
	  "  -P, --prefix P       every value or future stored with a name "
	  "that starts\n"
	  "                       with P\n"
	  "Every key is checked before the first is evicted.\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ a=$(echo 1 | proxyshm put /demo); b=$(echo 2 | proxyshm put "
	  "/demo)\n"
	  "  $ proxyshm evict /demo $a $b\n"
	  "  $ echo 3 | proxyshm put /demo --name old\n"
	  "  $ proxyshm evict /demo --name old\n"
	  "  $ proxyshm evict /demo --abandoned\n"
	  "  $ echo 4 | proxyshm put /demo --name run1/a\n"
	  "  $ proxyshm evict /demo --prefix run1/\n" },
	{ "expire", cli_expire,
	  OPT(NAME),
	  "NAME KEY|PROXY SECONDS | PROXY SECONDS | NAME --name KEYNAME "
	  "SECONDS",
	  "evict a value or future SECONDS from now ('never': no more)",
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "0 evicts at once; `ls` shows the time left in its TTL column.\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ echo hello | proxyshm put /demo --name greeting\n"
	  "  $ proxyshm expire /demo --name greeting 3600\n"
	  "  $ proxyshm expire /demo --name greeting never\n" },
	{ "future", cli_future,
	  OPT(NAME) | OPT(TIMEOUT) | OPT(OWNED),
	  "NAME [--name KEYNAME] [--timeout SECONDS] [--owned]",
	  "create a pending future, print its proxy string and exit",
	  "  -n, --name KEYNAME   the key derived from KEYNAME"
	  " (default random),\n"
	  "                       kept with the future (ls shows it)\n"
	  "  -t, --timeout SECS   the future expires SECS from now, set or "
	  "not\n"
	  "                       (with --owned: the keeper's lifetime)\n"
	  "      --owned          a background keeper owns the future, so "
	  "that its\n"
	  "                       death abandons it; it leaves when the "
	  "future is\n"
	  "                       set or evicted, or after SECS (default "
	  "600)\n"
	  "The future has no owner: it stays pending until set or evicted.\n"
	  "`proxyshm set` owns it while it reads: if set dies, waiters exit "
	  "4.\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ p=$(proxyshm future /demo)\n"
	  "  $ echo done | proxyshm set $p\n"
	  "  $ proxyshm future /demo --name sim/step/1 --timeout 60\n" },
	{ "set", cli_set,
	  OPT(NAME), "PROXY [FILE|-]",
	  "set a future to FILE's bytes (default stdin), waking its waiters",
	  "Also accepts NAME KEY [FILE] and NAME --name KEYNAME [FILE].\n"
	  "It claims the future before reading: if it dies reading, the "
	  "future\n"
	  "is abandoned and its waiters exit 4.\n"
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ p=$(proxyshm future /demo)\n"
	  "  $ proxyshm set $p /etc/os-release\n"
	  "  $ proxyshm future /demo --name sim/step/2\n"
	  "  $ echo 42 | proxyshm set /demo --name sim/step/2\n" },
	{ "wait", cli_wait,
	  OPT(TIMEOUT) | OPT(NAME) | OPT(OUTPUT),
	  "PROXY [--timeout SECONDS] [-o FILE]",
	  "block until a future is set, then write its bytes",
	  "Also accepts NAME KEY and NAME --name KEYNAME. The key need not\n"
	  "exist yet: wait also waits for it to be created.\n"
	  "  -t, --timeout SECS   give up after SECS (exit 3); default never\n"
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "  -o, --output FILE    write to FILE instead of stdout\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ (sleep 1; echo 42 | proxyshm put /demo --name sim/step/3) &\n"
	  "  $ proxyshm wait /demo --name sim/step/3 --timeout 30\n"
	  "  $ p=$(proxyshm future /demo)\n"
	  "  $ (echo done | proxyshm set $p) &\n"
	  "  $ proxyshm wait $p --timeout 30 -o /dev/null\n" },
	{ "stream", cli_stream,
	  OPT(NAME) | OPT(TIMEOUT) | OPT(OUTPUT) | OPT(WINDOW) | OPT(BLOCK) |
	  OPT(LINES) | OPT(FROM) | OPT(FOLLOW) | OPT(JSON),
	  "ACTION NAME KEY|PROXY | ACTION NAME --name KEYNAME",
	  "make, feed, follow or delete a stream (actions: new append read tail info delete)",
	  "  new  [--window N] [--block]   an empty stream (window 16, Discard)\n"
	  "  append [--lines] [--timeout SECS] [FILE|-]\n"
	  "                               one item of FILE's bytes (or one per\n"
	  "                               line); prints each item's seq\n"
	  "  read SEQ [--timeout SECS] [-o FILE]   item SEQ's bytes\n"
	  "  tail [--from SEQ] [-f] [--timeout SECS] [--json]\n"
	  "                               items from SEQ (default the oldest);\n"
	  "                               -f waits for new ones until the end\n"
	  "  info [--json]                numbers, readers, groups\n"
	  "  delete                       the stream and its items; followers\n"
	  "                               and blocked appends stop with exit 5\n"
	  "  -n, --name KEYNAME   the key derived from KEYNAME\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M --exist-ok\n"
	  "  $ proxyshm stream new /demo --name steps --window 4\n"
	  "  $ printf 'a\\nb\\n' | proxyshm stream append /demo --name steps --lines\n"
	  "  $ proxyshm stream tail /demo --name steps --json\n"
	  "  $ proxyshm stream info /demo --name steps\n" },
	{ "check", cli_check,
	  OPT(JSON), "NAME [--json]",
	  "validate the whole segment; exit 6 if anything is wrong",
	  "      --json           one JSON object\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ proxyshm check /demo\n" },
	{ "reap", cli_reap,
	  0, "NAME",
	  "reclaim what dead processes left: pins, reservations, futures",
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ proxyshm reap /demo\n" },
	{ "watch", cli_watch,
	  OPT(INTERVAL) | OPT(COUNT_N), "NAME [--interval SECONDS] [--count N]",
	  "redraw stat every second until interrupted",
	  "  -i, --interval SECS  seconds between redraws (default 1)\n"
	  "  -n, --count N        stop after N redraws\n"
	  "Examples:\n"
	  "  $ proxyshm create /demo --size 16M\n"
	  "  $ proxyshm watch /demo --interval 0.1 --count 3\n" },
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
	fprintf(f, "\nNAME is a segment name: 1 to 200 letters, digits, '.', "
		"'_' or '-', with or\nwithout its leading '/'. KEY is 32 hex "
		"digits, or --name KEYNAME the key\nderived from a name. PROXY "
		"is pxs://NAME/KEY, as future and put --proxy\nprint it, "
		"accepted wherever NAME KEY is. A Redis store is named\n"
		"redis://HOST:PORT/NAME (every command but ls-segments), its "
		"proxies\nredis://HOST:PORT/NAME/KEY.\n"
		"--trust-owner USER also accepts segments owned by USER (a name"
		" or a uid),\nsuch as a store shared with your group"
		" (create --mode 0660).\n\n%s",
		exit_codes);
}

int
cli_help(void)
{
	const struct cli_cmd *c = cli_cmd_now;
	const char *ex = strstr(c->help, "Examples:\n");
	int n = ex ? (int)(ex - c->help) : (int)strlen(c->help);

	printf("Usage: proxyshm %s %s\n%s.\n\n%.*s", c->name, c->usage,
	       c->summary, n, c->help);
	printf("  -h, --help           show this help\n%s%s\n"
	       "Exit codes: see 'proxyshm --help'.\n", ex ? "\n" : "",
	       ex ? ex : "");
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
		struct cli_args a;
		int rc;

		cli_cmd_now = &commands[i];
		rc = cli_args_parse(commands[i].opts, argc - 1, argv + 1, &a);
		if (rc != CLI_OK)
			return rc == CLI_DONE ? CLI_OK : rc;
		return commands[i].run(&a);
	}
	fprintf(stderr, "proxyshm: unknown command '%s' (try 'proxyshm "
		"--help')\n", argv[1]);
	return CLI_USAGE;
}
