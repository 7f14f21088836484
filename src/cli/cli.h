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

/* One subcommand. */
struct cli_cmd {
	const char *name;	/* "create" */
	int (*run)(int argc, char **argv); /* argv[0] is NAME */
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
int cli_create(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_ls_segments(int argc, char **argv);
int cli_stat(int argc, char **argv);
int cli_watch(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_reap(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_put(int argc, char **argv);
int cli_get(int argc, char **argv);
int cli_evict(int argc, char **argv);
int cli_future(int argc, char **argv);
int cli_set(int argc, char **argv);
int cli_wait(int argc, char **argv);

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

/* "sim" or "/sim" -> "/sim" in buf[PXS_STORE_NAME_MAX + 1]; CLI_USAGE if long. */
int cli_store_name(const char *arg, char *buf);
/* 4096, 64K, 512M, 4G, 1T (powers of 1024; "KiB", "MB" also accepted). */
int cli_parse_size(const char *s, uint64_t *out);
/* Non-negative decimal seconds ("2", "0.25") -> milliseconds. */
int cli_parse_seconds(const char *s, long *ms);
/* A decimal number in [min, max]. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A proxy string -> store name and key; 0 or -EINVAL. */
int cli_parse_proxy(const char *s, struct cli_ref *r);
/*
 * The value a command acts on, from its positional arguments: PROXY,
 * NAME KEY, NAME PROXY (same store), or NAME alone when @p keyname (the
 * --name option) is set. Returns how many positionals it used (>= 1), or
 * minus an exit code after printing why.
 */
int cli_target(int npos, char **pos, const char *keyname, struct cli_ref *r);
/* Attach to an existing store; prints the error and returns its exit code. */
int cli_open(const char *name, pxs_store **s);
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
/* CLOCK_REALTIME in ns since the Epoch. */
uint64_t cli_now_ns(void);
/* Name of a slot state: "value", "pending", ... */
const char *cli_state_name(pxs_state st);
/* Write @p s as a JSON string literal, quotes included. */
void cli_json_string(FILE *f, const char *s);
/* /dev/shm path of a store name, for ls-segments and liveness checks. */
void cli_shm_path(const char *store, char *buf, size_t len);

#endif /* PXS_CLI_H */
