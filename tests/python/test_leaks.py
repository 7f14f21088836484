"""A million get/release (and wait_any, list, expire, the stream calls
and their errors) keep the process's RSS and the store's pins flat."""
import gc
import os

import proxyshm


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def churn(store, k, n):
    for _ in range(n):
        v = store.get(k)
        memoryview(v).release()
        v.release()
        with store.get(k) as w:
            len(w)
        store.get(k)  # released when collected


def test_million_get_release_flat(store):
    k = store.put(b"x" * 64)
    f = store.future()
    f.set_result(b"y" * 64)
    churn(store, k, 20000)  # warm up allocators
    gc.collect()
    rss0 = rss_kib()
    churn(store, k, 1000000 // 3)
    keys = [f.key, k]
    for _ in range(100000):
        f.result(0).release()
        proxyshm.Key(str(k))
        store.wait_any(keys, timeout=0)[1].release()
    for _ in range(1000):
        store.list()
    gc.collect()
    grown = rss_kib() - rss0
    st = store.stat()
    assert st["pins"] == 0 and st["evicted_pinned"] == 0
    # One leaked View or Key per call would be >= 30 MiB here.
    assert grown < 4096, "RSS grew by %d KiB" % grown


def test_error_paths_do_not_leak(store):
    missing = proxyshm.Key.from_name("missing")
    f = store.future()
    gc.collect()
    rss0 = rss_kib()
    for _ in range(200000):
        try:
            store.get(missing)
        except FileNotFoundError:
            pass
        try:
            f.result(timeout=0)
        except TimeoutError:
            pass
        try:
            store.wait_any([f.key, missing], timeout=0)
        except FileNotFoundError as e:
            assert e.index == 1
        try:
            store.wait_any([f.key, "zz"])
        except proxyshm.InvalidArgumentError:
            pass
        try:
            store.expire(missing, 1)
        except FileNotFoundError:
            pass
    gc.collect()
    assert rss_kib() - rss0 < 4096
    assert store.stat()["pins"] == 0


def test_stream_calls_do_not_leak(store):
    st = store.stream("leaks", create=True, window=64)

    def cycle(n):
        for i in range(n):
            seq = st.append(b"z" * 64)
            st.read(seq).release()
            mv = st.reserve(16)
            mv[:1] = b"r"
            del mv
            st.commit()
            seq, v = st.take("g")
            v.release()
            st.ack("g", seq)
            st.take("g")[1].release()  # the reserved one, acked below
            st.ack("g", seq + 1)
            st.stat()
            try:
                st.read(2 ** 63, timeout=0)
            except TimeoutError:
                pass
            try:
                st.ack("g", seq)
            except FileNotFoundError:
                pass
    cycle(2000)
    gc.collect()
    rss0 = rss_kib()
    cycle(50000)
    with st.reader(from_seq=st.stat()["first"]) as r:
        for _ in range(60):
            next(r).release()
    gc.collect()
    grown = rss_kib() - rss0
    s = store.stat()
    assert s["pins"] == 0 and s["evicted_pinned"] == 0
    assert grown < 4096, "RSS grew by %d KiB" % grown
