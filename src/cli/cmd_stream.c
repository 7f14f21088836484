/* cmd_stream.c - `proxyshm stream ACTION`: new, append, read, tail, info.
 *
 * Owns: feeding a stream from the shell (one item per file, or per line
 * with --lines) and following one (`tail -f` style, raw or --json), over
 * the public stream calls only. A follower that falls behind a Discard
 * stream's window says how many items it missed on stderr and goes on from
 * the oldest retained one.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Options shared by the actions; each action accepts the ones it needs. */
struct sopts {
	const char *keyname, *output;
	long timeout_ms;
	uint64_t window, from, seq;
	bool block, lines, follow, json, have_from, help;
};

/* Parse the options in @p allowed (short letters) and the target; returns
 * the index of the first positional after the target, or minus an exit
 * code. */
static int
parse(int argc, char **argv, const char *allowed, struct sopts *o,
      struct cli_ref *r)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "block", no_argument, NULL, 'b' },
		{ "lines", no_argument, NULL, 'l' },
		{ "from", required_argument, NULL, 's' },
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	memset(o, 0, sizeof *o);
	o->timeout_ms = -1;
	o->window = 16;
	while ((c = getopt_long(argc, argv, ":n:t:w:bls:fjo:h", opts, NULL)) !=
	       -1) {
		if (c == 'h') {
			o->help = true;
			return 0;
		}
		if (c != '?' && c != ':' && !strchr(allowed, c))
			return -cli_usage("option '%s' does not apply here",
					  argv[optind - 1]);
		switch (c) {
		case 'n':
			o->keyname = optarg;
			break;
		case 't':
			if (cli_parse_seconds(optarg, &o->timeout_ms) < 0)
				return -cli_usage("bad timeout '%s'", optarg);
			break;
		case 'w':
			if (cli_parse_uint(optarg, 1, PXS_STREAM_WINDOW_MAX,
					   &o->window) < 0)
				return -cli_usage("bad window '%s'", optarg);
			break;
		case 's':
			if (cli_parse_uint(optarg, 0, UINT64_MAX - 1,
					   &o->from) < 0)
				return -cli_usage("bad seq '%s'", optarg);
			o->have_from = true;
			break;
		case 'b':
			o->block = true;
			break;
		case 'l':
			o->lines = true;
			break;
		case 'f':
			o->follow = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'o':
			o->output = optarg;
			break;
		default:
			return -cli_bad_option(c, argv);
		}
	}
	if ((rc = cli_target(argc - optind, argv + optind, o->keyname, r)) < 0)
		return rc;
	return optind + rc;
}

static int
fail(int rc, const char *what, const struct cli_ref *r)
{
	char key[PXS_KEY_STRLEN];

	pxs_key_format(r->key, key);
	return cli_fail(rc, "%s stream %s in %s", what, key, r->store);
}

static int
do_new(pxs_store *s, const struct cli_ref *r, const struct sopts *o)
{
	pxs_stream_options so = { .window = (uint32_t)o->window,
				  .flags = o->block ? PXS_STREAM_BLOCK : 0 };
	int rc = pxs_stream_new(s, r->key, &so);

	return rc < 0 ? fail(rc, "new", r) : CLI_OK;
}

static int
append_one(pxs_store *s, const struct cli_ref *r, const struct sopts *o,
	   const void *data, size_t size)
{
	uint64_t seq;
	int rc = pxs_stream_append(s, r->key, data, size, o->timeout_ms, &seq);

	if (rc < 0)
		return fail(rc, "append to", r);
	printf("%" PRIu64 "\n", seq);
	return CLI_OK;
}

static int
do_append(pxs_store *s, const struct cli_ref *r, const struct sopts *o,
	  const char *path)
{
	struct cli_input in;
	int rc = cli_input_read(path, &in);

	if (rc != CLI_OK)
		return rc;
	if (!o->lines) {
		rc = append_one(s, r, o, in.data, in.size);
	} else {
		const char *p = in.data, *end = p + in.size;
		while (rc == CLI_OK && p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *stop = nl ? nl : end;
			rc = append_one(s, r, o, p, (size_t)(stop - p));
			p = nl ? nl + 1 : end;
		}
	}
	cli_input_free(&in);
	return rc;
}

static int
do_read(pxs_store *s, const struct cli_ref *r, const struct sopts *o)
{
	pxs_view v;
	int rc = pxs_stream_read(s, r->key, o->seq, o->timeout_ms, &v);

	if (rc < 0)
		return fail(rc, "read", r);
	rc = cli_output_write(o->output, v.data, v.size);
	pxs_release(s, &v);
	return rc;
}

static void
print_item(const struct sopts *o, uint64_t seq, const pxs_view *v)
{
	if (o->json) {
		printf("{\"seq\": %" PRIu64 ", \"size\": %zu, \"data\": ", seq,
		       v->size);
		cli_json_bytes(stdout, v->data, v->size);
		printf("}\n");
	} else {
		fwrite(v->data, 1, v->size, stdout);
		if (v->size == 0 || ((const char *)v->data)[v->size - 1] != '\n')
			putchar('\n');
	}
	fflush(stdout);
}

/* Items from --from (default the oldest) to the end; with --follow, wait
 * for new ones until the stream ends or --timeout passes between two. */
static int
do_tail(pxs_store *s, const struct cli_ref *r, const struct sopts *o)
{
	pxs_stream_stats st;
	uint64_t seq;
	pxs_view v;
	int rc = pxs_stream_stat(s, r->key, &st);

	if (rc < 0)
		return fail(rc, "tail", r);
	seq = o->have_from ? o->from : st.first;
	for (;;) {
		if (!o->follow && seq >= st.next)
			return CLI_OK;
		rc = pxs_stream_read(s, r->key, seq, o->follow ? o->timeout_ms : 0,
				     &v);
		if (rc == -EPIPE)
			return CLI_OK;
		if (rc == -ERANGE) {
			if ((rc = pxs_stream_stat(s, r->key, &st)) < 0)
				return fail(rc, "tail", r);
			fprintf(stderr,
				"proxyshm stream: items %" PRIu64 "..%" PRIu64
				" slid out of the window before they were "
				"read\n",
				seq, st.first - 1);
			seq = st.first;
			continue;
		}
		if (rc < 0)
			return fail(rc, "tail", r);
		print_item(o, seq, &v);
		pxs_release(s, &v);
		seq++;
	}
}

static int
do_info(pxs_store *s, const struct cli_ref *r, const struct sopts *o)
{
	pxs_stream_stats st;
	int rc = pxs_stream_stat(s, r->key, &st);

	if (rc < 0)
		return fail(rc, "info on", r);
	const char *mode = st.flags & PXS_STREAM_BLOCK ? "block" : "discard";
	if (o->json) {
		printf("{\"first\": %" PRIu64 ", \"next\": %" PRIu64
		       ", \"ended\": %s, \"window\": %u, \"mode\": \"%s\", "
		       "\"readers\": %u, \"slowest\": %" PRIu64
		       ", \"groups\": %u, \"taken\": %u, \"reserved\": %u}\n",
		       st.first, st.next, st.ended ? "true" : "false",
		       st.window, mode, st.readers, st.slowest, st.groups,
		       st.taken, st.reserved);
		return CLI_OK;
	}
	if (st.next > st.first)
		printf("items     %" PRIu64 "..%" PRIu64 " retained", st.first,
		       st.next - 1);
	else
		printf("items     none retained");
	printf(" (next %" PRIu64 ")%s\n", st.next, st.ended ? ", ended" : "");
	printf("window    %u, %s\n", st.window, mode);
	printf("readers   %u (slowest at %" PRIu64 ")\n", st.readers,
	       st.slowest);
	printf("groups    %u (%u taken, not acknowledged)\n", st.groups,
	       st.taken);
	printf("reserved  %u\n", st.reserved);
	return CLI_OK;
}

int
cli_stream(int argc, char **argv)
{
	static const struct {
		const char *name, *opts;
		int npos; /* positionals after the target: -1 up to one */
	} acts[] = {
		{ "new", "nwb", 0 },     { "append", "ntl", -1 },
		{ "read", "nto", 1 },    { "tail", "ntsfj", 0 },
		{ "info", "nj", 0 },
	};
	struct cli_ref r;
	struct sopts o;
	pxs_store *s;
	size_t a;
	int rc, first;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return cli_help();
	if (argc < 2)
		return cli_usage("missing ACTION (new, append, read, tail, info)");
	for (a = 0; a < sizeof acts / sizeof acts[0]; a++)
		if (!strcmp(argv[1], acts[a].name))
			break;
	if (a == sizeof acts / sizeof acts[0])
		return cli_usage("unknown action '%s'", argv[1]);
	if ((first = parse(argc - 1, argv + 1, acts[a].opts, &o, &r)) < 0)
		return -first;
	if (o.help)
		return cli_help();
	first++; /* index in argv, past the action */
	int extra = argc - first;
	if ((acts[a].npos >= 0 && extra != acts[a].npos) ||
	    (acts[a].npos < 0 && extra > 1))
		return cli_usage("wrong number of arguments for '%s'",
				 acts[a].name);
	if (a == 2 && cli_parse_uint(argv[first], 0, UINT64_MAX, &o.seq) < 0)
		return cli_usage("bad seq '%s'", argv[first]);
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		return rc;
	switch (a) {
	case 0:
		rc = do_new(s, &r, &o);
		break;
	case 1:
		rc = do_append(s, &r, &o, extra ? argv[first] : NULL);
		break;
	case 2:
		rc = do_read(s, &r, &o);
		break;
	case 3:
		rc = do_tail(s, &r, &o);
		break;
	default:
		rc = do_info(s, &r, &o);
		break;
	}
	pxs_close(s);
	return rc;
}
