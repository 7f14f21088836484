"""The package on a Redis store (redis://127.0.0.1:PORT/NAME): every call
of the binding against a redis-server of the session (conftest.py's
redis_server fixture, SKIP where redis-server or hiredis is missing), what
differs from a segment (a View is a private copy; no streams; stat()
counts only), pickling, fork, Ctrl-C and a killed owner, and two
"nodes" that share no memory exchanging a future by its proxy string.
Tests that mean the same on both kinds of store (put/get/evict in
test_basic.py, the start methods in test_procs.py) take conftest.py's
either_store and run on each."""
import errno
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import proxyshm
from redis_server import free_port


def _produce(fut, data, delay):
    time.sleep(delay)
    fut.set_result(data)


def test_name_is_kept_and_proxies_name_the_server(rstore, redis_name):
    assert rstore.name == redis_name  # no '/' put in front
    f = rstore.future()
    p = f.proxy()
    assert p == "%s/%s" % (redis_name, f.key)
    assert proxyshm._parse_proxy(p) == (redis_name, f.key)
    # a proxy string is parsed strictly, here as for a segment
    for bad in (p + "0", p[:-1], p.replace("redis://", "redis:/"),
                p[:-33] + "\0/" + str(f.key), p + "\0" + "x" * 600):
        with pytest.raises(proxyshm.InvalidArgumentError):
            proxyshm._parse_proxy(bad)


def test_a_view_is_a_private_copy(rstore):
    # A segment's Views of one value share its bytes in place; a Redis
    # store's are each a copy in this process, which nothing else changes.
    np = pytest.importorskip("numpy")
    k = rstore.put(b"first value")
    big = rstore.put(bytearray(100000))  # copied to the server without the GIL
    assert bytes(rstore.get(big)) == bytes(100000)
    a, b = rstore.get(k), rstore.get(k)
    addr = [np.frombuffer(x, np.uint8).ctypes.data for x in (a, b)]
    assert addr[0] != addr[1]
    rstore.evict(k)
    rstore.put_at(k, b"other value")
    assert bytes(a) == bytes(b) == b"first value"
    assert bytes(rstore.get(k)) == b"other value"
    a.release()
    b.release()
    with pytest.raises(ValueError):
        bytes(a)


def test_futures(rstore):
    f = rstore.future()
    assert not f.done() and not rstore.exists(f.key)
    with pytest.raises(BlockingIOError):
        rstore.get(f.key)
    with pytest.raises(TimeoutError):
        f.result(timeout=0.1)
    t = threading.Thread(target=_produce, args=(f, b"late", 0.2))
    t.start()
    with f.result(timeout=10) as v:
        assert bytes(v) == b"late"
    t.join()
    assert f.done()
    with pytest.raises(OSError) as e:
        f.set_result(b"twice")
    assert e.value.errno == errno.EALREADY
    g = rstore.future(key=proxyshm.Key.from_name("named"), owned=True)
    g.disown()
    g.claim()
    buf = g.reserve(10)
    buf[:] = b"0123456789"
    del buf
    g.commit()
    assert bytes(rstore.wait(g.key, timeout=1)) == b"0123456789"
    assert bytes(proxyshm.Future(rstore, g.key).result(0)) == b"0123456789"
    with pytest.raises(FileExistsError):
        rstore.future(key=g.key)


def test_evicted_while_waited_on_is_ecanceled(rstore, redis_server):
    f = rstore.future()
    out = []

    def wait():
        try:
            f.result(timeout=10)
        except OSError as e:
            out.append(e.errno)
    t = threading.Thread(target=wait)
    t.start()
    redis_server.wait_for_blocked(1)  # it saw the future: asleep in the server
    f.cancel()
    t.join(10)
    assert out == [errno.ECANCELED]


def test_owner_that_dies_abandons_its_future(rstore):
    # A future's owner on Redis is its handle: a producer killed before
    # setting it is seen by the waiter (within about 0.5 s), not waited on.
    code = textwrap.dedent("""
        import sys, time, proxyshm
        s = proxyshm.Store(sys.argv[1])
        f = s.future(owned=True)
        print(f.key, flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code, rstore.name],
                         stdout=subprocess.PIPE, text=True)
    try:
        key = p.stdout.readline().strip()
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        rstore.wait(key, timeout=20)
    assert e.value.errno == errno.EOWNERDEAD
    assert time.monotonic() - t0 < 20
    assert [x["state"] for x in rstore.list() if str(x["key"]) == key] == ["abandoned"]


def test_expire(rstore):
    k = rstore.put(b"short")
    rstore.expire(k, 0.2)
    [e] = [x for x in rstore.list() if x["key"] == k]
    assert 0 < e["ttl"] <= 0.2
    keep = rstore.put(b"kept")
    rstore.expire(keep, 0.2)
    rstore.expire(keep, None)  # no deadline any more
    deadline = time.monotonic() + 10
    while rstore.exists(k):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rstore.exists(keep)
    with pytest.raises(FileNotFoundError):
        rstore.expire(k, 1)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError):
            rstore.expire(keep, bad)
    assert [x["ttl"] for x in rstore.list() if x["key"] == keep] == [None]


def test_wait_any(rstore):
    fs = [rstore.future() for _ in range(3)]
    with pytest.raises(TimeoutError) as e:
        rstore.wait_any([f.key for f in fs], timeout=0.1)
    assert e.value.index is None
    threading.Timer(0.2, fs[2].set_result, (b"two",)).start()
    i, v = rstore.wait_any([f.key for f in fs], timeout=10)
    assert i == 2 and bytes(v) == b"two"
    with pytest.raises(FileNotFoundError) as e:
        rstore.wait_any([fs[0].key, proxyshm.Key.from_name("absent")], timeout=1)
    assert e.value.index == 1
    with pytest.raises(proxyshm.InvalidArgumentError) as e:
        rstore.wait_any([fs[0].key, "zz"])
    assert e.value.index == 1


def test_list_and_stat_count_what_the_store_holds(rstore):
    rstore.put(b"a")
    rstore.put(b"b")
    f = rstore.future()
    st = rstore.stat()
    assert (st["objects"], st["pending"], st["abandoned"]) == (2, 1, 0)
    assert st["segment_size"] == 0 and st["capacity"] == 0  # not a segment
    states = sorted(x["state"] for x in rstore.list())
    assert states == ["pending", "value", "value"]
    assert rstore.reap() == 0
    assert f.key in [x["key"] for x in rstore.list()]


def test_bad_names_and_servers(redis_server):
    for bad in ("redis://127.0.0.1:%d/" % redis_server.port,
                "redis://127.0.0.1:0/x", "redis://127.0.0.1/x",
                "redis://127.0.0.1:%d/a/b" % redis_server.port):
        with pytest.raises(proxyshm.InvalidArgumentError):
            proxyshm.Store(bad, create=True)
    with pytest.raises(ConnectionRefusedError):
        proxyshm.Store("redis://127.0.0.1:%d/x" % free_port(), create=True)
    with pytest.raises(FileNotFoundError):  # attach only: no such store
        proxyshm.Store(redis_server.url("never-made"))


def test_close_and_unlink(redis_name):
    s = proxyshm.Store(redis_name, create=True)
    k = s.put(b"v")
    v = s.get(k)
    s.close()
    with pytest.raises(ValueError):
        s.put(b"w")
    assert bytes(v) == b"v"  # the copy outlives close()
    v.release()
    proxyshm.unlink(redis_name)
    with pytest.raises(FileNotFoundError):
        proxyshm.Store(redis_name)
    with pytest.raises(FileNotFoundError):
        proxyshm.unlink(redis_name)


def test_pickling(rstore):
    f = rstore.future()
    s2, f2, k2 = pickle.loads(pickle.dumps((rstore, f, f.key)))
    assert s2.name == rstore.name and s2 is proxyshm.attach(rstore.name)
    assert f2.store is s2 and f2.key == f.key == k2
    f.set_result(b"seen")
    assert bytes(f2.result(1)) == b"seen"


def test_fork_child_uses_parent_handle(rstore):
    f = rstore.future()
    pid = os.fork()
    if pid == 0:  # the child: the parent's handle, a connection of its own
        code = 1
        try:
            f.set_result(b"from the child")
            code = 0
        finally:
            os._exit(code)
    with f.result(timeout=20) as v:
        assert bytes(v) == b"from the child"
    assert os.waitpid(pid, 0)[1] == 0


def test_resolve_in_another_process(rstore, redis_server):
    f = rstore.future()
    code = "import sys, proxyshm; print(bytes(proxyshm.resolve(sys.argv[1], 20)).decode())"
    p = subprocess.Popen([sys.executable, "-c", code, f.proxy()],
                         stdout=subprocess.PIPE, text=True)
    redis_server.wait_for_blocked(1)  # the other process waits in the server
    f.set_result(b"resolved")
    assert p.communicate(timeout=30)[0].strip() == "resolved"
    assert p.returncode == 0


CTRL_C = textwrap.dedent("""
    import sys, time, proxyshm
    s = proxyshm.Store(sys.argv[1])
    print("waiting", flush=True)
    try:
        proxyshm.resolve(sys.argv[2])
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
""")


def test_ctrl_c_ends_a_wait_on_redis(rstore, redis_server):
    # The wait blocks in the server, in slices as on a segment, and a
    # SIGINT ends it with KeyboardInterrupt (not at the value: none comes).
    f = rstore.future()
    p = subprocess.Popen([sys.executable, "-c", CTRL_C, rstore.name, f.proxy()],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "waiting"
        redis_server.wait_for_blocked(1)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out = p.stdout.readline().split()
        assert out[0] == "interrupted"
        assert float(out[1]) - t0 < 5  # no value ever comes: only the signal ends it
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    f.set_result(b"after")  # the future is as it was
    assert bytes(f.result(1)) == b"after"


# Two "nodes": each process in a mount namespace of its own with a
# private, empty /dev/shm, so they share no memory; the consumer gets the
# future by its proxy string only, and the server carries the value.
NODE = textwrap.dedent("""
    import os, sys, time, proxyshm
    role, arg = sys.argv[1], sys.argv[2]
    assert os.listdir("/dev/shm") == [], "not a private /dev/shm"
    if role == "producer":
        name, key = proxyshm._parse_proxy(arg)
        s = proxyshm.Store(name)
        f = s.future(key=key)
        time.sleep(0.3)
        f.set_result(b"across nodes")
    else:
        deadline = time.monotonic() + 20
        while True:  # the future may not exist yet
            try:
                v = proxyshm.resolve(arg, timeout=5)
                break
            except FileNotFoundError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        print(bytes(v).decode(), flush=True)
""")


def _node(role, arg):
    sh = 'mount -t tmpfs -o size=16m tmpfs /dev/shm || exit 77; exec "$@"'
    return subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", sh, "sh",
         sys.executable, "-c", NODE, role, arg],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_nodes_share_only_the_server(redis_name, name):
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh",
                            "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare --mount and a tmpfs on /dev/shm need root")
    with proxyshm.Store(redis_name, create=True), \
            proxyshm.Store(name, create=True):  # a segment neither node sees
        proxy = "%s/%s" % (redis_name, proxyshm.Key.from_name("across"))
        consumer = _node("consumer", proxy)
        producer = _node("producer", proxy)
        out, err = consumer.communicate(timeout=60)
        perr = producer.communicate(timeout=60)[1]
        assert producer.returncode == 0, perr
        assert consumer.returncode == 0, err
        assert out.strip() == "across nodes"
