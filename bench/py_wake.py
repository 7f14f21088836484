#!/usr/bin/env python3
# py_wake.py - the Python rows of the wake-latency case (case 1), measured
# with the same protocol as bench_future_latency.c (the consumer announces
# that it is about to block, the producer waits until /proc shows it asleep,
# sleeps 50 us, reads CLOCK_MONOTONIC and sends that time; the consumer
# subtracts it from the clock when its receive returns), by placement:
#   mp.Pipe, mp.Queue    the standard library's
#   pxs.Future           the package: Future.result() woken by set_result()
#   pxs.ctypes           the same library call from the same Python
#                        processes without the package: pxs_future_wait
#                        through ctypes (GIL released, one call, no slices,
#                        no View), woken by the package's set_result()
# The two pxs rows tell what the package costs over the library call in a
# Python process; against the C pxs row of bench_future_latency they tell
# what a Python process costs. Each mechanism runs in ROUNDS blocks,
# interleaved, so that a slow minute of the machine falls on all of them.
# The pxs rows need the package and libproxyshm of a build tree (a skip line
# otherwise).
#
# Usage: py_wake.py [--quick] [--build-dir DIR]   (DIR: default
#   $PXS_BUILD_DIR, else build-bench, the tree bench/run builds)
#   prints key=value lines like the C programs
import ctypes
import multiprocessing as mp
import os
import sys
import time

SETTLE = 50e-6
TIMEOUT = 20.0
ROUNDS = 3  # blocks per mechanism, interleaved
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PXS_MECHS = ("pxs.Future", "pxs.ctypes")


def stats(v):
    v = sorted(v)
    n = len(v)
    if n == 0:
        return 0.0, 0.0, 0.0, 0.0
    p50 = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    k = min(n, max(1, int(0.99 * n + 0.999999)))
    return p50, v[k - 1], sum(v) / n, v[0]


def asleep(pid, deadline):
    path = "/proc/%d/stat" % pid
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            s = f.read()
        if s[s.rindex(b")") + 2:s.rindex(b")") + 3] == b"S":
            return True
        time.sleep(10e-6)
    return False


class PxsKey(ctypes.Structure):
    _fields_ = [("hi", ctypes.c_uint64), ("lo", ctypes.c_uint64)]


class PxsView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("priv", ctypes.c_uint64 * 3)]


class Pxs:
    """The pxs rows' store: a segment of this run, its futures (one per
    wake, made before the consumer starts) and the library for ctypes."""

    def __init__(self, build_dir):
        sys.path[:0] = [os.path.join(ROOT, "python"),
                        os.path.join(build_dir, "python")]
        import proxyshm
        self.mod = proxyshm
        self.lib_path = os.path.join(build_dir, "src", "libproxyshm.so")
        ctypes.CDLL(self.lib_path)  # fails here, not in a consumer
        self.name = "/pxs-bench-pywake-%d" % os.getpid()
        self.store = proxyshm.Store(self.name, create=True, size=64 << 20)
        self.futures = []

    def new_futures(self, n):
        for f in self.futures:
            f.cancel()
        self.futures = [self.store.future() for _ in range(n)]

    def close(self):
        self.store.close()
        self.mod.unlink(self.name)


def pxs_receiver(pxs, mech):
    """In the consumer: a function of i returning the time sent with the
    i-th future's value."""
    if mech == "pxs.Future":
        store = pxs.mod.Store(pxs.name)  # a worker's own attachment
        futs = [pxs.mod.Future(store, f.key) for f in pxs.futures]

        def recv(i):
            with futs[i].result(TIMEOUT) as v:
                return int(bytes(v))
        return recv
    lib = ctypes.CDLL(pxs.lib_path)  # CDLL: the GIL is released in calls
    lib.pxs_future_wait.argtypes = [ctypes.c_void_p, PxsKey, ctypes.c_long,
                                    ctypes.POINTER(PxsView)]
    lib.pxs_release.argtypes = [ctypes.c_void_p, ctypes.POINTER(PxsView)]
    h = ctypes.c_void_p()
    if lib.pxs_open(pxs.name.encode(), None, ctypes.byref(h)) != 0:
        raise RuntimeError("pxs_open failed")
    keys = [PxsKey(int(str(f.key)[:16], 16), int(str(f.key)[16:], 16))
            for f in pxs.futures]

    def recv(i):
        v = PxsView()
        rc = lib.pxs_future_wait(h, keys[i], int(TIMEOUT * 1000),
                                 ctypes.byref(v))
        if rc != 0:
            raise RuntimeError("pxs_future_wait: %d" % rc)
        t0 = int(ctypes.string_at(v.data, v.size))
        lib.pxs_release(h, ctypes.byref(v))
        return t0
    return recv


def consumer(mech, rx, ack, ready, n, cpu, out, pxs):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if mech in PXS_MECHS:
        recv = pxs_receiver(pxs, mech)
    elif mech == "mp.Pipe":
        def recv(i):
            return rx.recv()
    else:
        def recv(i):
            return rx.get()
    lat = []
    for i in range(n):
        ready.value = i + 1
        t0 = recv(i)
        t1 = time.monotonic_ns()
        lat.append(t1 - t0)
        ack.send(None)
    out.send(lat)


def run(mech, n, pcpu, ccpu, pxs):
    ctx = mp.get_context("fork")
    ready = ctx.RawValue("I", 0)
    ack_r, ack_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    rx = None
    if mech in PXS_MECHS:
        pxs.new_futures(n)

        def send(i, t):
            pxs.futures[i].set_result(b"%d" % t)
    elif mech == "mp.Pipe":
        rx, tx = ctx.Pipe(duplex=False)

        def send(i, t):
            tx.send(t)
    else:
        rx = ctx.Queue()

        def send(i, t):
            rx.put(t)
    all_cpus = os.sched_getaffinity(0)
    if pcpu is not None:
        os.sched_setaffinity(0, {pcpu})
    p = ctx.Process(target=consumer,
                    args=(mech, rx, ack_w, ready, n, ccpu, out_w, pxs))
    p.start()
    try:
        for i in range(n):
            deadline = time.monotonic() + TIMEOUT
            while ready.value < i + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("consumer not ready")
                time.sleep(10e-6)
            if not asleep(p.pid, deadline):
                raise RuntimeError("consumer never fell asleep")
            time.sleep(SETTLE)
            send(i, time.monotonic_ns())
            if not ack_r.poll(TIMEOUT):
                raise RuntimeError("consumer did not acknowledge")
            ack_r.recv()
        lat = out_r.recv()
    finally:
        p.join(TIMEOUT)
        if p.is_alive():
            p.kill()
        os.sched_setaffinity(0, all_cpus)
    return lat


def main():
    quick = "--quick" in sys.argv[1:]
    build_dir = os.environ.get("PXS_BUILD_DIR",
                               os.path.join(ROOT, "build-bench"))
    if "--build-dir" in sys.argv[1:-1]:
        build_dir = sys.argv[sys.argv.index("--build-dir") + 1]
    n, warm = (20, 5) if quick else (600, 50)
    per_round = -(-n // ROUNDS)
    mechs = ["mp.Pipe", "mp.Queue"]
    pxs = None
    try:
        pxs = Pxs(os.path.abspath(build_dir))
        mechs += list(PXS_MECHS)
    except (ImportError, OSError) as e:
        print("bench=py_wake skip=pxs reason=%r"
              % ("no package or library in %s: %s" % (build_dir, e)),
              flush=True)
    cpus = sorted(os.sched_getaffinity(0))
    places = [("same-cpu", cpus[0], cpus[0])]
    if len(cpus) >= 2:
        places.append(("diff-cpu", cpus[0], cpus[1]))
    places.append(("unpinned", None, None))
    try:
        for name, pcpu, ccpu in places:
            lat = {m: [] for m in mechs}
            for _ in range(ROUNDS):
                for mech in mechs:
                    lat[mech] += run(mech, per_round + warm, pcpu, ccpu,
                                     pxs)[warm:]
            for mech in mechs:
                p50, p99, mean, lo = stats([x / 1e3 for x in lat[mech]])
                print("bench=py_wake case=wake placement=%s mech=%s n=%d "
                      "p50_us=%.3f p99_us=%.3f mean_us=%.3f min_us=%.3f"
                      % (name, mech, len(lat[mech]), p50, p99, mean, lo),
                      flush=True)
    finally:
        if pxs:
            pxs.close()


if __name__ == "__main__":
    main()
