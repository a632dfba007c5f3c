"""``smolvla-ros bench``: run the benchmark scripts of bench/ (source checkouts only).

Benchmarks are not tests (timings never go in test/; the figures are in BENCHMARKS.md): each
script prints a table and writes JSON under bench/results/. This subcommand only finds and runs
them, one process each, so that a benchmark's imports (torch for the policy, rclpy for DDS) stay
in its own process.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
import subprocess
import sys

from smolvla_ros.paths import share_dir


def bench_dir() -> Path:
    path = share_dir() / 'bench'
    if not path.is_dir():
        raise FileNotFoundError(
            f'no bench/ directory under {share_dir()}: benchmarks run from a source checkout')
    return path


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(bench_dir().glob('*.py')) if not p.name.startswith('_')}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('name', nargs='?', default='all',
                        help="benchmark to run (file stem in bench/), 'all', or 'list'; "
                             'arguments after -- go to the benchmark script')


def run(args: argparse.Namespace) -> int:
    scripts = available()
    if args.name == 'list':
        for name, path in scripts.items():
            doc = ast.get_docstring(ast.parse(path.read_text())) or ''
            print(f'{name:24s} {doc.splitlines()[0] if doc else ""}')
        return 0
    if args.name != 'all' and args.name not in scripts:
        print(f'smolvla-ros bench: unknown benchmark {args.name!r}; available: '
              f'{", ".join(scripts) or "(none)"}', file=sys.stderr)
        return 2
    names = list(scripts) if args.name == 'all' else [args.name]
    extra = list(getattr(args, 'passthrough', []))
    failed = []
    for name in names:
        print(f'== bench {name}', flush=True)
        rc = subprocess.call([sys.executable, str(scripts[name]), *extra])
        if rc != 0:
            failed.append(f'{name} (exit {rc})')
    if failed:
        print(f'smolvla-ros bench: failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0
