"""Zero-copy production with numpy: write a 100 MB array in place.

    python3 numpy_producer.py STORE

Creates the store, then a future under the key derived from the name
"grid/temperature", so that a consumer started separately
(numpy_consumer.py) agrees on it without being told. The array is built
directly in the segment: reserve() returns writable memory there, numpy
writes into it, commit() publishes it and wakes the consumers. Nothing is
copied, not even once.
"""
import sys
import time

import numpy as np

import proxyshm

N = 100 * 1000 * 1000 // 8  # 100 MB of float64
KEY = proxyshm.Key.from_name("grid/temperature")


def main(name):
    store = proxyshm.Store(name, create=True, size=256 << 20)
    future = store.future(key=KEY)
    print("producer: future %s pending" % KEY, flush=True)
    time.sleep(0.3)  # let the consumer block first
    grid = np.frombuffer(future.reserve(N * 8), dtype=np.float64)
    grid[:] = np.linspace(0.0, 1.0, N)  # written in the segment, in place
    del grid  # no Python path to the memory may outlive the commit
    future.commit()
    print("producer: committed %d MB in place" % (N * 8 // 1000000), flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
