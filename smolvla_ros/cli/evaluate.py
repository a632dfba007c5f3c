"""``smolvla-ros eval``: success rate of a policy on the simulated pick task, over seeded episodes.

    smolvla-ros eval [--checkpoint DIR | --oracle] [--task lift|bowl] [--episodes N]
                     [--seed-start S] [--mode async|sync] [--latency-ms X] [--video DIR]

Without --checkpoint or --oracle it evaluates the shipped default policy
(smolvla_ros.paths.default_policy_dir). Prints one row per episode, then one JSON line (the last
line of stdout) with policy, success_rate, episodes, mean_time_s, chunks and latency_p50_ms.
Seeds 5000-5999 are the project's evaluation range (demonstrations and tuning stay below 5000).
The logic is in smolvla_ros/sim/evaluation.py; docs/simulation.md explains the numbers.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import sys

from smolvla_ros.cli.sim_options import (
    add_contract_argument,
    add_policy_arguments,
    add_task_arguments,
)
from smolvla_ros.paths import DefaultPolicyMissingError, checkpoint_or_default

logger = logging.getLogger('smolvla_ros.eval')

HEADER = (f"{'#':>4} {'seed':>6} {'result':>7} {'time_s':>7} {'chunks':>6} {'requests':>8} "
          f"{'starved':>7} {'infer_ms':>8} {'wall_s':>6}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser)
    add_task_arguments(parser)
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--seed-start', type=int, default=5000,
                        help='first seed (the evaluation range is 5000-5999)')
    parser.add_argument('--mode', choices=('async', 'sync'), default='async')
    parser.add_argument('--latency-ms', type=float, default=0.0,
                        help='latency injected on top of the policy\'s measured inference time')
    parser.add_argument('--fixed-latency', action='store_true',
                        help='the executor sees --latency-ms alone, not the measured inference '
                        'time: a run that repeats under any load (to compare policies; the '
                        'sampling noise is seeded per episode), not the latency this machine '
                        'would give')
    parser.add_argument('--timeout', type=float, default=20.0,
                        help='simulated seconds before an episode counts as failed')
    parser.add_argument('--video', metavar='DIR', help='write episode_<seed>.mp4 (front | wrist)')
    parser.add_argument('--video-fps', type=float, default=10.0)
    add_contract_argument(parser)
    parser.add_argument('--rename-map', default='',
                        help='camera renames, e.g. front=camera1,wrist=camera2')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'),
                        default='float32')
    parser.add_argument('--num-steps', type=int, default=0,
                        help='flow-matching steps (0: the checkpoint\'s)')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch intra-op threads (0: torch default)')
    parser.add_argument('--fusion', default='crossfade', help='executor overlap fusion')
    parser.add_argument('--chunk-threshold', type=float, default=0.5)
    parser.add_argument('--json', metavar='FILE', help='also write the summary and every '
                        'episode row to FILE')


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format='[eval] %(message)s', stream=sys.stderr)
    logger.setLevel(logging.INFO)
    from smolvla_ros.sim.errors import SimConfigError
    from smolvla_ros.sim.evaluation import EVAL_SEEDS, EvalConfig
    try:
        config = EvalConfig(
            task=args.task, episodes=args.episodes, seed_start=args.seed_start, mode=args.mode,
            latency_ms=args.latency_ms, timeout_s=args.timeout, task_prompt=args.task_text or None,
            fixed_latency=args.fixed_latency,
            chunk_threshold=args.chunk_threshold, fusion=args.fusion,
            video_dir=Path(args.video) if args.video else None, video_fps=args.video_fps)
        checkpoint = None if args.oracle else checkpoint_or_default(args.checkpoint)
        if args.num_steps < 0 or args.threads < 0:
            raise SimConfigError('--num-steps and --threads must be >= 0')
    except (SimConfigError, DefaultPolicyMissingError) as exc:
        logger.error('%s', exc)
        return 2
    seeds = config.seeds
    if seeds.start < EVAL_SEEDS.start or seeds.stop > EVAL_SEEDS.stop:
        logger.warning('seeds %d-%d leave the evaluation range %d-%d: seeds below %d are the '
                       'demonstration and tuning range, so those episodes are not unseen',
                       seeds.start, seeds.stop - 1, EVAL_SEEDS.start, EVAL_SEEDS.stop - 1,
                       EVAL_SEEDS.start)
    try:
        report = _evaluate(args, config, checkpoint)
    except _SetupError as exc:
        logger.error('%s', exc)
        return 2
    summary = report.summary()
    done = summary['mean_time_s']
    print(f"{summary['successes']}/{summary['episodes']} succeeded "
          f"({summary['success_rate']:.0%})"
          + (f', mean {done:.2f} s' if done is not None else '')
          + f", latency p50 {summary['latency_p50_ms']:.0f} ms "
            f"(inference p50 {summary['inference_p50_ms']:.0f} ms + "
            f"{summary['injected_latency_ms']:g} ms injected)", flush=True)
    if args.json:
        rows = [row.__dict__ for row in report.rows]
        Path(args.json).write_text(json.dumps({'summary': summary, 'episodes': rows,
                                               'warmup_ms': list(report.warmup_ms)}, indent=2))
    print(json.dumps(summary), flush=True)
    return 0


class _SetupError(Exception):
    """The policy or the world could not be set up (message says why)."""


def _evaluate(args: argparse.Namespace, config, checkpoint: str | None):
    from smolvla_ros.core.inference.policy_io import RenameMapError
    from smolvla_ros.core.robot.contract import ContractError
    from smolvla_ros.policy.serving import PolicySetupError
    from smolvla_ros.sim.contract_view import ContractView
    from smolvla_ros.sim.errors import SimAssetsError, SimConfigError
    from smolvla_ros.sim.evaluation import (
        CheckpointEvalPolicy,
        CheckpointSpec,
        OracleEvalPolicy,
        evaluate,
    )
    setup_errors = (SimConfigError, SimAssetsError, ContractError, RenameMapError,
                    PolicySetupError, ValueError, OSError, RuntimeError)
    try:
        view = ContractView(config.task, args.contract)
    except setup_errors as exc:
        raise _SetupError(f'cannot set up the simulated world: {exc}') from exc
    try:
        if checkpoint is None:
            policy = OracleEvalPolicy(view.world, view.contract.dt)
        else:
            spec = CheckpointSpec(checkpoint, device=args.device, dtype=args.dtype,
                                  num_steps=args.num_steps, rename_map=args.rename_map,
                                  threads=args.threads)
            policy = CheckpointEvalPolicy(spec, view.contract, log=logger.info)
    except setup_errors as exc:
        view.close()
        raise _SetupError(f'cannot serve {checkpoint or "the oracle"}: {exc}') from exc
    print(f'policy {policy.policy_id}, task {config.task} ({config.prompt!r}), {config.mode}, '
          f"+{config.latency_ms:g} ms injected{' (fixed)' if config.fixed_latency else ''}, "
          f'seeds {config.seeds.start}-'
          f'{config.seeds.stop - 1}, timeout {config.timeout_s:g} s', flush=True)
    print(HEADER, flush=True)

    def row(i: int, r) -> None:
        print(f"{i + 1:>4} {r.seed:>6} {'ok' if r.success else 'fail':>7} {r.time_s:>7.2f} "
              f'{r.chunks:>6} {r.requests:>8} {r.starvation_ticks:>7} '
              f'{r.compute_p50_ms:>8.1f} {r.wall_s:>6.1f}'
              + (f'  ({r.error})' if r.error else ''), flush=True)
    try:
        return evaluate(policy, view, config, on_episode=row)
    finally:
        policy.close()
        view.close()
