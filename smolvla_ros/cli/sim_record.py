"""``smolvla-ros sim-record``: scripted demonstrations in simulation, as rosbag2 bags.

    smolvla-ros sim-record --episodes 300 --task lift --out bags/lift [--seed-start 0] [--jobs 2]
    smolvla-convert bags/lift/seed_* --out datasets/sim_lift

Each episode is one bag ``OUT/seed_NNNNNN`` with the topics, types and stamps the ``recorder``
node writes (sim/record.py), so ``smolvla-convert`` turns them into a LeRobot dataset unchanged.
Seeds are tried in order from ``--seed-start``; only episodes the world's success detector
accepts are kept (``--keep-failures`` puts the others in ``OUT/failed/``) until ``--episodes``
are recorded; every tried seed, kept or not, has a line in ``OUT/episodes.jsonl`` (what varied,
why it failed). ``--jobs`` worker processes each run their own world. Demonstrations never use
the evaluation seeds 5000-5999. The last line printed is a JSON summary.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
import json
import logging
import multiprocessing
import os
from pathlib import Path
import shutil
import sys
import time

logger = logging.getLogger('sim-record')
MANIFEST = 'episodes.jsonl'
SUMMARY = 'summary.json'

_recorder = None  # the worker's EpisodeRecorder (one per process)
_options: dict = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smolvla_ros.cli.sim_options import add_contract_argument, add_task_arguments
    from smolvla_ros.sim.variation import PERTURBATIONS, VariationConfig
    v = VariationConfig()
    parser.add_argument('--episodes', type=int, required=True,
                        help='successful episodes to record')
    add_task_arguments(parser)
    parser.add_argument('--out', type=Path, required=True, help='directory of the bags')
    parser.add_argument('--seed-start', type=int, default=0, help='first seed (below 5000)')
    parser.add_argument('--jobs', type=int, default=1, help='worker processes')
    parser.add_argument('--camera-every', type=int, default=3,
                        help='render the cameras every k-th 30 Hz control tick (3: 10 fps, '
                        'the sim profiles\' camera_hz)')
    parser.add_argument('--keep-failures', action='store_true',
                        help='also write failed episodes, under OUT/failed/')
    parser.add_argument('--max-attempts', type=int, default=0,
                        help='give up after this many seeds (default: 2 x episodes + 20)')
    parser.add_argument('--resume', action='store_true',
                        help='continue an interrupted run in OUT (seeds in its episodes.jsonl '
                        'are not run again)')
    parser.add_argument('--recovery-fraction', type=float, default=v.recovery_fraction,
                        help='share of episodes with one disturbance the expert recovers from')
    parser.add_argument('--perturbations', default=','.join(v.kinds),
                        help=f'disturbances to draw from, comma-separated {PERTURBATIONS}')
    parser.add_argument('--noise-rad', type=float, default=v.noise_rad,
                        help='std of the smooth noise on the executed arm targets (rad)')
    parser.add_argument('--speed-jitter', type=float, default=v.speed_jitter,
                        help='expert joint speed x U(1-j, 1+j) per episode')
    parser.add_argument('--plain', action='store_true',
                        help='no variation beyond the world\'s seeded cube (no noise, jitter or '
                        'disturbance): the bare expert, e.g. to compare with a live recording')
    parser.add_argument('--post-success-s', type=float, default=0.5,
                        help='keep recording while the success holds this long (s)')
    parser.add_argument('--timeout-s', type=float, default=12.0,
                        help='simulated seconds before an episode counts as failed')
    add_contract_argument(parser)
    parser.add_argument('--namespace', default='', help='record under this arm namespace')
    parser.add_argument('--image-width', type=int, default=0,
                        help='camera frame width (px; 0: the contract\'s)')
    parser.add_argument('--image-height', type=int, default=0,
                        help='camera frame height (px; 0: the contract\'s)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--intervene', metavar='CHECKPOINT', default=None,
                        help='intervention recording (DAgger): this policy directory drives '
                        'until the expert takes over, and only the takeover is recorded '
                        '(docs/simulation.md); no scripted disturbance is drawn')
    parser.add_argument('--takeover-s', default='1,10', metavar='LO,HI',
                        help='with --intervene: the expert takes over at U(LO, HI) s at the '
                        'latest')
    parser.add_argument('--miss-s', type=float, default=0.3,
                        help='with --intervene: take over once the jaws have held nothing '
                        'this long (s; 0: only at the drawn time)')


def _configs(args: argparse.Namespace):
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.sim.intervention import InterventionConfig
    from smolvla_ros.sim.record import RecordConfig, check_demo_seeds
    from smolvla_ros.sim.variation import VariationConfig

    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    if not 1 <= args.jobs <= 64:
        raise ValueError(f'--jobs must be in 1..64, got {args.jobs}')
    attempts = args.max_attempts or 2 * args.episodes + 20
    if attempts < args.episodes:
        raise ValueError(f'--max-attempts {attempts} is below --episodes {args.episodes}')
    check_demo_seeds(args.seed_start, attempts)
    kinds = tuple(k.strip() for k in args.perturbations.split(',') if k.strip())
    intervention = None
    if args.intervene is not None:
        if not (Path(args.intervene) / 'config.json').is_file():
            raise ValueError(f'--intervene {args.intervene}: not a policy directory (no '
                             'config.json)')
        try:
            lo, hi = (float(v) for v in args.takeover_s.split(','))
        except ValueError:
            raise ValueError(f'--takeover-s must be LO,HI in seconds, got '
                             f'{args.takeover_s!r}') from None
        intervention = InterventionConfig(str(args.intervene), (lo, hi), args.miss_s)
    if args.plain:
        variation = VariationConfig(noise_rad=0.0, speed_jitter=0.0, hover_jitter=0.0,
                                    recovery_fraction=0.0, kinds=kinds)
    else:
        variation = VariationConfig(noise_rad=args.noise_rad, speed_jitter=args.speed_jitter,
                                    recovery_fraction=0.0 if intervention else
                                    args.recovery_fraction, kinds=kinds)
    config = RecordConfig(task=args.task, task_text=args.task_text,
                          camera_every=args.camera_every, image_width=args.image_width,
                          image_height=args.image_height, post_success_s=args.post_success_s,
                          timeout_s=args.timeout_s, namespace=args.namespace,
                          variation=variation, intervention=intervention)
    contract_path = args.contract or default_contract_path()
    load_contract(contract_path)  # fail here, with the path, not in a worker
    return config, str(contract_path), attempts


def _init_worker(config, contract_path: str, out: str, keep_failures: bool,
                 storage: str) -> None:
    global _recorder
    from smolvla_ros.core.robot.contract import load_contract
    from smolvla_ros.sim.record import EpisodeRecorder
    _recorder = EpisodeRecorder(config, load_contract(contract_path))
    _options.update(out=Path(out), keep_failures=keep_failures, storage=storage)


def _run_seed(seed: int) -> dict:
    """Record one seed in this worker; write its bag when kept; its manifest line."""
    from smolvla_ros.sim.record import write_bag
    recording = _recorder.record(seed)
    line = recording.summary()
    out: Path = _options['out']
    name = f'seed_{seed:06d}'
    bag = out / name if recording.success else out / 'failed' / name
    if recording.success or _options['keep_failures']:
        bag.parent.mkdir(parents=True, exist_ok=True)
        if bag.exists():  # a resumed run may meet a bag written after its last manifest line
            shutil.rmtree(bag)
        write_bag(bag, recording, _recorder.topics, _options['storage'])
        line['bag'] = str(bag.relative_to(out))
    return line


def _load_manifest(out: Path) -> dict[int, dict]:
    path = out / MANIFEST
    if not path.is_file():
        return {}
    done = {}
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            done[int(line['seed'])] = line
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'{path}:{n}: not a manifest line ({exc}); remove it or the '
                             'directory') from None
    # A kept episode whose bag is gone is recorded again.
    return {s: ln for s, ln in done.items()
            if not ln.get('bag') or (out / ln['bag'] / 'metadata.yaml').is_file()}


def _results(args, config, contract_path: str, seeds: Iterator[int], need: int,
             workers: int) -> Iterator[dict]:
    """Manifest lines of newly run seeds, as they finish; stops asking for seeds once the
    successes so far plus the seeds in flight reach `need`."""
    init = (config, contract_path, str(args.out), args.keep_failures, args.storage)
    if workers == 1:
        _init_worker(*init)
        got = 0
        try:
            for seed in seeds:
                line = _run_seed(seed)
                got += bool(line['success'])
                yield line
                if got >= need:
                    return
        finally:
            _recorder.close()
        return
    ctx = multiprocessing.get_context('spawn')  # fresh interpreters: one GL context each
    with ctx.Pool(workers, initializer=_init_worker, initargs=init) as pool:
        pending: list = []
        got = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * workers and got + len(pending) < need:
                seed = next(seeds, None)
                if seed is None:
                    exhausted = True
                    break
                pending.append(pool.apply_async(_run_seed, (seed,)))
            if not pending:
                return
            while not any(p.ready() for p in pending):
                time.sleep(0.05)
            for p in [p for p in pending if p.ready()]:
                pending.remove(p)
                line = p.get()  # re-raises a worker's exception here
                got += bool(line['success'])
                yield line


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='[sim-record] %(message)s')
    os.environ.setdefault('MUJOCO_GL', 'egl')
    try:
        config, contract_path, attempts = _configs(args)
        out: Path = args.out
        done = _load_manifest(out) if args.resume else {}
        if not args.resume and out.exists() and (
                (out / MANIFEST).exists() or any(out.glob('seed_*'))):
            raise ValueError(f'{out} already holds a recording; use --resume to continue it or '
                             'choose a new --out')
    except ValueError as exc:  # SimConfigError, ContractError included
        logger.error('%s', exc)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    first = args.seed_start
    resumed = set(done)
    kept = {s for s, ln in done.items() if ln['success']}
    need = args.episodes - len(kept)
    todo = (s for s in range(first, first + attempts) if s not in done)
    logger.info('recording %d %s episodes into %s (seeds from %d, %d jobs, cameras every %d '
                'ticks%s)', args.episodes, args.task, out, first, args.jobs, args.camera_every,
                f'; resuming with {len(kept)} kept' if done else '')
    start = time.monotonic()
    new = 0
    with (out / MANIFEST).open('a') as manifest:
        for line in _results(args, config, contract_path, todo, need, args.jobs) if need > 0 \
                else iter(()):
            manifest.write(json.dumps(line) + '\n')
            manifest.flush()
            done[line['seed']] = line
            new += 1
            ok = sum(1 for ln in done.values() if ln['success'])
            elapsed = time.monotonic() - start
            logger.info('seed %d: %s%s, %.2f s simulated, %d frames, %.1f s wall | %d/%d kept, '
                        '%.1f seeds/min', line['seed'],
                        'success' if line['success'] else
                        f"skipped: {line['skipped']}" if line.get('skipped') else 'FAILED',
                        f" ({line['perturbation']})" if line.get('perturbation') else '',
                        line['duration_s'], line['camera_frames'], line['wall_s'], ok,
                        args.episodes, 60 * new / max(elapsed, 1e-9))
    wall = time.monotonic() - start
    summary = _finish(out, done, args.episodes, first, attempts, wall, new, args, resumed)
    print(json.dumps(summary))
    return 0 if summary['episodes'] >= args.episodes else 1


def _finish(out: Path, done: dict[int, dict], wanted: int, first: int, attempts: int,
            wall: float, new: int, args: argparse.Namespace, resumed: set[int]) -> dict:
    """Keep exactly the `wanted` lowest successful seeds (parallel workers may overshoot),
    rewrite the manifest in seed order, write summary.json; returns the summary."""
    kept = sorted(s for s, ln in done.items() if ln['success'])
    for seed in kept[wanted:]:
        line = done.pop(seed)
        if line.get('bag'):
            shutil.rmtree(out / line['bag'], ignore_errors=True)
    kept = kept[:wanted]
    (out / MANIFEST).write_text(''.join(json.dumps(done[s]) + '\n' for s in sorted(done)))
    failed = sorted(s for s, ln in done.items()
                    if not ln['success'] and not ln.get('skipped'))
    skipped = sorted(s for s, ln in done.items() if ln.get('skipped'))
    frames = sum(done[s]['camera_frames'] for s in kept)
    summary = {
        'episodes': len(kept), 'wanted': wanted, 'failures': len(failed),
        'failed_seeds': failed, 'skipped': len(skipped),
        'seeds': [min(done, default=first), max(done, default=first)],
        'task': args.task, 'perturbed': sum(1 for s in kept if done[s].get('perturbation')),
        'takeovers': {r: sum(1 for s in kept if done[s].get('takeover') == r)
                      for r in ('time', 'miss')},
        'simulated_s': round(sum(done[s]['duration_s'] for s in kept), 2),
        'camera_frames': frames, 'wall_s': round(wall, 1), 'jobs': args.jobs,
        'attempts_per_min': round(60 * new / wall, 2) if wall > 0 else None,
        'kept_per_min': round(60 * len([s for s in kept if s not in resumed]) / wall, 2)
        if wall > 0 else None,
        'out': str(out),
    }
    if len(kept) < wanted:
        logger.error('only %d of %d episodes succeeded in %d seeds (see %s)', len(kept), wanted,
                     attempts, out / MANIFEST)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + '\n')
    logger.info('%d episodes kept, %d failed (%s); %.1f kept episodes/min over %.0f s',
                len(kept), len(failed), 'in failed/' if args.keep_failures else 'not recorded',
                summary['kept_per_min'] or 0.0, wall)
    return summary


if __name__ == '__main__':
    from smolvla_ros.cli.main import main
    sys.exit(main(['sim-record', *sys.argv[1:]]))
