import os
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
