"""ShmConnector on a Redis store, and blocking_future across processes.

Run by run_proxystore_suite.py --redis, which starts the server and names
it in PXS_PST_REDIS (redis://127.0.0.1:PORT); the fixture plugin's
segment_name() then makes Redis store names. What differs from a segment
is checked here: get() is a copy of the value in this process (not a
view of shared memory), and a waiter sleeps in the server (counted by its
blocked clients, not by the store's stat()).
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import proxyshm
from proxyshm.proxystore import ShmConnector
from proxystore.store import Store
from pxs_proxystore_plugin import REDIS, segment_name
# The segment checks' fixtures (a connector on a fresh store, its Store)
# serve here: segment_name() makes Redis names, which ignore the size.
from shm_connector_checks import (  # noqa: F401
    blocking_future_across_processes, conn, store)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from redis_server import wait_for_blocked  # noqa: E402

WAIT = 20.0  # seconds a test waits for another process before failing

pytestmark = pytest.mark.skipif(REDIS is None,
                                reason='PXS_PST_REDIS names no server')


def port() -> int:
    return urlsplit(REDIS).port


def test_the_connector_names_a_redis_store(conn: ShmConnector) -> None:
    assert conn.name.startswith(REDIS + '/')
    assert conn.store.name == conn.name
    key = conn.put(b'on the server')
    value = conn.get(key)
    assert bytes(value) == b'on the server' and value.readonly
    assert conn.exists(key)
    conn.evict(key)
    assert bytes(value) == b'on the server'  # a copy: still held here
    assert conn.get(key) is None and not conn.exists(key)
    conn.evict(key)  # a missing key is not an error


def test_futures_and_replacement(conn: ShmConnector) -> None:
    key = conn.new_key()
    assert conn.get(key) is None and not conn.exists(key)
    with pytest.raises(TimeoutError):
        conn.wait(key, 0.05)
    conn.set(key, b'first')
    conn.set(key, b'first')  # the same value: nothing happens
    assert bytes(conn.wait(key, 0)) == b'first'
    conn.set(key, b'second')
    assert bytes(conn.get(key)) == b'second'


def test_close_clears_the_redis_store() -> None:
    name = segment_name('clear')
    c = ShmConnector(name, clear=True)
    c.put(b'x')
    c.close()
    with pytest.raises(FileNotFoundError):
        proxyshm.Store(name)


def _read_by_config(cfg: dict[str, Any], key: Any) -> bytes:
    with ShmConnector(**cfg) as c:
        return bytes(c.get(key))


def test_a_rebuilt_connector_sees_the_same_store(conn: ShmConnector) -> None:
    key = conn.put(b'shared by name')
    cfg = dict(conn.config(), clear=False)
    with ProcessPoolExecutor(1, mp_context=mp.get_context('spawn')) as pool:
        assert pool.submit(_read_by_config, cfg, key).result(WAIT) == \
            b'shared by name'


@pytest.mark.parametrize('method', ['fork', 'spawn', 'forkserver'])
def test_blocking_future_and_proxy_across_processes(
        store: Store[Any], method: str) -> None:
    # both consumers sleep in the server, as two of its blocked clients
    cpu = blocking_future_across_processes(
        store, method, lambda: wait_for_blocked(port(), 2, WAIT))
    assert cpu < 0.1  # asleep in the server, not polling


def test_wait_on_an_evicted_future_is_cancelled(conn: ShmConnector) -> None:
    key = conn.new_key()
    with ProcessPoolExecutor(1, mp_context=mp.get_context('spawn')) as pool:
        evict = pool.submit(_evict_when_blocked, conn.config(), key)
        with pytest.raises(OSError) as e:
            conn.wait(key, WAIT)
        evict.result(WAIT)
    assert e.value.errno == errno.ECANCELED


def _evict_when_blocked(cfg: dict[str, Any], key: Any) -> None:
    wait_for_blocked(port(), 1, WAIT)
    ShmConnector(**dict(cfg, clear=False)).evict(key)
