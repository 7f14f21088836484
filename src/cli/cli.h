/* cli.h - declarations shared by the files of the proxyshm command.
 *
 * Owns: the exit codes, the command table entry, and the helpers every
 * subcommand uses (argument parsing, error lines, input and output, human
 * and JSON formatting). The command uses only the public API in
 * proxyshm.h; nothing here may reach into a segment.
 */
#ifndef PXS_CLI_H
#define PXS_CLI_H

#include <proxyshm.h>

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * Exit codes. Documented in docs/cli.md, docs/proxyshm.1 and --help: keep
 * the three in step.
 */
enum cli_exit {
	CLI_OK = 0,		/* success */
	CLI_USAGE = 1,		/* bad arguments, invalid name, key or size */
	CLI_NOTFOUND = 2,	/* no such segment or key (ENOENT) */
	CLI_TIMEOUT = 3,	/* timed out, or not set yet (ETIMEDOUT,
				   EAGAIN) */
	CLI_ABANDONED = 4,	/* the future will never be set (EOWNERDEAD,
				   ECANCELED) */
	CLI_ERROR = 5,		/* any other error */
	CLI_CHECK = 6,		/* check found the segment inconsistent */
	CLI_EXISTS = 7,		/* segment or key exists, or future already set
				   (EEXIST, EALREADY) */
};

/* The options of all subcommands (args.c has their table). */
enum cli_opt {
	CLI_OPT_NAME,		/* -n, --name KEYNAME */
	CLI_OPT_KEY,		/* -k, --key HEX */
	CLI_OPT_TIMEOUT,	/* -t, --timeout SECONDS */
	CLI_OPT_OUTPUT,		/* -o, --output FILE */
	CLI_OPT_PREFIX,		/* -P, --prefix KEYNAME-PREFIX */
	CLI_OPT_SIZE,		/* -s, --size SIZE */
	CLI_OPT_CAPACITY,	/* -c, --capacity N */
	CLI_OPT_MODE,		/* -m, --mode MODE */
	CLI_OPT_INTERVAL,	/* -i, --interval SECONDS */
	CLI_OPT_COUNT_N,	/* -n, --count N (watch) */
	CLI_OPT_JSON,		/* --json */
	CLI_OPT_PENDING,	/* -p, --pending (ls) */
	CLI_OPT_PROXY,		/* -p, --proxy (put) */
	CLI_OPT_FORCE,		/* -f, --force */
	CLI_OPT_EXIST_OK,	/* -e, --exist-ok */
	CLI_OPT_OWNED,		/* --owned */
	CLI_OPT_ABANDONED,	/* --abandoned */
	CLI_OPT_WINDOW,		/* -w, --window N (stream new) */
	CLI_OPT_BLOCK,		/* -b, --block (stream new) */
	CLI_OPT_LINES,		/* -l, --lines (stream append) */
	CLI_OPT_FROM,		/* --from SEQ (stream tail) */
	CLI_OPT_FOLLOW,		/* -f, --follow (stream tail) */
	CLI_OPT_COUNT
};
#define CLI_OPT(id) (1u << (id))

/* A parsed command line: the options given and the positionals left. */
struct cli_args {
	unsigned given;		/* CLI_OPT() bits of the options given */
	char **pos;		/* positional arguments, in order */
	int npos;
	const char *keyname;	/* --name */
	const char *output;	/* --output */
	const char *prefix;	/* --prefix */
	pxs_key key;		/* --key */
	long timeout_ms;	/* --timeout; -1 when not given */
	long interval_ms;	/* --interval; 1000 when not given */
	uint64_t count;		/* --count; 0 when not given */
	uint64_t window;	/* --window; 16 when not given */
	uint64_t from;		/* --from */
	pxs_options o;		/* --size, --capacity, --mode */
};

/* Was option @p id given? */
static inline int
cli_has(const struct cli_args *a, enum cli_opt id)
{
	return (a->given & CLI_OPT(id)) != 0;
}

/* cli_args_parse() printed --help: exit 0 without running the command. */
#define CLI_DONE (-1)

/* One subcommand. */
struct cli_cmd {
	const char *name;	/* "create" */
	int (*run)(const struct cli_args *a);
	unsigned opts;		/* CLI_OPT() bits of the options it accepts */
	const char *usage;	/* arguments after the name */
	const char *summary;	/* one line for the command list */
	const char *help;	/* the options, one per line, indented */
};

/* The subcommand running now, for messages and --help. */
extern const struct cli_cmd *cli_cmd_now;

/* Where a subcommand's target value lives: a store and a key. */
struct cli_ref {
	char store[PXS_STORE_NAME_MAX + 1];	/* "/name" */
	pxs_key key;
};

/* Input bytes, mapped (regular files) or read into memory (pipes). */
struct cli_input {
	const void *data;
	size_t size;
	void *map;		/* mmap()ed region, or NULL */
	void *buf;		/* malloc()ed buffer, or NULL */
};

/* ---- commands (cmd_segment.c, cmd_value.c, cmd_future.c) ---- */
int cli_create(const struct cli_args *a);
int cli_rm(const struct cli_args *a);
int cli_ls_segments(const struct cli_args *a);
int cli_stat(const struct cli_args *a);
int cli_watch(const struct cli_args *a);
int cli_check(const struct cli_args *a);
int cli_reap(const struct cli_args *a);
int cli_ls(const struct cli_args *a);
int cli_put(const struct cli_args *a);
int cli_get(const struct cli_args *a);
int cli_evict(const struct cli_args *a);
int cli_future(const struct cli_args *a);
int cli_set(const struct cli_args *a);
int cli_wait(const struct cli_args *a);
int cli_expire(const struct cli_args *a);
int cli_stream(const struct cli_args *a); /* cmd_stream.c */
/* get (@p wait 0) and wait (1): the value of the target, to --output. */
int cli_read_value(const struct cli_args *a, int wait);

/* ---- errors and help (proxyshm.c) ---- */

/* The exit code for a negative errno from the library. */
int cli_exit_code(int rc);
/* Print "proxyshm CMD: <what>: <pxs_strerror(rc)>"; return the exit code. */
int cli_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print "proxyshm CMD: <what>" and a hint to --help; return CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the current subcommand's help to stdout; return CLI_OK. */
int cli_help(void);
/* getopt_long() returned '?' or ':' (optstrings start with ':'): say
 * which option was unknown or lacks its value; return CLI_USAGE. */
int cli_bad_option(int c, char **argv);

/* ---- arguments (util.c) ---- */

/* "sim" or "/sim" -> "/sim" in buf[PXS_STORE_NAME_MAX + 1]; CLI_USAGE,
 * saying the name rule, if it is not a valid name. */
int cli_store_name(const char *arg, char *buf);
/* 4096, 64K, 512M, 4G, 1T (powers of 1024; "KiB", "MB" also accepted). */
int cli_parse_size(const char *s, uint64_t *out);
/* Non-negative decimal seconds ("2", "0.25") -> milliseconds. */
int cli_parse_seconds(const char *s, long *ms);
/* A decimal number in [min, max]. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A proxy string -> store name and key; 0 or -EINVAL. */
int cli_parse_proxy(const char *s, struct cli_ref *r);

/* ---- the command line (args.c) ---- */

/*
 * Parse @p argv (argv[0] is the subcommand) accepting the options in the
 * mask @p accepted, and --help. Returns CLI_OK, CLI_DONE after printing
 * the help, or an exit code after printing what is wrong.
 */
int cli_args_parse(unsigned accepted, int argc, char **argv,
		   struct cli_args *a);
/* The long name of option @p id ("timeout"), for messages. */
const char *cli_opt_name(enum cli_opt id);
/* Exactly one positional, a store name, into buf[PXS_STORE_NAME_MAX + 1]. */
int cli_one_name(const struct cli_args *a, char *name);
/* A KEY or PROXY argument of a command on @p store -> its key. */
int cli_key_arg(const char *store, const char *arg, pxs_key *key);
/*
 * The value a command acts on, from its positional arguments: PROXY,
 * NAME KEY, NAME PROXY (same store), or NAME alone with --name. Returns
 * how many positionals it used (>= 1), or minus an exit code after
 * printing why.
 */
int cli_target(const struct cli_args *a, struct cli_ref *r);
/*
 * cli_target(), then at most @p nrest more positionals (the first one, or
 * NULL, in *@p rest), then attach to the store. CLI_OK or an exit code.
 */
int cli_open_target(const struct cli_args *a, int nrest, struct cli_ref *r,
		    pxs_store **s, const char **rest);
/* Attach to an existing store; prints the error and returns its exit code. */
int cli_open(const char *name, pxs_store **s);
/* An error of a call on r->key: "no key K in /x" for -ENOENT, else
 * "VERB K in /x: <pxs_strerror(rc)>"; returns the exit code. */
int cli_key_fail(int rc, const char *verb, const struct cli_ref *r);
/* --trust-owner USER (a user name or a uid): every attach of a segment
 * also accepts one owned by USER (PXS_TRUST_OWNER). CLI_OK, or prints why
 * not and returns CLI_USAGE. */
int cli_trust_owner(const char *user);
/* cli_open() for commands that only look: a segment is attached read-only
 * (PXS_RDONLY), so that looking takes no lock and changes nothing. */
int cli_open_inspect(const char *name, pxs_store **s);
/* The options of such an attach of store @p name. */
pxs_options cli_inspect_options(const char *name);
/* Format a proxy string for (store, key) into buf[PXS_PROXY_STRLEN]. */
int cli_proxy_string(const char *store, pxs_key key, char *buf);

/* ---- input and output (util.c) ---- */

/* Read all of @p path ("-" or NULL: stdin). Prints errors; 0 or exit code. */
int cli_input_read(const char *path, struct cli_input *in);
void cli_input_free(struct cli_input *in);
/* Write @p size bytes to @p path ("-" or NULL: stdout). 0 or exit code. */
int cli_output_write(const char *path, const void *data, size_t size);

/* ---- formatting (util.c) ---- */

/* 1536 -> "1.5K", 268435456 -> "256M"; buf of 16 bytes. */
void cli_human_size(uint64_t n, char buf[16]);
/* Age of a CLOCK_REALTIME ns timestamp: "42s", "5m", "3h", "2d". */
void cli_human_age(uint64_t then_ns, char buf[16]);
/* Time left of a pxs_entry.ttl_ms: "-" (none), "42s", "5m", "3h", "2d". */
void cli_human_ttl(int64_t ttl_ms, char buf[16]);
/* CLOCK_REALTIME in ns since the Epoch. */
uint64_t cli_now_ns(void);
/* Name of a slot state: "value", "pending", ... */
const char *cli_state_name(pxs_state st);
/* Write @p s as a JSON string literal, quotes included. */
void cli_json_string(FILE *f, const char *s);
/* The same for @p len bytes, which may hold NULs (written as \u0000). */
void cli_json_bytes(FILE *f, const void *data, size_t len);
/* /dev/shm path of a store name, for ls-segments and liveness checks. */
void cli_shm_path(const char *store, char *buf, size_t len);

#endif /* PXS_CLI_H */
