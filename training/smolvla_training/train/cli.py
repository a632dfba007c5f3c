"""`smolvla-train` (also `ros2 run smolvla_training train`): train, resume, plot.

    smolvla-train --dataset DIR [--dataset DIR ...] (--preset NAME | --init DIR) --out DIR ...
    smolvla-train --resume --out DIR [--steps N]
    smolvla-train plot OUT
    torchrun --nproc_per_node N -m smolvla_training.train.cli --dataset ...   (data parallel)

Exit codes: 0 done, 2 bad settings/data/checkpoint (one clear line), 3 the loss became NaN/inf
(the last good checkpoint is kept), 4 a checkpoint could not be written (disk full...), 130
interrupted (Ctrl-C; the last checkpoint stays `last`).
"""
from __future__ import annotations

from collections.abc import Sequence
import json
import sys

from smolvla_training.train.config import (
    TrainConfig,
    TrainConfigError,
    build_parser,
    config_from_args,
)


def _log(message: str) -> None:
    print(f'[smolvla-train] {message}', file=sys.stderr, flush=True)


def _resume_config(args: object) -> TrainConfig:
    from pathlib import Path

    if not args.out:
        raise TrainConfigError('--resume needs --out DIR (the run to continue)')
    path = Path(args.out) / 'train_config.json'
    if not path.exists():
        raise TrainConfigError(f'--resume: {path} does not exist (not a smolvla-train output)')
    config = TrainConfig.from_json(json.loads(path.read_text()))
    if args.steps != build_parser().get_default('steps'):
        config = TrainConfig(**{**config.__dict__, 'steps': args.steps})
    return config


def _plot(argv: Sequence[str]) -> int:
    from pathlib import Path

    from smolvla_training.train.metrics import plot

    if len(argv) != 1:
        print('usage: smolvla-train plot OUT', file=sys.stderr)
        return 2
    try:
        print(plot(Path(argv[0])))
    except (FileNotFoundError, ValueError) as exc:
        print(f'smolvla-train plot: {exc}', file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['plot']:
        return _plot(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    # Heavy imports after argument parsing, so --help and argument errors are instant.
    from smolvla_ros.policy.checkpoint import CheckpointError
    from smolvla_ros.policy.configuration_smolvla import SmolVLAConfigError
    from smolvla_ros.policy.policy import FeatureMismatchError, PolicyInputError
    from smolvla_training.dataset.reader import DatasetFormatError
    from smolvla_training.dataset.video import VideoDecodeError
    from smolvla_training.train import distributed as dd
    from smolvla_training.train.checkpoints import CheckpointWriteError, ResumeError
    from smolvla_training.train.data import DataMismatchError
    from smolvla_training.train.loop import NonFiniteLossError, setup, train
    from smolvla_training.train.model_init import InitError

    run = None
    try:
        config = _resume_config(args) if args.resume else config_from_args(args)
        out = config.out_dir
        if not args.resume:
            if (out / 'checkpoints').exists():
                raise TrainConfigError(f'{out} already holds a run; use --resume to continue it '
                                       'or choose another --out')
            out.mkdir(parents=True, exist_ok=True)
            (out / 'train_config.json').write_text(json.dumps(config.to_json(), indent=2) + '\n')
        run = setup(config, args.resume, _log)
        if run.dist.main:
            n = sum(p.numel() for p in run.policy.parameters())
            t = sum(p.numel() for p in run.params)
            _log(f'{len(run.train_data)} training frames'
                 + (f', {len(run.val_data)} validation frames' if run.val_data else '')
                 + f'; policy {n:,} parameters ({t:,} trained); from step {run.step} to '
                   f'{config.steps}; {run.dist.world} process(es) on {run.dist.device}')
        summary = train(run, _log)
        if run.dist.main:
            print(json.dumps(summary))
        return 0
    except NonFiniteLossError as exc:
        _log(f'stopped: {exc}; the last good checkpoint is {config.out_dir}/checkpoints/last')
        return 3
    except CheckpointWriteError as exc:
        _log(f'stopped: {exc}')
        return 4
    except KeyboardInterrupt:
        _log('interrupted; the newest complete checkpoint stays checkpoints/last '
             '(continue with --resume)')
        return 130
    except (TrainConfigError, DatasetFormatError, DataMismatchError, InitError, ResumeError,
            CheckpointError, SmolVLAConfigError, FeatureMismatchError, PolicyInputError,
            VideoDecodeError, OSError) as exc:
        _log(f'error: {exc}')
        return 2
    finally:
        if run is not None:
            dd.shutdown(run.dist)


if __name__ == '__main__':
    sys.exit(main())
