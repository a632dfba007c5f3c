"""How fast `smolvla-ros sim-record` makes demonstrations: kept episodes per minute, by jobs.

Each setting records the same seeds (from --seed-start) into a fresh temporary directory with the
real command (640x480 JPEG cameras every 3rd 30 Hz tick, the default variation), so process
start-up, rendering, encoding and bag writing are all counted. Rendering dominates; one episode's
physics and expert take ~0.1 s. Also times the parts of one episode in-process (render + JPEG of
a camera pair vs everything else) to say where the time goes.

Run: `python bench/sim_record_throughput.py [--episodes 8 --jobs 1,2]` (or `smolvla-ros
bench sim_record_throughput`); prints a markdown table and writes
bench/results/sim_record_throughput.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import subprocess
import sys
import tempfile
import time

from _machine import machine

RESULTS = Path(__file__).resolve().parent / 'results'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=8, help='kept episodes per setting')
    parser.add_argument('--jobs', default='1,2', help='worker counts to compare')
    parser.add_argument('--seed-start', type=int, default=4000)
    return parser.parse_args(argv)


def record(episodes: int, jobs: int, seed_start: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, '-m', 'smolvla_ros.cli', 'sim-record', '--episodes',
               str(episodes), '--out', str(Path(tmp) / 'bags'), '--seed-start', str(seed_start),
               '--jobs', str(jobs)]
        start = time.monotonic()
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        if run.returncode != 0:
            raise RuntimeError(f'sim-record failed ({run.returncode}):\n{run.stderr[-3000:]}')
        summary = json.loads(run.stdout.strip().splitlines()[-1])
    kept = summary['episodes']
    return {'jobs': jobs, 'episodes': kept, 'failures': summary['failures'],
            'simulated_s': summary['simulated_s'], 'camera_frames': summary['camera_frames'],
            'wall_s': round(wall, 1), 'kept_per_min': round(60 * kept / wall, 2),
            'sim_x_real_time': round(summary['simulated_s'] / wall, 2)}


def parts(seed: int) -> dict:
    """One episode in-process: total wall time and the share spent rendering + encoding."""
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.sim.record import EpisodeRecorder, RecordConfig
    recorder = EpisodeRecorder(RecordConfig(), load_contract(default_contract_path()))
    render_s = 0.0
    rig_render = recorder.rig.render
    encode = recorder._image

    def timed_render(data, camera):
        nonlocal render_s
        t = time.perf_counter()
        out = rig_render(data, camera)
        render_s += time.perf_counter() - t
        return out

    def timed_encode(t_ns, camera, rgb):
        nonlocal render_s
        t = time.perf_counter()
        out = encode(t_ns, camera, rgb)
        render_s += time.perf_counter() - t
        return out

    recorder.rig.render = timed_render
    recorder._image = timed_encode
    try:
        recorder.record(seed)  # warm-up (GL context, IK caches)
        render_s = 0.0
        start = time.perf_counter()
        rec = recorder.record(seed + 1)
        total = time.perf_counter() - start
    finally:
        recorder.close()
    pairs = rec.camera_frames
    return {'episode_wall_s': round(total, 3), 'camera_pairs': pairs,
            'render_encode_ms_per_pair': round(1e3 * render_s / pairs, 1),
            'render_share': round(render_s / total, 3)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [record(args.episodes, int(j), args.seed_start) for j in args.jobs.split(',')]
    split = parts(args.seed_start)
    print('| jobs | kept | failed | simulated s | wall s | kept episodes/min | x real time |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['jobs']} | {r['episodes']} | {r['failures']} | {r['simulated_s']} | "
              f"{r['wall_s']} | {r['kept_per_min']} | {r['sim_x_real_time']} |")
    print(f"\none episode in-process: {split['episode_wall_s']} s wall, {split['camera_pairs']} "
          f"camera pairs at {split['render_encode_ms_per_pair']} ms each (render + JPEG), "
          f"{100 * split['render_share']:.0f} % of the episode")
    RESULTS.mkdir(exist_ok=True)
    out = {'machine': machine(), 'rows': rows, 'episode_parts': split,
           'episodes': args.episodes, 'seed_start': args.seed_start}
    (RESULTS / 'sim_record_throughput.json').write_text(json.dumps(out, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
