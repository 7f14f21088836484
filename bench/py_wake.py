#!/usr/bin/env python3
# py_wake.py - the Python baseline for the wake-latency case
# (case 1): multiprocessing.Pipe and multiprocessing.Queue, measured with the
# same protocol as bench_future_latency.c (the consumer announces that it is
# about to block, the producer waits until /proc shows it asleep, sleeps
# 50 us, reads CLOCK_MONOTONIC and sends that time; the consumer subtracts
# it from the clock when its receive returns). Standard library only.
#
# Usage: py_wake.py [--quick]      prints key=value lines like the C programs
import multiprocessing as mp
import os
import sys
import time

SETTLE = 50e-6
TIMEOUT = 20.0


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


def consumer(mech, rx, ack, ready, n, cpu, out):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    lat = []
    for i in range(n):
        ready.value = i + 1
        t0 = rx.recv() if mech == "mp.Pipe" else rx.get()
        t1 = time.monotonic_ns()
        lat.append(t1 - t0)
        ack.send(None)
    out.send(lat)


def run(mech, n, pcpu, ccpu):
    ctx = mp.get_context("fork")
    ready = ctx.RawValue("I", 0)
    ack_r, ack_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    if mech == "mp.Pipe":
        rx, tx = ctx.Pipe(duplex=False)
        send = tx.send
    else:
        rx = ctx.Queue()
        send = rx.put
    all_cpus = os.sched_getaffinity(0)
    if pcpu is not None:
        os.sched_setaffinity(0, {pcpu})
    p = ctx.Process(target=consumer,
                    args=(mech, rx, ack_w, ready, n, ccpu, out_w))
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
            send(time.monotonic_ns())
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
    n, warm = (20, 5) if quick else (600, 50)
    cpus = sorted(os.sched_getaffinity(0))
    places = [("same-cpu", cpus[0], cpus[0])]
    if len(cpus) >= 2:
        places.append(("diff-cpu", cpus[0], cpus[1]))
    places.append(("unpinned", None, None))
    for name, pcpu, ccpu in places:
        for mech in ("mp.Pipe", "mp.Queue"):
            lat = run(mech, n + warm, pcpu, ccpu)[warm:]
            p50, p99, mean, lo = stats([x / 1e3 for x in lat])
            print("bench=py_wake case=wake placement=%s mech=%s n=%d "
                  "p50_us=%.3f p99_us=%.3f mean_us=%.3f min_us=%.3f"
                  % (name, mech, len(lat), p50, p99, mean, lo), flush=True)


if __name__ == "__main__":
    main()
