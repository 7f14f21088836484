/* test_liveness.c - "is the owner alive?" must never be fooled: a stopped
 * owner is alive (A4e), a forked child holding the parent's descriptors
 * does not keep a dead parent alive (A11), closing a second handle does not
 * kill the first (A12), pids from another PID namespace do not matter
 * (A13), and waits are not disturbed by signals or cancellation (A15, A16).
 */
#include "internal.h"
#include "pxs_test.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static char seg[64];

struct job {
	pxs_key k;
	long timeout;
	int expect;
	int fd;
};

static int
child_wait(void *arg)
{
	struct job *j = arg;
	pxs_store *s;
	pxs_view v;
	if (pxs_open(seg, NULL, &s))
		return 20;
	int rc = pxs_future_wait(s, j->k, j->timeout, &v);
	if (rc != j->expect) {
		fprintf(stderr, "waiter: %s, expected %s\n", pxs_strerror(rc),
			pxs_strerror(j->expect));
		return 21;
	}
	if (rc == 0 && (v.size != 5 || memcmp(v.data, "value", 5) != 0))
		return 22;
	return 0;
}

/* Owns the future, tells the parent, sets it when told (a byte on fd). */
static int
child_owner(void *arg)
{
	struct job *j = arg;
	pxs_store *s;
	char c;
	if (pxs_open(seg, NULL, &s) || pxs_future_claim(s, j->k))
		return 30;
	if (write(j->fd, "o", 1) != 1)
		return 31;
	if (read(j->fd, &c, 1) != 1)
		return 32;
	return pxs_future_set(s, j->k, "value", 5) ? 33 : 0;
}

/* A4e: SIGSTOP the owner for 3 s (12 liveness periods): not dead. */
START_TEST(stopped_owner_is_not_dead)
{
	pxs_store *s = pxs_test_store(seg, 4 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("stopped", 7), .timeout = -1};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	j.fd = sv[1];
	pid_t owner = pxs_test_spawn(child_owner, &j);
	char c;
	ck_assert_int_eq(read(sv[0], &c, 1), 1);
	pid_t w = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(w, 10000), 0);
	kill(owner, SIGSTOP);
	/* A waiter with a 1 s timeout times out; it does not see a death. */
	struct job t = j;
	t.timeout = 1000;
	t.expect = -ETIMEDOUT;
	double t0 = pxs_test_ms();
	ck_assert_int_eq(pxs_test_reap(pxs_test_spawn(child_wait, &t), 30), 0);
	double took = pxs_test_ms() - t0;
	ck_assert_double_ge(took, 1000);
	ck_assert_double_lt(took, 3000);
	pxs_view v;
	ck_assert_int_eq(pxs_future_done(s, j.k), 0);
	ck_assert_int_eq(pxs_get(s, j.k, &v), -EAGAIN);
	usleep(2000 * 1000); /* the stop itself is the fault: 3 s in all */
	ck_assert_int_eq(pxs_future_done(s, j.k), 0);
	kill(owner, SIGCONT);
	ck_assert_int_eq(write(sv[0], "s", 1), 1);
	ck_assert_int_eq(pxs_test_reap(owner, 30), 0);
	ck_assert_int_eq(pxs_test_reap(w, 30), 0);
	close(sv[0]);
	close(sv[1]);
	pxs_test_done(s, seg);
}
END_TEST

static pxs_store *inherited;

/* Keeps using the handle it inherited, until told to stop. */
static int
forked_user(void *arg)
{
	int fd = *(int *)arg;
	pxs_key k;
	char c;
	if (pxs_future_new(inherited, &k)) /* our own future */
		return 40;
	pid_t me = getpid();
	if (pxs_put(inherited, "child", 5, &k) ||
	    write(fd, &me, sizeof me) != sizeof me)
		return 41;
	if (read(fd, &c, 1) != 1)
		return 42;
	return pxs_put(inherited, "again", 5, &k) ? 43 : 0;
}

/* The parent: opens, creates F, forks a user of the inherited handle. */
static int
forking_owner(void *arg)
{
	struct job *j = arg;
	if (pxs_open(seg, NULL, &inherited) ||
	    pxs_future_new_at(inherited, j->k))
		return 50;
	pxs_test_spawn(forked_user, &j->fd);
	pause(); /* killed here */
	return 52;
}

/* A11: the owner dies while a forked child keeps its descriptors. */
START_TEST(forked_child_does_not_keep_a_dead_parent_alive)
{
	pxs_store *s = pxs_test_store(seg, 4 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("forked", 6), .timeout = -1,
			.expect = -EOWNERDEAD};
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* the orphaned grandchild is ours */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	j.fd = sv[1];
	pid_t p = pxs_test_spawn(forking_owner, &j);
	pid_t q;
	ck_assert_int_eq(read(sv[0], &q, sizeof q), sizeof q);
	pid_t w = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(w, 10000), 0);
	double t0 = pxs_test_ms();
	kill(p, SIGKILL);
	ck_assert_int_eq(pxs_test_reap(p, 10), 128 + SIGKILL);
	ck_assert_int_eq(pxs_test_reap(w, 30), 0);
	printf("dead parent detected in %.1f ms with its child alive\n",
	       pxs_test_ms() - t0);
	/* The child (not our child: a grandchild) still works. */
	ck_assert_int_eq(write(sv[0], "g", 1), 1);
	ck_assert_int_eq(pxs_test_reap(q, 30), 0);
	pxs_stats st;
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.objects, 2); /* "child" and "again" */
	/* Killing (here: the exit of) the child abandons its own future. */
	ck_assert_int_ge(pxs_reap(s), 2); /* the parent, the child */
	ck_assert_int_eq(pxs_stat(s, &st), 0);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.abandoned, 2);
	close(sv[0]);
	close(sv[1]);
	pxs_test_done(s, seg);
}
END_TEST

/* A12: one process, two handles; closing one leaves the other's alone. */
START_TEST(closing_a_second_handle_keeps_the_first_alive)
{
	pxs_store *s = pxs_test_store(seg, 4 * MiB, 64);
	pxs_store *h1, *h2;
	ck_assert_int_eq(pxs_open(seg, NULL, &h1), 0);
	ck_assert_int_eq(pxs_open(seg, NULL, &h2), 0);
	struct job j = {.k = pxs_key_from_name("two", 3), .timeout = -1};
	ck_assert_int_eq(pxs_future_new_at(h1, j.k), 0);
	pxs_key o;
	pxs_view v;
	ck_assert_int_eq(pxs_put(h1, "pinned", 6, &o), 0);
	ck_assert_int_eq(pxs_get(h1, o, &v), 0);
	pid_t w = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(w, 10000), 0);
	pxs_close(h2);
	/* Three liveness periods: a false death would have been seen. */
	usleep(750 * 1000);
	ck_assert_int_eq(waitpid(w, NULL, WNOHANG), 0); /* still waiting */
	ck_assert_int_eq(pxs_future_done(s, j.k), 0);
	ck_assert_mem_eq(v.data, "pinned", 6);
	ck_assert_int_eq(pxs_future_set(h1, j.k, "value", 5), 0);
	ck_assert_int_eq(pxs_test_reap(w, 30), 0);
	ck_assert_int_eq(pxs_release(h1, &v), 0);
	pxs_close(h1);
	pxs_test_done(s, seg);
}
END_TEST

static int
in_new_pid_namespace(void *arg)
{
	struct job *j = arg;
	setpgid(0, 0); /* so that the test can kill us and our child at once */
	if (unshare(CLONE_NEWPID) != 0)
		return 60;
	pid_t p = fork(); /* pid 1 of the new namespace */
	if (p == 0)
		_exit(child_owner(arg));
	int st;
	waitpid(p, &st, 0);
	(void)j;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A13: the owner's pid is 1 in its namespace, a live pid in ours too. */
START_TEST(owner_in_another_pid_namespace)
{
	if (geteuid() != 0) {
		printf("SKIP A13: needs root\n");
		return;
	}
	pxs_store *s = pxs_test_store(seg, 4 * MiB, 64);
	struct job j = {.k = pxs_key_from_name("ns", 2), .timeout = -1,
			.expect = -EOWNERDEAD};
	ck_assert_int_eq(pxs_future_new_at(s, j.k), 0);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	j.fd = sv[1];
	pid_t p = pxs_test_spawn(in_new_pid_namespace, &j);
	char c;
	ck_assert_int_eq(read(sv[0], &c, 1), 1); /* claimed, from pid 1 */
	uint64_t cur = 0;
	pxs_entry e;
	while (pxs_list(s, &cur, &e) == 1)
		if (pxs_key_equal(e.key, j.k))
			ck_assert_int_eq(e.owner_pid, 1);
	pid_t w = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(w, 10000), 0);
	kill(-p, SIGKILL); /* p and the owner, pid 1 of its namespace */
	pxs_test_reap(p, 10);
	ck_assert_int_eq(pxs_test_reap(w, 30), 0);
	close(sv[0]);
	close(sv[1]);
	pxs_test_done(s, seg);
}
END_TEST

static pxs_store *shared;
static volatile sig_atomic_t signals;

static void
on_usr1(int sig)
{
	(void)sig;
	signals++;
}

struct waiter {
	pxs_key k;
	long timeout;
	int rc;
	pid_t tid;
};

static void *
waiting_thread(void *arg)
{
	struct waiter *w = arg;
	pxs_view v;
	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	w->rc = pxs_future_wait(shared, w->k, w->timeout, &v);
	if (w->rc == 0)
		pxs_release(shared, &v);
	return NULL;
}

static pid_t
tid_of(struct waiter *w)
{
	pid_t t;
	while (!(t = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE)))
		sched_yield();
	return t;
}

/* A16: a signal every millisecond neither ends the wait early nor makes
 * it miss the set. */
START_TEST(signals_do_not_interrupt_waits)
{
	shared = pxs_test_store(seg, 4 * MiB, 64);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	struct waiter w = {.k = pxs_key_from_name("sig", 3), .timeout = 1000};
	ck_assert_int_eq(pxs_future_new_at(shared, w.k), 0);
	pthread_t t;
	double t0 = pxs_test_ms();
	pthread_create(&t, NULL, waiting_thread, &w);
	tid_of(&w);
	while (pxs_test_ms() - t0 < 1300 &&
	       pthread_kill(t, SIGUSR1) == 0 && w.rc == 0)
		usleep(1000);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.rc, -ETIMEDOUT);
	ck_assert_double_ge(pxs_test_ms() - t0, 1000);
	ck_assert_int_gt(signals, 100);
	/* And a set during the storm is seen. */
	w.timeout = 5000;
	w.rc = 0;
	w.tid = 0;
	pthread_create(&t, NULL, waiting_thread, &w);
	ck_assert_int_eq(pxs_test_wait_blocked(tid_of(&w), 10000), 0);
	for (int i = 0; i < 200; i++) {
		pthread_kill(t, SIGUSR1);
		usleep(1000);
	}
	ck_assert_int_eq(pxs_future_set(shared, w.k, "value", 5), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.rc, 0);
	pxs_test_done(shared, seg);
}
END_TEST

/* A15: a thread cancelled while it waits leaves nothing held. The wait has
 * no cancellation point, so the cancel takes effect when it returns. */
START_TEST(cancelled_waiter_leaves_nothing_held)
{
	shared = pxs_test_store(seg, 4 * MiB, 64);
	struct waiter w = {.k = pxs_key_from_name("cancel", 6), .timeout = -1};
	ck_assert_int_eq(pxs_future_new_at(shared, w.k), 0);
	pthread_t t;
	pthread_create(&t, NULL, waiting_thread, &w);
	ck_assert_int_eq(pxs_test_wait_blocked(tid_of(&w), 10000), 0);
	ck_assert_int_eq(pthread_cancel(t), 0);
	struct job j = {.k = w.k, .timeout = -1};
	pid_t other = pxs_test_spawn(child_wait, &j);
	ck_assert_int_eq(pxs_test_wait_blocked(other, 10000), 0);
	ck_assert_int_eq(pxs_future_set(shared, w.k, "value", 5), 0);
	ck_assert_int_eq(pxs_test_reap(other, 30), 0);
	void *ret;
	pthread_join(t, &ret);
	ck_assert(ret == PTHREAD_CANCELED || ret == NULL);
	ck_assert_int_ge(pxs_reap(shared), 1); /* the other waiter's pin */
	pxs_test_assert_idle(shared);
	pxs_view v;
	ck_assert_int_eq(pxs_get(shared, w.k, &v), 0); /* still usable */
	ck_assert_int_eq(pxs_release(shared, &v), 0);
	pxs_test_done(shared, seg);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("liveness");
	TCase *tc = tcase_create("liveness");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, stopped_owner_is_not_dead);
	tcase_add_test(tc, forked_child_does_not_keep_a_dead_parent_alive);
	tcase_add_test(tc, closing_a_second_handle_keeps_the_first_alive);
	tcase_add_test(tc, owner_in_another_pid_namespace);
	tcase_add_test(tc, signals_do_not_interrupt_waits);
	tcase_add_test(tc, cancelled_waiter_leaves_nothing_held);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
