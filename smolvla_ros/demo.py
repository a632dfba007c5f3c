"""``smolvla-ros demo`` (``make demo``): the async executor on the simulated SO-101, headless.

Runs pick episodes back to back for a bounded time with the default policy (the oracle, until a
trained checkpoint ships) through the real ExecutorCore with an injected inference latency,
then prints a summary (chunks, latency p50/p95, starvation, seam jumps, successes) and writes
two files a person would rather look at than read:

- ``demo_out/demo.mp4``: the front camera at the robot contract's 640x480, 10 fps (CPU
  rendering is geometry bound: ~45 ms a frame at 640x480 against ~40 ms at 256x256 on 2 cores);
- ``demo_out/chunks.png``: every accepted chunk (thin lines) against the executed command (bold)
  per joint over time.

This runs on simulated time in one process (smolvla_ros.sim.episode_runner), so it needs no DDS
and finishes in about a minute on two cores. The same stack as ROS nodes in real time is
``smolvla-ros up so101_async sim:=true`` (docs/simulation.md).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import statistics
import sys

import numpy as np

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--duration', type=float, default=20.0,
                        help='simulated seconds to run (episodes back to back)')
    parser.add_argument('--out', default='demo_out', help='output folder')
    parser.add_argument('--mode', choices=('async', 'sync'), default='async')
    parser.add_argument('--latency-ms', type=float, default=300.0,
                        help='injected inference latency (ms)')
    parser.add_argument('--seed', type=int, default=0, help='first episode seed')
    parser.add_argument('--video-fps', type=float, default=10.0, help='camera frames per second')
    parser.add_argument('--width', type=int, default=640, help='video frame width (px)')
    parser.add_argument('--height', type=int, default=480, help='video frame height (px)')
    parser.add_argument('--camera', choices=('front', 'wrist'), default='front')


def _check(args: argparse.Namespace) -> None:
    if not 0 < args.duration <= 600:
        raise ValueError(f'--duration must be in (0, 600] s, got {args.duration}')
    if not 0 <= args.latency_ms <= 5000:
        raise ValueError(f'--latency-ms must be in [0, 5000], got {args.latency_ms}')
    if not 1 <= args.video_fps <= 30:
        raise ValueError(f'--video-fps must be in [1, 30], got {args.video_fps}')
    for name, top in (('width', 1280), ('height', 960)):
        value = getattr(args, name)
        if not 64 <= value <= top or value % 2:  # yuv420p needs even sizes
            raise ValueError(f'--{name} must be an even number in [64, {top}], got {value}')


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='[demo] %(message)s')
    try:
        _check(args)
    except ValueError as exc:
        logger.error('%s', exc)
        return 2
    from smolvla_ros.sim.episode_runner import EpisodeTrace, RunConfig, run_episode
    from smolvla_ros.sim.oracle import OraclePolicy
    from smolvla_ros.sim.render import CameraRenderer
    from smolvla_ros.sim.scene import SceneConfig
    from smolvla_ros.sim.video import write_mp4
    from smolvla_ros.sim.world import SimWorld

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = SimWorld(SceneConfig(image_width=args.width, image_height=args.height))
    oracle = OraclePolicy(model=world.model)
    config = RunConfig(mode=args.mode, latency_s=args.latency_ms / 1e3)
    renderer = CameraRenderer(world.model, args.width, args.height)
    frames: list[np.ndarray] = []
    frame_every = 1.0 / args.video_fps
    offset = 0.0  # simulated time of the current episode's start in the whole run
    traces: list[tuple[float, EpisodeTrace]] = []
    results = []

    def on_tick(w: SimWorld, t: float) -> None:
        if offset + t >= len(frames) * frame_every:
            frames.append(renderer.render(w.data, args.camera))

    seed = args.seed
    while offset < args.duration:
        trace = EpisodeTrace()
        result = run_episode(world, oracle, config, seed, max_duration_s=args.duration - offset,
                             trace=trace, on_tick=on_tick)
        traces.append((offset, trace))
        results.append(result)
        logger.info('episode %d (seed %d): %s in %.2f s', len(results), seed,
                    'picked' if result.success else 'not picked', result.completion_s)
        offset += result.duration_s
        seed += 1
    renderer.close()
    summary = _summary(results, config)
    video = write_mp4(frames, out / 'demo.mp4', args.video_fps)
    _plot(traces, out / 'chunks.png')
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    _print(summary, video, out / 'chunks.png')
    return 0


def _summary(results: list, config) -> dict:
    oracle_ms = [v for r in results for v in r.oracle_ms]
    done = [r.completion_s for r in results if r.success]
    ticks = sum(r.ticks for r in results)
    return {
        'mode': config.mode, 'injected_latency_ms': config.latency_s * 1e3,
        'episodes': len(results), 'picked': len(done),
        'completion_mean_s': statistics.fmean(done) if done else None,
        'simulated_s': sum(r.duration_s for r in results),
        'chunks': sum(r.chunks for r in results), 'requests': sum(r.requests for r in results),
        # round trip = injected latency (simulated) + the oracle's compute (wall)
        'latency_p50_ms': config.latency_s * 1e3 + _pct(oracle_ms, 50),
        'latency_p95_ms': config.latency_s * 1e3 + _pct(oracle_ms, 95),
        'oracle_p50_ms': _pct(oracle_ms, 50), 'oracle_p95_ms': _pct(oracle_ms, 95),
        'starvation_ticks': sum(r.starvation_ticks for r in results), 'ticks': ticks,
        'seam_jump_max_rad': max((r.seam_jump_max for r in results), default=0.0),
        'seam_jump_mean_rad': statistics.fmean(r.seam_jump_mean for r in results),
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def _print(s: dict, video: Path, plot: Path) -> None:
    w = sys.stdout.write
    w(f"\nsmolvla_ros demo: SO-101 pick in MuJoCo, oracle policy, {s['mode']} execution, "
      f"{s['injected_latency_ms']:.0f} ms injected inference latency\n")
    w(f"  episodes        {s['episodes']} ({s['picked']} cubes picked"
      + (f", mean {s['completion_mean_s']:.2f} s each" if s['completion_mean_s'] else '')
      + f") in {s['simulated_s']:.1f} s simulated\n")
    w(f"  chunks          {s['chunks']} accepted / {s['requests']} requested\n")
    w(f"  latency         p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms "
      f"(oracle compute p50 {s['oracle_p50_ms']:.2f} ms)\n")
    w(f"  starvation      {s['starvation_ticks']} of {s['ticks']} ticks\n")
    w(f"  seam jumps      max {s['seam_jump_max_rad']:.3f} rad, mean "
      f"{s['seam_jump_mean_rad']:.3f} rad\n")
    w(f'  video           {video}\n  plot            {plot}\n')


def _plot(traces: list, path: Path) -> None:
    """Per-joint and 3D tip plot of chunks vs commands: the shared `plot-chunks` renderer."""
    from smolvla_ros.plot_chunks import load_fk, log_from_traces, render_chunk_plot
    from smolvla_ros.sim.scene import JOINT_NAMES

    render_chunk_plot(log_from_traces(traces, tuple(JOINT_NAMES)), path,
                      load_fk(None, tuple(JOINT_NAMES)),
                      title='Predicted chunks vs executed commands (simulated time)')
