"""Every call of the package in one process: values, errors, pinning."""
import errno
import gc
import pickle
import threading
import time

import pytest

import proxyshm
from proxyshm import Key, Store

from conftest import assert_gil_released, error_of_wait


def test_key_parse_format_hash():
    k = Key.from_name("sim/step/42")
    assert len(str(k)) == 32 and Key(str(k)) == k and hash(Key(str(k))) == hash(k)
    assert Key.from_name(b"sim/step/42") == k
    assert Key.from_name(bytearray(b"sim/step/42")) == k
    assert Key(k) == k and repr(k) == "Key('%s')" % k
    assert {k: 1}[Key(str(k))] == 1
    assert Key.from_name("a") != Key.from_name("b")
    assert pickle.loads(pickle.dumps(k)) == k
    with pytest.raises(AttributeError):
        k.hi = 1
    for bad in ["", "zz", "0" * 32, "A" * 32, "1" * 33]:
        with pytest.raises(proxyshm.InvalidArgumentError) as e:
            Key(bad)
        assert e.value.errno == errno.EINVAL and isinstance(e.value, ValueError)
        assert str(e.value.strerror) == proxyshm.strerror(errno.EINVAL)
    with pytest.raises(TypeError):
        Key(5)


def test_store_attributes_and_stat(store, name):
    assert store.name == name and not store.closed
    st = store.stat()
    for f in ["segment_size", "heap_size", "heap_used", "heap_free", "heap_largest_free",
              "capacity", "slots_used", "objects", "pending", "abandoned", "evicted_pinned",
              "pins", "waiters", "processes", "puts", "gets", "evictions", "waits", "timeouts",
              "recoveries"]:
        assert isinstance(st[f], int)
    assert st["segment_size"] == 32 << 20 and st["capacity"] == 4096
    other = Store(name[1:])  # the leading '/' is optional
    assert other.name == name and other.stat()["processes"] == 2
    other.close()
    assert store.reap() == 0


def test_open_errors(name):
    with pytest.raises(FileNotFoundError) as e:
        Store(name)
    assert e.value.errno == errno.ENOENT and e.value.strerror == proxyshm.strerror(-errno.ENOENT)
    with pytest.raises(proxyshm.InvalidArgumentError):
        Store("bad/name", create=True)
    with pytest.raises(proxyshm.InvalidArgumentError):
        Store(name, create=True, size=1000)
    with pytest.raises(proxyshm.InvalidArgumentError):
        Store(name, create=True, mode=-1)
    with Store(name, create=True, size=1 << 20) as s:
        with pytest.raises(FileExistsError) as e:
            Store(name, create=True, exclusive=True)
        assert e.value.errno == errno.EEXIST
    assert s.closed
    with pytest.raises(ValueError):
        s.put(b"x")
    s.close()  # idempotent
    proxyshm.unlink(name)
    with pytest.raises(FileNotFoundError):
        proxyshm.unlink(name)


def test_put_get_exists_evict(either_store):
    store = either_store
    k = store.put(b"hello")
    assert store.exists(k) and store.exists(str(k))
    with store.get(k) as v:
        assert bytes(v) == b"hello" and len(v) == 5 and v.tobytes() == b"hello"
        assert v.key == k
    assert v.released
    for data in [bytearray(b"ba"), memoryview(b"xmv")[1:], b""]:
        k2 = store.put(data)
        with store.get(k2) as v:
            assert bytes(v) == bytes(data)
    k3 = Key.from_name("chosen")
    store.put_at(k3, b"at")
    with pytest.raises(FileExistsError):
        store.put_at(k3, b"again")
    assert bytes(store.get(k3)) == b"at"
    store.evict(k3)
    assert not store.exists(k3)
    with pytest.raises(FileNotFoundError):
        store.evict(k3)
    with pytest.raises(FileNotFoundError):
        store.get(k3)
    with pytest.raises(TypeError):
        store.put("a str is not bytes")
    with pytest.raises(TypeError):
        store.get(42)


def test_put_noncontiguous_rejected(store):
    m = memoryview(b"abcdef")[::2]
    with pytest.raises(BufferError):
        store.put(m)


def test_full_store_is_enospc_and_changes_nothing(name):
    with Store(name, create=True, size=1 << 20, capacity=64) as s:
        before = s.stat()
        with pytest.raises(OSError) as e:
            s.put(bytes(2 << 20))
        assert e.value.errno == errno.ENOSPC
        after = s.stat()
        assert after["objects"] == before["objects"] and after["heap_used"] == before["heap_used"]


def test_view_pin_and_buffer_error(store):
    k = store.put(b"pinned")
    v = store.get(k)
    m = memoryview(v)
    assert m.readonly and bytes(m) == b"pinned"
    with pytest.raises(TypeError):
        m[0] = 0
    store.evict(k)  # the pin keeps the value readable
    assert store.stat()["evicted_pinned"] == 1
    with pytest.raises(BufferError):
        v.release()
    assert not v.released and bytes(m) == b"pinned"
    m.release()
    v.release()
    v.release()  # a no-op
    assert store.stat()["pins"] == 0 and store.stat()["evicted_pinned"] == 0
    with pytest.raises(ValueError):
        memoryview(v)
    with pytest.raises(ValueError):
        len(v)
    with pytest.raises(ValueError):
        bytes(v)


def test_view_pin_lasts_until_gc(store):
    k = store.put(b"gc")
    v = store.get(k)
    assert store.stat()["pins"] == 1
    del v
    gc.collect()
    assert store.stat()["pins"] == 0


def test_close_waits_for_views(name):
    s = Store(name, create=True, size=1 << 20)
    v = s.get(s.put(b"still here"))
    s.close()
    assert s.closed and bytes(v) == b"still here"
    v.release()


def test_view_cannot_be_written_or_made(store):
    with pytest.raises(TypeError):
        proxyshm.View()
    v = store.get(store.put(b"ro"))
    assert bytearray(v) == b"ro"  # reading through the buffer is fine
    with pytest.raises(TypeError):
        memoryview(v)[0:1] = b"w"  # the export is read-only
    import ctypes
    with pytest.raises(TypeError):
        (ctypes.c_char * 2).from_buffer(v)  # asks for a writable buffer
    with pytest.raises(TypeError):
        pickle.dumps(v)


def test_future_set_result_done(store):
    f = store.future()
    assert not f.done() and not store.exists(f.key)
    with pytest.raises(BlockingIOError) as e:
        store.get(f.key)
    assert e.value.errno == errno.EAGAIN
    with pytest.raises(TimeoutError) as e:
        f.result(timeout=0)
    assert e.value.errno == errno.ETIMEDOUT
    assert e.value.strerror == proxyshm.strerror(errno.ETIMEDOUT)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        f.result(timeout=0.12)
    assert time.monotonic() - t0 >= 0.12
    f.set_result(b"value")
    assert f.done()
    with pytest.raises(OSError) as e:
        f.set_result(b"again")
    assert e.value.errno == errno.EALREADY
    with f.result() as v:
        assert bytes(v) == b"value"
    with pytest.raises(ValueError):
        f.result(timeout=-1)


def test_future_at_key_and_handle(store):
    k = Key.from_name("future/at")
    f = store.future(key=k)
    assert f.key == k and f.store is store
    with pytest.raises(FileExistsError):
        store.future(key=k)
    proxyshm.Future(store, str(k)).set_result(b"x")
    assert bytes(store.wait(k)) == b"x"
    with pytest.raises(FileNotFoundError):
        proxyshm.Future(store, Key.from_name("none")).done()


def test_future_named(store):
    f = store.future(name="sim/step/42")
    assert f.key == Key.from_name("sim/step/42")
    with pytest.raises(FileExistsError):
        store.future(name="sim/step/42")
    with pytest.raises(TypeError):
        store.future(key=Key.from_name("x"), name="x")
    before = store.stat()
    for bad in ["", "x" * 256, "a\0b"]:
        with pytest.raises(ValueError):
            store.future(name=bad)
    assert store.stat()["slots_used"] == before["slots_used"]
    f.set_result(b"v")
    assert bytes(store.wait(Key.from_name("sim/step/42"))) == b"v"
    f.cancel()


def test_future_owned_claim_disown(store):
    f = store.future(owned=True)
    f.disown()
    f.disown()  # ownerless already: 0
    f.claim()
    f.set_result(b"ok")
    with pytest.raises(OSError) as e:
        f.claim()
    assert e.value.errno == errno.EALREADY


def test_future_cancel_wakes_waiter_with_ecanceled(store):
    f = store.future()
    e = error_of_wait(store, lambda: f.result(timeout=10), f.cancel)
    assert e.errno == errno.ECANCELED


def test_reserve_commit(store):
    f = store.future()
    m = f.reserve(6)
    assert not m.readonly and len(m) == 6
    m[:] = b"inplac"
    assert not f.done()
    with pytest.raises(OSError) as e:
        f.reserve(6)
    assert e.value.errno == errno.EBUSY
    f.commit()
    with pytest.raises(ValueError):
        m[0] = 1  # released by commit: no write after publication
    assert bytes(f.result(0)) == b"inplac"
    with pytest.raises(OSError) as e:
        f.commit()
    assert e.value.errno == errno.EALREADY


def test_commit_refuses_while_a_slice_lives(store):
    f = store.future()
    m = f.reserve(4)
    part = m[1:3]
    part[:] = b"xy"
    with pytest.raises(BufferError):
        f.commit()
    assert not f.done()
    part.release()
    proxyshm.Future(store, f.key).commit()  # any Future object of the key
    assert bytes(f.result(0)) == b"\0xy\0"


def test_reserve_errors(store):
    f = store.future()
    with pytest.raises(proxyshm.InvalidArgumentError):
        f.reserve(-1)
    with pytest.raises(OSError) as e:
        f.commit()
    assert e.value.errno == errno.EAGAIN
    with pytest.raises(OSError) as e:
        f.reserve(1 << 30)
    assert e.value.errno == errno.ENOSPC
    assert not f.done()


def test_proxy_and_resolve(store):
    f = store.future()
    p = f.proxy()
    assert p == "pxs://%s/%s" % (store.name[1:], f.key)
    f.set_result(b"resolved")
    with proxyshm.resolve(p, timeout=1) as v:
        assert bytes(v) == b"resolved"
    assert proxyshm.attach(store.name) is proxyshm.attach(store.name[1:])
    for bad in ["pxs://x", "http://a/" + str(f.key), "pxs://a/" + "0" * 32]:
        with pytest.raises(proxyshm.InvalidArgumentError):
            proxyshm.resolve(bad)
    with pytest.raises(TypeError):
        proxyshm.resolve(5)


def test_pickle_store_and_future_in_process(store):
    f = store.future()
    g = pickle.loads(pickle.dumps(f))
    assert g.key == f.key and g.store.name == store.name
    s2 = pickle.loads(pickle.dumps(store))
    assert s2 is proxyshm.attach(store.name) and s2 is g.store
    g.set_result(b"via pickle")
    assert bytes(f.result(0)) == b"via pickle"


def test_gil_released_during_wait(store):
    f = store.future()

    def wait():
        with pytest.raises(TimeoutError):
            f.result(timeout=0.3)
    assert_gil_released(wait)


def test_wait_woken_by_another_thread(store):
    f = store.future()
    threading.Timer(0.05, f.set_result, args=(b"woken",)).start()
    assert bytes(f.result(timeout=5)) == b"woken"


def test_strerror():
    assert proxyshm.strerror(errno.EOWNERDEAD) == proxyshm.strerror(-errno.EOWNERDEAD)
    assert proxyshm.__version__.count(".") == 2


def test_help_is_the_manual():
    for obj in [proxyshm.Store, proxyshm.Store.put, proxyshm.Store.expire, proxyshm.Store.wait_any,
                proxyshm.Store.list, proxyshm.Future.reserve, proxyshm.View,
                proxyshm.Key.from_name, proxyshm.resolve]:
        assert obj.__doc__ and len(obj.__doc__) > 20
