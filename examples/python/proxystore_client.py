#!/usr/bin/env python3
"""ProxyStore's proxy-future client.py, on shared memory.

ProxyStore's guide: a client invokes foo() and bar() at the same time on
remote processes; foo() produces the data that bar() needs, and bar() blocks
only when it uses the data. Here ShmConnector replaces RedisConnector, a
ProcessPoolExecutor is invoke_remote, and blocking_future(store) replaces
store.future(), so bar() sleeps in the kernel until foo() sets the result
instead of polling the store every second. Each step prints the time since
the start.

Usage: proxystore_client.py [SEGMENT-NAME]
"""
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from proxyshm.proxystore import ShmConnector, blocking_future
from proxystore.store import Store
from proxystore.store.future import Future

name = sys.argv[1] if len(sys.argv) > 1 else '/proxy-future-example'
START = time.monotonic()


def say(who: str, what: str) -> None:
    print(f'{time.monotonic() - START:8.4f} s  {who} (pid {os.getpid()}): '
          f'{what}', flush=True)


class MyData:
    def __init__(self, values: list) -> None:
        self.values = values


def foo(future: Future) -> None:
    say('foo', 'computing the data')
    time.sleep(0.5)  # compute(...)
    say('foo', 'setting the result')
    future.set_result(MyData(list(range(10))))


def bar(data: MyData) -> None:
    say('bar', 'computing what does not need the data')
    say('bar', 'using the data (blocks until foo sets it)')
    total = sum(data.values)
    say('bar', f'got the data: sum {total}')


if __name__ == '__main__':
    with Store('proxy-future-example', ShmConnector(name, clear=True)) as store:
        future = blocking_future(store)
        with ProcessPoolExecutor(2) as invoke_remote:
            say('client', 'invoking foo and bar')
            bar_result_future = invoke_remote.submit(bar, future.proxy())
            foo_result_future = invoke_remote.submit(foo, future)
            foo_result_future.result()
            bar_result_future.result()
        say('client', 'both done')
