"""``smolvla-ros demo`` (``make demo``): the async executor on the simulated SO-101, headless.

Runs lift episodes back to back for a bounded time of simulated time through the real
ExecutorCore, then prints a summary (which policy ran, its success rate over the demo's episodes,
chunks, the latency the executor saw and the policy's own inference time, starvation, seam jumps)
and writes two files a person would rather look at than read:

- ``demo_out/demo.mp4``: the front camera at the robot contract's 640x480, 10 fps (CPU
  rendering is geometry bound: ~45 ms a frame at 640x480 against ~40 ms at 256x256 on 2 cores);
- ``demo_out/chunks.png``: every accepted chunk (thin lines) against the executed command (bold)
  per joint over time.

The policy is, by default, the SmolVLA checkpoint shipped with the package
(smolvla_ros.paths.default_policy_dir, policies/so101_sim_lift/README.md); ``--checkpoint DIR``
serves another one and ``--oracle`` runs the scripted expert instead. Both are served exactly as
``smolvla-ros eval`` serves them (sim/evaluation.py: the checkpoint through the policy server's
own code, its frames rendered at request time at the contract's size and resized to the policy's),
so the demo's figures mean what eval's mean. Latency: the executor sees the policy's measured
inference time plus ``--latency-ms`` injected on top (default 0: a checkpoint's CPU inference is
a real latency already); the oracle's ~1 ms of compute is not counted, so for it the injected
latency is the whole delay (default 300 ms, to show the executor hiding a slow policy).

This runs on simulated time in one process (smolvla_ros.sim.episode_runner), so it needs no DDS
and finishes in about a minute on two cores; torch is imported only when a checkpoint is served.
The same stack as ROS nodes in real time is ``smolvla-ros up so101_demo`` (docs/simulation.md).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import statistics
import sys

import numpy as np

from smolvla_ros.cli.sim_options import add_policy_arguments

logger = logging.getLogger(__name__)

ORACLE_LATENCY_MS = 300.0  # the oracle's default injected latency (its compute is ~1 ms)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser)
    parser.add_argument('--duration', type=float, default=20.0,
                        help='simulated seconds to run (episodes back to back)')
    parser.add_argument('--episode-timeout', type=float, default=10.0,
                        help='simulated seconds after which an episode counts as failed')
    parser.add_argument('--out', default='demo_out', help='output folder')
    parser.add_argument('--mode', choices=('async', 'sync'), default='async')
    parser.add_argument('--latency-ms', type=float, default=None,
                        help='latency injected on top of the policy\'s measured inference time '
                        f'(default: 0 with a checkpoint; {ORACLE_LATENCY_MS:g} with --oracle, '
                        'whose compute is not counted)')
    parser.add_argument('--seed', type=int, default=5000,
                        help='first episode seed (default 5000: the evaluation range, never '
                        'used for demonstrations)')
    parser.add_argument('--video-fps', type=float, default=10.0, help='camera frames per second')
    parser.add_argument('--width', type=int, default=640, help='video frame width (px)')
    parser.add_argument('--height', type=int, default=480, help='video frame height (px)')
    parser.add_argument('--camera', choices=('front', 'wrist'), default='front')


def _check(args: argparse.Namespace) -> None:
    if not 0 < args.duration <= 600:
        raise ValueError(f'--duration must be in (0, 600] s, got {args.duration}')
    if not 0 < args.episode_timeout <= 600:
        raise ValueError(f'--episode-timeout must be in (0, 600] s, got {args.episode_timeout}')
    if args.latency_ms is not None and not 0 <= args.latency_ms <= 5000:
        raise ValueError(f'--latency-ms must be in [0, 5000], got {args.latency_ms}')
    if args.seed < 0:
        raise ValueError(f'--seed must be >= 0, got {args.seed}')
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
    from smolvla_ros.paths import checkpoint_or_default
    from smolvla_ros.sim.errors import SimConfigError
    from smolvla_ros.sim.evaluation import EvalConfig
    from smolvla_ros.sim.scene import SceneConfig

    latency_ms = args.latency_ms
    if latency_ms is None:
        latency_ms = ORACLE_LATENCY_MS if args.oracle else 0.0
    try:
        config = EvalConfig(task='lift', seed_start=args.seed, mode=args.mode,
                            latency_ms=latency_ms, timeout_s=args.episode_timeout)
        checkpoint = None if args.oracle else checkpoint_or_default(args.checkpoint)
    except (SimConfigError, FileNotFoundError) as exc:
        logger.error('%s', exc)
        return 2
    try:
        view, policy = _serve(checkpoint, SceneConfig(image_width=args.width,
                                                      image_height=args.height))
    except _SetupError as exc:
        logger.error('%s', exc)
        return 2
    try:
        return _run(args, view, policy, config)
    finally:
        policy.close()
        view.close()


class _SetupError(Exception):
    """The world or the policy could not be set up (the message says why)."""


def _serve(checkpoint: str | None, scene):
    """(ContractView of the lift task, EvalPolicy): the world and the policy, as eval builds them.

    The scene's offscreen buffer is at least the video size (ContractView enlarges it to the
    contract cameras' size when they are larger).
    """
    from smolvla_ros.core.inference.policy_io import RenameMapError
    from smolvla_ros.core.robot.contract import ContractError
    from smolvla_ros.policy.serving import PolicySetupError
    from smolvla_ros.sim.contract_view import ContractView
    from smolvla_ros.sim.errors import SimAssetsError, SimConfigError
    from smolvla_ros.sim.evaluation import CheckpointEvalPolicy, CheckpointSpec, OracleEvalPolicy

    setup_errors = (SimConfigError, SimAssetsError, ContractError, RenameMapError,
                    PolicySetupError, ValueError, OSError, RuntimeError)
    try:
        view = ContractView('lift', scene=scene)
    except setup_errors as exc:
        raise _SetupError(f'cannot set up the simulated world: {exc}') from exc
    try:
        if checkpoint is None:
            return view, OracleEvalPolicy(view.world, view.contract.dt)
        logger.info('serving %s (loading torch and the checkpoint, then 2 warm-up runs)',
                    checkpoint)
        return view, CheckpointEvalPolicy(CheckpointSpec(checkpoint), view.contract,
                                          log=logger.info)
    except setup_errors as exc:
        view.close()
        raise _SetupError(f'cannot serve {checkpoint or "the oracle"}: {exc}') from exc


def _run(args: argparse.Namespace, view, policy, config) -> int:
    """Episodes back to back until ``args.duration`` of simulated time, then the outputs."""
    from smolvla_ros.sim.episode_runner import EpisodeTrace, run_episode
    from smolvla_ros.sim.evaluation import policy_observer, run_config
    from smolvla_ros.sim.render import CameraRenderer
    from smolvla_ros.sim.video import write_mp4

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = view.world
    run = run_config(policy, config, view.contract)
    observe = (policy_observer(view.contract, view.camera_names, view.render)
               if policy.needs_images else None)
    renderer = CameraRenderer(world.model, args.width, args.height)
    frames: list[np.ndarray] = []
    frame_every = 1.0 / args.video_fps
    offset = 0.0  # simulated time of the current episode's start in the whole run
    traces: list[tuple[float, object]] = []
    results = []
    cut_off = 0  # episodes still running when the demo's time ran out (not counted)

    def on_tick(w, t: float) -> None:
        if offset + t >= len(frames) * frame_every:
            frames.append(renderer.render(w.data, args.camera))

    seed = args.seed
    try:
        while offset < args.duration:
            trace = EpisodeTrace()
            result = run_episode(world, policy, run, seed, max_duration_s=args.duration - offset,
                                 trace=trace, on_tick=on_tick, observe=observe)
            traces.append((offset, trace))
            offset += result.duration_s
            # Ended by the demo's time before its own timeout (two ticks of slack: the runner
            # stops on the tick grid): neither a success nor a failure, so not counted.
            if not result.success and result.duration_s < config.timeout_s - 2 / run.control_hz:
                cut_off += 1
                logger.info('episode (seed %d): cut off by --duration after %.2f s (not counted)',
                            seed, result.duration_s)
                break
            results.append(result)
            logger.info('episode %d (seed %d): %s in %.2f s', len(results), seed,
                        'picked' if result.success else 'not picked (timeout)',
                        result.completion_s)
            seed += 1
    finally:
        renderer.close()
    summary = _summary(policy, config, results, cut_off, offset)
    video = write_mp4(frames, out / 'demo.mp4', args.video_fps)
    _plot(traces, out / 'chunks.png')
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    _print(summary, video, out / 'chunks.png')
    return 0


def _summary(policy, config, results: list, cut_off: int, simulated_s: float) -> dict:
    """What ran and how it did; latency = what the executor saw, inference = the policy's
    measured compute (counted in the latency for a checkpoint, not for the oracle)."""
    from smolvla_ros.paths import DefaultPolicyMissingError, default_policy_dir

    done = [r.completion_s for r in results if r.success]
    compute = [v for r in results for v in r.compute_ms]
    latency = [v for r in results for v in r.latency_ms]
    try:
        default = policy.policy_id == str(default_policy_dir())
    except DefaultPolicyMissingError:
        default = False
    return {
        'policy': policy.policy_id, 'default_policy': default,
        'inference_counted': policy.count_inference,
        'mode': config.mode, 'injected_latency_ms': config.latency_ms,
        'episode_timeout_s': config.timeout_s, 'seed_start': config.seed_start,
        'episodes': len(results), 'picked': len(done),
        'success_rate': len(done) / len(results) if results else None,
        'cut_off': cut_off,
        'completion_mean_s': statistics.fmean(done) if done else None,
        'simulated_s': simulated_s,
        'chunks': sum(r.chunks for r in results), 'requests': sum(r.requests for r in results),
        'latency_p50_ms': _pct(latency, 50), 'latency_p95_ms': _pct(latency, 95),
        'inference_p50_ms': _pct(compute, 50), 'inference_p95_ms': _pct(compute, 95),
        'warmup_ms': list(policy.warmup_ms),
        'starvation_ticks': sum(r.starvation_ticks for r in results),
        'ticks': sum(r.ticks for r in results),
        'seam_jump_max_rad': max((r.seam_jump_max for r in results), default=0.0),
        'seam_jump_mean_rad': (statistics.fmean(r.seam_jump_mean for r in results)
                               if results else 0.0),
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def _print(s: dict, video: Path, plot: Path) -> None:
    w = sys.stdout.write
    if s['policy'] == 'oracle':
        name = 'the oracle (scripted expert with the privileged cube pose, not a learned policy)'
    else:
        name = f"SmolVLA {s['policy']}" + (' (the shipped default)' if s['default_policy'] else '')
    w(f"\nsmolvla_ros demo: SO-101 lift in MuJoCo, {s['mode']} execution\n")
    w(f'  policy          {name}\n')
    rate = ('n/a' if s['success_rate'] is None else f"{s['success_rate']:.0%}")
    w(f"  episodes        {s['episodes']}: {s['picked']} cubes picked, success rate {rate}"
      + (f", mean {s['completion_mean_s']:.2f} s each" if s['completion_mean_s'] else '')
      + f" (seeds from {s['seed_start']}, timeout {s['episode_timeout_s']:g} s)\n")
    if s['cut_off']:
        w(f"                  + {s['cut_off']} cut off at the end of the run (not counted)\n")
    w(f"  simulated       {s['simulated_s']:.1f} s\n")
    w(f"  chunks          {s['chunks']} accepted / {s['requests']} requested\n")
    counted = ('measured inference + ' if s['inference_counted'] else '')
    w(f"  latency         p50 {s['latency_p50_ms']:.0f} ms, p95 {s['latency_p95_ms']:.0f} ms "
      f"seen by the executor ({counted}{s['injected_latency_ms']:g} ms injected)\n")
    what = 'inference' if s['inference_counted'] else 'oracle compute'
    w(f"  {what:<15} p50 {s['inference_p50_ms']:.1f} ms, p95 {s['inference_p95_ms']:.1f} ms "
      'per chunk' + ('' if s['inference_counted'] else ' (not counted in the latency)') + '\n')
    w(f"  starvation      {s['starvation_ticks']} of {s['ticks']} ticks\n")
    w(f"  seam jumps      max {s['seam_jump_max_rad']:.3f} rad, mean "
      f"{s['seam_jump_mean_rad']:.3f} rad\n")
    w(f'  video           {video}\n  plot            {plot}\n')


def _plot(traces: list, path: Path) -> None:
    """Per-joint and 3D tip plot of chunks vs commands: the shared `plot-chunks` renderer."""
    from smolvla_ros.cli.plot_chunks import load_fk, log_from_traces, render_chunk_plot
    from smolvla_ros.sim.scene import JOINT_NAMES

    render_chunk_plot(log_from_traces(traces, tuple(JOINT_NAMES)), path,
                      load_fk(None, tuple(JOINT_NAMES)),
                      title='Predicted chunks vs executed commands (simulated time)')
