"""ShmPublisher and ShmSubscriber: ProxyStore's StreamProducer and
StreamConsumer over proxyshm streams, within a process and across
processes, with the objects in a ShmConnector store; the protocols
checked at run time; backpressure and the end of a stream. Run by
run_proxystore_suite.py (with the fixture plugin).
"""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

import proxyshm
from proxyshm.proxystore import ShmConnector, ShmPublisher, ShmSubscriber
from proxystore.proxy import Proxy
from proxystore.store import Store, store_registration
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.protocols import MessagePublisher, MessageSubscriber
from pxs_proxystore_plugin import segment_name

FORK = mp.get_context('fork')
WAIT = 60.0


@pytest.fixture
def segment():
    name = segment_name('shim')
    s = proxyshm.Store(name, create=True, size=32 << 20, capacity=4096)
    yield s
    s.close()


def test_protocols(segment):
    pub = ShmPublisher(segment)
    sub = ShmSubscriber(segment, 't')
    assert isinstance(pub, MessagePublisher)
    assert isinstance(sub, MessageSubscriber)
    pub.send_message('t', b'one')
    pub.send_message('t', b'two')
    assert [sub.next_message(), next(sub)] == [b'one', b'two']
    pub.end('t')
    with pytest.raises(StopIteration):
        sub.next_message()
    with pytest.raises(BrokenPipeError):
        pub.send_message('t', b'three')
    with pytest.raises(ValueError):
        pub.send_message('', b'x')
    sub.close()
    sub.close()  # idempotent
    pub.close()


def test_a_second_subscriber_in_one_process(segment):
    sub = ShmSubscriber(segment, 't')
    with pytest.raises(OSError):
        ShmSubscriber(segment, 't')  # one reader position per process
    sub.close()
    ShmSubscriber(segment, 't').close()


def test_backpressure(segment):
    pub = ShmPublisher(segment, window=2, timeout=0.2)
    sub = ShmSubscriber(segment, 'b', window=2)  # makes the stream
    pub.send_message('b', b'0')
    pub.send_message('b', b'1')
    with pytest.raises(TimeoutError):
        pub.send_message('b', b'2')  # the subscriber is two behind
    assert sub.next_message() == b'0'
    pub.send_message('b', b'2')
    assert [sub.next_message(), sub.next_message()] == [b'1', b'2']
    sub.close()


def _consume(name, topic, ready, out):
    try:
        with Store('shim-consumer', ShmConnector(name, create=False)) as store:
            with store_registration(store):
                consumer = StreamConsumer[str](ShmSubscriber(name, topic))
                ready.set()
                got = []
                for obj in consumer:
                    assert isinstance(obj, Proxy)
                    got.append(str(obj))
                consumer.close()
        out.put(('ok', got))
    except BaseException as e:  # report, never hang the parent
        out.put(('error', repr(e)))


def test_producer_and_consumer_processes(segment):
    name = segment.name
    objects = ['object %d' % i * (1 + i % 5) for i in range(200)]
    out = FORK.Queue()
    ready = [FORK.Event(), FORK.Event()]
    consumers = [FORK.Process(target=_consume, args=(name, 'sim', ev, out))
                 for ev in ready]
    for p in consumers:
        p.start()
    for ev in ready:
        assert ev.wait(WAIT)
    with Store('shim-producer', ShmConnector(name, create=False)) as store:
        producer = StreamProducer[str](ShmPublisher(name, window=16),
                                       stores={'sim': store}, batch_size=3)
        for obj in objects:
            producer.send('sim', obj, evict=False)  # two consumers resolve it
        producer.close_topics('sim')
        results = [out.get(timeout=WAIT) for _ in consumers]
        producer.close()
    for p in consumers:
        p.join(WAIT)
        assert p.exitcode == 0
    assert results == [('ok', objects)] * 2


def test_threads_in_one_process(segment):
    with Store('shim-threads', ShmConnector(segment.name, create=False)) as store, \
            store_registration(store):
        producer = StreamProducer[int](ShmPublisher(segment, window=4),
                                       stores={'n': store})
        consumer = StreamConsumer[int](ShmSubscriber(segment, 'n'))
        got = []
        t = threading.Thread(target=lambda: got.extend(int(x) for x in consumer))
        t.start()
        for i in range(50):
            producer.send('n', i)
        producer.close_topics('n')
        t.join(WAIT)
        assert not t.is_alive() and got == list(range(50))
        producer.close()
        consumer.close()
