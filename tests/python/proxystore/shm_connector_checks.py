"""ShmConnector and blocking_future: what ProxyStore's suite does not test.

Zero-copy gets and their pins, None for every kind of missing value,
ownerless keys, write-once set, config, close and clear, keys and futures
across processes, kernel wake-ups (the waiter is counted asleep by the
store, and ProxyStore's lock is not held while it sleeps), and ProxyStore
left as it was. Run by run_proxystore_suite.py (with the fixture plugin).
"""

from __future__ import annotations

import ctypes
import errno
import inspect
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import proxyshm
from proxyshm.proxystore import (BlockingStoreFactory, ShmConnector, ShmKey,
                                 blocking_future)
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.protocols import Connector, DeferrableConnector
from proxystore.store import Store
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from pxs_proxystore_plugin import segment_name

WAIT = 20.0  # seconds a test waits for another process before failing


@pytest.fixture
def conn() -> Any:
    with ShmConnector(segment_name('conn'), size=8 << 20, clear=True) as c:
        yield c


@pytest.fixture
def store(conn: ShmConnector) -> Any:
    with Store(f'store-{os.getpid()}', conn, cache_size=0,
               register=True) as s:
        yield s


def until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f'never: {what}')
        time.sleep(0.005)


# -- the protocols --------------------------------------------------------

def test_implements_both_protocols(conn: ShmConnector) -> None:
    assert isinstance(conn, Connector)
    assert isinstance(conn, DeferrableConnector)


def test_put_get_is_zero_copy_and_pinned(conn: ShmConnector) -> None:
    data = os.urandom(1 << 20)
    key = conn.put(data)
    view = conn.get(key)
    assert isinstance(view, memoryview) and view.readonly
    assert view == data
    again = conn.get(key)
    # Both gets see the bytes in the segment itself, not copies.
    assert buffer_address(view) == buffer_address(again)
    assert in_segment(buffer_address(view), conn.name)
    del again
    # An evict by another attachment leaves the held value intact.
    with ShmConnector(conn.name, create=False) as other:
        other.evict(key)
    assert conn.get(key) is None
    assert conn.store.stat()['evicted_pinned'] == 1
    assert view == data
    view.release()
    until(lambda: conn.store.stat()['evicted_pinned'] == 0,
          'the last pin freed the evicted value')


class _PyBuffer(ctypes.Structure):
    _fields_ = [('buf', ctypes.c_void_p), ('obj', ctypes.c_void_p),
                ('len', ctypes.c_ssize_t), ('itemsize', ctypes.c_ssize_t),
                ('readonly', ctypes.c_int), ('ndim', ctypes.c_int),
                ('format', ctypes.c_char_p), ('shape', ctypes.c_void_p),
                ('strides', ctypes.c_void_p),
                ('suboffsets', ctypes.c_void_p),
                ('internal', ctypes.c_void_p)]


def buffer_address(obj: Any) -> int:
    """The address of the first byte that obj's buffer exports."""
    view = _PyBuffer()
    get = ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer),
                    ctypes.c_int]
    assert get(obj, ctypes.byref(view), 0) == 0
    address = view.buf
    ctypes.pythonapi.PyBuffer_Release.argtypes = [ctypes.POINTER(_PyBuffer)]
    ctypes.pythonapi.PyBuffer_Release(ctypes.byref(view))
    return address


def in_segment(address: int, name: str) -> bool:
    """Whether address lies in this process's mapping of segment name."""
    with open('/proc/self/maps') as maps:
        for line in maps:
            if line.rstrip().endswith('/dev/shm' + name):
                lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
                if lo <= address < hi:
                    return True
    return False


def test_get_batch_put_batch_order(conn: ShmConnector) -> None:
    values = [b'', b'a', b'bb' * 1000, os.urandom(70000)]
    keys = conn.put_batch(values)
    assert [bytes(v) for v in conn.get_batch(keys)] == values
    conn.evict(keys[1])
    got = conn.get_batch(keys)
    assert got[1] is None and got[2] == values[2]


def test_missing_key_everywhere(conn: ShmConnector) -> None:
    key = ShmKey('0123456789abcdef0123456789abcdef')
    assert conn.get(key) is None
    assert not conn.exists(key)
    conn.evict(key)  # not an error
    with pytest.raises(FileNotFoundError):
        conn.set(key, b'x')
    with pytest.raises(FileNotFoundError):
        conn.wait(key, 0)


def test_bad_key_is_value_error_and_changes_nothing(
        conn: ShmConnector) -> None:
    before = conn.store.stat()['objects']
    for bad in ('', 'xyz', '0' * 31, 'g' * 32):
        with pytest.raises(ValueError):
            conn.get(ShmKey(bad))
        with pytest.raises(ValueError):
            conn.set(ShmKey(bad), b'x')
    assert conn.store.stat()['objects'] == before


def test_pending_future_reads_as_none_without_blocking(
        conn: ShmConnector) -> None:
    key = conn.new_key()
    assert not conn.exists(key)
    assert conn.get(key) is None
    assert conn.get_batch([key]) == [None]


def test_cancelled_future_reads_as_none(conn: ShmConnector) -> None:
    key = conn.new_key()
    conn.evict(key)
    assert conn.get(key) is None
    assert not conn.exists(key)


def _own_and_die(name: str, conn: ShmConnector, out: Any) -> None:
    key = conn.new_key()
    conn._future(key).claim()
    out.send(key)
    os.kill(os.getpid(), signal.SIGKILL)


def test_abandoned_future_reads_as_none_and_wait_reports_it(
        conn: ShmConnector) -> None:
    ctx = mp.get_context('fork')
    rx, tx = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_own_and_die, args=(conn.name, conn, tx))
    p.start()
    key = rx.recv()
    p.join(WAIT)
    assert p.exitcode == -signal.SIGKILL
    assert conn.get(key) is None
    assert not conn.exists(key)
    with pytest.raises(OSError) as e:
        conn.wait(key, WAIT)
    assert e.value.errno == errno.EOWNERDEAD


def _make_key_and_exit(name: str, out: Any) -> None:
    with ShmConnector(name, create=False) as c:
        out.send(c.new_key())


def test_new_key_outlives_its_creator(conn: ShmConnector) -> None:
    ctx = mp.get_context('spawn')
    rx, tx = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_make_key_and_exit, args=(conn.name, tx))
    p.start()
    key = rx.recv()
    p.join(WAIT)
    assert p.exitcode == 0
    assert conn.get(key) is None  # still pending, not abandoned
    conn.set(key, b'later')
    assert conn.get(key) == b'later'


def test_set_is_write_once_and_replaces_a_different_value(
        conn: ShmConnector) -> None:
    key = conn.new_key(b'v1')
    conn.set(key, b'v1')
    held = conn.get(key)
    conn.set(key, b'v1')  # the same value again: nothing happens
    assert conn.store.stat()['evictions'] == 0
    conn.set(key, b'v2')  # another value replaces it under the same key
    assert conn.get(key) == b'v2'
    assert held == b'v1'  # a reader of the old value keeps it


def test_config_is_exactly_init_kwargs(conn: ShmConnector) -> None:
    params = list(inspect.signature(ShmConnector.__init__).parameters)[1:]
    assert sorted(conn.config()) == sorted(params)
    key = conn.put(b'shared')
    for rebuilt in (ShmConnector.from_config(conn.config()),
                    ShmConnector(**conn.config())):
        assert rebuilt.get(key) == b'shared'
        rebuilt.close(clear=False)
    assert repr(conn).startswith('ShmConnector(name=')


def test_close_is_idempotent_and_clears_only_when_asked() -> None:
    name = segment_name('close')
    c = ShmConnector(name, size=4 << 20)
    key = c.put(b'kept')
    c.close()
    c.close()
    with ShmConnector(name, create=False) as again:
        assert again.get(key) == b'kept'
        again.close(clear=True)
    with pytest.raises(FileNotFoundError):
        ShmConnector(name, create=False)
    c2 = ShmConnector(name, size=4 << 20, clear=True)
    c2.close()
    c2.close()
    with pytest.raises(FileNotFoundError):
        ShmConnector(name, create=False)


def test_bad_arguments_raise_and_create_nothing() -> None:
    with pytest.raises(FileNotFoundError):
        ShmConnector(segment_name('absent'), create=False)
    for bad in ('/no spaces', '/' + 'x' * 300):
        with pytest.raises(OSError) as e:
            ShmConnector(bad)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        ShmConnector(segment_name('tiny'), size=4096)
    assert e.value.errno == errno.EINVAL


def test_key_pickles_and_reads_in_another_process(
        conn: ShmConnector) -> None:
    key = conn.put(b'across')
    assert pickle.loads(pickle.dumps(key)) == key
    code = ('import pickle, sys\n'
            'from proxyshm.proxystore import ShmConnector\n'
            'cfg, key = pickle.loads(sys.stdin.buffer.read())\n'
            'with ShmConnector(**cfg) as c:\n'
            '    sys.stdout.buffer.write(bytes(c.get(key)))\n')
    out = subprocess.run([sys.executable, '-c', code],
                         input=pickle.dumps((conn.config(), key)),
                         capture_output=True, timeout=WAIT, check=True)
    assert out.stdout == b'across'


# -- waits -------------------------------------------------------------

def test_wait_times_out_and_returns_plain_objects_at_once(
        conn: ShmConnector) -> None:
    key = conn.new_key()
    with pytest.raises(TimeoutError):
        conn.wait(key, 0.05)
    plain = conn.put(b'now')
    assert conn.wait(plain, 0) == b'now'


def _set_later(cfg: dict[str, Any], key: ShmKey, value: bytes) -> None:
    with ShmConnector(**cfg) as c:
        until(lambda: c.store.stat()['waiters'] > 0, 'a waiter sleeps')
        c.set(key, value)


def test_wait_is_woken_by_a_set_in_another_process(
        conn: ShmConnector) -> None:
    key = conn.new_key()
    ctx = mp.get_context('spawn')
    p = ctx.Process(target=_set_later, args=(conn.config(), key, b'woken'))
    p.start()
    assert conn.wait(key, WAIT) == b'woken'
    p.join(WAIT)
    assert p.exitcode == 0


def test_wait_on_an_evicted_future_is_cancelled(conn: ShmConnector) -> None:
    key = conn.new_key()
    threading.Timer(0.05, conn.evict, args=(key,)).start()
    with pytest.raises(OSError) as e:
        conn.wait(key, WAIT)
    assert e.value.errno == errno.ECANCELED


def test_blocking_future_needs_a_shm_connector() -> None:
    with Store('local', LocalConnector()) as s:
        with pytest.raises(TypeError, match='ShmConnector'):
            blocking_future(s)


def test_blocking_future_in_one_process(store: Store[Any]) -> None:
    fut = blocking_future(store)
    proxy = fut.proxy()
    assert isinstance(fut._factory, BlockingStoreFactory)
    assert not fut.done()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(fut.result()))
    waiter.start()
    # The waiter sleeps in the kernel, counted by the store, without the
    # store's lock: a set from this thread goes through.
    until(lambda: store.connector.store.stat()['waiters'] == 1,
          'the waiter sleeps in the kernel')
    fut.set_result({'answer': 42})
    waiter.join(WAIT)
    assert got == [{'answer': 42}]
    assert fut.done()
    assert proxy == {'answer': 42}


def test_blocking_future_timeout_is_a_missing_key(store: Store[Any]) -> None:
    fut = blocking_future(store, timeout=0.05)
    with pytest.raises(ProxyResolveMissingKeyError):
        fut.result()


def _consume(fut: Any) -> tuple[Any, float]:
    t0 = time.process_time()
    value = fut.result()
    return value, time.process_time() - t0


def _consume_proxy(proxy: Any) -> Any:
    return sorted(proxy)


def blocking_future_across_processes(store: Store[Any], method: str,
                                     asleep: Any) -> float:
    """A blocking_future's result() and its proxy, each waited on in a
    process of the start method, set here once asleep() returns (both
    consumers sleep); returns the CPU seconds of the result() waiter."""
    fut = blocking_future(store)
    with ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as pool:
        waiting = pool.submit(_consume, fut)
        resolving = pool.submit(_consume_proxy, fut.proxy())
        asleep()
        time.sleep(0.3)
        fut.set_result({3, 1, 2})
        value, cpu = waiting.result(WAIT)
        assert value == {1, 2, 3}
        assert resolving.result(WAIT) == [1, 2, 3]
    return cpu


@pytest.mark.parametrize('method', ['fork', 'spawn', 'forkserver'])
def test_blocking_future_and_proxy_across_processes(
        store: Store[Any], method: str) -> None:
    cpu = blocking_future_across_processes(
        store, method,
        lambda: until(lambda: store.connector.store.stat()['waiters'] == 2,
                      'both consumers sleep in the kernel'))
    # Asleep for 0.3 s and more, the waiter used (nearly) no CPU: a polled
    # future at 1 ms would have woken 300 times.
    assert cpu < 0.1


def test_evicting_proxy_of_blocking_future(store: Store[Any]) -> None:
    fut = blocking_future(store, evict=True)
    fut.set_result('once')
    key = fut._factory.key
    assert fut.proxy() == 'once'
    assert not store.exists(key)


def test_proxystore_is_left_as_it_was() -> None:
    # Importing the connector changes nothing in any ProxyStore module.
    code = ('import sys, proxystore.store, proxystore.store.base,\\\n'
            '    proxystore.store.factory, proxystore.store.future\n'
            'def snap():\n'
            '    return {(m, k): id(v) for m, mod in list(sys.modules.items())\n'
            '            if m.startswith("proxystore") and mod\n'
            '            for k, v in vars(mod).items()}\n'
            'before = snap()\n'
            'import proxyshm.proxystore\n'
            'after = snap()\n'
            'changed = [k for k in before if after.get(k) != before[k]]\n'
            'print(changed)\n'
            'sys.exit(1 if changed else 0)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=WAIT)
    assert out.returncode == 0, out.stdout + out.stderr
