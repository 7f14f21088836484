/* cmd_stream.c - `proxyshm stream ACTION`: new, append, read, tail, info,
 * delete.
 *
 * Owns: feeding a stream from the shell (one item per file, or per line
 * with --lines) and following one (`tail -f` style, raw or --json), over
 * the public stream calls only. A follower that falls behind a Discard
 * stream's window says how many items it missed on stderr and goes on from
 * the oldest retained one.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* What the actions read of the command line (from struct cli_args). */
struct sopts {
	const char *output;
	long timeout_ms;
	uint64_t window, from, seq;
	bool block, lines, follow, json, have_from;
};

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

static int
do_delete(pxs_store *s, const struct cli_ref *r)
{
	int rc = pxs_stream_delete(s, r->key);

	return rc < 0 ? fail(rc, "delete", r) : CLI_OK;
}

#define SOPT(id) CLI_OPT(CLI_OPT_##id)

int
cli_stream(const struct cli_args *args)
{
	static const struct {
		const char *name;
		unsigned opts;
		int npos; /* positionals after the target: -1 up to one */
	} acts[] = {
		{ "new", SOPT(NAME) | SOPT(WINDOW) | SOPT(BLOCK), 0 },
		{ "append", SOPT(NAME) | SOPT(TIMEOUT) | SOPT(LINES), -1 },
		{ "read", SOPT(NAME) | SOPT(TIMEOUT) | SOPT(OUTPUT), 1 },
		{ "tail",
		  SOPT(NAME) | SOPT(TIMEOUT) | SOPT(FROM) | SOPT(FOLLOW) |
			  SOPT(JSON),
		  0 },
		{ "info", SOPT(NAME) | SOPT(JSON), 0 },
		{ "delete", SOPT(NAME), 0 },
	};
	struct cli_args a = *args;
	struct cli_ref r;
	pxs_store *s;
	size_t act;
	int rc;

	if (a.npos < 1)
		return cli_usage(
			"missing ACTION (new, append, read, tail, info, delete)");
	for (act = 0; act < sizeof acts / sizeof acts[0]; act++)
		if (!strcmp(a.pos[0], acts[act].name))
			break;
	if (act == sizeof acts / sizeof acts[0])
		return cli_usage("unknown action '%s'", a.pos[0]);
	unsigned stray = a.given & ~acts[act].opts;
	if (stray)
		return cli_usage("--%s does not apply to 'stream %s'",
				 cli_opt_name((enum cli_opt)__builtin_ctz(stray)),
				 acts[act].name);
	a.pos++, a.npos--; /* past the action */
	int used = cli_target(&a, &r);
	if (used < 0)
		return -used;
	int extra = a.npos - used;
	if ((acts[act].npos >= 0 && extra != acts[act].npos) ||
	    (acts[act].npos < 0 && extra > 1))
		return cli_usage("wrong number of arguments for 'stream %s'",
				 acts[act].name);
	struct sopts o = {
		.output = a.output,
		.timeout_ms = a.timeout_ms,
		.window = a.window,
		.from = a.from,
		.block = cli_has(&a, CLI_OPT_BLOCK),
		.lines = cli_has(&a, CLI_OPT_LINES),
		.follow = cli_has(&a, CLI_OPT_FOLLOW),
		.json = cli_has(&a, CLI_OPT_JSON),
		.have_from = cli_has(&a, CLI_OPT_FROM),
	};
	const char *rest = extra ? a.pos[used] : NULL;
	if (act == 2 && cli_parse_uint(rest, 0, UINT64_MAX, &o.seq) < 0)
		return cli_usage("bad seq '%s': give an item's number, like 0 "
				 "or 42", rest);
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		return rc;
	switch (act) {
	case 0:
		rc = do_new(s, &r, &o);
		break;
	case 1:
		rc = do_append(s, &r, &o, rest);
		break;
	case 2:
		rc = do_read(s, &r, &o);
		break;
	case 3:
		rc = do_tail(s, &r, &o);
		break;
	case 4:
		rc = do_info(s, &r, &o);
		break;
	default:
		rc = do_delete(s, &r);
		break;
	}
	pxs_close(s);
	return rc;
}
