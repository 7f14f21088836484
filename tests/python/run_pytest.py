"""Run pytest on the given directory (and arguments) under meson test.

The interpreter is the one the package was built for. pytest and numpy
may be missing from it (a pyenv or venv interpreter without a package
registry); Debian's pure-Python pytest and its numpy (built for the same
CPython minor version) are then appended to the path, after the
interpreter's own packages so that they shadow nothing. Without pytest
the test is skipped (exit 77, which meson shows as SKIP).
"""
import importlib.util
import os
import subprocess
import sys

DEBIAN = "/usr/lib/python3/dist-packages"
extra = []
for mod in ("pytest", "numpy"):
    if importlib.util.find_spec(mod) is None and os.path.isdir(os.path.join(DEBIAN, mod)):
        extra.append(DEBIAN)
        break
path = [p for p in os.environ.get("PYTHONPATH", "").split(":") if p] + extra
env = dict(os.environ, PYTHONPATH=":".join(path), PYTHONDONTWRITEBYTECODE="1")
probe = subprocess.run([sys.executable, "-c", "import pytest"], env=env,
                       stderr=subprocess.DEVNULL)
if probe.returncode != 0:
    print("SKIP: pytest is not importable by", sys.executable,
          "(apt-get install python3-pytest)")
    sys.exit(77)
args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra", *sys.argv[1:]]
sys.exit(subprocess.run(args, env=env).returncode)
