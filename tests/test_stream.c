/* test_stream.c - streams: bad input changes nothing, append/read/end,
 * two producers and four readers in other processes, backpressure and a
 * killed or stopped reader, the Discard window, a producer killed between
 * reserve and commit, groups with a killed worker, scribbled metadata,
 * deleting a stream with sleepers, pinned views and a reservation on it. */
#include "internal.h"
#include "pxs_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static pxs_store *g_s;
static pxs_key g_k;

static void
same_stream(pxs_stream_stats a, pxs_stream_stats b)
{
	ck_assert_uint_eq(a.first, b.first);
	ck_assert_uint_eq(a.next, b.next);
	ck_assert_int_eq(a.ended, b.ended);
	ck_assert_uint_eq(a.readers, b.readers);
	ck_assert_uint_eq(a.groups, b.groups);
	ck_assert_uint_eq(a.taken, b.taken);
	ck_assert_uint_eq(a.reserved, b.reserved);
	ck_assert_uint_eq(a.slowest, b.slowest);
}

static pxs_stream_stats
sstat(pxs_store *s, pxs_key k)
{
	pxs_stream_stats st;
	int rc = pxs_stream_stat(s, k, &st);
	ck_assert_msg(rc == 0, "pxs_stream_stat: %s", pxs_strerror(rc));
	return st;
}

/* Item i of producer p: a self-verifying payload of a size that varies. */
static pxs_key
item_key(uint64_t p, uint64_t i)
{
	return (pxs_key){.hi = p + 1, .lo = i};
}

static size_t
item_len(uint64_t p, uint64_t i)
{
	return PXS_TEST_HDR + (size_t)((p * 7919 + i * 104729) % 3000);
}

static int
append_item(pxs_store *s, pxs_key k, uint64_t p, uint64_t i, long tmo,
	    uint64_t *seq)
{
	unsigned char buf[PXS_TEST_HDR + 3000];
	size_t len = item_len(p, i);
	pxs_test_fill(buf, len, item_key(p, i), p * 1000003 + i);
	return pxs_stream_append(s, k, buf, len, tmo, seq);
}

static void
check_item(pxs_store *s, pxs_key k, uint64_t seq, uint64_t p, uint64_t i)
{
	pxs_view v;
	int rc = pxs_stream_read(s, k, seq, 0, &v);
	ck_assert_msg(rc == 0, "read %llu: %s", (unsigned long long)seq,
		      pxs_strerror(rc));
	ck_assert_uint_eq(v.size, item_len(p, i));
	ck_assert_int_eq(pxs_test_verify(v.data, v.size, item_key(p, i)), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
}

START_TEST(basics_and_bad_input)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 16 * MiB, 256);
	pxs_key k = pxs_key_from_name("s", 1);
	pxs_key zero = {0, 0};
	pxs_key unknown = pxs_key_from_name("nope", 4);
	pxs_stream_options bad_w = {.window = 0}, big_w = {
		.window = PXS_STREAM_WINDOW_MAX + 1};
	pxs_stream_options bad_f = {.window = 4, .flags = 0x80};
	pxs_stream_stats st;
	pxs_view v;
	void *buf;
	uint64_t seq = 77;

	pxs_stats before = pxs_test_stat(s);
	ck_assert_int_eq(pxs_stream_new(NULL, k, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, zero, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &bad_w), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &big_w), -EINVAL);
	ck_assert_int_eq(pxs_stream_new(s, k, &bad_f), -EINVAL);
	ck_assert_int_eq(pxs_stream_append(s, unknown, "x", 1, 0, &seq),
			 -ENOENT);
	ck_assert_int_eq(pxs_stream_read(s, unknown, 0, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_stream_stat(s, unknown, &st), -ENOENT);
	ck_assert_int_eq(pxs_stream_end(s, unknown), -ENOENT);
	ck_assert_int_eq(pxs_stream_join(s, unknown, 0), -ENOENT);
	pxs_test_same_store(before, pxs_test_stat(s));

	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0);
	ck_assert_int_eq(pxs_stream_new(s, k, NULL), -EEXIST);
	st = sstat(s, k);
	ck_assert_uint_eq(st.first, 0);
	ck_assert_uint_eq(st.next, 0);
	ck_assert_int_eq(st.ended, 0);
	ck_assert_uint_eq(st.window, 16);
	ck_assert_uint_eq(st.flags, 0);
	ck_assert_uint_eq(st.position, UINT64_MAX);

	for (uint64_t i = 0; i < 3; i++) {
		ck_assert_int_eq(append_item(s, k, 0, i, 0, &seq), 0);
		ck_assert_uint_eq(seq, i);
	}
	/* Bad input on a live stream changes neither it nor the store. */
	before = pxs_test_stat(s);
	pxs_stream_stats sb = sstat(s, k);
	seq = 77;
	ck_assert_int_eq(pxs_stream_append(NULL, k, "x", 1, 0, &seq), -EINVAL);
	ck_assert_int_eq(pxs_stream_append(s, zero, "x", 1, 0, &seq), -EINVAL);
	ck_assert_int_eq(pxs_stream_append(s, k, NULL, 1, 0, &seq), -EINVAL);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 8, 0, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_commit(s, k, &seq), -EINVAL);
	ck_assert_int_eq(pxs_stream_read(s, k, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_read(NULL, k, 0, 0, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_stat(s, k, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_join(s, zero, 0), -EINVAL);
	ck_assert_int_eq(pxs_stream_leave(s, k), -ENOENT);
	ck_assert_int_eq(pxs_stream_take(s, k, NULL, 0, &seq, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k, "", 0, &seq, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k,
					 "a-group-name-of-thirty-two-bytes", 0,
					 &seq, &v),
			 -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, NULL, &v), -EINVAL);
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, NULL), -EINVAL);
	ck_assert_int_eq(pxs_stream_ack(s, k, "g", 0), -ENOENT);
	ck_assert_int_eq(pxs_stream_ack(s, k, NULL, 0), -EINVAL);
	ck_assert_int_eq(pxs_stream_read(s, k, 3, 0, &v), -ETIMEDOUT);
	ck_assert_int_eq(pxs_stream_read(s, k, 3, 50, &v), -ETIMEDOUT);
	ck_assert_uint_eq(seq, 77);
	pxs_test_same_store(before, pxs_test_stat(s));
	same_stream(sb, sstat(s, k));

	/* A reservation per thread and stream; readers see nothing of it. */
	ck_assert_int_eq(pxs_stream_reserve(s, k, 5, 0, &buf), 0);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 5, 0, &buf), -EBUSY);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, &seq), -EBUSY);
	ck_assert_uint_eq(sstat(s, k).reserved, 1);
	ck_assert_int_eq(pxs_stream_read(s, k, 3, 0, &v), -ETIMEDOUT);
	memcpy(buf, "hello", 5);
	ck_assert_int_eq(pxs_stream_commit(s, k, &seq), 0);
	ck_assert_uint_eq(seq, 3);
	ck_assert_int_eq(pxs_stream_read(s, k, 3, 0, &v), 0);
	ck_assert_uint_eq(v.size, 5);
	ck_assert_int_eq(memcmp(v.data, "hello", 5), 0);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	for (uint64_t i = 0; i < 3; i++)
		check_item(s, k, i, 0, i);

	/* A joined reader's position follows its reads. */
	ck_assert_int_eq(pxs_stream_join(s, k, 1), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 1), -EALREADY);
	st = sstat(s, k);
	ck_assert_uint_eq(st.readers, 1);
	ck_assert_uint_eq(st.position, 1);
	ck_assert_uint_eq(st.slowest, 1);
	check_item(s, k, 2, 0, 2); /* not the lowest unread: stays */
	ck_assert_uint_eq(sstat(s, k).position, 1);
	check_item(s, k, 1, 0, 1);
	ck_assert_uint_eq(sstat(s, k).position, 2);
	check_item(s, k, 2, 0, 2);
	ck_assert_uint_eq(sstat(s, k).position, 3);
	ck_assert_int_eq(pxs_stream_leave(s, k), 0);
	ck_assert_uint_eq(sstat(s, k).readers, 0);

	/* The end: reads past the last item and appends are -EPIPE. */
	ck_assert_int_eq(pxs_stream_end(s, k), 0);
	ck_assert_int_eq(pxs_stream_end(s, k), -EALREADY);
	ck_assert_int_eq(pxs_stream_read(s, k, 4, -1, &v), -EPIPE);
	ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, -1, &seq), -EPIPE);
	ck_assert_int_eq(pxs_stream_reserve(s, k, 1, -1, &buf), -EPIPE);
	check_item(s, k, 0, 0, 0);
	st = sstat(s, k);
	ck_assert_int_eq(st.ended, 1);
	ck_assert_uint_eq(st.next, 4);

	/* Other keys are not streams. */
	pxs_key f, obj;
	ck_assert_int_eq(pxs_future_new(s, &f), 0);
	ck_assert_int_eq(pxs_put(s, "plain value", 11, &obj), 0);
	before = pxs_test_stat(s);
	ck_assert_int_eq(pxs_stream_append(s, f, "x", 1, 0, &seq), -EPROTO);
	ck_assert_int_eq(pxs_stream_read(s, f, 0, 0, &v), -EPROTO);
	ck_assert_int_eq(pxs_stream_stat(s, obj, &st), -EPROTO);
	ck_assert_int_eq(pxs_stream_join(s, obj, 0), -EPROTO);
	ck_assert_int_eq(pxs_stream_take(s, obj, "g", 0, &seq, &v), -EPROTO);
	pxs_test_same_store(before, pxs_test_stat(s));
	ck_assert_int_eq(pxs_future_done(s, f), 0);

	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(pxs_test_stat(s).pins, 0);
	pxs_test_done(s, name);
}
END_TEST

START_TEST(scribbled_metadata)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 16 * MiB, 256);
	pxs_key k = pxs_key_from_name("s", 1);
	pxs_stream_options o = {.window = 8};
	pxs_stream_stats st;
	pxs_view mv, v;
	uint64_t seq;

	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	for (uint64_t i = 0; i < 12; i++)
		ck_assert_int_eq(append_item(s, k, 1, i, 0, &seq), 0);
	ck_assert_int_eq(pxs_get(s, k, &mv), 0);
	unsigned char *m = (unsigned char *)mv.data;
	unsigned char saved[48];
	memcpy(saved, m, sizeof saved);
	/* The layout's first fields: magic, window, flags, next, first,
	 * ended. Each lie is refused; restoring the block restores it. */
	const struct {
		size_t off;
		uint64_t val;
		size_t len;
	} lies[] = {
		{0, 0x1234, 8},       /* magic */
		{8, 9, 4},            /* window: not the block's size */
		{12, 0x10, 4},        /* unknown flag */
		{16, 2, 8},           /* next below first */
		{24, 0, 8},           /* first 0: more than a window */
		{32, 7, 4},           /* ended is 0 or 1 */
		{36, 1000, 4},        /* committing out of range */
	};
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		memcpy(m + lies[i].off, &lies[i].val, lies[i].len);
		pxs_stats before = pxs_test_stat(s);
		ck_assert_int_eq(pxs_stream_stat(s, k, &st), -EPROTO);
		ck_assert_int_eq(pxs_stream_read(s, k, 5, 0, &v), -EPROTO);
		ck_assert_int_eq(pxs_stream_append(s, k, "x", 1, 0, &seq),
				 -EPROTO);
		ck_assert_int_eq(pxs_stream_end(s, k), -EPROTO);
		ck_assert_int_eq(pxs_stream_join(s, k, 5), -EPROTO);
		ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v),
				 -EPROTO);
		pxs_test_same_store(before, pxs_test_stat(s));
		memcpy(m, saved, sizeof saved);
		check_item(s, k, 5, 1, 5);
	}
	/* A ring entry that names a future, or nothing. */
	size_t ring_off = mv.size - 8 * sizeof(pxs_key);
	pxs_key f, zero = {0, 0};
	ck_assert_int_eq(pxs_future_new(s, &f), 0);
	pxs_key was;
	memcpy(&was, m + ring_off + (6 % 8) * sizeof(pxs_key), sizeof was);
	memcpy(m + ring_off + 6 * sizeof(pxs_key), &f, sizeof f);
	ck_assert_int_eq(pxs_stream_read(s, k, 6, 0, &v), -EPROTO);
	memcpy(m + ring_off + 6 * sizeof(pxs_key), &zero, sizeof zero);
	ck_assert_int_eq(pxs_stream_read(s, k, 6, 0, &v), -EPROTO);
	memcpy(m + ring_off + 6 * sizeof(pxs_key), &was, sizeof was);
	check_item(s, k, 6, 1, 6);
	/* A group entry with an impossible count. */
	ck_assert_int_eq(pxs_stream_take(s, k, "g", 0, &seq, &v), 0);
	ck_assert_uint_eq(seq, 4);
	ck_assert_int_eq(pxs_release(s, &v), 0);
	st = sstat(s, k);
	ck_assert_uint_eq(st.groups, 1);
	ck_assert_uint_eq(st.taken, 1);
	ck_assert_uint_eq(st.slowest, 4);
	ck_assert_int_eq(pxs_stream_ack(s, k, "g", 4), 0);
	ck_assert_int_eq(pxs_stream_ack(s, k, "g", 4), -ENOENT);
	ck_assert_int_eq(pxs_release(s, &mv), 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, name);
}
END_TEST

/* ---- two producers, four readers ------------------------------------ */

#define NPROD 2
#define NREAD 4
#define NITEMS 400

static int g_ready[2];
static int g_go[2];

static int
producer_fn(void *arg)
{
	uint64_t p = (uint64_t)(uintptr_t)arg;
	char c;
	if (read(g_go[0], &c, 1) != 1)
		return 10;
	for (uint64_t i = 0; i < NITEMS; i++)
		if (append_item(g_s, g_k, p, i, 30000, NULL) < 0)
			return 11;
	return 0;
}

static int
reader_fn(void *arg)
{
	(void)arg;
	static uint64_t next_i[NPROD];
	if (pxs_stream_join(g_s, g_k, 0) < 0)
		return 20;
	if (write(g_ready[1], "r", 1) != 1)
		return 21;
	uint64_t seq = 0;
	for (;; seq++) {
		pxs_view v;
		int rc = pxs_stream_read(g_s, g_k, seq, 60000, &v);
		if (rc == -EPIPE)
			break;
		if (rc < 0)
			return 22;
		if (v.size < PXS_TEST_HDR)
			return 23;
		pxs_key ik; /* the payload header: magic, then the key */
		memcpy(&ik.hi, (const char *)v.data + 8, sizeof ik.hi);
		memcpy(&ik.lo, (const char *)v.data + 16, sizeof ik.lo);
		uint64_t p = ik.hi - 1;
		/* Each producer's items come in its order, each once. */
		if (p >= NPROD || ik.lo != next_i[p] ||
		    pxs_test_verify(v.data, v.size, item_key(p, ik.lo)) != 0)
			return 24;
		next_i[p]++;
		pxs_release(g_s, &v);
	}
	for (int p = 0; p < NPROD; p++)
		if (next_i[p] != NITEMS)
			return 25;
	return seq == NPROD * NITEMS ? 0 : 26;
}

START_TEST(two_producers_four_readers)
{
	char name[64];
	g_s = pxs_test_store(name, 64 * MiB, 4096);
	g_k = pxs_key_from_name("steps", 5);
	pxs_stream_options o = {.window = 32, .flags = PXS_STREAM_BLOCK};
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, &o), 0);
	ck_assert_int_eq(pipe(g_ready), 0);
	ck_assert_int_eq(pipe(g_go), 0);
	pid_t r[NREAD], p[NPROD];
	for (int i = 0; i < NREAD; i++)
		r[i] = pxs_test_spawn(reader_fn, NULL);
	for (int i = 0; i < NREAD; i++) {
		char c;
		ck_assert_int_eq(read(g_ready[0], &c, 1), 1);
	}
	ck_assert_uint_eq(sstat(g_s, g_k).readers, NREAD);
	for (int i = 0; i < NPROD; i++)
		p[i] = pxs_test_spawn(producer_fn, (void *)(uintptr_t)i);
	ck_assert_int_eq(write(g_go[1], "gg", NPROD), NPROD);
	for (int i = 0; i < NPROD; i++)
		ck_assert_int_eq(pxs_test_reap(p[i], 120), 0);
	ck_assert_int_eq(pxs_stream_end(g_s, g_k), 0);
	for (int i = 0; i < NREAD; i++)
		ck_assert_int_eq(pxs_test_reap(r[i], 120), 0);
	pxs_stream_stats st = sstat(g_s, g_k);
	ck_assert_uint_eq(st.next, NPROD * NITEMS);
	ck_assert_uint_eq(st.next - st.first, 32);
	/* The readers left by dying: their entries are dropped lazily. */
	ck_assert_int_ge(pxs_reap(g_s), 0);
	pxs_check_report rep;
	ck_assert_int_eq(pxs_check(g_s, &rep), 0);
	ck_assert_uint_eq(pxs_test_stat(g_s).objects, 1 + 32);
	for (int i = 0; i < 2; i++) {
		close(g_ready[i]);
		close(g_go[i]);
	}
	pxs_test_done(g_s, name);
}
END_TEST

/* ---- backpressure ----------------------------------------------------- */

static int g_cmd[2], g_ack[2];

/* A joined reader that reads one item per command byte. */
static int
slow_reader_fn(void *arg)
{
	(void)arg;
	if (pxs_stream_join(g_s, g_k, 0) < 0)
		return 30;
	if (write(g_ack[1], "j", 1) != 1)
		return 31;
	char c;
	for (uint64_t seq = 0; read(g_cmd[0], &c, 1) == 1; seq++) {
		pxs_view v;
		if (pxs_stream_read(g_s, g_k, seq, 10000, &v) < 0)
			return 32;
		pxs_release(g_s, &v);
		if (write(g_ack[1], "r", 1) != 1)
			return 33;
	}
	return 0;
}

struct killer {
	pid_t pid;
	int ms;
};

static void *
killer_fn(void *arg)
{
	const struct killer *k = arg;
	usleep((useconds_t)k->ms * 1000);
	kill(k->pid, SIGKILL);
	return NULL;
}

START_TEST(backpressure_and_dead_reader)
{
	char name[64];
	g_s = pxs_test_store(name, 16 * MiB, 256);
	g_k = pxs_key_from_name("bp", 2);
	pxs_stream_options o = {.window = 4, .flags = PXS_STREAM_BLOCK};
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, &o), 0);
	ck_assert_int_eq(pipe(g_cmd), 0);
	ck_assert_int_eq(pipe(g_ack), 0);
	pid_t pid = pxs_test_spawn(slow_reader_fn, NULL);
	char c;
	ck_assert_int_eq(read(g_ack[0], &c, 1), 1);

	uint64_t seq;
	for (uint64_t i = 0; i < 4; i++)
		ck_assert_int_eq(append_item(g_s, g_k, 0, i, 0, &seq), 0);
	/* The reader is a window behind: the producer waits. */
	pxs_stats before = pxs_test_stat(g_s);
	ck_assert_int_eq(append_item(g_s, g_k, 0, 4, 0, &seq), -ETIMEDOUT);
	ck_assert_int_eq(append_item(g_s, g_k, 0, 4, 100, &seq), -ETIMEDOUT);
	pxs_test_same_store(before, pxs_test_stat(g_s));
	ck_assert_uint_eq(sstat(g_s, g_k).reserved, 0);
	/* It reads one: the producer resumes. */
	ck_assert_int_eq(write(g_cmd[1], "1", 1), 1);
	ck_assert_int_eq(append_item(g_s, g_k, 0, 4, 30000, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	ck_assert_int_eq(read(g_ack[0], &c, 1), 1);
	ck_assert_uint_eq(sstat(g_s, g_k).slowest, 1);
	/* A stopped reader still holds it back. */
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(append_item(g_s, g_k, 0, 5, 600, &seq), -ETIMEDOUT);
	/* Killed while the producer sleeps: released within a slice or so. */
	struct killer k = {.pid = pid, .ms = 300};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, killer_fn, &k), 0);
	double t0 = pxs_test_ms();
	int rc = append_item(g_s, g_k, 0, 5, 30000, &seq);
	double took = pxs_test_ms() - t0;
	ck_assert_msg(rc == 0, "append after the reader died: %s",
		      pxs_strerror(rc));
	ck_assert_uint_eq(seq, 5);
	ck_assert_msg(took < 20000, "released after %.0f ms", took);
	pthread_join(th, NULL);
	ck_assert_int_eq(pxs_test_reap(pid, 10), 128 + SIGKILL);
	pxs_stream_stats st = sstat(g_s, g_k);
	ck_assert_uint_eq(st.readers, 0);
	ck_assert_uint_eq(st.first, 2);
	/* Without readers the window just slides. */
	for (uint64_t i = 6; i < 20; i++)
		ck_assert_int_eq(append_item(g_s, g_k, 0, i, 0, &seq), 0);
	check_item(g_s, g_k, 19, 0, 19);
	for (int i = 0; i < 2; i++) {
		close(g_cmd[i]);
		close(g_ack[i]);
	}
	pxs_test_done(g_s, name);
}
END_TEST

START_TEST(discard_window)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 16 * MiB, 256);
	pxs_key k = pxs_key_from_name("d", 1);
	pxs_stream_options o = {.window = 4};
	pxs_view held, v;
	uint64_t seq;

	ck_assert_int_eq(pxs_stream_new(s, k, &o), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 0), 0);
	for (uint64_t i = 0; i < 3; i++)
		ck_assert_int_eq(append_item(s, k, 2, i, 0, &seq), 0);
	ck_assert_int_eq(pxs_stream_read(s, k, 1, 0, &held), 0);
	/* A reader does not hold a Discard stream back. */
	for (uint64_t i = 3; i < 10; i++)
		ck_assert_int_eq(append_item(s, k, 2, i, 0, &seq), 0);
	pxs_stream_stats st = sstat(s, k);
	ck_assert_uint_eq(st.first, 6);
	ck_assert_uint_eq(st.next, 10);
	ck_assert_uint_eq(st.slowest, 0); /* it read item 1, not item 0 */
	pxs_stats before = pxs_test_stat(s);
	ck_assert_int_eq(pxs_stream_read(s, k, 2, 0, &v), -ERANGE);
	ck_assert_int_eq(pxs_stream_read(s, k, 5, -1, &v), -ERANGE);
	ck_assert_int_eq(pxs_stream_join(s, k, 7), -EALREADY);
	pxs_test_same_store(before, pxs_test_stat(s));
	/* The pinned view of a slid-out item stays valid... */
	ck_assert_int_eq(pxs_test_verify(held.data, held.size,
					 item_key(2, 1)),
			 0);
	ck_assert_uint_eq(pxs_test_stat(s).evicted_pinned, 1);
	ck_assert_int_eq(pxs_release(s, &held), 0);
	ck_assert_uint_eq(pxs_test_stat(s).evicted_pinned, 0);
	/* ... and the slow reader resumes from the oldest. */
	for (uint64_t q = st.first; q < st.next; q++)
		check_item(s, k, q, 2, q);
	ck_assert_uint_eq(sstat(s, k).position, 10);
	ck_assert_uint_eq(pxs_test_stat(s).objects, 1 + 4);
	ck_assert_int_eq(pxs_stream_leave(s, k), 0);
	ck_assert_int_eq(pxs_stream_join(s, k, 5), -ERANGE);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	pxs_test_done(s, name);
}
END_TEST

/* ---- a producer killed between reserve and commit ------------------- */

static int
half_writer_fn(void *arg)
{
	(void)arg;
	void *buf;
	if (pxs_stream_reserve(g_s, g_k, 4096, 0, &buf) < 0)
		return 40;
	memset(buf, 'h', 2048);
	if (write(g_ack[1], "w", 1) != 1)
		return 41;
	pause();
	return 42;
}

START_TEST(producer_killed_between_reserve_and_commit)
{
	char name[64];
	g_s = pxs_test_store(name, 16 * MiB, 256);
	g_k = pxs_key_from_name("k", 1);
	pxs_stream_options o = {.window = 8, .flags = PXS_STREAM_BLOCK};
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, &o), 0);
	ck_assert_int_eq(pipe(g_ack), 0);
	pid_t pid = pxs_test_spawn(half_writer_fn, NULL);
	char c;
	ck_assert_int_eq(read(g_ack[0], &c, 1), 1);
	ck_assert_uint_eq(sstat(g_s, g_k).reserved, 1);
	ck_assert_uint_eq(pxs_test_stat(g_s).pending, 1);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(pxs_test_reap(pid, 10), 128 + SIGKILL);

	/* No hole: the next commit is item 0, and readers get it. */
	uint64_t seq;
	ck_assert_int_eq(append_item(g_s, g_k, 3, 0, 0, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	check_item(g_s, g_k, 0, 3, 0);
	/* The dead reservation is dropped and its memory comes back. */
	pxs_stream_stats st = sstat(g_s, g_k);
	ck_assert_uint_eq(st.reserved, 0);
	ck_assert_uint_eq(st.next, 1);
	ck_assert_int_ge(pxs_reap(g_s), 0);
	pxs_stats ss = pxs_test_stat(g_s);
	ck_assert_uint_eq(ss.pending, 0);
	ck_assert_uint_eq(ss.abandoned, 0);
	ck_assert_uint_eq(ss.objects, 2);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(g_s, &r), 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	/* A full window of reservations from the dead does not block. */
	for (uint64_t i = 1; i < 8; i++)
		ck_assert_int_eq(append_item(g_s, g_k, 3, i, 0, &seq), 0);
	for (int i = 0; i < 2; i++)
		close(g_ack[i]);
	pxs_test_done(g_s, name);
}
END_TEST

/* ---- deleting a stream ------------------------------------------------ */

/* Until a sleeping child is asleep (state S: it only sleeps in the futex
 * once it has told the parent it is about to call). */
static void
wait_asleep(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 5000; i++) {
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return;
		usleep(1000);
	}
	ck_abort_msg("child %d never went to sleep", (int)pid);
}

/* arg: "r" reads past the end, "p" appends to a full Block stream, "t"
 * takes for a group with nothing left; each must be woken by the delete
 * with -EIDRM. */
static int
sleeper_fn(void *arg)
{
	const char *what = arg;
	pxs_view v;
	uint64_t seq;
	int rc;
	if (write(g_ack[1], what, 1) != 1)
		return 70;
	if (*what == 'r')
		rc = pxs_stream_read(g_s, g_k, 2, 30000, &v);
	else if (*what == 'p')
		rc = append_item(g_s, g_k, 6, 9, 30000, &seq);
	else
		rc = pxs_stream_take(g_s, g_k, "g", 30000, &seq, &v);
	return rc == -EIDRM ? 0 : 71;
}

START_TEST(delete_wakes_sleepers_and_frees_items)
{
	char name[64];
	g_s = pxs_test_store(name, 16 * MiB, 256);
	g_k = pxs_key_from_name("del", 3);
	pxs_key zero = {0, 0}, plain = pxs_key_from_name("plain", 5);
	pxs_view v, held;
	uint64_t seq;

	/* Bad input changes nothing. */
	ck_assert_int_eq(pxs_put_at(g_s, plain, "v", 1), 0);
	ck_assert_int_eq(pxs_get(g_s, plain, &v), 0); /* the pin array */
	ck_assert_int_eq(pxs_release(g_s, &v), 0);
	pxs_stats before = pxs_test_stat(g_s);
	ck_assert_int_eq(pxs_stream_delete(NULL, g_k), -EINVAL);
	ck_assert_int_eq(pxs_stream_delete(g_s, zero), -EINVAL);
	ck_assert_int_eq(pxs_stream_delete(g_s, g_k), -ENOENT);
	ck_assert_int_eq(pxs_stream_delete(g_s, plain), -EPROTO);
	pxs_test_same_store(before, pxs_test_stat(g_s));
	ck_assert_int_eq(pxs_get(g_s, plain, &v), 0);
	ck_assert_mem_eq(v.data, "v", 1);
	ck_assert_int_eq(pxs_release(g_s, &v), 0);
	ck_assert_int_eq(pxs_evict(g_s, plain), 0);

	/* A full Block stream (window 2, this process joined at 0) with a
	 * reader, a producer and a taker asleep on it. The group took both
	 * items and acked them, so it needs nothing more. */
	pxs_stream_options o = {.window = 2, .flags = PXS_STREAM_BLOCK};
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, &o), 0);
	ck_assert_int_eq(pxs_stream_join(g_s, g_k, 0), 0);
	for (uint64_t i = 0; i < 2; i++)
		ck_assert_int_eq(append_item(g_s, g_k, 6, i, 0, &seq), 0);
	for (uint64_t i = 0; i < 2; i++) {
		ck_assert_int_eq(pxs_stream_take(g_s, g_k, "g", 0, &seq, &v), 0);
		ck_assert_int_eq(pxs_release(g_s, &v), 0);
		ck_assert_int_eq(pxs_stream_ack(g_s, g_k, "g", seq), 0);
	}
	ck_assert_int_eq(pxs_stream_read(g_s, g_k, 1, 0, &held), 0);
	ck_assert_int_eq(pipe(g_ack), 0);
	static const char *const kinds[] = {"r", "p", "t"};
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		char c;
		kids[i] = pxs_test_spawn(sleeper_fn, (void *)kinds[i]);
		ck_assert_int_eq(read(g_ack[0], &c, 1), 1);
		wait_asleep(kids[i]);
	}
	ck_assert_uint_eq(pxs_test_stat(g_s).objects, 3);
	ck_assert_int_eq(pxs_stream_delete(g_s, g_k), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pxs_test_reap(kids[i], 10), 0);

	/* Gone for later callers; the pinned view of item 1 stays valid. */
	ck_assert_int_eq(pxs_stream_stat(g_s, g_k, &(pxs_stream_stats){0}),
			 -ENOENT);
	ck_assert_int_eq(pxs_stream_read(g_s, g_k, 1, 0, &v), -ENOENT);
	ck_assert_int_eq(pxs_stream_delete(g_s, g_k), -ENOENT);
	ck_assert_int_eq(pxs_test_verify(held.data, held.size, item_key(6, 1)),
			 0);
	pxs_stats ss = pxs_test_stat(g_s);
	ck_assert_uint_eq(ss.objects, 0);
	ck_assert_uint_eq(ss.pending, 0);
	ck_assert_uint_eq(ss.evicted_pinned, 1);
	ck_assert_int_eq(pxs_release(g_s, &held), 0);
	ss = pxs_test_stat(g_s);
	ck_assert_uint_eq(ss.evicted_pinned, 0);
	ck_assert_uint_eq(ss.pins, 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(g_s, &r), 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);

	/* The key is free again at once. */
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, NULL), 0);
	ck_assert_int_eq(append_item(g_s, g_k, 6, 0, 0, &seq), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(pxs_stream_delete(g_s, g_k), 0);
	ck_assert_uint_eq(pxs_test_stat(g_s).objects, 0);
	for (int i = 0; i < 2; i++)
		close(g_ack[i]);
	pxs_test_done(g_s, name);
}
END_TEST

/* A reservation in flight at the delete: evicted with the stream, the
 * producer's commit fails and the memory comes back at its close. */
START_TEST(delete_with_a_reservation_in_flight)
{
	char name[64];
	pxs_store *s = pxs_test_store(name, 16 * MiB, 256), *p;
	pxs_key k = pxs_key_from_name("resv", 4);
	void *buf;
	ck_assert_int_eq(pxs_open(name, NULL, &p), 0);
	ck_assert_int_eq(pxs_stream_new(s, k, NULL), 0);
	ck_assert_int_eq(pxs_stream_reserve(p, k, 4096, 0, &buf), 0);
	memset(buf, 'x', 4096);
	ck_assert_int_eq(pxs_stream_delete(s, k), 0);
	ck_assert_int_eq(pxs_stream_commit(p, k, NULL), -ENOENT);
	ck_assert_uint_eq(pxs_test_stat(s).objects, 0);
	ck_assert_uint_eq(pxs_test_stat(s).pending, 0);
	ck_assert_int_eq(pxs_close(p), 0);
	ck_assert_uint_eq(pxs_test_stat(s).evicted_pinned, 0);
	pxs_check_report r;
	ck_assert_int_eq(pxs_check(s, &r), 0);
	ck_assert_uint_eq(r.leaked_blocks, 0);
	pxs_test_done(s, name);
}
END_TEST

/* ---- groups ----------------------------------------------------------- */

#define NTASKS 200
#define NWORKERS 4

static int g_done[2];

/* Takes one item and never acks it: killed by the test. */
static int
victim_fn(void *arg)
{
	(void)arg;
	uint64_t seq;
	pxs_view v;
	if (pxs_stream_take(g_s, g_k, "pool", 30000, &seq, &v) < 0)
		return 50;
	if (write(g_ack[1], &seq, sizeof seq) != sizeof seq)
		return 51;
	pause();
	return 52;
}

static int
worker_fn(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t seq;
		pxs_view v;
		int rc = pxs_stream_take(g_s, g_k, "pool", 60000, &seq, &v);
		if (rc == -EPIPE)
			return 0;
		if (rc < 0)
			return 60;
		if (pxs_test_verify(v.data, v.size, item_key(4, seq)) != 0)
			return 61;
		pxs_release(g_s, &v);
		if (pxs_stream_ack(g_s, g_k, "pool", seq) < 0)
			return 62;
		if (write(g_done[1], &seq, sizeof seq) != sizeof seq)
			return 63;
	}
}

START_TEST(group_with_killed_worker)
{
	char name[64];
	g_s = pxs_test_store(name, 64 * MiB, 1024);
	g_k = pxs_key_from_name("tasks", 5);
	pxs_stream_options o = {.window = 256};
	ck_assert_int_eq(pxs_stream_new(g_s, g_k, &o), 0);
	ck_assert_int_eq(pipe(g_ack), 0);
	ck_assert_int_eq(pipe(g_done), 0);
	uint64_t seq;
	for (uint64_t i = 0; i < NTASKS; i++) {
		ck_assert_int_eq(append_item(g_s, g_k, 4, i, 0, &seq), 0);
		ck_assert_uint_eq(seq, i);
	}
	pid_t victim = pxs_test_spawn(victim_fn, NULL);
	uint64_t held;
	ck_assert_int_eq(read(g_ack[0], &held, sizeof held), sizeof held);
	ck_assert_uint_eq(held, 0);
	pid_t w[NWORKERS - 1];
	for (int i = 0; i < NWORKERS - 1; i++)
		w[i] = pxs_test_spawn(worker_fn, NULL);
	usleep(100 * 1000);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	ck_assert_int_eq(pxs_test_reap(victim, 10), 128 + SIGKILL);
	ck_assert_int_eq(pxs_stream_end(g_s, g_k), 0);
	for (int i = 0; i < NWORKERS - 1; i++)
		ck_assert_int_eq(pxs_test_reap(w[i], 120), 0);
	/* Every task acked exactly once, the victim's by another worker. */
	static unsigned char count[NTASKS];
	uint64_t q;
	close(g_done[1]);
	while (read(g_done[0], &q, sizeof q) == sizeof q) {
		ck_assert_uint_lt(q, NTASKS);
		count[q]++;
	}
	for (int i = 0; i < NTASKS; i++)
		ck_assert_msg(count[i] == 1, "task %d acked %d times", i,
			      count[i]);
	pxs_stream_stats st = sstat(g_s, g_k);
	ck_assert_uint_eq(st.taken, 0);
	ck_assert_uint_eq(st.groups, 1);
	pxs_view v;
	ck_assert_int_eq(pxs_stream_take(g_s, g_k, "pool", -1, &seq, &v),
			 -EPIPE);
	/* Another group sees every item again. */
	ck_assert_int_eq(pxs_stream_take(g_s, g_k, "audit", 0, &seq, &v), 0);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(pxs_release(g_s, &v), 0);
	close(g_done[0]);
	for (int i = 0; i < 2; i++)
		close(g_ack[i]);
	pxs_test_done(g_s, name);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("stream");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, basics_and_bad_input);
	tcase_add_test(tc, scribbled_metadata);
	tcase_add_test(tc, discard_window);
	tcase_add_test(tc, two_producers_four_readers);
	tcase_add_test(tc, backpressure_and_dead_reader);
	tcase_add_test(tc, producer_killed_between_reserve_and_commit);
	tcase_add_test(tc, group_with_killed_worker);
	tcase_add_test(tc, delete_wakes_sleepers_and_frees_items);
	tcase_add_test(tc, delete_with_a_reservation_in_flight);
	suite_add_tcase(s, tc);
	return pxs_test_run(s);
}
