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
    View,
    __version__,
    strerror,
    unlink,
)
from ._proxyshm import _parse_proxy  # noqa: E402

__all__ = [
    "DEFAULT_SIZE", "MAX_SPIN_US", "MIN_SIZE", "WAIT_ANY_MAX", "Future",
    "InvalidArgumentError", "Key", "Store", "View", "attach", "resolve", "strerror", "unlink",
    "__version__",
]

_lock = _threading.Lock()
_stores = {}


def _full(name):
    return name if name.startswith("/") else "/" + name


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
