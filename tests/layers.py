#!/usr/bin/env python3
"""The library's files call downwards only.

Compiles every src/*.c with gcc -O0 -fcallgraph-info, maps each call to the
file that defines its callee (calls made by a header's inline function count
as calls of the file that includes it), and checks the file graph against the
layer order that docs/design.md states in its ```layers block: a file may
call files of lower layers only, never one of its own layer or above, so the
graph has no cycle. Prints the edges and exits 1 on any upward call, any
cycle, or a file of src/ the order does not place.

usage: layers.py SRCDIR DESIGN_MD [--cc gcc] [--graph]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"\\]+)\\n([^":]+):\d+:\d+"( shape : ellipse)?')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def read_order(design_md):
    """Layers, lowest first, from the ```layers block: one layer a line."""
    text = open(design_md, encoding='utf-8').read()
    m = re.search(r'```layers\n(.*?)```', text, re.S)
    if not m:
        sys.exit(f'{design_md}: no ```layers block')
    layers = []
    for line in m.group(1).splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            layers.append([f.strip() for f in re.split(r'[ ,]+', line) if f.strip()])
    return {f: i for i, layer in enumerate(layers) for f in layer}, layers


def callgraph(srcdir, cc, sources):
    """For every file, the set of (caller file, callee name) and the names it defines."""
    defined = {}              # function name -> file defining it (extern ones)
    calls = []                # (file, callee title, callee name)
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            path = os.path.join(srcdir, src)
            out = os.path.join(tmp, src[:-2] + '.o')
            subprocess.run([cc, '-O0', '-fcallgraph-info', '-std=c11', '-D_GNU_SOURCE',
                            '-DPXS_FAILPOINTS=1', '-I', os.path.join(srcdir, '..', 'include'),
                            '-I', srcdir, '-c', path, '-o', out],
                           check=True, cwd=tmp)
            ci = out[:-2] + '.ci'
            names, local = {}, set()
            for line in open(ci, encoding='utf-8'):
                n = NODE.match(line)
                if n:
                    title, name, where, ellipse = n.groups()
                    names[title] = name
                    if not ellipse:
                        local.add(title)          # defined in this unit
                        if where.endswith('.c') and title == name:
                            defined[name] = src   # extern: others may call it
                    continue
                e = EDGE.match(line)
                if e:
                    calls.append((src, e.group(2), names.get(e.group(2), e.group(2)),
                                  e.group(2) in local))
    edges = {}
    for src, title, name, is_local in calls:
        if is_local:
            continue              # its own function, or a header inline folded in
        dst = defined.get(name)
        if dst and dst != src:
            edges.setdefault((src, dst), set()).add(name)
    return edges


def cycles(files, edges):
    """Strongly connected components of more than one file (Tarjan)."""
    succ = {f: sorted({d for (s, d) in edges if s == f}) for f in files}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for f in files:
        if f not in index:
            visit(f)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('srcdir')
    ap.add_argument('design_md')
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--graph', action='store_true', help='print every edge')
    a = ap.parse_args()
    a.srcdir = os.path.abspath(a.srcdir)
    level, layers = read_order(a.design_md)
    sources = sorted(f for f in os.listdir(a.srcdir) if f.endswith('.c'))
    edges = callgraph(a.srcdir, a.cc, sources)
    bad = 0
    for f in sources:
        if f not in level:
            print(f'not placed in a layer: {f}')
            bad += 1
    for f in level:
        if f not in sources:
            print(f'placed but absent from src/: {f}')
            bad += 1
    for (s, d), names in sorted(edges.items()):
        up = s in level and d in level and level[d] >= level[s]
        if up or a.graph:
            print(f'{"UPWARD " if up else ""}{s} -> {d}: {", ".join(sorted(names))}')
        bad += up
    for comp in cycles(sources, edges):
        print('cycle: ' + ' '.join(comp))
        bad += 1
    print(f'{len(sources)} files, {len(layers)} layers, {len(edges)} file edges, '
          f'{bad} problem(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
