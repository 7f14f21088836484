"""Across processes: pickling by each start method, kernel wake-ups,
abandoned futures, Ctrl-C during a wait, fork."""
import concurrent.futures
import errno
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import proxyshm

from conftest import wait_for_waiters


def _produce(fut, data, delay):
    time.sleep(delay)
    fut.set_result(data)


def _consume(fut, timeout):
    with fut.result(timeout=timeout) as v:
        return bytes(v)


def _attachments(store):
    # how many attachments this process holds (the per-process cache)
    return store.stat()["processes"], os.getpid()


def _child_put(store, data):
    return str(store.put(data))


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_future_through_start_method(either_store, method):
    store = either_store
    ctx = mp.get_context(method)
    f = store.future()
    with ctx.Pool(2) as pool:
        waiting = pool.apply_async(_consume, (f, 30))
        pool.apply_async(_produce, (f, b"from %s" % method.encode(), 0.2)).get(30)
        assert waiting.get(30) == b"from " + method.encode()
        k = pool.apply(_child_put, (store, b"stored in a child"))
    assert bytes(store.get(k)) == b"stored in a child"


def test_process_pool_executor(store):
    futs = [store.future() for _ in range(8)]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        waits = [ex.submit(_consume, f, 30) for f in futs]
        for i, f in enumerate(futs):
            f.set_result(b"%d" % i)
        assert [w.result(30) for w in waits] == [b"%d" % i for i in range(8)]


def _wait_many(futs):
    # one attachment per process however many futures arrive
    before = futs[0].store.stat()["processes"]
    for f in futs:
        f.result(timeout=30).release()
    return before, futs[0].store is futs[-1].store


def test_unpickling_attaches_once_per_process(store):
    futs = [store.future() for _ in range(5)]
    for f in futs:
        f.set_result(b"x")
    with mp.get_context("spawn").Pool(1) as pool:
        procs, same = pool.apply(_wait_many, (futs,))
    assert same and procs == 2


def test_wake_across_processes_is_prompt(store):
    # A consumer process blocked in result() is woken by the kernel at the
    # set: it needs no polling interval. Checked by value and by who woke.
    f = store.future()
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        r = pool.apply_async(_consume, (f, 30))
        wait_for_waiters(store, 1)  # asleep in the kernel
        assert store.stat()["waiters"] == 1
        f.set_result(b"wake")
        assert r.get(30) == b"wake"


def _claim_then_hang(name, key, ready):
    s = proxyshm.Store(name)
    proxyshm.Future(s, key).claim()
    ready.set()
    time.sleep(60)


def test_producer_sigkilled_after_claim_is_eownerdead(store):
    f = store.future()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_claim_then_hang, args=(store.name, str(f.key), ready))
    p.start()
    assert ready.wait(30)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    with pytest.raises(OSError) as e:
        f.result(timeout=10)
    assert e.value.errno == errno.EOWNERDEAD
    assert e.value.strerror == proxyshm.strerror(errno.EOWNERDEAD)
    with pytest.raises(OSError) as e:
        f.done()
    assert e.value.errno == errno.EOWNERDEAD


def test_owned_future_of_dead_creator_is_abandoned(store):
    def make():
        f = proxyshm.attach(store.name).future(owned=True)
        os.write(w, str(f.key).encode())
        os._exit(0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        make()
    os.waitpid(pid, 0)
    key = proxyshm.Key(os.read(r, 64).decode())
    with pytest.raises(OSError) as e:
        store.wait(key, timeout=10)
    assert e.value.errno == errno.EOWNERDEAD


def test_ownerless_future_outlives_its_creator(store):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(store.future().key).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    f = proxyshm.Future(store, os.read(r, 64).decode())
    assert not f.done()
    f.set_result(b"late")
    assert bytes(f.result(0)) == b"late"


def test_fork_child_uses_parent_handle(store):
    k = store.put(b"parent")
    v = store.get(k)
    pid = os.fork()
    if pid == 0:
        ok = bytes(store.get(k)) == b"parent" and bytes(v) == b"parent"
        store.put_at(proxyshm.Key.from_name("child"), b"child")
        v.release()  # the parent's pin: only forgotten here
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bytes(v) == b"parent"
    assert bytes(store.get(proxyshm.Key.from_name("child"))) == b"child"
    v.release()


# The child waits, in the way the test names, on the futures whose keys
# it is given; each Ctrl-C is caught and reported with the child's
# CLOCK_MONOTONIC at that moment (the parent's time.monotonic() reads the
# same clock) and what the child still holds; "again" on stdin starts the
# next wait.
CTRL_C = textwrap.dedent("""
    import sys, time, proxyshm
    s = proxyshm.Store(sys.argv[1])
    how, keys = sys.argv[2], sys.argv[3:]
    f = proxyshm.Future(s, keys[0])
    while True:
        print("waiting", flush=True)
        try:
            if how == "result":
                f.result()
            elif how == "resolve":
                proxyshm.resolve(f.proxy())
            elif how == "stream_read":
                s.stream(keys[0]).read(0)
            elif how == "stream_take":
                s.stream(keys[0]).take("g")
            else:
                s.wait_any(keys)
            sys.exit(4)
        except KeyboardInterrupt:
            t = time.monotonic()
            st = s.stat()
            print("interrupted %.9f %d %d" % (t, st["pins"], st["waiters"]), flush=True)
        if sys.stdin.readline().strip() != "again":
            sys.exit(3)
""")

def wait_in_futex(pid, timeout=20.0):
    """Block until process pid sleeps in a futex wait (its wchan says so)."""
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/%d/wchan" % pid) as f:
            if "futex" in f.read():
                return
        if time.monotonic() > deadline:
            raise AssertionError("process %d not in a futex wait" % pid)
        time.sleep(0.005)


CTRL_C_BOUND = 0.2  # seconds from the signal to KeyboardInterrupt
CTRL_C_TRIES = 5


@pytest.mark.parametrize("how", ["result", "resolve", "wait_any", "stream_read",
                                 "stream_take"])
def test_ctrl_c_ends_a_wait(store, how):
    # Measured from the signal's delivery to the child's except clause, on
    # one clock; nothing else is in the interval (no process start, no
    # pipe). A loaded machine can delay one try by a scheduling quantum or
    # more, so the best of a few tries must meet the bound: a wait that
    # did not check for signals would miss it every time.
    if how.startswith("stream"):
        futs = []
        keys = [str(store.stream("ctrl-c", create=True).key)]
    else:
        futs = [store.future() for _ in range(2 if how == "wait_any" else 1)]
        keys = [str(f.key) for f in futs]
    p = subprocess.Popen([sys.executable, "-c", CTRL_C, store.name, how] + keys,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    best = float("inf")
    try:
        for attempt in range(CTRL_C_TRIES):
            assert p.stdout.readline().strip() == "waiting"
            if futs:
                wait_for_waiters(store, len(futs))  # asleep in the library
            else:
                wait_in_futex(p.pid)  # stream waits are not counted
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out = p.stdout.readline().split()
            assert out[0] == "interrupted"
            assert out[2:] == ["0", "0"]  # nothing pinned, nobody waiting
            best = min(best, float(out[1]) - t0)
            last = best < CTRL_C_BOUND or attempt == CTRL_C_TRIES - 1
            p.stdin.write("stop\n" if last else "again\n")
            p.stdin.flush()
            if last:
                break
        assert p.wait(10) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert 0 <= best < CTRL_C_BOUND, "best of %d tries: %.3f s" % (CTRL_C_TRIES, best)
    assert not any(f.done() for f in futs)
