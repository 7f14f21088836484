import os
import threading
import time
import uuid

import pytest

import proxyshm


def fresh_name(full):
    """Yield full(a name of this test's own), then unlink it if it is
    still there (the body of the name fixtures)."""
    n = full("pxs-py-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8]))
    yield n
    try:
        proxyshm.unlink(n)
    except FileNotFoundError:
        pass


@pytest.fixture
def name():
    yield from fresh_name(lambda n: "/" + n)


@pytest.fixture
def store(name):
    s = proxyshm.Store(name, create=True, size=32 << 20, capacity=4096)
    yield s
    s.close()


def wait_for_waiters(store, n, timeout=20.0):
    """Block until n waiters sleep on the store: a test that acts on a
    sleeping waiter must not guess how long the thread takes to get there."""
    deadline = time.monotonic() + timeout
    while store.stat()["waiters"] < n:
        if time.monotonic() > deadline:
            raise AssertionError("no %d waiters after %.0f s" % (n, timeout))
        time.sleep(0.005)


def assert_gil_released(wait):
    """wait() must block for a while (say 0.3 s) with the GIL released:
    a thread that counts every millisecond keeps counting meanwhile."""
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)
    t = threading.Thread(target=count)
    t.start()
    try:
        wait()
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 20  # the counter ran while the caller waited


def error_of_wait(store, wait, action, sleepers=1):
    """Run wait() in a thread; once it sleeps in the library (sleepers
    waiter registrations), run action(); return the OSError that ended
    wait() (None if it returned)."""
    out = []

    def run():
        try:
            wait()
            out.append(None)
        except OSError as e:
            out.append(e)
    t = threading.Thread(target=run)
    t.start()
    wait_for_waiters(store, sleepers)
    action()
    t.join(30)
    assert not t.is_alive() and len(out) == 1
    return out[0]


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server of this test session on a free loopback port, stopped
    by its pid at the end; the tests that take it SKIP (with the reason)
    where redis-server or hiredis is missing."""
    from redis_server import RedisServer, why_not
    reason = why_not()
    if reason:
        pytest.skip(reason)
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_name(redis_server):
    """A fresh Redis store name, its keys removed after the test."""
    yield from fresh_name(redis_server.url)


@pytest.fixture
def rstore(redis_name):
    s = proxyshm.Store(redis_name, create=True)
    yield s
    s.close()


@pytest.fixture(params=["segment", "redis"])
def either_store(request):
    """A test that means the same on both kinds of store runs on each: the
    segment of `store` and the Redis store of `rstore` (SKIP without a
    redis-server)."""
    return request.getfixturevalue("store" if request.param == "segment" else "rstore")
