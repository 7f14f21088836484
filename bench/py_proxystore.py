#!/usr/bin/env python3
# py_proxystore.py - the Python benchmarks: the proxyshm package and
# ProxyStore with ShmConnector against ProxyStore's File and Redis connectors
# and the standard library, in one run (docs/benchmarks.md, Python section;
# bench/run's table 8).
#
# py-wake: a consumer process blocked in a future's result() is woken by a
# set_result() from the parent; the value carries the parent's
# CLOCK_MONOTONIC just before the set, the consumer subtracts it from the
# clock when result() returns (after WARM wakes that are not counted). The
# parent sets only once /proc shows the consumer asleep, 50 us later (plus,
# for a polled future, a random part of its interval, so that the set
# falls anywhere in a poll's sleep). The
# consumer also reports its CPU time in result(): the median per wait
# (cpu_us, which includes unpickling the value) and the share of the
# waits' wall time (cpu_pct). idle_cpu_pct is the waiter's CPU while it
# only waits: one more future is left unset for HOLD seconds while the
# parent reads the consumer's CPU clock (clock_gettime on its process CPU
# clock, ns) at both ends of the hold.
# py-objects: put and get of 64 B and 1 MiB in one process, median per op;
# get_faults is the minor page faults per get (the process's ru_minflt).
# py-get-size: Store.get + View.release of 64 B and of 1 GiB (64 MiB with
# --quick) in one store: a get pins in place, whatever the size.
#
# Usage: py_proxystore.py [--quick] [--build-dir DIR] [--redis-port N]
#   prints key=value lines like the C programs; a mechanism that cannot be
#   measured (no ProxyStore, pydantic 2 or redis) prints a skip line.
import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time

from py_wake import asleep, stats  # the same protocol as py_wake.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SETTLE = 50e-6
TIMEOUT = 30.0
WARM = 3  # wakes discarded first, as the C programs and py_wake.py do


def skip(what, reason):
    print("bench=py_proxystore skip=%s reason=%r" % (what, reason),
          flush=True)


def set_paths(build_dir, tmp):
    sys.path[:0] = [os.path.join(ROOT, "python"),
                    os.path.join(build_dir, "python")]
    src = os.environ.get("PXS_PROXYSTORE_SRC",
                         os.path.join(ROOT, "..", "shared", "thirdparty",
                                      "proxystore"))
    dist = os.path.join(tmp, "proxystore-1.0.0.dist-info")
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: proxystore\nVersion: 1.0.0\n")
    sys.path += [src, tmp]
    for mod in ("redis", "packaging", "tomli_w"):  # Debian's pure-Python packages
        debian = os.path.join("/usr/lib/python3/dist-packages", mod)
        if os.path.isdir(debian):
            os.symlink(debian, os.path.join(tmp, mod))
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path)


def consumer(make_store, ready, futures, out):
    make_store()  # attach before the first wait, as a long-lived worker
    lat, cpu = [], []
    while True:
        fut = futures.recv()
        if fut is None:
            break
        ready.send(None)
        w0, c0 = time.monotonic_ns(), time.process_time_ns()
        value = fut.result()
        t1 = time.monotonic_ns()
        c1 = time.process_time_ns()
        t0 = int(bytes(value)) if not isinstance(value, int) else value
        lat.append(t1 - t0)
        cpu.append((c1 - c0, t1 - w0))
        del value, fut
    out.send((lat, cpu))


def process_cpu_ns(pid):
    """CPU time of process pid so far, in ns.

    Its process CPU clock is readable by clock_gettime from any process of
    the same user; the id is Linux's encoding of clock_getcpuclockid(3)
    (CPUCLOCK_SCHED of the whole process). Where that fails, /proc's
    utime + stime, in clock ticks."""
    try:
        return time.clock_gettime_ns((~pid << 3) | 2)
    except OSError:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return ((int(fields[11]) + int(fields[12])) * 10**9
                // os.sysconf("SC_CLK_TCK"))


def wake(mech, make_store, new_future, setter, n, interval, hold):
    ctx = mp.get_context("fork")
    fut_r, fut_w = ctx.Pipe(duplex=False)
    rdy_r, rdy_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=consumer, args=(make_store, rdy_w, fut_r, out_w))
    p.start()
    try:
        total = WARM + n + 1  # the last one measures the idle CPU
        for i in range(total):
            fut = new_future()
            fut_w.send(fut)
            if not rdy_r.poll(TIMEOUT):
                raise RuntimeError("consumer not ready")
            rdy_r.recv()
            if not asleep(p.pid, time.monotonic() + TIMEOUT):
                raise RuntimeError("consumer never fell asleep")
            if i < total - 1:
                time.sleep(SETTLE + random.uniform(0, interval))
            else:
                c0, w0 = process_cpu_ns(p.pid), time.monotonic_ns()
                time.sleep(hold)
                idle = ((process_cpu_ns(p.pid) - c0)
                        / (time.monotonic_ns() - w0))
            setter(fut, time.monotonic_ns())
        fut_w.send(None)
        lat, cpu = out_r.recv()
    finally:
        p.join(TIMEOUT)
        if p.is_alive():
            p.kill()
    lat, cpu = lat[WARM:WARM + n], cpu[WARM:WARM + n]
    p50, p99, mean, lo = stats([x / 1e3 for x in lat])
    print("bench=py_proxystore case=py-wake placement=unpinned mech=%s n=%d "
          "p50_us=%.3f p99_us=%.3f mean_us=%.3f min_us=%.3f "
          "cpu_us=%.1f cpu_pct=%.2f idle_cpu_pct=%.3f hold_s=%g"
          % (mech, n, p50, p99, mean, lo,
             stats([c / 1e3 for c, _ in cpu])[0],
             100 * sum(c for c, _ in cpu) / max(1, sum(w for _, w in cpu)),
             100 * idle, hold),
          flush=True)


_pipe = None  # (receiving, sending) Connection of the mp.Pipe wake


class PipeWaiter:
    """multiprocessing.Pipe in the place of a future: result() receives
    from the pipe that the consumer inherited when it was forked."""

    def result(self):
        return _pipe[0].recv()


def pipe_wake(n, hold):
    global _pipe
    _pipe = mp.get_context("fork").Pipe(duplex=False)
    try:
        wake("mp.Pipe", lambda: None, PipeWaiter,
             lambda f, t: _pipe[1].send(t), n, 0, hold)
    finally:
        for c in _pipe:
            c.close()
        _pipe = None


def timed(op, n, after=None):
    """Median us of n calls of op(); after(result), if given, runs
    untimed after each call."""
    v = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        r = op()
        v.append(time.perf_counter_ns() - t0)
        if after:
            after(r)
    return stats([x / 1e3 for x in v])[0]


def objects(mech, put, get, drop, n, conn_get=None):
    """put and get of 64 B and 1 MiB; drop removes what a put stored
    (untimed, so that the store never fills). conn_get, for a ProxyStore
    store, is its connector's get alone: what the store's get spends
    beyond it is ProxyStore's deserialization."""
    for size in (64, 1 << 20):
        data = os.urandom(size)
        reps = n if size == 64 else max(10, n // 10)
        put_us = timed(lambda: put(data), reps, drop)
        key = put(data)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        get_us = timed(lambda: get(key), reps)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                  - f0) / reps
        extra = " get_faults=%.1f" % faults
        if conn_get:
            extra += " conn_get_p50_us=%.3f" % timed(lambda: conn_get(key),
                                                     reps)
        drop(key)
        print("bench=py_proxystore case=py-objects mech=%s size=%d n=%d "
              "put_p50_us=%.3f get_p50_us=%.3f%s"
              % (mech, size, reps, put_us, get_us, extra), flush=True)


def get_sizes(proxyshm, seg, big, n):
    """Store.get + View.release of 64 B and of big bytes, in one store."""
    name = seg + "-big"
    with proxyshm.Store(name, size=big + (64 << 20), create=True) as s:
        try:
            small = s.put(os.urandom(64))
            fut = s.future()
            m = fut.reserve(big)
            chunk = os.urandom(1 << 20)
            for off in range(0, big, len(chunk)):
                m[off:off + len(chunk)] = chunk
            m.release()
            fut.commit()
            for size, key in ((64, small), (big, fut.key)):
                p50 = timed(lambda: s.get(key).release(), n)
                print("bench=py_proxystore case=py-get-size mech=pxs "
                      "op=get+release size=%d n=%d p50_us=%.3f"
                      % (size, n, p50), flush=True)
        finally:
            proxyshm.unlink(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--redis-port", type=int)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pxs-bench-py-")
    set_paths(os.path.abspath(a.build_dir), tmp)
    try:
        import proxyshm
    except ImportError as e:
        skip("all", "proxyshm does not import: %s" % e)
        return 0
    seg = "/pxs-bench-py-%d" % os.getpid()
    native = proxyshm.Store(seg, size=256 << 20, create=True)
    n_wake = 5 if a.quick else 200
    n_poll = 3 if a.quick else 20
    n_obj = 200 if a.quick else 20000
    hold = 0.2 if a.quick else 1.0
    try:
        wake("pxs.Future", lambda: None, lambda: native.future(),
             lambda f, t: f.set_result(b"%d" % t), n_wake, 0, hold)
        pipe_wake(n_wake, hold)

        def get_release(k):
            native.get(k).release()
        objects("pxs", native.put, get_release, native.evict, n_obj)
        get_sizes(proxyshm, seg, (64 << 20) if a.quick else (1 << 30),
                  n_obj)
        from multiprocessing import shared_memory
        shms = {}

        def shm_put(d):
            s = shared_memory.SharedMemory(create=True, size=len(d))
            s.buf[:len(d)] = d
            shms[s.name] = s
            return s.name

        def shm_get(name):
            s = shared_memory.SharedMemory(name=name)
            memoryview(s.buf).release()
            s.close()

        def shm_drop(name):
            s = shms.pop(name)
            s.close()
            s.unlink()
        objects("mp.shared_memory", shm_put, shm_get, shm_drop,
                min(n_obj, 2000))
        proxystore_part(a, seg, tmp, n_wake, n_poll, n_obj, hold)
    finally:
        native.close()
        proxyshm.unlink(seg)
    return 0


def proxystore_part(a, seg, tmp, n_wake, n_poll, n_obj, hold):
    try:
        from proxystore.connectors.file import FileConnector
        from proxystore.store import Store
        from proxyshm.proxystore import ShmConnector, blocking_future
    except Exception as e:  # ImportError, or pydantic 1's errors
        skip("proxystore", "ProxyStore does not import: %r" % e)
        return
    connectors = [("ShmConnector", lambda: ShmConnector(seg, create=False)),
                  ("FileConnector", lambda: FileConnector(
                      tempfile.mkdtemp(prefix="pxs-bench-file-",
                                       dir="/dev/shm"), clear=True))]
    if a.redis_port:
        try:
            from proxystore.connectors.redis import RedisConnector
            connectors.append(("RedisConnector", lambda: RedisConnector(
                "127.0.0.1", a.redis_port)))
        except ImportError as e:
            skip("RedisConnector", "redis does not import: %s" % e)
    else:
        skip("RedisConnector", "no --redis-port")
    for name, make in connectors:
        with Store("bench-" + name, make(), cache_size=0,
                   register=True) as store:
            def attach():
                import proxystore.store as ps
                ps.get_or_create_store(store.config(), register=True)
            objects("proxystore." + name, store.put, store.get, store.evict,
                    n_obj, store.connector.get)
            if name == "ShmConnector":
                wake("blocking_future.ShmConnector", attach,
                     lambda: blocking_future(store),
                     lambda f, t: f.set_result(t), n_wake, 0, hold)
                continue
            for interval in (1.0, 0.001):
                wake("store.future.%s.%gs" % (name, interval), attach,
                     lambda: store.future(polling_interval=interval),
                     lambda f, t: f.set_result(t), n_poll, interval, hold)


if __name__ == "__main__":
    sys.exit(main())
