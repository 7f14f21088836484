"""proxyshm: proxy futures and zero-copy objects in POSIX shared memory.

A Store is a named shared-memory segment that every process of the user can
attach. It holds objects (put/get) and futures (a value that a producer sets
later, which consumers wait for with kernel wake-ups). Reads never copy:
Store.get() and Future.result() return a View of the value in place, which
exports a read-only buffer (memoryview, numpy.frombuffer) and pins the value
until View.release().

Errors are OSError (or a subclass: TimeoutError, FileNotFoundError,
FileExistsError, ...) with .errno the library's errno and its message from
pxs_strerror(); EINVAL is InvalidArgumentError, an OSError and a ValueError.
See docs/python.md for the patterns (numpy, multiprocessing).
"""

import errno as _errno
import os as _os
import pkgutil as _pkgutil
import threading as _threading

# The extension may live in another directory of sys.path than these
# sources (an uninstalled build tree); installed, they are side by side.
__path__ = _pkgutil.extend_path(__path__, __name__)

from ._proxyshm import (  # noqa: E402
    DEFAULT_SIZE,
    MAX_SPIN_US,
    MIN_SIZE,
    WAIT_ANY_MAX,
    Future,
    InvalidArgumentError,
    Key,
    Store,
    Stream,
    View,
    __version__,
    strerror,
    unlink,
)
from ._proxyshm import _parse_proxy  # noqa: E402

__all__ = [
    "DEFAULT_SIZE", "MAX_SPIN_US", "MIN_SIZE", "WAIT_ANY_MAX", "Future",
    "InvalidArgumentError", "Key", "Store", "Stream", "View", "attach", "resolve", "strerror", "unlink",
    "__version__",
]

_lock = _threading.Lock()
_stores = {}


def _full(name):
    # as the extension's store_name(): a Redis store's name as given
    return name if name.startswith(("/", "redis://")) else "/" + name


def attach(name):
    """The Store named name, attached once per process and shared.

    Unpickled Stores and Futures and resolve() use it, so that a process
    holds one attachment per store however many references it receives.
    The shared Store is never closed (it lives as long as the process).
    A forked child keeps its parent's attachments: handles survive fork().
    """
    name = _full(name)
    with _lock:
        s = _stores.get(name)
        if s is None or s.closed:
            s = Store(name)
            _stores[name] = s
        return s


_attach = attach  # what pickled Stores call


def _future(name, key):
    return Future(attach(name), key)


def _stream(name, key):
    return attach(name).stream(key)


class _StreamReader:
    """The iterator of Stream.reader(): joins the stream at from_seq (None:
    the oldest retained item), yields a View of each item in turn, stops at
    the end of the stream (EPIPE) and leaves on close(), on exit of a with
    block, at the end, or when collected. An item that slid out of the
    window raises OSError ERANGE; the next one is then the oldest left
    (the reader's position). timeout (seconds, None: for ever) applies to
    each item: TimeoutError, after which iterating goes on where it was.
    The position belongs to the process (one reader per process and
    stream); a forked child does not inherit it.
    """

    def __init__(self, stream, from_seq=None, timeout=None):
        self._stream = stream
        self._timeout = timeout
        self._joined = False
        seq = stream.stat()["first"] if from_seq is None else from_seq
        stream.join(seq)
        self._seq = seq
        self._pid = _os.getpid()
        self._joined = True

    @property
    def stream(self):
        return self._stream

    @property
    def position(self):
        """The seq of the next item this reader returns."""
        return self._seq

    def __iter__(self):
        return self

    def __next__(self):
        if self._pid != _os.getpid():
            raise ValueError("a stream reader of another process (fork makes "
                             "no reader: call reader() in the child)")
        if not self._joined:
            raise StopIteration
        try:
            v = self._stream.read(self._seq, self._timeout)
        except BrokenPipeError:
            self.close()
            raise StopIteration from None
        except OSError as e:
            if e.errno == _errno.ERANGE:
                st = self._stream.stat()
                self._seq = max(st["first"], st["position"] or 0)
            raise
        self._seq += 1
        return v

    def close(self):
        """Leave the stream (idempotent; nothing in a forked child)."""
        if self._joined and self._pid == _os.getpid():
            self._joined = False
            self._stream.leave()
        self._joined = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except (OSError, ValueError):
            pass  # the store is closed or the stream gone: nothing to leave


def resolve(proxy, timeout=None):
    """Wait for the value of a pxs://<store>/<key> string and return a View.

    The first proxy of a store attaches it (once per process, see
    attach()). timeout in seconds (None: for ever); TimeoutError when it
    passes, OSError EOWNERDEAD or ECANCELED for an abandoned or cancelled
    future. The GIL is released during the wait and Ctrl-C interrupts it.
    """
    name, key = _parse_proxy(proxy)
    return attach(name).wait(key, timeout)


def _reset_after_fork_in_child():
    # The lock may have been held by another thread at fork(): renew it.
    global _lock
    _lock = _threading.Lock()


_os.register_at_fork(after_in_child=_reset_after_fork_in_child)
