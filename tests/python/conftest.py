import os
import time
import uuid

import pytest

import proxyshm


@pytest.fixture
def name():
    n = "/pxs-py-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    yield n
    try:
        proxyshm.unlink(n)
    except FileNotFoundError:
        pass


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
