"""Streams: Store.stream() and Stream, its reader() iterator, groups,
bad input, and producers, readers and workers in other processes."""
import errno
import gc
import hashlib
import multiprocessing as mp
import os
import signal
import threading
import time

import pytest

import proxyshm

from conftest import assert_gil_released

FORK = mp.get_context("fork")


def item(seq):
    """Item seq's bytes: its size and content both depend on seq."""
    h = hashlib.sha256(b"%d" % seq).digest()
    return h * (1 + seq % 37)


def test_append_read_stat(either_store):
    store = either_store
    st = store.stream("sim", create=True, window=8)
    assert st.stat() == {"first": 0, "next": 0, "ended": False, "window": 8,
                         "block": False, "readers": 0, "groups": 0, "taken": 0,
                         "reserved": 0, "slowest": 0, "position": None}
    assert [st.append(item(i)) for i in range(5)] == [0, 1, 2, 3, 4]
    with st.read(3) as v:
        assert bytes(v) == item(3) and v.key == st.key
    assert st.key == proxyshm.Key.from_name("sim")
    again = store.stream(proxyshm.Key.from_name("sim"))  # attach by Key
    assert again.stat()["next"] == 5 and bytes(again.read(0)) == item(0)
    assert store.stream(str(st.key)).stat()["next"] == 5  # by hex str
    assert store.stream(b"sim").key == st.key  # a bytes name


def test_reserve_commit(either_store):
    store = either_store
    st = store.stream("r", create=True)
    mv = st.reserve(5)
    mv[:] = b"hello"
    # Redis records a reservation only where it holds a Block stream back.
    on_redis = store.name.startswith("redis://")
    assert st.stat()["reserved"] == (0 if on_redis else 1)
    with pytest.raises(OSError) as e:
        st.reserve(1)  # one reservation per thread and stream
    assert e.value.errno == errno.EBUSY
    assert st.commit() == 0
    with pytest.raises(ValueError):
        mv[0]  # released by the commit
    assert bytes(st.read(0)) == b"hello"
    mv = st.reserve(3)
    mv[:] = b"xyz"  # a reservation's bytes are not promised to be zero
    held = mv[1:]
    with pytest.raises(BufferError):
        st.commit()  # a slice still exists: nothing published
    assert st.stat()["next"] == 1
    del held
    assert st.commit() == 1 and bytes(st.read(1)) == b"xyz"


def test_reservations_of_two_threads(store):
    st = store.stream("t", create=True)
    mine = st.reserve(1)
    mine[:] = b"a"
    seqs = []

    def other():
        mv = st.reserve(1)
        mv[:] = b"b"
        seqs.append(st.commit())
    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert seqs == [0]
    assert st.commit() == 1  # this thread's reservation, not the other's
    assert bytes(st.read(0)) == b"b" and bytes(st.read(1)) == b"a"


def test_reader_iterates_to_the_end_and_leaves(store):
    st = store.stream("it", create=True, window=16)
    for i in range(6):
        st.append(item(i))
    st.end()
    r = st.reader()
    assert st.stat()["readers"] == 1
    assert [bytes(v) for v in r] == [item(i) for i in range(6)]
    assert st.stat()["readers"] == 0 and r.position == 6
    with st.reader(from_seq=4) as r:
        assert bytes(next(r)) == item(4)
        assert st.stat()["position"] == 5
    assert st.stat()["readers"] == 0
    r = st.reader(from_seq=2)
    del r
    gc.collect()
    assert st.stat()["readers"] == 0  # left when collected


def test_end_of_stream(either_store):
    store = either_store
    st = store.stream("end", create=True)
    st.append(b"last")
    got = []

    def read_past_end():
        try:
            st.read(1)
        except OSError as e:
            got.append(e)
    t = threading.Thread(target=read_past_end)
    t.start()
    time.sleep(0.1)  # whether it sleeps yet or not, the end reaches it
    st.end()
    t.join(30)
    assert isinstance(got[0], BrokenPipeError) and got[0].errno == errno.EPIPE
    with pytest.raises(BrokenPipeError):
        st.append(b"more")
    with pytest.raises(BrokenPipeError):
        st.reserve(1)
    with pytest.raises(OSError) as e:
        st.end()
    assert e.value.errno == errno.EALREADY
    assert bytes(st.read(0)) == b"last"  # retained items stay readable
    assert st.stat()["ended"] is True


def test_discard_erange_and_resume(either_store):
    store = either_store
    st = store.stream("d", create=True, window=4)
    r = st.reader(from_seq=0)
    for i in range(10):
        st.append(item(i))
    with pytest.raises(OSError) as e:
        next(r)
    assert e.value.errno == errno.ERANGE
    with pytest.raises(OSError) as e:
        st.read(0)
    assert e.value.errno == errno.ERANGE
    assert r.position == st.stat()["first"] == 6
    assert [bytes(next(r)) for _ in range(4)] == [item(i) for i in range(6, 10)]
    r.close()


def test_timeouts_release_the_gil(either_store):
    store = either_store
    st = store.stream("w", create=True, window=2, block=True)
    with pytest.raises(TimeoutError):
        st.read(0, timeout=0)
    assert_gil_released(lambda: pytest.raises(TimeoutError, st.read, 0, timeout=0.4))
    st.join(0)
    st.append(b"0")
    st.append(b"1")
    with pytest.raises(TimeoutError):  # the window is full up to this reader
        st.append(b"2", timeout=0.1)
    with pytest.raises(TimeoutError):
        st.reserve(1, timeout=0)
    st.read(0).release()  # the reader moves on: room for one
    assert st.append(b"2", timeout=5) == 2
    st.leave()
    empty = store.stream("e", create=True)
    with pytest.raises(TimeoutError):
        empty.take("g", timeout=0.1)


def test_group_in_one_process(either_store):
    store = either_store
    st = store.stream("g", create=True, window=16)
    for i in range(3):
        st.append(item(i))
    seq, v = st.take("workers")
    assert (seq, bytes(v)) == (0, item(0))
    assert st.stat()["taken"] == 1 and st.stat()["groups"] == 1
    st.ack("workers", seq)
    with pytest.raises(FileNotFoundError):
        st.ack("workers", seq)  # acknowledged once only
    assert [st.take("workers")[0] for _ in range(2)] == [1, 2]
    st.ack("workers", 2)
    st.ack("workers", 1)
    st.end()
    with pytest.raises(BrokenPipeError):
        st.take("workers")
    seq, v = st.take("others")  # another group starts at the oldest
    assert seq == 0


def test_bad_input_changes_nothing(either_store):
    store = either_store
    f = store.future()
    k = store.put(b"plain")
    for bad in (dict(window=0), dict(window=65537), dict(window=-1)):
        with pytest.raises(proxyshm.InvalidArgumentError):
            store.stream("bad", create=True, **bad)
    with pytest.raises(TypeError):
        store.stream("bad", create=True, window="8")
    with pytest.raises(proxyshm.InvalidArgumentError):
        store.stream("bad", window=4)  # options only when creating
    with pytest.raises(FileNotFoundError):
        store.stream("bad")  # none of the above made it
    with pytest.raises(TypeError):
        store.stream(1.5)
    for other in (f.key, k):
        with pytest.raises(OSError) as e:
            store.stream(other)  # a future's or an object's key
        assert e.value.errno == errno.EPROTO
    assert bytes(store.get(k)) == b"plain" and not f.done()

    st = store.stream("good", create=True, window=4, block=True)
    st.append(b"x")
    with pytest.raises(FileExistsError):
        store.stream("good", create=True)
    st.join(0)
    before = st.stat()
    calls = [
        (proxyshm.InvalidArgumentError, lambda: st.read(-1)),
        (proxyshm.InvalidArgumentError, lambda: st.read(2 ** 64)),
        (TypeError, lambda: st.read("0")),
        (ValueError, lambda: st.read(0, timeout=-1)),
        (ValueError, lambda: st.append(b"y", timeout=float("nan"))),
        (TypeError, lambda: st.append("not bytes")),
        (TypeError, lambda: st.append(None)),
        (proxyshm.InvalidArgumentError, lambda: st.reserve(-1)),
        (proxyshm.InvalidArgumentError, lambda: st.commit()),  # nothing reserved
        (proxyshm.InvalidArgumentError, lambda: st.take("")),
        (proxyshm.InvalidArgumentError, lambda: st.take("g" * 32)),
        (ValueError, lambda: st.take("a\0b")),
        (proxyshm.InvalidArgumentError, lambda: st.ack("", 0)),
        (FileNotFoundError, lambda: st.ack("nogroup", 0)),
        (proxyshm.InvalidArgumentError, lambda: st.ack("g", -5)),
        (OSError, lambda: st.join(0)),  # EALREADY
        (proxyshm.InvalidArgumentError, lambda: st.join(-1)),
    ]
    for exc, call in calls:
        with pytest.raises(exc):
            call()
        assert st.stat() == before, call
    st.leave()
    with pytest.raises(FileNotFoundError):
        st.leave()
    with pytest.raises(proxyshm.InvalidArgumentError):
        st.reader(from_seq=-1)
    assert st.stat()["readers"] == 0
    store.close()
    with pytest.raises(ValueError):
        st.append(b"closed")


def test_stream_pickles_to_the_same_stream(store):
    import pickle
    st = store.stream("p", create=True)
    st.append(b"v")
    again = pickle.loads(pickle.dumps(st))
    assert again.key == st.key and bytes(again.read(0)) == b"v"


# ---------------------------------------------------------------- processes

def _read_all(st, ready, out):
    try:
        digest = hashlib.sha256()
        n = 0
        r = st.reader(from_seq=0, timeout=60)
        ready.set()
        for v in r:
            if bytes(v) != item(n):
                out.put(("mismatch", n))
                return
            digest.update(v)
            v.release()
            n += 1
        out.put(("ok", n, digest.hexdigest()))
    except BaseException as e:  # report, never hang the parent
        out.put(("error", repr(e)))


def _produce(st, readers_ready, n):
    for ev in readers_ready:
        ev.wait(60)
    for i in range(n):
        if i % 2:
            st.append(item(i), timeout=60)
        else:
            data = item(i)
            mv = st.reserve(len(data), timeout=60)
            mv[:] = data
            st.commit()
    st.end()


def test_producer_and_two_reader_processes(store):
    n = 300
    st = store.stream("steps", create=True, window=8, block=True)
    out = FORK.Queue()
    ready = [FORK.Event(), FORK.Event()]
    readers = [FORK.Process(target=_read_all, args=(st, ev, out)) for ev in ready]
    for p in readers:
        p.start()
    prod = FORK.Process(target=_produce, args=(st, ready, n))
    prod.start()
    results = [out.get(timeout=120) for _ in readers]
    for p in readers + [prod]:
        p.join(60)
        assert p.exitcode == 0
    expect = hashlib.sha256(b"".join(item(i) for i in range(n))).hexdigest()
    assert results == [("ok", n, expect)] * 2
    s = st.stat()
    assert s["next"] == n and s["ended"] and s["readers"] == 0 and s["reserved"] == 0


def _work(st, out):
    try:
        got = []
        while True:
            try:
                seq, v = st.take("pool", timeout=60)
            except BrokenPipeError:
                break
            got.append((seq, bytes(v) == item(seq)))
            v.release()
            st.ack("pool", seq)
        out.put(("ok", got))
    except BaseException as e:
        out.put(("error", repr(e)))


def test_group_of_three_worker_processes(store):
    n = 120
    st = store.stream("tasks", create=True, window=16, block=True)
    # The group exists from its first take: make it before appending, or
    # on a slow machine the window slides past items no worker has seen.
    with pytest.raises(TimeoutError):
        st.take("pool", timeout=0)
    out = FORK.Queue()
    workers = [FORK.Process(target=_work, args=(st, out)) for _ in range(3)]
    for p in workers:
        p.start()
    for i in range(n):  # held back by the group while it lags 16 behind
        st.append(item(i), timeout=60)
    st.end()
    results = [out.get(timeout=120) for _ in workers]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    assert all(r[0] == "ok" for r in results), results
    seqs = sorted(seq for _, got in results for seq, _ in got)
    assert seqs == list(range(n))  # every item taken, each once
    assert all(ok for _, got in results for _, ok in got)
    assert st.stat()["taken"] == 0


def _take_and_hang(st, held):
    seq, v = st.take("pool")
    held.put(seq)
    time.sleep(600)


def _join_and_hang(st, joined):
    st.join(0)
    joined.set()
    time.sleep(600)


def _in_child(st, r, out):
    try:
        next(r)
        out.put("inherited")
    except ValueError:
        with st.reader(from_seq=0) as mine:  # a reader of its own
            out.put(bytes(next(mine)))


def test_forked_child_is_not_a_reader(store):
    st = store.stream("f", create=True)
    st.append(b"zero")
    r = st.reader()
    out = FORK.Queue()
    p = FORK.Process(target=_in_child, args=(st, r, out))
    p.start()
    assert out.get(timeout=60) == b"zero"
    p.join(60)
    assert p.exitcode == 0
    assert st.stat()["readers"] == 1 and st.stat()["position"] == 0
    assert bytes(next(r)) == b"zero"
    r.close()


def test_killed_worker_gives_its_item_back(store):
    st = store.stream("k", create=True, window=8)
    for i in range(3):
        st.append(item(i))
    held = FORK.Queue()
    p = FORK.Process(target=_take_and_hang, args=(st, held))
    p.start()
    seq = held.get(timeout=60)
    assert seq == 0
    os.kill(p.pid, signal.SIGKILL)
    p.join(60)
    got = [st.take("pool", timeout=30)[0] for _ in range(3)]
    assert sorted(got) == [0, 1, 2]  # the dead worker's item came back
    for s in got:
        st.ack("pool", s)


def test_killed_reader_releases_a_blocked_producer(store):
    st = store.stream("b", create=True, window=2, block=True)
    joined = FORK.Event()
    p = FORK.Process(target=_join_and_hang, args=(st, joined))
    p.start()
    assert joined.wait(60)
    st.append(b"0")
    st.append(b"1")
    with pytest.raises(TimeoutError):
        st.append(b"2", timeout=0.2)  # the hanging reader holds it back
    os.kill(p.pid, signal.SIGKILL)
    p.join(60)
    assert st.append(b"2", timeout=30) == 2
    assert st.stat()["first"] == 1  # the window is 2
    assert [bytes(st.read(i)) for i in (1, 2)] == [b"1", b"2"]
