"""Run the ProxyStore examples of examples/python/ and check what they print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import proxyshm
from pxs_proxystore_plugin import segment_name

EXAMPLES = Path(__file__).resolve().parents[3] / 'examples' / 'python'


def run(script: str, name: str) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), name],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    with pytest.raises(FileNotFoundError):
        proxyshm.unlink(name)  # the example cleared its segment
    return out.stdout


def test_get_started() -> None:
    assert 'sum in another process: 499500' in run(
        'proxystore_get_started.py', segment_name('ex'))


def test_client_foo_bar() -> None:
    out = run('proxystore_client.py', segment_name('ex'))
    lines = [line for line in out.splitlines() if '(pid ' in line]
    steps = {line.split('): ', 1)[1]: float(line.split()[0])
             for line in lines}
    pids = {line.split('(pid ')[1].split(')')[0] for line in lines
            if ' foo (' in line or ' bar (' in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    # bar started before the data existed, and got it after foo set it.
    assert steps['using the data (blocks until foo sets it)'] \
        < steps['setting the result'] <= steps['got the data: sum 45'], out
