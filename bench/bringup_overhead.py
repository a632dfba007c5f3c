"""What `smolvla-ros up` costs on top of starting the processes by hand.

Side by side in one run:
  output      lines/s (median) of a child that prints as fast as it can, read straight from its
              pipe vs through the supervisor (prefixing, one lock per line; to /dev/null);
  start+exit  wall time of a trivial child (`python -c pass`) run directly vs through
              `smolvla-ros up` on a one-process profile (shutdown_on_exit): the fixed cost of
              `up` itself (interpreter start, profile loading and resolution, supervisor);
  stop        time from SIGINT to `up`'s exit with two children that exit on SIGINT.

Run: `python bench/bringup_overhead.py` (or `smolvla-ros bench bringup_overhead`); prints a
markdown table and writes bench/results/bringup_overhead.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import machine

from smolvla_ros.bringup.supervisor import ProcessSpec, Supervisor, SupervisorConfig

RESULTS = Path(__file__).resolve().parent / 'results'
PRINTER = ('import sys\nw = sys.stdout.write\n'
           'for i in range({n}): w("line %d of the bench\\n" % i)\n')
WAITER = ('import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n'
          'print("ready", flush=True)\ntime.sleep(3600)\n')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lines', type=int, default=100_000, help='lines for the output test')
    parser.add_argument('--repeats', type=int, default=5, help='runs per timed configuration')
    parser.add_argument('--out', type=Path, default=RESULTS / 'bringup_overhead.json')
    return parser.parse_args(argv)


def _up() -> list[str]:
    return [sys.executable, '-m', 'smolvla_ros.cli', 'up']


def output_direct(n: int) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, '-c', PRINTER.format(n=n)], stdout=subprocess.PIPE)
    count = sum(1 for _ in proc.stdout)
    proc.wait()
    assert count == n
    return n / (time.perf_counter() - start)


def output_supervised(n: int) -> float:
    with open(os.devnull, 'w') as sink:
        start = time.perf_counter()
        outcome = Supervisor([ProcessSpec('printer', (sys.executable, '-c', PRINTER.format(n=n)),
                                          shutdown_on_exit=True)], SupervisorConfig(),
                             sink).run(handle_signals=False)
        elapsed = time.perf_counter() - start
    assert outcome.exit_code == 0, outcome
    return n / elapsed


def start_exit(folder: Path, repeats: int) -> tuple[list[float], list[float]]:
    profile = folder / 'one.yaml'
    profile.write_text('description: one trivial process\nprocesses:\n'
                       f'  - {{name: p, cmd: [{sys.executable}, -c, pass], '
                       'shutdown_on_exit: true}\n')
    direct, up = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, '-c', 'pass'], check=True)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([*_up(), str(profile)], check=True, capture_output=True)
        up.append(time.perf_counter() - start)
    return direct, up


def stop_latency(folder: Path, repeats: int) -> list[float]:
    script = folder / 'waiter.py'
    script.write_text(WAITER)
    profile = folder / 'two.yaml'
    profile.write_text('description: two waiters\nprocesses:\n' + ''.join(
        f'  - {{name: {n}, cmd: [{sys.executable}, {script}]}}\n' for n in ('a', 'b')))
    times = []
    for _ in range(repeats):
        proc = subprocess.Popen([*_up(), str(profile)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        ready = 0
        for line in proc.stdout:
            ready += line.endswith('ready\n')
            if ready == 2:
                break
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        times.append(time.perf_counter() - start)
        assert proc.returncode == 130, proc.returncode
    return times



def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Alternate the two so that a busy neighbour on a shared machine hits both alike.
    rates = [(output_direct(args.lines), output_supervised(args.lines))
             for _ in range(args.repeats)]
    direct_lps = statistics.median(r[0] for r in rates)
    supervised_lps = statistics.median(r[1] for r in rates)
    with tempfile.TemporaryDirectory() as tmp:
        direct, up = start_exit(Path(tmp), args.repeats)
        stops = stop_latency(Path(tmp), args.repeats)
    med = statistics.median
    rows = [
        ('output lines/s (median)', f'{direct_lps:,.0f}', f'{supervised_lps:,.0f}',
         f'{supervised_lps / direct_lps:.2f}'),
        ('start+exit of a trivial child, ms (median)', f'{med(direct) * 1e3:.0f}',
         f'{med(up) * 1e3:.0f}', f'{med(up) / med(direct):.1f}'),
        ('SIGINT to exit, 2 children, ms (median)', '-', f'{med(stops) * 1e3:.0f}', '-'),
    ]
    info = machine()
    print(f"bringup overhead on {info['cpu']} ({info['nproc']} CPUs), Python {info['python']}")
    print('| measure | direct | through up | ratio |\n|---|---|---|---|')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        'machine': info, 'lines': args.lines, 'repeats': args.repeats,
        'output_lines_per_s': {'direct': direct_lps, 'supervised': supervised_lps},
        'start_exit_s': {'direct': direct, 'up': up}, 'stop_s': stops}, indent=2))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
