/* cmd_value.c - the subcommands that act on objects: ls, put, get, evict.
 *
 * Owns: the slot listing (text and JSON) and moving bytes between files
 * and objects. Reads go straight from the pinned view to the output file,
 * with no copy in this process.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	char key[PXS_KEY_STRLEN], size[16], age[16], owner[24], ttl[16];

	pxs_key_format(e->key, key);
	cli_human_size(e->size, size);
	cli_human_age(e->created_ns, age);
	cli_human_ttl(e->ttl_ms, ttl);
	if (e->owner_pid)
		snprintf(owner, sizeof owner, "%d%s", (int)e->owner_pid,
			 e->owner_alive ? "" : "(dead)");
	else
		snprintf(owner, sizeof owner, "-");
	/* no stored names yet: the NAME column is "-" */
	printf("%-32s %-4s %-9s %6s %5u %7u %-12s %5s %5s\n", key, "-",
	       cli_state_name(e->state), size, e->pins, e->waiters, owner,
	       age, ttl);
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
	printf("\"created_ns\": %llu, ", (unsigned long long)e->created_ns);
	if (e->ttl_ms >= 0)
		printf("\"ttl_ms\": %lld}", (long long)e->ttl_ms);
	else
		printf("\"ttl_ms\": null}");
}

int
cli_ls(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1];
	pxs_entry *v = NULL, *nv, e;
	size_t n = 0, cap = 0, i;
	uint64_t cur = 0;
	int rc, json = cli_has(a, CLI_OPT_JSON);
	int pending = cli_has(a, CLI_OPT_PENDING);
	pxs_store *s;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if ((rc = cli_open(name, &s)) != CLI_OK)
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
		printf("%-32s %-4s %-9s %6s %5s %7s %-12s %5s %5s\n", "KEY",
		       "NAME", "STATE", "SIZE", "PINS", "WAITERS", "OWNER", "AGE",
		       "TTL");
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
cli_put(const struct cli_args *a)
{
	char name[PXS_STORE_NAME_MAX + 1], out[PXS_PROXY_STRLEN];
	const char *keyname = a->keyname;
	int keyhex = cli_has(a, CLI_OPT_KEY), proxy = cli_has(a, CLI_OPT_PROXY);
	struct cli_input in;
	pxs_key key = a->key;
	pxs_store *s;
	int rc;

	if (a->npos < 1 || a->npos > 2)
		return cli_usage("expected NAME [FILE]");
	if (keyhex && keyname)
		return cli_usage("--key and --name together: give one");
	if (keyname)
		key = pxs_key_from_name(keyname, strlen(keyname));
	if ((rc = cli_store_name(a->pos[0], name)) != CLI_OK)
		return rc;
	if ((rc = cli_input_read(a->npos > 1 ? a->pos[1] : NULL, &in)) !=
	    CLI_OK)
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
	if (rc == -EEXIST) {
		pxs_key_format(key, out);
		fprintf(stderr, "proxyshm put: key %s is in use in %s (evict "
			"it first, or choose another key)\n", out, name);
		rc = CLI_EXISTS;
		goto out;
	}
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
cli_read_value(const struct cli_args *a, int wait)
{
	struct cli_ref r;
	pxs_store *s;
	pxs_view v;
	int rc;

	if ((rc = cli_open_target(a, 0, &r, &s, NULL)) != CLI_OK)
		return rc;
	rc = wait ? pxs_future_wait(s, r.key, a->timeout_ms, &v)
		  : pxs_get(s, r.key, &v);
	if (rc < 0) {
		rc = cli_key_fail(rc, wait ? "wait for" : "get", &r);
	} else {
		rc = cli_output_write(a->output, v.data, v.size);
		pxs_release(s, &v);
	}
	pxs_close(s);
	return rc;
}

int
cli_get(const struct cli_args *a)
{
	return cli_read_value(a, 0);
}

/*
 * evict NAME --abandoned: every future whose owner died before setting it.
 * Between the listing and the evict a restarted producer may take such a
 * key over with a new future (pxs_future_new_at()); that future is then
 * evicted too, and its waiters exit 4, as for any evict.
 */
static int
evict_abandoned(pxs_store *s, const char *store)
{
	struct cli_ref r;
	uint64_t cur = 0;
	pxs_entry e;
	int rc, ret = CLI_OK;
	unsigned n = 0;

	memcpy(r.store, store, strlen(store) + 1);
	while ((rc = pxs_list(s, &cur, &e)) == 1) {
		if (e.state != PXS_STATE_ABANDONED)
			continue;
		r.key = e.key;
		if ((rc = pxs_evict(s, e.key)) == 0)
			n++;
		else if (rc != -ENOENT) /* gone meanwhile: nothing to do */
			ret = cli_key_fail(rc, "evict", &r);
	}
	if (rc < 0)
		return cli_fail(rc, "list %s", store);
	printf("%s: evicted %u abandoned future%s\n", store, n,
	       n == 1 ? "" : "s");
	return ret;
}

int
cli_evict(const struct cli_args *a)
{
	struct cli_ref r;
	pxs_key *keys = NULL;
	int i, nk = 0, used, rc, ret = CLI_OK;
	pxs_store *s;

	if (cli_has(a, CLI_OPT_ABANDONED)) {
		if (a->keyname)
			return cli_usage("--abandoned with --name: give one");
		if ((rc = cli_one_name(a, r.store)) != CLI_OK)
			return rc;
		if ((rc = cli_open(r.store, &s)) != CLI_OK)
			return rc;
		rc = evict_abandoned(s, r.store);
		pxs_close(s);
		return rc;
	}
	/* Every key is parsed before the first is evicted: a typo in the
	 * third evicts nothing. */
	if ((used = cli_target(a, &r)) < 0)
		return -used;
	if (!(keys = malloc((size_t)a->npos * sizeof *keys)))
		return cli_fail(-ENOMEM, "evict");
	keys[nk++] = r.key;
	for (i = used; i < a->npos; i++)
		if ((rc = cli_key_arg(r.store, a->pos[i], &keys[nk++])) !=
		    CLI_OK)
			goto out;
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		goto out;
	for (i = 0; i < nk; i++) {
		r.key = keys[i];
		if ((rc = pxs_evict(s, keys[i])) < 0)
			ret = cli_key_fail(rc, "evict", &r);
	}
	pxs_close(s);
	rc = ret;
out:
	free(keys);
	return rc;
}

/* ---- expire ------------------------------------------------------------- */

int
cli_expire(const struct cli_args *a)
{
	const char *secs;
	struct cli_ref r;
	pxs_store *s;
	long ms;
	int rc, used;

	/* everything is parsed before the attach: bad input changes nothing */
	if ((used = cli_target(a, &r)) < 0)
		return -used;
	if (a->npos == used)
		return cli_usage("missing SECONDS (or 'never') after the key");
	if (a->npos > used + 1)
		return cli_usage("unexpected argument '%s'", a->pos[used + 1]);
	secs = a->pos[used];
	if (!strcmp(secs, "never"))
		ms = -1;
	else if (cli_parse_seconds(secs, &ms) < 0)
		return cli_usage("bad lifetime '%s': give seconds, like 60 or "
				 "0.5, or 'never'", secs);
	if ((rc = cli_open(r.store, &s)) != CLI_OK)
		return rc;
	if ((rc = pxs_expire(s, r.key, ms)) < 0)
		rc = cli_key_fail(rc, "expire", &r);
	pxs_close(s);
	return rc;
}
