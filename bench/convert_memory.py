"""Peak memory (RSS) of ``smolvla-convert`` against the number of bags converted in one run.

Runs the CLI (``python -m smolvla_training.convert.cli BAG... --out DIR --vcodec h264``, the way
``make train-sim`` converts its batches) in a child process for each ``--counts`` value, samples
the child's RSS from /proc every 0.1 s, and splits the run at the ``wrote DIR`` line into the
conversion and the check that the CLI runs on its output. Reported per run: bags, frames, peak
RSS of each phase, wall time; the growth from the smallest to the largest count per bag is what
must stay near zero. ``--code DIR`` runs another checkout's packages (its ``training`` and root
put first on PYTHONPATH), e.g. an export of an older commit, side by side with this one.
Without ``--bags-dir`` it writes synthetic bags (3 s, two 640x480 JPEG cameras at 30 Hz, the
contract's so101 topics) and converts them with a contract of that size. Outputs go to a
temporary directory and are deleted.

Run: ``nice -n 15 python bench/convert_memory.py --bags-dir /work/data/bags_lift --counts 10 30``
(recorded sim bags) or just ``python bench/convert_memory.py`` (synthetic, 4 and 12 bags); prints
a markdown table and writes bench/results/convert_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from _machine import cpu_model

RESULTS = Path(__file__).resolve().parent / 'results'


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MiB: now, and the peak since the process started."""
    try:
        lines = Path(f'/proc/{pid}/status').read_text().splitlines()
    except OSError:
        return None
    vals = {ln.split(':')[0]: int(ln.split()[1]) / 1024 for ln in lines
            if ln.startswith(('VmRSS:', 'VmHWM:'))}
    if len(vals) < 2:
        return None
    return vals['VmRSS'], vals['VmHWM']


def _synthetic(work: Path, n: int) -> tuple[list[Path], Path]:
    """``n`` synthetic 3 s bags of 640x480 cameras and the contract file they match."""
    from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag, write_small_contract

    contract = write_small_contract(work / 'contract.yaml', width=640, height=480)
    bags = [write_bag(work / f'bag_{i:03d}', jittery_spec(3.0, width=640, height=480))
            for i in range(n)]
    return bags, contract


def measure(bags: list[Path], out: Path, code: Path | None,
            contract: Path | None = None) -> dict:
    """One CLI run over ``bags``: peak RSS (MiB) while converting and while checking."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    if code is not None:
        env['PYTHONPATH'] = os.pathsep.join([str(code / 'training'), str(code)])
    cmd = [sys.executable, '-m', 'smolvla_training.convert.cli', *map(str, bags),
           '--out', str(out), '--vcodec', 'h264', '--no-progress']
    if contract is not None:
        cmd += ['--contract', str(contract)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    phase = {'name': 'convert', 'wrote_s': None}
    peaks = {'convert': 0.0, 'check': 0.0, 'hwm': 0.0}  # max VmRSS per phase; VmHWM
    tail: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            del tail[:-20]
            if line.startswith('wrote '):
                phase['name'], phase['wrote_s'] = 'check', time.monotonic() - t0

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        now = _rss_mb(proc.pid)
        if now is not None:
            peaks[phase['name']] = max(peaks[phase['name']], now[0])
            if phase['name'] == 'convert':  # the kernel's peak covers what sampling missed
                peaks['convert'] = max(peaks['convert'], now[1])
            peaks['hwm'] = max(peaks['hwm'], now[1])
        time.sleep(0.1)
    reader.join(timeout=5)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'conversion failed ({proc.returncode}):\n' + ''.join(tail))
    info = json.loads((out / 'meta' / 'info.json').read_text())
    return {'bags': len(bags), 'frames': info['total_frames'],
            'convert_peak_rss_mb': round(peaks['convert']),
            'check_peak_rss_mb': round(peaks['check']), 'peak_rss_mb': round(peaks['hwm']),
            'convert_s': round(phase['wrote_s'] or wall, 1), 'total_s': round(wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--bags-dir', type=Path, default=None,
                   help='directory of bag directories (default: synthetic bags)')
    p.add_argument('--counts', type=int, nargs='+', default=None,
                   help='bags per run (default: 10 30 of --bags-dir, 4 12 synthetic)')
    p.add_argument('--code', type=Path, default=None, help='checkout to run instead of this one')
    p.add_argument('--label', default=None, help='name of this code in the results')
    args = p.parse_args()
    counts = args.counts or ([10, 30] if args.bags_dir else [4, 12])
    label = args.label or (str(args.code) if args.code else 'this checkout')
    rows = []
    work = Path(tempfile.mkdtemp(prefix='convert_memory_'))
    contract = None
    try:
        if args.bags_dir is None:
            bags, contract = _synthetic(work, max(counts))
        else:
            bags = sorted(d for d in args.bags_dir.iterdir() if (d / 'metadata.yaml').is_file())
        if len(bags) < max(counts):
            raise SystemExit(f'{args.bags_dir} has {len(bags)} bags, fewer than {max(counts)}')
        for n in counts:
            row = {'code': label, 'source': str(args.bags_dir or 'synthetic 3 s 640x480'),
                   **measure(bags[:n], work / f'ds_{n}', args.code, contract)}
            shutil.rmtree(work / f'ds_{n}')
            rows.append(row)
            print(row, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('\n| code | bags | frames | convert peak RSS MiB | check peak RSS MiB | convert s | '
          'total s |\n|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["code"]} | {r["bags"]} | {r["frames"]} | {r["convert_peak_rss_mb"]} | '
              f'{r["check_peak_rss_mb"]} | {r["convert_s"]} | {r["total_s"]} |')
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / 'convert_memory.json'
    old = json.loads(out.read_text()) if out.exists() else {}
    runs = [r for r in old.get('rows', [])
            if (r.get('code'), r.get('source')) != (label, rows[0]['source'])] + rows
    out.write_text(json.dumps({'machine': {'cpu': cpu_model(), 'python': platform.python_version(),
                                           'cpus': os.cpu_count()},
                               'rows': runs}, indent=1))


if __name__ == '__main__':
    main()
