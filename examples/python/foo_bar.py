"""The foo/bar scenario of docs/guide.md with the proxyshm package alone.

A client starts foo() and bar() at the same time in a ProcessPoolExecutor
(the invoke_remote of ProxyStore's guide). foo() produces data that bar()
needs; bar() does what it can first, then blocks in Future.result() until
foo() sets the future, and is woken by the kernel at that moment. The
Future travels to the workers by pickling (its store's name and key).

    python3 foo_bar.py [store-name]
"""
import concurrent.futures
import multiprocessing
import sys
import time

import proxyshm

T0 = time.monotonic()


def log(who, what):
    # one write per line: the processes share stdout
    sys.stdout.write("%7.3f s  %-6s %s\n" % (time.monotonic() - T0, who, what))
    sys.stdout.flush()


def foo(future, t0):
    global T0
    T0 = t0
    future.claim()  # our death, not the client's, now abandons it
    log("foo", "computing")
    time.sleep(0.5)
    future.set_result(b"the data bar needs")
    log("foo", "set the future")


def bar(future, t0):
    global T0
    T0 = t0
    log("bar", "working on what does not need the data")
    time.sleep(0.1)
    log("bar", "waiting for the data")
    with future.result(timeout=10) as v:
        log("bar", "got %d bytes: %s" % (len(v), bytes(v).decode()))
        return bytes(v)


def main(name):
    with proxyshm.Store(name, create=True, size=16 << 20) as store:
        future = store.future()  # ownerless: it outlives the client
        log("client", "created %s" % future.proxy())
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            b = pool.submit(bar, future, T0)
            f = pool.submit(foo, future, T0)
            f.result()
            data = b.result()
        log("client", "both done")
    proxyshm.unlink(name)
    return 0 if data == b"the data bar needs" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/py-foo-bar"))
