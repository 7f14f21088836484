#!/usr/bin/env python3
"""Run ProxyStore's own tests, and ours, against proxyshm's ShmConnector.

Owns the environment those suites need: ProxyStore's unmodified source on
the path with a minimal dist-info (its __init__ asks importlib.metadata for
its version), Debian's pure-Python pytest, redis and tomli_w put on this
interpreter's path when it has none of its own, the fixture plugin of this
folder, and a pass count per test file at the end.

Exit status: pytest's (0 all passed), or 77 with a line starting "SKIP:"
when pytest, pydantic 2, ProxyStore or the proxyshm package cannot be
imported, so that meson reports a visible skip.

With --redis, both run with every store on a Redis server of their own
(started on a free loopback port, stopped by its pid; 77 where there is no
redis-server or the library has no hiredis): our Redis checks
(redis_connector_checks.py) and ProxyStore's suite less its stream tests'
proxyshm publisher (streams are segments only).

Usage: run_proxystore_suite.py [--path DIR]... [--proxystore DIR]
           [--baseline | --redis] [--only ours|proxystore] [-- PYTEST-ARGS...]
  --path DIR        put DIR first on PYTHONPATH (the built package); repeat
  --proxystore DIR  ProxyStore's source (default: $PXS_PROXYSTORE_SRC, else
                    ../shared/thirdparty/proxystore beside the source tree)
  --baseline        ProxyStore's suite with its own connectors, for contrast
  --redis           ShmConnector on Redis stores (redis://127.0.0.1:PORT/...)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))  # redis_server.py
DEBIAN = Path('/usr/lib/python3/dist-packages')
# Debian packages whose pure-Python modules stand in for the registry's.
BORROWED = {
    'pytest': ['_pytest', 'pytest', 'pluggy', 'iniconfig', 'py', 'py.py',
               'packaging'],
    'redis': ['redis'],
    'tomli_w': ['tomli_w'],
}
# ProxyStore's tests for connectors, stores, proxies (futures are in
# store_basics_test.py) and streams.
PROXYSTORE_TESTS = [
    'tests/connectors/connector_test.py',
    'tests/store/store_basics_test.py',
    'tests/store/store_proxy_test.py',
    'tests/store/store_metrics_test.py',
    'tests/store/factory_test.py',
    'tests/store/lifetimes_test.py',
    'tests/store/ref_test.py',
    'tests/store/metrics_test.py',
    'tests/store/scopes_test.py',
    'tests/proxy',
    'tests/stream/interface_test.py',
]
PROBE = """
import sys
try:
    import pytest
except ImportError as e:
    sys.exit('pytest cannot be imported (%s)' % e)
try:
    import pydantic
except ImportError as e:
    sys.exit('pydantic 2 cannot be imported (%s)' % e)
if int(pydantic.VERSION.split('.')[0]) < 2:
    sys.exit('pydantic %s is too old for ProxyStore (needs 2)'
             % pydantic.VERSION)
try:
    import proxystore.store
except Exception as e:
    sys.exit('ProxyStore cannot be imported (%r)' % e)
try:
    import proxyshm.proxystore
except Exception as e:
    sys.exit('the proxyshm package cannot be imported (%r)' % e)
if len(sys.argv) > 1:  # --redis
    from redis_server import why_not
    reason = why_not()
    if reason:
        sys.exit(reason)
"""


def importable(module: str, env: dict[str, str]) -> bool:
    probe = [sys.executable, '-c', f'import {module}']
    return subprocess.run(probe, env=env, capture_output=True).returncode == 0


def environment(tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    dist = tmp / 'proxystore-1.0.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: proxystore\nVersion: 1.0.0\n')
    env = dict(os.environ)
    env['PYTHONDONTWRITEBYTECODE'] = '1'  # ProxyStore's tree is read-only
    env['PXS_PST_BASELINE'] = '1' if args.baseline else '0'
    paths = [*args.path, str(HERE), str(args.proxystore), str(tmp)]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    borrowed = tmp / 'debian'
    borrowed.mkdir()
    for module, names in BORROWED.items():
        if importable(module, env) or not DEBIAN.is_dir():
            continue
        for name in names:
            if (DEBIAN / name).exists() and not (borrowed / name).exists():
                (borrowed / name).symlink_to(DEBIAN / name)
    env['PYTHONPATH'] += os.pathsep + str(borrowed)
    return env


def per_file(report: Path) -> list[tuple[str, dict[str, int]]]:
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(report).iter('testcase'):
        row = counts.setdefault(case.get('file', '?'), {'passed': 0, 'failed': 0,
                                                'skipped': 0})
        if case.find('failure') is not None or case.find('error') is not None:
            row['failed'] += 1
        elif case.find('skipped') is not None:
            row['skipped'] += 1
        else:
            row['passed'] += 1
    return sorted(counts.items())


def run(title: str, cwd: Path, env: dict[str, str], targets: list[str],
        extra: list[str], tmp: Path) -> int:
    report = tmp / (title.replace(' ', '-') + '.xml')
    cmd = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider',
           '-p', 'pxs_proxystore_plugin', '--noconftest', '-q', '-rfEs',
           '-o', 'junit_family=xunit1', f'--junitxml={report}',
           *targets, *extra]
    print(f'== {title}: {" ".join(cmd[1:])} (in {cwd})', flush=True)
    rc = subprocess.run(cmd, cwd=cwd, env=env).returncode
    if report.exists():
        print(f'== {title}: per file')
        for name, row in per_file(report):
            print(f'  {name}: {row["passed"]} passed, {row["failed"]} failed,'
                  f' {row["skipped"]} skipped')
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--path', action='append', default=[])
    ap.add_argument('--proxystore', type=Path, default=Path(
        os.environ.get('PXS_PROXYSTORE_SRC',
                       ROOT.parent / 'shared/thirdparty/proxystore')))
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument('--baseline', action='store_true')
    mode.add_argument('--redis', action='store_true')
    ap.add_argument('--only', choices=('ours', 'proxystore'))
    ap.add_argument('pytest_args', nargs='*')
    args = ap.parse_args()
    args.path = [str(Path(p).resolve()) for p in args.path]
    if not (args.proxystore / 'proxystore' / '__init__.py').is_file():
        print(f'SKIP: no ProxyStore source at {args.proxystore}')
        return 77
    with tempfile.TemporaryDirectory(prefix='pxs-pst-') as t:
        tmp = Path(t)
        env = environment(tmp, args)
        probe_env = dict(env, PYTHONPATH=env['PYTHONPATH'] + os.pathsep
                         + str(HERE.parent))
        probe = subprocess.run([sys.executable, '-c', PROBE,
                                *(['--redis'] if args.redis else [])],
                               env=probe_env, capture_output=True, text=True)
        if probe.returncode != 0:
            print(f'SKIP: {probe.stderr.strip().splitlines()[-1]}')
            return 77
        server = None
        if args.redis:
            from redis_server import RedisServer
            server = RedisServer()
            env['PXS_PST_REDIS'] = f'redis://127.0.0.1:{server.port}'
        try:
            return suites(args, env, tmp)
        finally:
            if server:
                server.stop()


def suites(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> int:
    """Run our tests, then ProxyStore's (as --only says); 0 if all pass."""
    ours = (['redis_connector_checks.py'] if args.redis else
            ['shm_connector_checks.py', 'examples_checks.py',
             'stream_shim_checks.py'])
    rc = 0
    if args.only != 'proxystore' and not args.baseline:
        rc |= run('our connector tests', HERE, env, ours, args.pytest_args,
                  tmp)
    if args.only != 'ours':
        rc |= run('ProxyStore suite', args.proxystore, env,
                  PROXYSTORE_TESTS, args.pytest_args, tmp)
    return 1 if rc else 0


if __name__ == '__main__':
    sys.exit(main())
