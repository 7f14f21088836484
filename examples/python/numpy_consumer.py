"""Compute on the producer's array in place (see numpy_producer.py).

    python3 numpy_consumer.py STORE

Attaches the store (waiting for the producer to create it), blocks until
the future "grid/temperature" is set, then computes on the array in the
segment: np.frombuffer over the View copies nothing, and the array is
read-only. The View stays pinned while the array exists.
"""
import sys
import time

import numpy as np

import proxyshm

KEY = proxyshm.Key.from_name("grid/temperature")


def attach(name, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proxyshm.Store(name)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def main(name):
    store = attach(name)
    while True:  # the store may exist a moment before the future does
        try:
            view = store.wait(KEY, timeout=10)
            break
        except FileNotFoundError:
            time.sleep(0.01)
    grid = np.frombuffer(view, dtype=np.float64)
    shared = np.shares_memory(grid, np.frombuffer(view, dtype=np.float64))
    print("consumer: %d MB, mean %.6f, max %.6f, zero-copy %s, writeable %s"
          % (grid.nbytes // 1000000, grid.mean(), grid.max(), shared,
             grid.flags.writeable), flush=True)
    ok = abs(grid.mean() - 0.5) < 1e-9 and shared and not grid.flags.writeable
    del grid
    view.release()
    store.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
