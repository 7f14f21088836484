/* cmd_segment.c - the subcommands that act on whole segments: create, rm,
 * ls-segments, stat, watch, check and reap.
 *
 * Owns: the stat report (text, JSON and the watch frame) and the /dev/shm
 * scan. Every figure comes from pxs_stat(), pxs_proc_list() and
 * pxs_check(); nothing here reads a segment directly.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- create, rm --------------------------------------------------------- */

int
cli_create(const struct cli_args *a)
{
	pxs_options o = a->o;
	char name[PXS_STORE_NAME_MAX + 1];
	pxs_store *s;
	int rc;

	o.flags = PXS_CREATE | (cli_has(a, CLI_OPT_EXIST_OK) ? 0 : PXS_EXCL);
	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	rc = pxs_open(name, &o, &s);
	if (rc == -EEXIST) {
		fprintf(stderr, "proxyshm create: segment %s already exists "
			"(attach to it with --exist-ok, or remove it with "
			"'proxyshm rm %s')\n", name, name);
		return CLI_EXISTS;
	}
	if (rc < 0)
		return cli_fail(rc, "create %s", name);
	pxs_close(s);
	return CLI_OK;
}

int
cli_rm(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1];
	int i, rc, ret = CLI_OK, force = cli_has(a, CLI_OPT_FORCE);

	if (a->npos == 0)
		return cli_usage("missing NAME (the segment, like /sim)");
	for (i = 0; i < a->npos; i++) {
		if ((rc = cli_store_name(a->pos[i], name)) != CLI_OK)
			return rc;
		rc = pxs_unlink(name);
		if (rc < 0 && !(force && rc == -ENOENT))
			ret = cli_fail(rc, "remove %s", name);
	}
	return ret;
}

/* ---- stat --------------------------------------------------------------- */

static unsigned
percent(uint64_t part, uint64_t whole)
{
	return whole ? (unsigned)((part * 100 + whole / 2) / whole) : 0;
}

static void
print_bar(uint64_t used, uint64_t total)
{
	enum { WIDTH = 40 };
	unsigned full = total ? (unsigned)(used * WIDTH / total) : 0;
	char bar[WIDTH + 1];

	memset(bar, '.', WIDTH);
	memset(bar, '#', full);
	bar[WIDTH] = '\0';
	printf("heap      [%s] %3u%%\n", bar, percent(used, total));
}

/* "  1.2M (1258291)" */
static void
print_size(const char *label, uint64_t n)
{
	char h[16];

	cli_human_size(n, h);
	printf("%-18s %s (%llu)\n", label, h, (unsigned long long)n);
}

static void
print_procs_text(pxs_store *s)
{
	pxs_proc_info p;
	uint64_t cur = 0;
	char age[16];

	while (pxs_proc_list(s, &cur, &p) == 1) {
		cli_human_age(p.attach_ns, age);
		printf("  pid %-8d %-5s attached %s ago%s\n", (int)p.pid,
		       p.alive ? "alive" : "dead", age,
		       p.pid == (int32_t)getpid() ? " (this command)" : "");
	}
}

static void
print_stat_text(pxs_store *s, const pxs_stats *st)
{
	printf("%-18s %s\n", "segment:", pxs_store_name(s));
	print_size("segment size:", st->segment_size);
	print_size("heap size:", st->heap_size);
	print_size("heap used:", st->heap_used);
	print_size("heap free:", st->heap_free);
	print_size("largest free:", st->heap_largest_free);
	printf("%-18s %u\n", "capacity:", st->capacity);
	printf("%-18s %u\n", "slots used:", st->slots_used);
	printf("%-18s %u\n", "objects:", st->objects);
	printf("%-18s %u\n", "pending:", st->pending);
	printf("%-18s %u\n", "abandoned:", st->abandoned);
	printf("%-18s %u\n", "evicted, pinned:", st->evicted_pinned);
	printf("%-18s %u\n", "pins:", st->pins);
	printf("%-18s %u\n", "waiters:", st->waiters);
	/* A segment is inspected read-only, without attaching: the count is
	 * of the others. A Redis store counts this command too. */
	printf("%-18s %u alive%s\n", "processes:", st->processes,
	       pxs_store_name(s)[0] == '/' ? "" : " (this command included)");
	print_procs_text(s);
	printf("%-18s puts %llu, gets %llu, evictions %llu, waits %llu, "
	       "timeouts %llu, recoveries %llu\n", "counters:",
	       (unsigned long long)st->puts, (unsigned long long)st->gets,
	       (unsigned long long)st->evictions,
	       (unsigned long long)st->waits,
	       (unsigned long long)st->timeouts,
	       (unsigned long long)st->recoveries);
}

static void
print_stat_json(pxs_store *s, const pxs_stats *st)
{
	pxs_proc_info p;
	uint64_t cur = 0;
	const char *sep = "";

	printf("{\"name\": ");
	cli_json_string(stdout, pxs_store_name(s));
	printf(", \"segment_size\": %llu, \"heap_size\": %llu, "
	       "\"heap_used\": %llu, \"heap_free\": %llu, "
	       "\"heap_largest_free\": %llu,\n",
	       (unsigned long long)st->segment_size,
	       (unsigned long long)st->heap_size,
	       (unsigned long long)st->heap_used,
	       (unsigned long long)st->heap_free,
	       (unsigned long long)st->heap_largest_free);
	printf(" \"capacity\": %u, \"slots_used\": %u, \"objects\": %u, "
	       "\"pending\": %u, \"abandoned\": %u, \"evicted_pinned\": %u, "
	       "\"pins\": %u, \"waiters\": %u, \"processes\": %u,\n",
	       st->capacity, st->slots_used, st->objects, st->pending,
	       st->abandoned, st->evicted_pinned, st->pins, st->waiters,
	       st->processes);
	printf(" \"puts\": %llu, \"gets\": %llu, \"evictions\": %llu, "
	       "\"waits\": %llu, \"timeouts\": %llu, \"recoveries\": %llu,\n",
	       (unsigned long long)st->puts, (unsigned long long)st->gets,
	       (unsigned long long)st->evictions,
	       (unsigned long long)st->waits,
	       (unsigned long long)st->timeouts,
	       (unsigned long long)st->recoveries);
	printf(" \"attached\": [");
	while (pxs_proc_list(s, &cur, &p) == 1) {
		printf("%s\n  {\"id\": %u, \"pid\": %d, \"alive\": %s, "
		       "\"attach_ns\": %llu, \"self\": %s}", sep, p.id,
		       (int)p.pid, p.alive ? "true" : "false",
		       (unsigned long long)p.attach_ns,
		       p.pid == (int32_t)getpid() ? "true" : "false");
		sep = ",";
	}
	printf("]}\n");
}

int
cli_stat(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1];
	int rc, json = cli_has(a, CLI_OPT_JSON);
	pxs_store *s;
	pxs_stats st;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if ((rc = cli_open_inspect(name, &s)) != CLI_OK)
		return rc;
	if ((rc = pxs_stat(s, &st)) < 0) {
		rc = cli_fail(rc, "stat %s", name);
		goto out;
	}
	if (json)
		print_stat_json(s, &st);
	else
		print_stat_text(s, &st);
out:
	pxs_close(s);
	return rc;
}

/* ---- watch -------------------------------------------------------------- */

static volatile sig_atomic_t watch_stop;

static void
on_signal(int sig)
{
	watch_stop = 1;
}

int
cli_watch(const struct cli_args *a)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char name[PXS_STORE_NAME_MAX + 1], clock[16];
	long interval_ms = a->interval_ms;
	uint64_t count = a->count, n;
	int tty = isatty(STDOUT_FILENO);
	pxs_store *s;
	pxs_stats st;
	time_t now;
	int rc;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if ((rc = cli_open_inspect(name, &s)) != CLI_OK)
		return rc;
	/* no SA_RESTART: the signal cuts the sleep short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (n = 0; !watch_stop && (count == 0 || n < count); n++) {
		if (n > 0) {
			struct timespec d = { interval_ms / 1000,
					      interval_ms % 1000 * 1000000L };

			if (nanosleep(&d, NULL) < 0 && watch_stop)
				break;
		}
		if ((rc = pxs_stat(s, &st)) < 0) {
			rc = cli_fail(rc, "stat %s", name);
			goto out;
		}
		now = time(NULL);
		strftime(clock, sizeof clock, "%H:%M:%S", localtime(&now));
		/* home, clear screen; frames only separated when piped */
		fputs(tty ? "\033[H\033[2J" : (n ? "\n" : ""), stdout);
		printf("proxyshm watch %s   every %.1fs   %s   (Ctrl-C to "
		       "quit)\n\n", name, (double)interval_ms / 1000.0, clock);
		print_bar(st.heap_used, st.heap_size);
		print_stat_text(s, &st);
		fflush(stdout);
	}
	rc = CLI_OK;
out:
	pxs_close(s);
	return rc;
}

/* ---- ls-segments -------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(a, b); /* elements of a char [][PXS_NAME_MAX + 1] */
}

/* A creator's private name, "/.pxs-tmp-<name>-<pid>-<n>": its pid, or 0. */
static long
temp_creator(const char *file)
{
	const char *p = file + strlen(file), *dash;
	int dashes = 0;

	if (strncmp(file, ".pxs-tmp-", 9) != 0)
		return 0;
	while (p > file + 9 && dashes < 2)
		if (*--p == '-')
			dashes++;
	if (dashes < 2)
		return 0;
	dash = p + 1;
	char *end;
	long pid = strtol(dash, &end, 10);
	return end != dash && *end == '-' && pid > 0 ? pid : 0;
}

/* Why file (in /dev/shm, of size bytes and owner uid) could not be listed
 * with its figures: rc from pxs_open() or pxs_stat(), in words, into
 * buf; NULL if the row is to be left out (the file went away). */
static const char *
problem_of(int rc, const struct stat *sb, char *buf, size_t len)
{
	switch (rc) {
	case -ENOENT:
		return NULL;
	case -EPROTO:
		if (sb->st_size < (off_t)PXS_MIN_SIZE)
			snprintf(buf, len, "truncated or not a segment (%lld "
				 "bytes; a segment is at least 1M)",
				 (long long)sb->st_size);
		else
			snprintf(buf, len, "not a proxyshm segment of this "
				 "version, or damaged");
		break;
	case -EPERM:
		snprintf(buf, len, "owned by uid %u, not trusted "
			 "(--trust-owner)", (unsigned)sb->st_uid);
		break;
	case -EACCES:
		snprintf(buf, len, "no read permission (owner uid %u)",
			 (unsigned)sb->st_uid);
		break;
	case -ETIMEDOUT:
		snprintf(buf, len, "timed out attaching (a creator is still "
			 "formatting it, or it is stuck)");
		break;
	case -EINVAL:
		snprintf(buf, len, "not a segment name");
		break;
	case -ENOTRECOVERABLE:
		snprintf(buf, len, "unrecoverable: recreate it");
		break;
	default:
		snprintf(buf, len, "%s", pxs_strerror(rc));
	}
	return buf;
}

/* One row of a file that has a problem instead of figures. */
static void
print_problem(int json, const char **sep, const char *name,
	      const struct stat *sb, const char *problem)
{
	char size[16];

	if (json) {
		printf("%s\n {\"name\": ", *sep);
		cli_json_string(stdout, name);
		printf(", \"file_size\": %lld, \"problem\": ",
		       (long long)sb->st_size);
		cli_json_string(stdout, problem);
		printf("}");
		*sep = ",";
		return;
	}
	cli_human_size((uint64_t)sb->st_size, size);
	printf("%-32s %6s %6s %4s %8s %8s %6s %s\n", name, size, "-", "-", "-",
	       "-", "-", problem);
}

/*
 * Every regular file in /dev/shm, one row each: the figures of a segment
 * that attaches, and a problem column that says what is wrong with any
 * file that does not (not a segment, truncated, another user's, timed out,
 * unrecoverable) or with a ".pxs-tmp-*" file (a creator's private segment
 * under construction: never opened; stale once its creator is dead). A
 * file that vanishes meanwhile is left out. Nothing is written: segments
 * are attached read-only (PXS_RDONLY), temporary files only looked at.
 */
int
cli_ls_segments(const struct cli_args *a)
{
	char name[PXS_NAME_MAX + 2], size[16], used[16], why[96];
	char (*names)[PXS_NAME_MAX + 1] = NULL, (*p)[PXS_NAME_MAX + 1];
	size_t n = 0, i;
	const char *sep = "", *problem;
	struct dirent *de;
	int rc, ret = CLI_OK, json = cli_has(a, CLI_OPT_JSON), dfd;
	pxs_options o;
	pxs_store *s;
	/* Set by pxs_stat() before any use, which the analyzer cannot tell. */
	pxs_stats st = {0};
	struct stat sb;
	DIR *d;

	if (a->npos > 0)
		return cli_usage("unexpected argument '%s'", a->pos[0]);
	if (!(d = opendir("/dev/shm"))) {
		fprintf(stderr, "proxyshm ls-segments: /dev/shm: %s\n",
			strerror(errno));
		return CLI_ERROR;
	}
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) ||
		    strlen(de->d_name) > PXS_NAME_MAX)
			continue;
		/* One flat array, not an array of strdup()s: nothing
		 * to free name by name. */
		if (!(p = realloc(names, (n + 1) * sizeof *names))) {
			fprintf(stderr, "proxyshm ls-segments: out of "
				"memory\n");
			ret = CLI_ERROR;
			goto out;
		}
		names = p;
		strcpy(names[n++], de->d_name); /* fits: checked above */
	}
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_names);
	if (json)
		printf("[");
	else
		printf("%-32s %6s %6s %4s %8s %8s %6s %s\n", "NAME", "SIZE",
		       "USED", "USE%", "OBJECTS", "PENDING", "PROCS",
		       "PROBLEM");
	for (i = 0; i < n; i++) {
		name[0] = '/';
		strcpy(name + 1, names[i]);
		if (fstatat(dfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		long pid = temp_creator(names[i]);
		if (pid || !strncmp(names[i], ".pxs-tmp-", 9)) {
			if (!pid)
				snprintf(why, sizeof why, "a creator's "
					 "temporary file");
			else if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
				snprintf(why, sizeof why, "being created by "
					 "pid %ld", pid);
			else
				snprintf(why, sizeof why, "stale temporary "
					 "file: its creator (pid %ld) is "
					 "dead", pid);
			print_problem(json, &sep, name, &sb, why);
			continue;
		}
		o = cli_inspect_options(name);
		rc = pxs_open(name, &o, &s);
		if (rc == 0 && (rc = pxs_stat(s, &st)) < 0)
			pxs_close(s);
		if (rc < 0) {
			if ((problem = problem_of(rc, &sb, why, sizeof why)))
				print_problem(json, &sep, name, &sb, problem);
			continue;
		}
		if (json) {
			printf("%s\n {\"name\": ", sep);
			cli_json_string(stdout, name);
			printf(", \"segment_size\": %llu, \"heap_size\": %llu, "
			       "\"heap_used\": %llu, \"objects\": %u, "
			       "\"pending\": %u, \"abandoned\": %u, "
			       "\"processes\": %u, \"problem\": null}",
			       (unsigned long long)st.segment_size,
			       (unsigned long long)st.heap_size,
			       (unsigned long long)st.heap_used, st.objects,
			       st.pending, st.abandoned, st.processes);
			sep = ",";
		} else {
			cli_human_size(st.segment_size, size);
			cli_human_size(st.heap_used, used);
			printf("%-32s %6s %6s %3u%% %8u %8u %6u %s\n", name,
			       size, used, percent(st.heap_used, st.heap_size),
			       st.objects, st.pending, st.processes, "-");
		}
		pxs_close(s);
	}
	if (json)
		printf("]\n");
out:
	closedir(d);
	free(names);
	return ret;
}

/* ---- check, reap -------------------------------------------------------- */

static void
print_check_json(const char *name, int rc, const pxs_check_report *r)
{
	printf("{\"name\": ");
	cli_json_string(stdout, name);
	printf(", \"ok\": %s, \"errors\": %u, \"first_error\": ",
	       rc == 0 ? "true" : "false", r->errors);
	cli_json_string(stdout, r->first_error);
	printf(",\n \"heap_size\": %llu, \"bytes_free\": %llu, "
	       "\"bytes_used\": %llu, \"bytes_overhead\": %llu, "
	       "\"largest_free\": %llu, \"blocks_used\": %llu, "
	       "\"blocks_free\": %llu,\n",
	       (unsigned long long)r->heap_size,
	       (unsigned long long)r->bytes_free,
	       (unsigned long long)r->bytes_used,
	       (unsigned long long)r->bytes_overhead,
	       (unsigned long long)r->largest_free,
	       (unsigned long long)r->blocks_used,
	       (unsigned long long)r->blocks_free);
	printf(" \"slots_live\": %u, \"pins\": %u, \"dead_pins\": %u, "
	       "\"processes\": %u, \"dead_processes\": %u, "
	       "\"leaked_blocks\": %u, \"locks_busy\": %u, \"busy_lock\": ",
	       r->slots_live, r->pins, r->dead_pins, r->processes,
	       r->dead_processes, r->leaked_blocks, r->locks_busy);
	cli_json_string(stdout, r->busy_lock);
	printf("}\n");
}

static void
print_check_text(const char *name, int rc, const pxs_check_report *r)
{
	char a[16], b[16], c[16];

	if (rc == 0)
		printf("%s: consistent\n", name);
	else
		printf("%s: %u error%s; first: %s\n", name, r->errors,
		       r->errors == 1 ? "" : "s", r->first_error);
	cli_human_size(r->heap_size, a);
	printf("heap:       %s: ", a);
	cli_human_size(r->bytes_used, a);
	cli_human_size(r->bytes_overhead, b);
	printf("%s used in %llu blocks (%s of headers), ", a,
	       (unsigned long long)r->blocks_used, b);
	cli_human_size(r->bytes_free, a);
	cli_human_size(r->largest_free, c);
	printf("%s free in %llu blocks, largest %s\n", a,
	       (unsigned long long)r->blocks_free, c);
	printf("slots:      %u live, %u pins (%u held by dead processes)\n",
	       r->slots_live, r->pins, r->dead_pins);
	printf("processes:  %u alive, %u dead not yet reaped, %u blocks "
	       "leaked by dead processes\n", r->processes, r->dead_processes,
	       r->leaked_blocks);
	if (r->locks_busy)
		printf("locks:      %u busy (first: %s), read without them\n",
		       r->locks_busy, r->busy_lock);
}

int
cli_check(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1];
	int rc, json = cli_has(a, CLI_OPT_JSON);
	pxs_check_report r;
	pxs_options o;
	pxs_store *s;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	o = cli_inspect_options(name);
	rc = pxs_open(name, &o, &s);
	if (rc == -EPROTO || rc == -ENOTRECOVERABLE) {
		cli_fail(rc, "segment %s", name);
		return CLI_CHECK;
	}
	if (rc < 0)
		return cli_fail(rc, "segment %s", name);
	memset(&r, 0, sizeof r);
	rc = pxs_check(s, &r);
	pxs_close(s);
	if (rc == -ENOTRECOVERABLE) {
		cli_fail(rc, "check %s", name);
		return CLI_CHECK;
	}
	if (rc < 0 && rc != -EPROTO)
		return cli_fail(rc, "check %s", name);
	if (json)
		print_check_json(name, rc, &r);
	else
		print_check_text(name, rc, &r);
	if (rc < 0)
		fprintf(stderr, "proxyshm check: %s: %s\n", name,
			r.first_error[0] ? r.first_error : pxs_strerror(rc));
	return rc < 0 ? CLI_CHECK : CLI_OK;
}

int
cli_reap(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1];
	pxs_store *s;
	int rc;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if ((rc = cli_open(name, &s)) != CLI_OK)
		return rc;
	rc = pxs_reap(s);
	pxs_close(s);
	if (rc < 0)
		return cli_fail(rc, "reap %s", name);
	printf("%s: reaped %d dead process%s\n", name, rc,
	       rc == 1 ? "" : "es");
	return CLI_OK;
}
