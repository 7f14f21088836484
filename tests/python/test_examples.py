"""Run examples/python/ as a user would, and check what they print."""
import os
import subprocess
import sys
import uuid

import pytest

import proxyshm

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python")


def run(*args, **kw):
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, **kw)


def test_foo_bar():
    name = "/py-foo-bar-%s" % uuid.uuid4().hex[:8]
    p = run(os.path.join(EXAMPLES, "foo_bar.py"), name)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    # "  0.293 s  bar    waiting for the data": keep what was done
    lines = [l.split(None, 3)[3] for l in out.splitlines() if l.count(" s  ")]
    assert lines.index("waiting for the data") < lines.index("set the future"), out
    assert "got 18 bytes: the data bar needs" in lines
    with pytest.raises(FileNotFoundError):
        proxyshm.unlink(name)  # the example removed it


def test_numpy_producer_consumer():
    pytest.importorskip("numpy", reason="numpy does not import under this interpreter")
    name = "/py-numpy-%s" % uuid.uuid4().hex[:8]
    try:
        consumer = run(os.path.join(EXAMPLES, "numpy_consumer.py"), name)
        producer = run(os.path.join(EXAMPLES, "numpy_producer.py"), name)
        pout, _ = producer.communicate(timeout=120)
        cout, _ = consumer.communicate(timeout=120)
        assert producer.returncode == 0 and "committed 100 MB in place" in pout
        assert consumer.returncode == 0, cout
        assert "zero-copy True, writeable False" in cout and "mean 0.500000" in cout
    finally:
        proxyshm.unlink(name)
