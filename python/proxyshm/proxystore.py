"""proxyshm.proxystore - a ProxyStore connector over a proxyshm segment.

Owns: ShmKey (the connector's key type), ShmConnector (ProxyStore's
Connector and DeferrableConnector protocols on one shared-memory segment),
blocking_future() (a ProxyStore Future whose result() and proxies wake
by the kernel instead of polling), and ShmPublisher/ShmSubscriber
(ProxyStore's MessagePublisher and MessageSubscriber protocols on proxyshm
streams, for StreamProducer and StreamConsumer). Built on the native package (proxyshm's
Store, Key, View and Future) and on ProxyStore's public classes; nothing in
ProxyStore is modified.

Switching a ProxyStore program to shared memory is a change of connector:

    from proxystore.store import Store
    from proxyshm.proxystore import ShmConnector, blocking_future

    with Store('app', ShmConnector('/app', clear=True)) as store:
        p = store.proxy(data)             # put; resolved zero-copy in place
        fut = blocking_future(store)      # instead of store.future()
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import proxyshm
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.factory import StoreFactory
from proxystore.store.future import Future

__all__ = ['ShmKey', 'ShmConnector', 'BlockingStoreFactory', 'ShmPublisher',
           'ShmSubscriber',
           'blocking_future']

T = TypeVar('T')

# What get() reports as "no object": an absent key, a future not set yet,
# one whose owner died before setting it, and one cancelled by an evict.
# ProxyStore asks get() for an object or None and must never block in it.
_NOT_THERE = frozenset({errno.ENOENT, errno.EAGAIN, errno.EOWNERDEAD,
                        errno.ECANCELED})


class ShmKey(NamedTuple):
    """Key to an object or future in a ShmConnector's segment.

    Attributes:
        id: the proxyshm key as 32 lowercase hex digits.
    """

    id: str


def _buffer(view: Any) -> memoryview:
    # ProxyStore's deserialize() accepts bytes, bytearray and memoryview.
    # The memoryview exports the View's buffer, so the View (and its pin on
    # the value) lives exactly as long as ProxyStore holds the memoryview.
    return memoryview(view)


class ShmConnector:
    """ProxyStore connector storing objects in a proxyshm segment.

    Every process on the machine that opens the same segment name sees the
    same objects; get() returns the value in place (a read-only memoryview
    into the segment, no copy), pinned until ProxyStore drops it, so an
    evict by another process never pulls memory from under a reader.

    Implements ProxyStore's Connector and DeferrableConnector protocols:
    new_key() makes an ownerless future (it outlives the process that made
    it, as ProxyStore expects of Store.future()), set() fulfils it from any
    process, and wait() sleeps in the kernel until it is set.

    Args:
        name: segment name, '/' followed by letters, digits, '.', '_', '-'
            (as proxyshm.Store), or a Redis store 'redis://HOST:PORT/NAME'
            (get() then returns a private copy, not a view in place).
        size: segment bytes when creating it; 0 is proxyshm's default.
        capacity: most live objects and futures when creating; 0 derives it
            from size.
        create: create the segment if it does not exist (else attach only).
        clear: close() unlinks the segment (the default for close()).

    Raises:
        OSError: from proxyshm.Store (errno set: ENOENT for a missing
            segment with create=False, EINVAL for a bad name or size, ...).

    Note:
        Thread-safe, and safe to use from many processes at once. ProxyStore
        rebuilds the connector in another process from config() (the same
        arguments), which attaches the same segment: a rebuilt connector
        with clear=True unlinks the segment when that process closes its
        store, as FileConnector's clear removes its directory.
    """

    def __init__(
        self,
        name: str,
        size: int = 0,
        capacity: int = 0,
        create: bool = True,
        clear: bool = False,
    ) -> None:
        self.name = name
        self.size = size
        self.capacity = capacity
        self.create = create
        self.clear = clear
        self._lock = threading.Lock()
        self._handle: Any = None
        self._attach()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(name={self.name!r}, '
                f'size={self.size}, capacity={self.capacity}, '
                f'create={self.create}, clear={self.clear})')

    def __enter__(self) -> ShmConnector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _attach(self) -> Any:
        with self._lock:
            if self._handle is None:
                self._handle = proxyshm.Store(self.name, size=self.size,
                                              capacity=self.capacity,
                                              create=self.create)
            return self._handle

    @property
    def _store(self) -> Any:
        handle = self._handle
        return handle if handle is not None else self._attach()

    @property
    def store(self) -> Any:
        """The proxyshm.Store under this connector (for native calls)."""
        return self._store

    def close(self, clear: bool | None = None) -> None:
        """Detach from the segment; with clear, also unlink its name.

        Idempotent: a second close() does nothing. Unlinking removes the
        name at once; processes still attached keep working on the segment.
        A call after close() attaches again with the connector's arguments
        (as a RedisConnector reconnects), so code that closes a store and
        then looks a key up gets an answer, not an error: with create=True
        and a cleared segment, a new empty segment, which the next close()
        clears in turn.

        Args:
            clear: unlink the segment; None uses the clear given to
                __init__.
        """
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is None:
            return
        handle.close()
        if self.clear if clear is None else clear:
            try:
                proxyshm.unlink(self.name)
            except FileNotFoundError:
                pass

    def config(self) -> dict[str, Any]:
        """The keyword arguments of __init__, to rebuild this connector."""
        return {'name': self.name, 'size': self.size,
                'capacity': self.capacity, 'create': self.create,
                'clear': self.clear}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ShmConnector:
        """Build a connector from config()'s result."""
        return cls(**config)

    def _key(self, key: ShmKey) -> Any:
        return proxyshm.Key(key.id)

    def _future(self, key: ShmKey) -> Any:
        return proxyshm.Future(self._store, self._key(key))

    def put(self, obj: Any) -> ShmKey:
        """Copy a bytes-like object into the segment under a fresh key.

        Raises:
            OSError: ENOSPC when the segment is full (nothing stored).
        """
        return ShmKey(str(self._store.put(obj)))

    def put_batch(self, objs: Sequence[Any]) -> list[ShmKey]:
        """put() each object in turn; the keys in the same order."""
        return [self.put(obj) for obj in objs]

    def get(self, key: ShmKey) -> memoryview | None:
        """The value in place, or None.

        Never blocks: None for an absent key, a future not set yet, an
        abandoned future (its owner died before setting it) and a cancelled
        one. The returned memoryview is read-only and pins the value until
        it is released or garbage-collected.
        """
        try:
            return _buffer(self._store.get(self._key(key)))
        except OSError as e:
            if e.errno in _NOT_THERE:
                return None
            raise

    def get_batch(self, keys: Sequence[ShmKey]) -> list[memoryview | None]:
        """get() each key in turn; values or None in the same order."""
        return [self.get(key) for key in keys]

    def exists(self, key: ShmKey) -> bool:
        """Whether a value is present (False for a pending future)."""
        return bool(self._store.exists(self._key(key)))

    def evict(self, key: ShmKey) -> None:
        """Remove the key for every process; a missing key is not an error.

        Readers holding the value keep it until they release it. Evicting a
        pending future cancels it: its waiters raise OSError(ECANCELED).
        """
        try:
            self._store.evict(self._key(key))
        except FileNotFoundError:
            pass

    def new_key(self, obj: Any = None) -> ShmKey:
        """Create an ownerless pending future and return its key.

        The future outlives this process; any process may set() it. obj is
        accepted for the protocol and not used.

        Raises:
            OSError: ENOSPC when the segment's table is full.
        """
        return ShmKey(str(self._store.future(owned=False).key))

    def set(self, key: ShmKey, obj: Any) -> None:
        """Set the future's value and wake its waiters in every process.

        A key set once is set: setting it again with an equal value does
        nothing; with another value, the old value is evicted and the new
        one stored under the same key (readers holding the old value keep
        it). That replacement is not atomic, as ProxyStore's protocol
        allows: a get() between the two steps sees None.

        Raises:
            OSError: ENOENT (no such key: never made, evicted or cancelled),
                EOWNERDEAD (abandoned), EBUSY (a native producer reserved
                it), ENOSPC (no room: for a replacement, the old value is
                gone).
        """
        try:
            self._future(key).set_result(obj)
            return
        except OSError as e:
            if e.errno != errno.EALREADY:
                raise
        if self._holds(key, obj):
            return
        self.evict(key)
        try:
            self._store.put_at(self._key(key), obj)
        except FileExistsError:
            pass  # a concurrent set() stored its value first

    def _holds(self, key: ShmKey, obj: Any) -> bool:
        value = self.get(key)
        if value is None:
            return False
        with value:
            return value == memoryview(obj).cast('B')

    def wait(self, key: ShmKey, timeout: float | None = None) -> memoryview:
        """Sleep in the kernel until the key holds a value; return it.

        A plain object is returned at once. The wait releases the GIL and
        ends with KeyboardInterrupt on Ctrl-C. The returned memoryview pins
        the value as get()'s does.

        Args:
            key: a key from new_key() or put().
            timeout: seconds; None waits for ever.

        Raises:
            TimeoutError: not set within timeout.
            OSError: ENOENT (no such key), ECANCELED (evicted while
                waited on), EOWNERDEAD (its owner died before setting it).
        """
        return _buffer(self._future(key).result(timeout))


class BlockingStoreFactory(StoreFactory[ShmConnector, T], Generic[T]):
    """A StoreFactory that waits for its key in the kernel, then resolves.

    What PollingStoreFactory does with sleeps between polls, this does with
    one ShmConnector.wait(), outside the store's lock, then an ordinary
    Store.get (so the store's cache, metrics and deserializer apply). It
    pickles like any StoreFactory: a proxy made from it resolves the same
    way in any process that unpickles it.

    Args:
        key: the future's key.
        store_config: the store's config(), to rebuild it elsewhere.
        evict: evict the object once resolved.
        deserializer: as for StoreFactory.
        timeout: seconds to wait; None waits for ever.
    """

    def __init__(
        self,
        key: ShmKey,
        store_config: Any,
        *,
        evict: bool = False,
        deserializer: Any = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(key, store_config, evict=evict,
                         deserializer=deserializer)
        self.timeout = timeout

    def resolve(self) -> T:
        """Wait for the object, then get it from the store.

        Raises:
            ProxyResolveMissingKeyError: not set within timeout (as a
                polled future past its polling_timeout).
            OSError: ECANCELED (evicted while waited on), EOWNERDEAD (its
                owner died before setting it), ENOENT (no such key).
        """
        store = self.get_store()
        try:
            store.connector.wait(self.key, self.timeout)
        except TimeoutError:
            raise ProxyResolveMissingKeyError(self.key, type(store),
                                              store.name) from None
        return super().resolve()


def blocking_future(
    store: Any,
    *,
    evict: bool = False,
    serializer: Any = None,
    deserializer: Any = None,
    timeout: float | None = None,
) -> Future[Any]:
    """Store.future() for a ShmConnector store, woken by the kernel.

    Returns ProxyStore's own Future class: set_result(), done(), result()
    and proxy() work as for Store.future(), and the future and its proxies
    pickle into other processes; but result() and a proxy's resolution
    sleep in the kernel until set_result() (from any process) wakes them,
    instead of polling the store every polling_interval.

    Args:
        store: a proxystore.store.Store whose connector is a ShmConnector.
        evict: a proxy from Future.proxy() evicts the object once resolved.
        serializer: overrides the store's serializer for set_result().
        deserializer: overrides the store's deserializer for result().
        timeout: seconds result() waits; None waits for ever.

    Raises:
        TypeError: the store's connector is not a ShmConnector.
        OSError: ENOSPC when the segment's table is full.
    """
    if not isinstance(store.connector, ShmConnector):
        raise TypeError('blocking_future needs a store with a ShmConnector, '
                        f'not {type(store.connector).__name__}')
    factory: BlockingStoreFactory[Any] = BlockingStoreFactory(
        store.connector.new_key(), store.config(), evict=evict,
        deserializer=deserializer, timeout=timeout)
    return Future(factory, serializer=serializer)


# ---------------------------------------------------------------- streams

_TOPIC_PREFIX = 'proxystore-stream/'


def _topic_stream(store: Any, topic: str, window: int, block: bool) -> Any:
    """The stream of topic in store, made on first use by either side.

    A topic's key is Key.from_name('proxystore-stream/' + topic); window
    and block count only for whichever side makes it first.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError('a topic is a non-empty str')
    name = _TOPIC_PREFIX + topic
    try:
        return store.stream(name, create=True, window=window, block=block)
    except FileExistsError:
        return store.stream(name)


def _store_of(store: proxyshm.Store | str) -> Any:
    return proxyshm.attach(store) if isinstance(store, str) else store


class ShmPublisher:
    """ProxyStore MessagePublisher over proxyshm streams, one per topic.

    StreamProducer(ShmPublisher('/app'), stores=...) publishes its event
    messages as items of a stream in the segment: subscribers in any
    process of the machine read them in order, in place.

    Args:
        store: a proxyshm.Store, or a segment name (attached once per
            process, as proxyshm.attach()).
        window: messages a topic's stream retains (1..65536) when this
            side makes it.
        block: True (the default) makes send_message() wait while a
            subscriber is window messages behind (backpressure); False
            lets the window slide, and a subscriber that falls behind gets
            OSError ERANGE for what it lost.
        timeout: seconds send_message() may wait (None: for ever), then
            TimeoutError.

    Note:
        Thread-safe; any number of publishers, in any processes, may send
        to one topic. close() leaves the topics' streams in place (the
        producer's close_topics() is what tells subscribers the end);
        end(topic) ends a stream for good.
    """

    def __init__(self, store: proxyshm.Store | str, *, window: int = 1024,
                 block: bool = True, timeout: float | None = None) -> None:
        self._store = _store_of(store)
        self._window = window
        self._block = block
        self._timeout = timeout
        self._lock = threading.Lock()
        self._streams: dict[str, Any] = {}

    def _stream(self, topic: str) -> Any:
        with self._lock:
            st = self._streams.get(topic)
            if st is None:
                st = _topic_stream(self._store, topic, self._window,
                                   self._block)
                self._streams[topic] = st
            return st

    def send_message(self, topic: str, message: bytes) -> None:
        """Append message to topic's stream (made on first use).

        Raises:
            BrokenPipeError: the topic's stream was ended.
            TimeoutError: a block stream stayed full for timeout seconds.
        """
        self._stream(topic).append(message, self._timeout)

    def end(self, topic: str) -> None:
        """End topic's stream: its subscribers stop after the last message."""
        self._stream(topic).end()

    def close(self) -> None:
        """Close this publisher (the streams stay)."""
        with self._lock:
            self._streams.clear()


class ShmSubscriber:
    """ProxyStore MessageSubscriber reading one topic's proxyshm stream.

    StreamConsumer(ShmSubscriber('/app', 'topic')) iterates the messages
    of the topic from the oldest still retained, in order; every
    subscriber (in its own process) sees every message. On a block
    stream a subscriber holds publishers back until it reads on, and one
    whose process dies releases them.

    Args:
        store: a proxyshm.Store, or a segment name.
        topic: the topic to read; its stream is made if no publisher has
            sent to it yet (window and block as for ShmPublisher).
        timeout: seconds next_message() may wait (None: for ever), then
            TimeoutError.

    Raises:
        OSError: EALREADY if this process already subscribes to topic (a
            stream has one reader position per process).

    Note:
        Iteration stops when the stream is ended (ShmPublisher.end()).
        close() (or collection) gives up the process's reader position.
    """

    def __init__(self, store: proxyshm.Store | str, topic: str, *,
                 window: int = 1024, block: bool = True,
                 timeout: float | None = None) -> None:
        st = _topic_stream(_store_of(store), topic, window, block)
        self._reader = st.reader(timeout=timeout)

    def __iter__(self) -> ShmSubscriber:
        return self

    def __next__(self) -> bytes:
        return self.next_message()

    def next_message(self) -> bytes:
        """The next message, as bytes (StopIteration at the stream's end)."""
        with next(self._reader) as view:
            return bytes(view)

    def close(self) -> None:
        """Give up this process's reader position (idempotent)."""
        self._reader.close()
