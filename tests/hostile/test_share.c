/* test_share.c - sharing a store between users who trust its owner
 * (PXS_TRUST_OWNER): the parts that need root, which CI is. Elsewhere the
 * program prints "SKIP share: needs root" and exits 77 (meson: skipped).
 *
 * Two real users, each a process that dropped to its own uid (setgroups,
 * setresgid, setresuid in a child, as root bypasses the mode bits): the
 * owner creates a store with a group mode, and a member of that group
 * attaches it only when it names the owner as trusted; a user outside the
 * group is still refused by the mode, and a trusted owner other than the
 * real one changes nothing.
 */
#include "hostile.h"
#include "pxs_test.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB HX_MiB
#define GROUP 64100  /* the group the store is shared with */
#define OWNER 64101  /* creates the store, member of GROUP */
#define MEMBER 64102 /* another member of GROUP */
#define OUTSIDER 64103

static const pxs_key k_owner = {1, 1}, k_member = {2, 2};
static const char *cli; /* the proxyshm command (argv[1]) */

struct share {
	char name[64];
	mode_t mode;
};

/* Become @p uid: the owner with GROUP as its primary group (its files
 * get that group), the others with a group of their own and, if
 * @p in_group, GROUP besides. */
static int
become(uid_t uid, bool in_group)
{
	gid_t g = GROUP, primary = uid == OWNER ? GROUP : uid;
	if (setgroups(in_group ? 1 : 0, &g) < 0 ||
	    setresgid(primary, primary, primary) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;
	return geteuid() == uid ? 0 : -1;
}

static int
owner_creates(void *arg)
{
	const struct share *sh = arg;
	pxs_store *s;
	pxs_options o = {.flags = PXS_CREATE | PXS_EXCL, .size = 2 * MiB,
			 .mode = sh->mode};
	if (become(OWNER, true) < 0)
		return 10;
	if (pxs_open(sh->name, &o, &s) != 0)
		return 11;
	int rc = pxs_put_at(s, k_owner, "owner", 5) == 0 ? 0 : 12;
	pxs_close(s);
	return rc;
}

static int
member_attaches(void *arg)
{
	const struct share *sh = arg;
	pxs_store *s;
	pxs_view v;
	pxs_stats st;
	/* Read-write: without group write the mode refuses first. */
	int refused = sh->mode & 020 ? -EPERM : -EACCES;
	if (become(MEMBER, true) < 0)
		return 10;
	/* By default another user's store is refused: a squatter's. */
	if (pxs_open(sh->name, NULL, &s) != refused)
		return 11;
	pxs_options o = {.flags = PXS_TRUST_OWNER, .trusted_owner = OUTSIDER};
	if (pxs_open(sh->name, &o, &s) != refused)
		return 12; /* trusting somebody else does not help */
	o.flags = PXS_RDONLY;
	if (pxs_open(sh->name, &o, &s) != -EPERM)
		return 19; /* nor does looking only */
	o.flags = PXS_TRUST_OWNER;
	o.trusted_owner = OWNER;
	o.flags = PXS_TRUST_OWNER | PXS_RDONLY;
	if (pxs_open(sh->name, &o, &s) != 0)
		return 13; /* group read is enough to look */
	if (pxs_stat(s, &st) != 0 || st.objects != 1)
		return 14;
	pxs_close(s);
	o.flags = PXS_TRUST_OWNER;
	int rc = pxs_open(sh->name, &o, &s);
	if (!(sh->mode & 020)) /* no group write: read-write is refused */
		return rc == -EACCES ? 0 : 15;
	if (rc != 0)
		return 16;
	rc = 0;
	if (pxs_get(s, k_owner, &v) != 0 || v.size != 5 ||
	    memcmp(v.data, "owner", 5) != 0)
		rc = 17;
	else if (pxs_release(s, &v) != 0 ||
		 pxs_put_at(s, k_member, "member", 6) != 0)
		rc = 18;
	pxs_close(s);
	return rc;
}

static int
outsider_refused(void *arg)
{
	const struct share *sh = arg;
	pxs_store *s;
	if (become(OUTSIDER, false) < 0)
		return 10;
	pxs_options o = {.flags = PXS_TRUST_OWNER, .trusted_owner = OWNER};
	if (pxs_open(sh->name, &o, &s) != -EACCES)
		return 11; /* the mode keeps it out, trust or not */
	o.flags |= PXS_RDONLY;
	return pxs_open(sh->name, &o, &s) == -EACCES ? 0 : 12;
}

static int
owner_reads_back(void *arg)
{
	const struct share *sh = arg;
	pxs_store *s;
	pxs_view v;
	if (become(OWNER, true) < 0)
		return 10;
	if (pxs_open(sh->name, NULL, &s) != 0)
		return 11;
	int rc = 0;
	if (pxs_get(s, k_member, &v) != 0 || v.size != 6 ||
	    memcmp(v.data, "member", 6) != 0)
		rc = 12;
	else
		pxs_release(s, &v);
	pxs_close(s);
	return rc;
}

START_TEST(group_shares_with_trusted_owner)
{
	const mode_t modes[] = {0660, 0640};
	for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
		struct share sh = {.mode = modes[m]};
		char path[128];
		struct stat st;
		pxs_test_name(sh.name, sizeof sh.name);
		ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(owner_creates,
							      &sh), 30), 0);
		hx_path(path, sizeof path, sh.name);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_uint_eq(st.st_uid, OWNER);
		ck_assert_uint_eq(st.st_gid, GROUP);
		ck_assert_uint_eq(st.st_mode & 0777, modes[m]);
		int rc = pxs_test_reap(pxs_test_spawn(member_attaches, &sh), 30);
		ck_assert_msg(rc == 0, "mode %03o: member failed at step %d",
			      modes[m], rc);
		rc = pxs_test_reap(pxs_test_spawn(outsider_refused, &sh), 30);
		ck_assert_msg(rc == 0, "mode %03o: outsider failed at step %d",
			      modes[m], rc);
		if (modes[m] & 020) {
			rc = pxs_test_reap(
				pxs_test_spawn(owner_reads_back, &sh), 30);
			ck_assert_msg(rc == 0, "owner failed at step %d", rc);
		}
		ck_assert_int_eq(pxs_unlink(sh.name), 0);
	}
}
END_TEST

/* ---- the command: --trust-owner ------------------------------------------ */

/* Run the proxyshm command with @p args (NULL-terminated) as user @p uid
 * (in GROUP if @p in_group), output to /dev/null; its exit status. */
static int
run_as(uid_t uid, bool in_group, const char *const *args)
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		if (become(uid, in_group) < 0)
			_exit(100);
		execv(cli, (char *const *)args);
		_exit(127);
	}
	return pxs_test_reap(p, 30);
}

START_TEST(cli_trust_owner)
{
	char name[64], owner[16];
	pxs_test_name(name, sizeof name);
	snprintf(owner, sizeof owner, "%d", OWNER);
	const char *create[] = {cli, "create", name, "--size", "2M", "--mode",
				"0660", NULL};
	const char *stat_plain[] = {cli, "stat", name, NULL};
	const char *stat_trust[] = {cli, "--trust-owner", owner, "stat", name,
				    NULL};
	const char *put_trust[] = {cli, "--trust-owner", owner, "put", name,
				   "--name", "k", "/etc/passwd", NULL};
	const char *ls_segments[] = {cli, "--trust-owner", owner,
				     "ls-segments", NULL};
	const char *no_user[] = {cli, "--trust-owner", "no-such-user-pxs",
				 "stat", name, NULL};
	ck_assert_int_eq(run_as(OWNER, true, create), 0);
	ck_assert_int_eq(run_as(MEMBER, true, stat_plain), 5); /* refused */
	ck_assert_int_eq(run_as(MEMBER, true, stat_trust), 0);
	ck_assert_int_eq(run_as(MEMBER, true, put_trust), 0);
	ck_assert_int_eq(run_as(MEMBER, true, ls_segments), 0);
	ck_assert_int_eq(run_as(MEMBER, true, no_user), 1);
	ck_assert_int_eq(run_as(OUTSIDER, false, stat_trust), 5); /* mode */
	/* The member's put is there for the owner. */
	pxs_store *s;
	pxs_options o = {.flags = PXS_RDONLY | PXS_TRUST_OWNER,
			 .trusted_owner = OWNER};
	ck_assert_int_eq(pxs_open(name, &o, &s), 0);
	ck_assert_int_eq(pxs_exists(s, pxs_key_from_name("k", 1)), 1);
	pxs_close(s);
	ck_assert_int_eq(pxs_unlink(name), 0);
}
END_TEST

int
main(int argc, char **argv)
{
	if (geteuid() != 0) {
		printf("SKIP share: needs root\n");
		return 77;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s PROXYSHM\n", argv[0]);
		return 2;
	}
	cli = argv[1];
	Suite *su = suite_create("share");
	TCase *tc = tcase_create("share");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, group_shares_with_trusted_owner);
	tcase_add_test(tc, cli_trust_owner);
	suite_add_tcase(su, tc);
	return pxs_test_run(su);
}
