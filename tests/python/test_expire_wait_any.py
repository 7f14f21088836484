"""Lifetimes (Store.expire), the first of many futures (Store.wait_any)
and the listing of a store's entries (Store.list): values, errors, and
that bad input changes nothing."""
import errno
import os
import threading
import time

import pytest

import proxyshm
from proxyshm import Key

from conftest import assert_gil_released, error_of_wait


def entry(store, key):
    """The list() entry of key, or None."""
    found = [e for e in store.list() if e["key"] == key]
    assert len(found) <= 1
    return found[0] if found else None


def test_list_entries(store):
    t0 = time.time()
    k = store.put(b"12345")
    f = store.future(owned=True)
    g = store.future()
    v = store.get(k)
    e = entry(store, k)
    assert e["state"] == "value" and e["size"] == 5 and e["pins"] == 1
    assert e["waiters"] == 0 and e["owner_pid"] == 0 and e["ttl"] is None
    assert t0 - 1 <= e["created"] <= time.time() + 1
    e = entry(store, f.key)
    assert e["state"] == "pending" and e["owner_pid"] == os.getpid()
    assert e["owner_alive"] is True
    assert entry(store, g.key)["owner_pid"] == 0  # ownerless
    store.evict(k)  # kept by the pin
    assert entry(store, k)["state"] == "evicted"
    v.release()
    assert entry(store, k) is None
    assert sorted(str(e["key"]) for e in store.list()) == sorted([str(f.key), str(g.key)])
    store.close()
    with pytest.raises(ValueError):
        store.list()


def test_expire_object(store):
    k = store.put(b"short-lived")
    store.expire(k, 60)
    ttl = entry(store, k)["ttl"]
    assert 59 < ttl <= 60
    store.expire(str(k), None)  # removes the expiry
    assert entry(store, k)["ttl"] is None
    store.expire(k, 0.05)
    assert 0 < entry(store, k)["ttl"] <= 0.05
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:  # the deadline is on this clock
        time.sleep(deadline - time.monotonic())
    assert not store.exists(k) and entry(store, k) is None
    with pytest.raises(FileNotFoundError):
        store.get(k)
    with pytest.raises(FileNotFoundError) as e:
        store.expire(k, 1)  # expired is absent
    assert e.value.errno == errno.ENOENT
    k2 = store.put(b"at once")
    store.expire(k2, 0)
    assert not store.exists(k2)
    store.put_at(k, b"the key is free again")
    assert bytes(store.get(k)) == b"the key is free again"


def test_expire_bad_input_changes_nothing(store):
    k = store.put(b"stays")
    store.expire(k, 30)
    before = entry(store, k)
    for bad in [-1, -0.001, float("nan"), float("-inf")]:
        with pytest.raises(ValueError):
            store.expire(k, bad)
    for bad in ["10", b"1", [1]]:
        with pytest.raises(TypeError):
            store.expire(k, bad)
    with pytest.raises(proxyshm.InvalidArgumentError):
        store.expire("0" * 32, 1)
    with pytest.raises(TypeError):
        store.expire(k)
    with pytest.raises(FileNotFoundError):
        store.expire(Key.from_name("never stored"), 1)
    after = entry(store, k)
    assert after["state"] == "value" and abs(after["ttl"] - before["ttl"]) < 5
    assert bytes(store.get(k)) == b"stays"
    store.close()
    with pytest.raises(ValueError):
        store.expire(k, 1)


def test_expiry_of_a_pending_future_wakes_its_waiter_with_ecanceled(store):
    f = store.future()
    # the waiter is asleep when the deadline comes
    e = error_of_wait(store, lambda: f.result(timeout=20),
                      lambda: store.expire(f.key, 0.05))
    assert e.errno == errno.ECANCELED
    assert store.stat()["waiters"] == 0 and not store.exists(f.key)


def test_a_pinned_view_survives_its_keys_expiry(store):
    data = os.urandom(4096)
    k = store.put(data)
    v = store.get(k)
    m = memoryview(v)
    store.expire(k, 0)
    with pytest.raises(FileNotFoundError):
        store.get(k)
    assert bytes(m) == data and bytes(v) == data
    assert store.stat()["evicted_pinned"] == 1
    m.release()
    v.release()
    assert store.stat()["evicted_pinned"] == 0 and store.stat()["pins"] == 0


def test_wait_any_returns_the_first_set(store):
    fs = [store.future() for _ in range(3)]
    threading.Timer(0.05, fs[2].set_result, args=(b"third",)).start()
    i, v = store.wait_any([f.key for f in fs], timeout=20)
    assert i == 2 and bytes(v) == b"third" and v.key == fs[2].key
    v.release()
    fs[1].set_result(b"second")
    i, v = store.wait_any([str(f.key) for f in fs])  # str keys; lowest index wins
    assert (i, bytes(v)) == (1, b"second")
    k = store.put(b"plain")
    i, v = store.wait_any((fs[0].key, k, k), timeout=0)  # objects are ready at once
    assert (i, bytes(v)) == (1, b"plain")
    assert store.stat()["waiters"] == 0


def test_wait_any_timeout_has_no_index(store):
    fs = [store.future() for _ in range(2)]
    with pytest.raises(TimeoutError) as e:
        store.wait_any([f.key for f in fs], timeout=0)
    assert e.value.errno == errno.ETIMEDOUT and e.value.index is None
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as e:
        store.wait_any([f.key for f in fs], timeout=0.12)
    assert time.monotonic() - t0 >= 0.12 and e.value.index is None


def test_wait_any_errors_name_their_key(store):
    a, b = store.future(), store.future()
    absent = Key.from_name("not there")
    with pytest.raises(FileNotFoundError) as e:
        store.wait_any([a.key, absent, b.key], timeout=10)
    assert e.value.index == 1 and e.value.errno == errno.ENOENT
    assert e.value.strerror == proxyshm.strerror(errno.ENOENT)

    assert not a.done() and not b.done()  # the others are untouched


def test_wait_any_cancel_and_expiry_indices(store):
    a, b, c = store.future(), store.future(), store.future()
    e = error_of_wait(store, lambda: store.wait_any([a.key, b.key], timeout=20),
                      b.cancel, sleepers=2)
    assert (e.errno, e.index) == (errno.ECANCELED, 1)
    e = error_of_wait(store, lambda: store.wait_any([c.key, a.key], timeout=20),
                      lambda: store.expire(a.key, 0.02), sleepers=2)
    assert (e.errno, e.index) == (errno.ECANCELED, 1)
    assert not c.done()


def test_wait_any_abandoned_future(store):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        f = proxyshm.attach(store.name).future(owned=True)
        os.write(w, str(f.key).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    dead = Key(os.read(r, 64).decode())
    alive = store.future()
    with pytest.raises(OSError) as e:
        store.wait_any([alive.key, dead], timeout=10)
    assert e.value.errno == errno.EOWNERDEAD and e.value.index == 1


def test_wait_any_bad_input_changes_nothing(store):
    f = store.future()
    before = store.stat()
    for keys in [[], [f.key] * (proxyshm.WAIT_ANY_MAX + 1)]:
        with pytest.raises(proxyshm.InvalidArgumentError) as e:
            store.wait_any(keys)
        assert e.value.index is None and e.value.errno == errno.EINVAL
    with pytest.raises(proxyshm.InvalidArgumentError) as e:
        store.wait_any([f.key, f.key, "zz"])
    assert e.value.index == 2
    with pytest.raises(proxyshm.InvalidArgumentError) as e:
        store.wait_any(["0" * 32])
    assert e.value.index == 0
    with pytest.raises(TypeError):
        store.wait_any([f.key, 5])
    with pytest.raises(TypeError):
        store.wait_any(f.key)  # a Key is not a sequence of keys
    with pytest.raises(TypeError):
        store.wait_any(5)
    with pytest.raises(ValueError):
        store.wait_any([f.key], timeout=-1)
    after = store.stat()
    assert after["waits"] == before["waits"] and after["pins"] == before["pins"]
    assert not f.done() and entry(store, f.key)["state"] == "pending"
    f.set_result(b"ok")
    i, v = store.wait_any([f.key] * proxyshm.WAIT_ANY_MAX, timeout=0)
    assert (i, bytes(v)) == (0, b"ok")
    v.release()
    store.close()
    with pytest.raises(ValueError):
        store.wait_any([f.key])


def test_wait_any_releases_the_gil(store):
    f = store.future()

    def wait():
        with pytest.raises(TimeoutError):
            store.wait_any([f.key], timeout=0.3)
    assert_gil_released(wait)
