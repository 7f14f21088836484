/* cmd_value.c - the subcommands that act on objects: ls, put, get, evict,
 * expire.
 *
 * Owns: the slot listing (text and JSON, with the names values were stored
 * with, and its filters) and moving bytes between files and objects. Reads go straight from the pinned view to the output file,
 * with no copy in this process.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- ls ----------------------------------------------------------------- */

/* One listed key: its entry and the name it was stored with ("" if none,
 * "?" if the store could not say). */
struct row {
	pxs_entry e;
	char name[PXS_KEY_NAME_MAX + 1];
};

static int
cmp_created(const void *a, const void *b)
{
	const pxs_entry *x = &((const struct row *)a)->e;
	const pxs_entry *y = &((const struct row *)b)->e;

	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	if (x->key.hi != y->key.hi)
		return x->key.hi < y->key.hi ? -1 : 1;
	return x->key.lo < y->key.lo ? -1 : x->key.lo > y->key.lo;
}

/* Does @p r pass the filters of @p a (--pending, --abandoned, --prefix)? */
static int
wanted(const struct row *r, const struct cli_args *a)
{
	pxs_state st = r->e.state;

	if (cli_has(a, CLI_OPT_PENDING) && st != PXS_STATE_PENDING &&
	    st != PXS_STATE_RESERVED)
		return 0;
	if (cli_has(a, CLI_OPT_ABANDONED) && st != PXS_STATE_ABANDONED)
		return 0;
	return !a->prefix ||
	       (strcmp(r->name, "?") != 0 &&
		!strncmp(r->name, a->prefix, strlen(a->prefix)));
}

/*
 * The keys of @p s that pass the filters of @p a, with their names, oldest
 * first, into *@p out (free()d by the caller). CLI_OK or an exit code.
 */
static int
collect(pxs_store *s, const char *store, const struct cli_args *a,
	struct row **out, size_t *np)
{
	size_t n = 0, cap = 64;
	struct row *v = malloc(cap * sizeof *v), *nv;
	uint64_t cur = 0;
	int rc = v ? 0 : -ENOMEM, nr;

	while (rc >= 0 && (rc = pxs_list(s, &cur, &v[n].e)) == 1) {
		nr = pxs_key_name(s, v[n].e.key, v[n].name, sizeof v[n].name);
		if (nr == -ENOENT) /* evicted since it was listed */
			continue;
		if (nr < 0)
			strcpy(v[n].name, "?");
		if (!wanted(&v[n], a) || ++n < cap)
			continue;
		if (!(nv = realloc(v, 2 * cap * sizeof *v))) {
			rc = -ENOMEM;
			break;
		}
		v = nv;
		cap *= 2;
	}
	if (rc < 0) {
		free(v);
		return cli_fail(rc, "list %s", store);
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_created);
	*out = v;
	*np = n;
	return CLI_OK;
}

static void
print_row_text(const struct row *r, int namew)
{
	const pxs_entry *e = &r->e;
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
	printf("%-32s %-*s %-9s %6s %5u %7u %-12s %5s %5s\n", key, namew,
	       r->name[0] ? r->name : "-", cli_state_name(e->state), size,
	       e->pins, e->waiters, owner, age, ttl);
}

static void
print_row_json(const struct row *r, const char *sep)
{
	const pxs_entry *e = &r->e;
	char key[PXS_KEY_STRLEN];

	pxs_key_format(e->key, key);
	printf("%s\n {\"key\": \"%s\", \"name\": ", sep, key);
	if (r->name[0])
		cli_json_string(stdout, r->name);
	else
		printf("null");
	printf(", \"state\": \"%s\", \"size\": %llu, \"pins\": %u, "
	       "\"waiters\": %u, ", cli_state_name(e->state),
	       (unsigned long long)e->size, e->pins, e->waiters);
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
	int rc, namew = 4, json = cli_has(a, CLI_OPT_JSON);
	struct row *v;
	size_t n, i;
	pxs_store *s;

	if ((rc = cli_one_name(a, name)) != CLI_OK)
		return rc;
	if ((rc = cli_open_inspect(name, &s)) != CLI_OK)
		return rc;
	rc = collect(s, name, a, &v, &n);
	pxs_close(s);
	if (rc != CLI_OK)
		return rc;
	for (i = 0; i < n; i++)
		if ((int)strlen(v[i].name) > namew)
			namew = (int)strlen(v[i].name);
	if (!json)
		printf("%-32s %-*s %-9s %6s %5s %7s %-12s %5s %5s\n", "KEY",
		       namew, "NAME", "STATE", "SIZE", "PINS", "WAITERS",
		       "OWNER", "AGE", "TTL");
	else
		printf("[");
	for (i = 0; i < n; i++) {
		if (json)
			print_row_json(&v[i], i ? "," : "");
		else
			print_row_text(&v[i], namew);
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
	if (keyname && strlen(keyname) > PXS_KEY_NAME_MAX)
		return cli_usage("KEYNAME is too long to keep: at most %d "
				 "bytes", PXS_KEY_NAME_MAX);
	if (keyname)
		key = pxs_key_from_name(keyname, strlen(keyname));
	if ((rc = cli_store_name(a->pos[0], name)) != CLI_OK)
		return rc;
	if ((rc = cli_input_read(a->npos > 1 ? a->pos[1] : NULL, &in)) !=
	    CLI_OK)
		return rc;
	if ((rc = cli_open(name, &s)) != CLI_OK)
		goto out;
	if (keyname) /* the store keeps the name, for ls */
		rc = pxs_put_named(s, keyname, in.data, in.size, &key);
	else if (keyhex)
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
 * evict NAME --abandoned / --prefix P: every key that the filters pick
 * (abandoned futures; values stored with a name that starts with P).
 * Between the listing and the evict a restarted producer may take an
 * abandoned key over with a new future (pxs_future_new_at()); that future
 * is then evicted too, and its waiters exit 4, as for any evict.
 */
static int
evict_matching(const struct cli_args *a, pxs_store *s, const char *store)
{
	struct cli_ref r;
	struct row *v;
	size_t n, i;
	unsigned done = 0;
	int rc, ret = CLI_OK;

	if ((rc = collect(s, store, a, &v, &n)) != CLI_OK)
		return rc;
	memcpy(r.store, store, strlen(store) + 1);
	for (i = 0; i < n; i++) {
		r.key = v[i].e.key;
		if ((rc = pxs_evict(s, r.key)) == 0)
			done++;
		else if (rc != -ENOENT) /* gone meanwhile: nothing to do */
			ret = cli_key_fail(rc, "evict", &r);
	}
	free(v);
	printf("%s: evicted %u %s%s\n", store, done,
	       cli_has(a, CLI_OPT_ABANDONED) ? "abandoned future" : "key",
	       done == 1 ? "" : "s");
	return ret;
}

int
cli_evict(const struct cli_args *a)
{
	struct cli_ref r;
	pxs_key *keys = NULL;
	int i, nk = 0, used, rc, ret = CLI_OK;
	pxs_store *s;

	if (cli_has(a, CLI_OPT_ABANDONED) || a->prefix) {
		if (a->keyname)
			return cli_usage("--name with --abandoned or --prefix: "
					 "give one");
		if ((rc = cli_one_name(a, r.store)) != CLI_OK)
			return rc;
		if ((rc = cli_open(r.store, &s)) != CLI_OK)
			return rc;
		rc = evict_matching(a, s, r.store);
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
