#!/usr/bin/env python3
"""ProxyStore's getting-started example, on shared memory.

The same code as ProxyStore's guide, with ShmConnector in place of
LocalConnector: the store is now a segment that every process of the
machine can attach, so the proxy works in any of them, and resolving it
reads the object in place.

Usage: proxystore_get_started.py [SEGMENT-NAME]
"""
import sys
from concurrent.futures import ProcessPoolExecutor

from proxyshm.proxystore import ShmConnector
from proxystore.store import Store, get_store

name = sys.argv[1] if len(sys.argv) > 1 else '/proxystore-example'


def use(p: list) -> int:
    return sum(p)  # p is resolved here, in another process


if __name__ == '__main__':
    my_object = list(range(1000))
    with Store('example', connector=ShmConnector(name, clear=True),
               register=True):
        store = get_store('example')
        key = store.put(my_object)
        assert my_object == store.get(key)
        p = store.proxy(my_object)
        assert isinstance(p, type(my_object))
        with ProcessPoolExecutor(1) as pool:
            print('sum in another process:', pool.submit(use, p).result())
