"""Async vs sync on the real ROS stack in simulation under injected latency (issue 5 item 7).

Unlike bench/async_vs_sync.py (the ExecutorCore on a simulated clock) and
bench/sim_async_vs_sync.py (one process, simulated time), this runs the deployed processes:
``smolvla-ros up so101_{async,sync} sim:=true oracle:=true extra_latency_ms:=L`` -- so101_sim
(MuJoCo arm behind the emulated Feetech bus on a pty), the real feetech_driver, chunk_executor
and oracle_policy_server over DDS, in real time. For each mode and latency it waits until the
executor has accepted its first chunk, then reads the executor's ``/diagnostics`` over a window
of ``--window`` seconds and reports, from the counters' differences over that window:

- waiting: share of control ticks that held the last command for lack of a plan (starvation,
  which in sync mode is the wait for every inference);
- planned/s: commands from a plan (not holds) per second; ticks/s: the executor's tick rate;
- round trip p50/p95 (ms, the executor's own measure, cumulative), stale observations skipped
  in the window, the largest seam jump (rad), and whether / when (simulated seconds since the
  simulator's start, start-up included) the first cube was lifted.

Run: ``python bench/async_vs_sync_ros.py`` (8 runs, ~3-4 min on 2 cores); prints a markdown
table and writes bench/results/async_vs_sync_ros.json. Runs are short: figures vary by a few
percent run to run on a loaded machine; compare modes side by side, not against old runs.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time

from _machine import cpu_model

from smolvla_ros.bringup.processes import isolated_ros_env, stop, up_command
from smolvla_ros.bringup.watcher import StackWatcher

RESULTS = Path(__file__).resolve().parent / 'results'
LATENCIES_MS = (0, 100, 300, 600)
MODES = ('async', 'sync')
STARTUP_S = 60.0



class _Watcher(StackWatcher):
    """Executor diagnostics (time-stamped snapshots) and sim episode events on one domain."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, 'async_vs_sync_ros')
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from std_msgs.msg import String

        self.snapshots: list[tuple[float, dict[str, str]]] = []
        self.events: list[dict] = []
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, 'sim/episode',
                                      lambda m: self.events.append(json.loads(m.data)), latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith('chunk_executor: execution'):
                self.snapshots.append((time.monotonic(),
                                       {kv.key: kv.value for kv in status.values}))


def run_one(mode: str, latency_ms: int, window_s: float, image: tuple[int, int],
            workdir: Path) -> dict:
    """One `smolvla-ros up` run; the window's figures from the executor's counters."""
    env = isolated_ros_env()
    domain = int(env['ROS_DOMAIN_ID'])
    log = workdir / f'{mode}_{latency_ms}.log'
    args = ['sim:=true', 'oracle:=true', f'extra_latency_ms:={float(latency_ms)}',
            'camera_max_age_s:=0.35', 'camera_fps:=10', f'image_width:={image[0]}',
            f'image_height:={image[1]}', f'port:={workdir / "bus"}']
    with log.open('w') as out:
        proc = subprocess.Popen(up_command(f'so101_{mode}', *args), env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    watcher = _Watcher(domain)
    try:
        started = watcher.spin_until(
            lambda: bool(watcher.snapshots)
            and int(watcher.snapshots[-1][1]['chunks_accepted']) > 0, STARTUP_S, proc)
        if not started:
            raise RuntimeError(f'{mode} {latency_ms} ms: the executor never accepted a chunk '
                               f'(log {log})')
        first_t, first = watcher.snapshots[-1]
        watcher.spin_until(lambda: watcher.snapshots[-1][0] - first_t >= window_s,
                           window_s + 10.0, proc)
        last_t, last = watcher.snapshots[-1]
        if proc.poll() is not None:
            raise RuntimeError(f'{mode} {latency_ms} ms: the stack died (log {log})')
    finally:
        watcher.close()
        stop(proc, 30.0)

    def delta(key: str) -> int:
        return int(last[key]) - int(first[key])

    span = last_t - first_t
    ticks, starved = delta('ticks'), delta('starvation_ticks')
    success = next((e for e in watcher.events if e['event'] == 'success'), None)
    return {
        'mode': mode, 'latency_ms': latency_ms, 'window_s': round(span, 2),
        'waiting_fraction': starved / ticks if ticks else float('nan'),
        'planned_per_s': (delta('commands') - starved) / span,
        'ticks_per_s': ticks / span,
        'requests': delta('requests'), 'chunks_accepted': delta('chunks_accepted'),
        'stale_observations': delta('stale_observations'),
        'round_trip_p50_ms': float(last['latency_p50_ms']),
        'round_trip_p95_ms': float(last['latency_p95_ms']),
        'seam_jump_max_rad': float(last['seam_jump_max']),
        'lifted': success is not None,
        'lift_sim_time_s': None if success is None else round(success['sim_time'], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--window', type=float, default=12.0, help='seconds measured per run')
    parser.add_argument('--latencies', type=int, nargs='+', default=list(LATENCIES_MS))
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--image-width', type=int, default=0,
                        help="simulated frame width (px; 0: the contract's)")
    parser.add_argument('--image-height', type=int, default=0,
                        help="simulated frame height (px; 0: the contract's)")
    parser.add_argument('--out', type=Path, default=RESULTS / 'async_vs_sync_ros.json')
    args = parser.parse_args(argv)
    rows = []
    image = (args.image_width, args.image_height)
    with tempfile.TemporaryDirectory(prefix='async_vs_sync_ros-') as tmp:
        for latency in args.latencies:
            for mode in args.modes:
                rows.append(run_one(mode, latency, args.window, image, Path(tmp)))
                r = rows[-1]
                print(f'{mode} {latency} ms: waiting {r["waiting_fraction"]:.1%}, '
                      f'{r["planned_per_s"]:.1f} planned/s', file=sys.stderr, flush=True)
    print('| latency (ms) | mode | waiting | planned/s | ticks/s | requests | round trip p50/p95 '
          '(ms) | stale obs | seam max (rad) | lifted (sim s) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        lifted = f'{r["lift_sim_time_s"]:.1f}' if r['lifted'] else 'no'
        print(f'| {r["latency_ms"]} | {r["mode"]} | {r["waiting_fraction"]:.1%} | '
              f'{r["planned_per_s"]:.1f} | {r["ticks_per_s"]:.1f} | {r["requests"]} | '
              f'{r["round_trip_p50_ms"]:.0f} / {r["round_trip_p95_ms"]:.0f} | '
              f'{r["stale_observations"]} | {r["seam_jump_max_rad"]:.3f} | {lifted} |')
    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'python': platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'machine': machine, 'window_s': args.window,
                                    'image': list(image), 'rows': rows}, indent=2))
    print(f'\nmachine: {machine}; wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
