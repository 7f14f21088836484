"""A private redis-server for the Python tests, on loopback only.

Owns starting a redis-server on 127.0.0.1 at a free port (no persistence,
its files in a temporary directory) and stopping it by its pid, for
conftest.py's redis fixtures and run_proxystore_suite.py's --redis run,
as tests/test_redis.c does for the C suite. Nothing here talks to any
address but 127.0.0.1.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    """A TCP port of 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"PING\r\n")
            return c.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def why_not():
    """Why no server can be started here (a SKIP reason), or None."""
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (apt-get install redis-server)"
    import proxyshm
    try:
        proxyshm.Store("redis://127.0.0.1:1/probe")
    except OSError as e:
        if e.errno == errno.EPROTONOSUPPORT:
            return "libproxyshm was built without hiredis"
    return None


def blocked_clients(port):
    """How many clients the server at 127.0.0.1:port holds in a blocking
    command now (INFO clients): a test's way to know a waiter sleeps there."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"INFO clients\r\n")
        head = b""
        while not head.endswith(b"\r\n"):
            byte = c.recv(1)
            if not byte:
                raise RuntimeError("INFO: connection closed")
            head += byte
        if not head.startswith(b"$"):
            raise RuntimeError("INFO: unexpected reply %r" % head)
        want, body = int(head[1:-2]) + 2, b""
        while len(body) < want:
            chunk = c.recv(want - len(body))
            if not chunk:
                raise RuntimeError("INFO: connection closed")
            body += chunk
    for line in body.decode().splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
    raise RuntimeError("INFO clients has no blocked_clients")


def wait_for_blocked(port, n, timeout=20.0):
    """Return once n clients block in the server at 127.0.0.1:port
    (AssertionError after timeout seconds)."""
    deadline = time.monotonic() + timeout
    while blocked_clients(port) < n:
        if time.monotonic() > deadline:
            raise AssertionError("no %d blocked clients after %.0f s" % (n, timeout))
        time.sleep(0.005)


class RedisServer:
    """redis-server on 127.0.0.1:port, started now; stop() ends it.

    url(name) is the proxyshm store name "redis://127.0.0.1:PORT/name".
    Raises RuntimeError when the server does not answer within 5 s.
    """

    def __init__(self):
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="pxs-redis-")
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self._proc.pid
        deadline = time.monotonic() + 5
        while not _answers(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start on port %d"
                                   % self.port)
            time.sleep(0.02)

    def url(self, name):
        return "redis://127.0.0.1:%d/%s" % (self.port, name)

    def blocked_clients(self):
        return blocked_clients(self.port)

    def wait_for_blocked(self, n, timeout=20.0):
        wait_for_blocked(self.port, n, timeout)

    def stop(self):
        """Kill the server by its pid and reap it (idempotent)."""
        if self._proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
