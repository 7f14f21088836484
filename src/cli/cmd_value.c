/* cmd_value.c - the subcommands that act on objects: ls, put, get, evict.
 *
 * Owns: the slot listing (text and JSON) and moving bytes between files
 * and objects. Reads go straight from the pinned view to the output file,
 * with no copy in this process.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define OPT_JSON 0x100

/* ---- ls ----------------------------------------------------------------- */

static int
cmp_created(const void *a, const void *b)
{
	const pxs_entry *x = a, *y = b;

	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	if (x->key.hi != y->key.hi)
		return x->key.hi < y->key.hi ? -1 : 1;
	return x->key.lo < y->key.lo ? -1 : x->key.lo > y->key.lo;
}

static void
print_entry_text(const pxs_entry *e)
{
	char key[PXS_KEY_STRLEN], size[16], age[16], owner[24];

	pxs_key_format(e->key, key);
	cli_human_size(e->size, size);
	cli_human_age(e->created_ns, age);
	if (e->owner_pid)
		snprintf(owner, sizeof owner, "%d%s", (int)e->owner_pid,
			 e->owner_alive ? "" : "(dead)");
	else
		snprintf(owner, sizeof owner, "-");
	/* no stored names yet: the NAME column is "-" */
	printf("%-32s %-4s %-9s %6s %5u %7u %-12s %5s\n", key, "-",
	       cli_state_name(e->state), size, e->pins, e->waiters, owner,
	       age);
}

static void
print_entry_json(const pxs_entry *e, const char *sep)
{
	char key[PXS_KEY_STRLEN];

	pxs_key_format(e->key, key);
	printf("%s\n {\"key\": \"%s\", \"name\": null, \"state\": \"%s\", "
	       "\"size\": %llu, \"pins\": %u, \"waiters\": %u, ", sep, key,
	       cli_state_name(e->state), (unsigned long long)e->size, e->pins,
	       e->waiters);
	if (e->owner_pid)
		printf("\"owner_pid\": %d, \"owner_alive\": %s, ",
		       (int)e->owner_pid, e->owner_alive ? "true" : "false");
	else
		printf("\"owner_pid\": null, \"owner_alive\": null, ");
	printf("\"created_ns\": %llu}", (unsigned long long)e->created_ns);
}

int
cli_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pending", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char name[PXS_STORE_NAME_MAX + 1];
	pxs_entry *v = NULL, *nv, e;
	size_t n = 0, cap = 0, i;
	uint64_t cur = 0;
	int c, rc, json = 0, pending = 0;
	pxs_store *s;

	while ((c = getopt_long(argc, argv, ":ph", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pending = 1;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case 'h':
			return cli_help();
		default:
			return cli_bad_option(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("expected one NAME");
	if ((rc = cli_store_name(argv[optind], name)) != CLI_OK)
		return rc;
	if ((rc = cli_open_inspect(name, &s)) != CLI_OK)
		return rc;
	while ((rc = pxs_list(s, &cur, &e)) == 1) {
		if (pending && e.state != PXS_STATE_PENDING &&
		    e.state != PXS_STATE_RESERVED)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(nv = realloc(v, cap * sizeof *v))) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = e;
	}
	pxs_close(s);
	if (rc < 0) {
		free(v);
		return cli_fail(rc, "list %s", name);
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_created);
	if (!json)
		printf("%-32s %-4s %-9s %6s %5s %7s %-12s %5s\n", "KEY", "NAME",
		       "STATE", "SIZE", "PINS", "WAITERS", "OWNER", "AGE");
	else
		printf("[");
	for (i = 0; i < n; i++) {
		if (json)
			print_entry_json(&v[i], i ? "," : "");
		else
			print_entry_text(&v[i]);
	}
	if (json)
		printf("]\n");
	free(v);
	return CLI_OK;
}

/* ---- put ---------------------------------------------------------------- */

int
cli_put(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'n' },
		{ "proxy", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char name[PXS_STORE_NAME_MAX + 1], out[PXS_PROXY_STRLEN];
	const char *keyhex = NULL, *keyname = NULL;
	struct cli_input in;
	pxs_key key;
	pxs_store *s;
	int c, rc, proxy = 0;

	while ((c = getopt_long(argc, argv, ":k:n:ph", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyhex = optarg;
			break;
		case 'n':
			keyname = optarg;
			break;
		case 'p':
			proxy = 1;
			break;
		case 'h':
			return cli_help();
		default:
			return cli_bad_option(c, argv);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage("expected NAME [FILE]");
	if (keyhex && keyname)
		return cli_usage("--key and --name together");
	if (keyhex && pxs_key_parse(keyhex, &key) < 0)
		return cli_usage("bad key '%s' (32 lowercase hex digits)",
				 keyhex);
	if (keyname)
		key = pxs_key_from_name(keyname, strlen(keyname));
	if ((rc = cli_store_name(argv[optind], name)) != CLI_OK)
		return rc;
	if ((rc = cli_input_read(argv[optind + 1], &in)) != CLI_OK)
		return rc;
	if ((rc = cli_open(name, &s)) != CLI_OK)
		goto out;
	if (keyhex || keyname)
		rc = pxs_put_at(s, key, in.data, in.size);
	else
		rc = pxs_put(s, in.data, in.size, &key);
	pxs_close(s);
	if (rc == 0)
		rc = proxy ? cli_proxy_string(name, key, out)
			   : pxs_key_format(key, out);
	if (rc < 0) {
		rc = cli_fail(rc, "put into %s", name);
		goto out;
	}
	printf("%s\n", out);
out:
	cli_input_free(&in);
	return rc;
}

/* ---- get, evict --------------------------------------------------------- */

int
cli_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyname = NULL, *output = NULL;
	char key[PXS_KEY_STRLEN];
	struct cli_ref r;
	pxs_store *s;
	pxs_view v;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			keyname = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			return cli_help();
		default:
			return cli_bad_option(c, argv);
		}
	}
	if ((rc = cli_target(argc - optind, argv + optind, keyname, &r)) < 0)
		return -rc;
	if (optind + rc != argc)
		return cli_usage("unexpected argument '%s'", argv[optind + rc]);
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		return rc;
	if ((rc = pxs_get(s, r.key, &v)) < 0) {
		pxs_key_format(r.key, key);
		rc = cli_fail(rc, "get %s in %s", key, r.store);
	} else {
		rc = cli_output_write(output, v.data, v.size);
		pxs_release(s, &v);
	}
	pxs_close(s);
	return rc;
}

int
cli_evict(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyname = NULL;
	char key[PXS_KEY_STRLEN];
	struct cli_ref r;
	pxs_store *s;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			keyname = optarg;
			break;
		case 'h':
			return cli_help();
		default:
			return cli_bad_option(c, argv);
		}
	}
	if ((rc = cli_target(argc - optind, argv + optind, keyname, &r)) < 0)
		return -rc;
	if (optind + rc != argc)
		return cli_usage("unexpected argument '%s'", argv[optind + rc]);
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		return rc;
	if ((rc = pxs_evict(s, r.key)) < 0) {
		pxs_key_format(r.key, key);
		rc = cli_fail(rc, "evict %s in %s", key, r.store);
	}
	pxs_close(s);
	return rc;
}
