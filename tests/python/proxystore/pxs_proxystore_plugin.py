"""pytest plugin: ProxyStore's own test suite against ShmConnector.

Owns the fixtures that ProxyStore's tests take from its tests/conftest.py
(which cannot be loaded here: it needs uvloop, globus_sdk and the endpoint
stack), each built on ShmConnector:

- connectors: the parametrised connector fixture of tests/connectors/;
  close() on it raises, as in ProxyStore's testing/connectors.py.
- store: a registered Store over a fresh segment, as testing/stores.py.
- the autouse check that a test leaves no store registered.

Test modules that build their own LocalConnector or FileConnector (store
basics, proxies, metrics, refs, scopes, streams) get stand-ins under those
names in their globals for the duration of each test: ShmConnector
subclasses that take the replaced class's arguments, so every store those
tests make lives in shared memory; the stream tests' message
publisher/subscriber pairs become ShmPublisher/ShmSubscriber on a stream of
a fresh segment. Every segment made here is unlinked after its test.

With PXS_PST_REDIS=redis://HOST:PORT in the environment every store made
here (fixtures and stand-ins) is a Redis store on that server instead of a
segment, and the stream tests keep ProxyStore's queue pairs (proxyshm
streams are not supported on Redis stores).

With PXS_PST_BASELINE=1 in the environment the stand-ins are left out and
the store fixture uses LocalConnector: the same run against ProxyStore's own
connectors, to tell a failure of ours from one of the suite's.

Use: pytest --noconftest -p pxs_proxystore_plugin tests/... from the root
of ProxyStore's source (see run_proxystore_suite.py).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import Generator
from typing import Any
from unittest import mock

import pytest

import proxystore
import proxyshm
from proxyshm.proxystore import ShmConnector, ShmPublisher, ShmSubscriber
from proxystore.stream.protocols import MessagePublisher, MessageSubscriber
from proxystore.store import Store, store_registration

SEGMENT_SIZE = 32 << 20
SEGMENT_CAPACITY = 4096
_serial = itertools.count()
_made: set[str] = set()


# The Redis server whose stores stand in for segments, or None.
REDIS = os.environ.get('PXS_PST_REDIS') or None


def store_name(name: str) -> str:
    """The store of segment name @p name: on REDIS when it is set."""
    return f'{REDIS}{name}' if REDIS else name


def segment_name(tag: str) -> str:
    """A store name of this process's own, remembered for cleanup."""
    name = store_name(f'/pxs-pst-{os.getpid()}-{tag}-{next(_serial)}')
    _made.add(name)
    return name


def _unlink_made() -> None:
    while _made:
        try:
            proxyshm.unlink(_made.pop())
        except FileNotFoundError:
            pass


class ShmAsLocalConnector(ShmConnector):
    """ShmConnector taking LocalConnector's arguments.

    Each instance made without a segment gets a fresh one, as each
    LocalConnector has a dictionary of its own; config() names the segment,
    so a connector rebuilt from it sees the same objects (as LocalConnector
    with include_data_in_config).
    """

    def __init__(self, include_data_in_config: bool = False,
                 segment: str | None = None) -> None:
        self.include_data_in_config = include_data_in_config
        super().__init__(segment or segment_name('local'), size=SEGMENT_SIZE,
                         capacity=SEGMENT_CAPACITY, create=True, clear=True)

    def config(self) -> dict[str, Any]:
        return {'include_data_in_config': self.include_data_in_config,
                'segment': self.name}


class ShmAsFileConnector(ShmConnector):
    """ShmConnector taking FileConnector's arguments.

    The segment is named after store_dir, so a connector rebuilt from
    config() in another process attaches the same segment.
    """

    def __init__(self, store_dir: str, clear: bool = True,
                 buffering: int = -1) -> None:
        self.store_dir = store_dir
        self.buffering = buffering
        digest = hashlib.sha1(os.path.abspath(store_dir).encode()).hexdigest()
        name = store_name(f'/pxs-pst-file-{digest[:24]}')
        _made.add(name)
        super().__init__(name, size=SEGMENT_SIZE, capacity=SEGMENT_CAPACITY,
                         create=True, clear=clear)

    def config(self) -> dict[str, Any]:
        return {'store_dir': self.store_dir, 'clear': self.clear,
                'buffering': self.buffering}


def shm_message_pubsub_pair(
    topic: str | None = None,
) -> tuple[ShmPublisher, ShmSubscriber]:
    """testing.stream's create_message_pubsub_pair() over a stream in a
    fresh segment: the publisher and the subscriber of one topic."""
    topic = 'default' if topic is None else topic
    store = proxyshm.Store(segment_name('stream'), create=True,
                           size=SEGMENT_SIZE, capacity=SEGMENT_CAPACITY)
    publisher = ShmPublisher(store)
    subscriber = ShmSubscriber(store, topic)
    assert isinstance(publisher, MessagePublisher)
    assert isinstance(subscriber, MessageSubscriber)
    return publisher, subscriber


# Stream tests that read the events out of the publisher's queue.Queue
# (publisher._queues): they keep ProxyStore's queue pair.
_PEEK_AT_QUEUES = frozenset({'test_filtering_stream',
                             'test_consumer_next_object_evicts',
                             'test_consumer_next_object_missing'})

BASELINE = os.environ.get('PXS_PST_BASELINE') == '1'
_STAND_INS: dict[str, Any] = {} if BASELINE else {
    'LocalConnector': ShmAsLocalConnector,
    'FileConnector': ShmAsFileConnector,
}
if not BASELINE and not REDIS:
    _STAND_INS['create_message_pubsub_pair'] = shm_message_pubsub_pair


@pytest.fixture(autouse=True)
def _shm_everywhere(request: pytest.FixtureRequest,
                    monkeypatch: pytest.MonkeyPatch) -> Generator[None,
                                                                   None, None]:
    """Stand-ins for the connectors a test module builds itself."""
    module = request.node.module if hasattr(request.node, 'module') else None
    if module is not None and module.__name__.startswith('tests.'):
        peeks = getattr(request.node, 'originalname', '') in _PEEK_AT_QUEUES
        for name, stand_in in _STAND_INS.items():
            if name in vars(module) and not (peeks and name.endswith('_pair')):
                monkeypatch.setattr(module, name, stand_in)
    yield
    _unlink_made()


@pytest.fixture(autouse=True)
def _verify_no_registered_stores() -> Generator[None, None, None]:
    yield
    if len(proxystore.store._stores) > 0:
        raise RuntimeError('Test left at least one store registered: '
                           f'{tuple(proxystore.store._stores.keys())}.')


@pytest.fixture(scope='session')
def shm_connector() -> Generator[ShmConnector, None, None]:
    """A ShmConnector on a fresh segment, unlinked at the end."""
    name = store_name(f'/pxs-pst-{os.getpid()}-session')
    with ShmConnector(name, size=SEGMENT_SIZE, capacity=SEGMENT_CAPACITY,
                      create=True, clear=True) as connector:
        yield connector


@pytest.fixture(scope='session', params=['shm_connector'])
def connectors(request: pytest.FixtureRequest) -> Generator[ShmConnector,
                                                            None, None]:
    """ProxyStore's parametrised connector fixture, with ShmConnector."""
    connector = request.getfixturevalue(request.param)
    with mock.patch.object(
        connector, 'close',
        side_effect=RuntimeError('Tests using connectors fixtures should not '
                                 'call close() on the yielded connector.')):
        yield connector


@pytest.fixture
def store() -> Generator[Store[ShmConnector], None, None]:
    """A registered Store over a fresh segment, without a cache."""
    connector: Any
    if BASELINE:
        from proxystore.connectors.local import LocalConnector
        connector = LocalConnector()
    else:
        connector = ShmConnector(segment_name('store'), size=SEGMENT_SIZE,
                                 capacity=SEGMENT_CAPACITY, create=True,
                                 clear=True)
    with Store(str(uuid.uuid4()), connector, cache_size=0) as store:
        with store_registration(store):
            yield store
