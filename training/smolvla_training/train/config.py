"""The settings of one training run and the `smolvla-train` command line that fills them.

Defaults are LeRobot's SmolVLA training presets (`SmolVLAConfig` optimizer/scheduler fields and
`TrainPipelineConfig`; docs/training.md lists them). A value left unset (None) on the command line
means "take the policy config's value", so `--init` of a checkpoint trains with the recipe stored
in its config.json, as `lerobot-train --policy.path=...` does.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
import json
from pathlib import Path
from typing import Any


class TrainConfigError(ValueError):
    """An invalid or contradictory training setting (the message names it)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved as OUT/train_config.json so `--resume` rebuilds it."""

    datasets: tuple[str, ...]
    out: str
    preset: str | None = None
    init: str | None = None
    steps: int = 100_000
    batch_size: int = 8  # per process and micro-batch; global = batch * processes * accumulation
    grad_accum: int = 1
    seed: int = 1000
    device: str = 'cpu'
    # Optimizer / schedule: None = the policy config's value (LeRobot's SmolVLA presets).
    lr: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    warmup_steps: int | None = None
    decay_steps: int | None = None
    decay_lr: float | None = None
    # Freezing: None = the policy config's value.
    freeze_vision_encoder: bool | None = None
    train_expert_only: bool | None = None
    train_state_proj: bool | None = None
    # Data.
    episodes: tuple[int, ...] | None = None  # training subset (all but the validation ones)
    val_episodes: tuple[int, ...] = ()
    rename_map: dict[str, str] = field(default_factory=dict)  # dataset key -> policy key
    augment: bool = False
    frame_cache: bool = True
    cache_dir: str | None = None
    # Run control.
    save_every: int = 20_000
    log_every: int = 200
    keep_last: int = 0  # 0 keeps every checkpoint
    amp: bool = False  # bf16 autocast, CUDA only
    compile: bool = False  # torch.compile of the policy, CUDA only
    progress: bool = True
    torch_threads: int = 0  # 0: torch's default

    def __post_init__(self) -> None:
        if not self.datasets:
            raise TrainConfigError('at least one --dataset is needed')
        if (self.preset is None) == (self.init is None):
            raise TrainConfigError('give exactly one of --preset NAME or --init CHECKPOINT_DIR')
        for name in ('steps', 'batch_size', 'grad_accum', 'save_every', 'log_every'):
            if getattr(self, name) < 1:
                raise TrainConfigError(f'--{name.replace("_", "-")} must be >= 1, '
                                       f'got {getattr(self, name)}')
        if self.device not in ('cpu', 'cuda') and not self.device.startswith('cuda:'):
            raise TrainConfigError(f'--device must be cpu or cuda[:N], got {self.device!r}')
        if self.lr is not None and not self.lr > 0:
            raise TrainConfigError(f'--lr must be > 0, got {self.lr}')
        overlap = set(self.val_episodes) & set(self.episodes or ())
        if overlap:
            raise TrainConfigError(f'episodes {sorted(overlap)} are both training and validation')

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f'train_config.json has unknown settings {unknown}')
        kwargs = dict(data)
        for name in ('datasets', 'episodes', 'val_episodes', 'betas'):
            if kwargs.get(name) is not None:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ('1', 'true', 'yes', 'on'):
        return True
    if low in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected true/false, got {text!r}')


def _episodes(text: str) -> tuple[int, ...]:
    """'0,3,5-9' -> (0, 3, 5, 6, 7, 8, 9)."""
    out: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(','))):
            if '-' in part:
                lo, hi = (int(v) for v in part.split('-', 1))
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'episode list must look like 0,3,5-9, got {text!r}') from None
    return tuple(out)


def _rename(text: str) -> dict[str, str]:
    """JSON object or comma-separated src=dst pairs."""
    text = text.strip()
    if text.startswith('{'):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f'--rename-map: invalid JSON ({exc})') from None
    else:
        try:
            data = dict(p.split('=', 1) for p in text.split(',') if p.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'--rename-map must be JSON or src=dst,src=dst; got {text!r}') from None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise argparse.ArgumentTypeError('--rename-map maps strings to strings')
    return {k.strip(): v.strip() for k, v in data.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='smolvla-train',
        description='Train SmolVLA on LeRobot v3.0 datasets (LeRobot\'s recipe). '
                    '`smolvla-train plot OUT` redraws OUT/training.png. '
                    'docs/training.md has the guide.')
    p.add_argument('--dataset', dest='datasets', action='append', metavar='DIR',
                   help='LeRobot dataset directory (repeat for several)')
    init = p.add_mutually_exclusive_group()
    init.add_argument('--preset', help="random init of a geometry: tiny | sim_small | smolvla_base")
    init.add_argument('--init', metavar='CHECKPOINT_DIR',
                      help='fine-tune this SmolVLA policy directory (either LeRobot layout)')
    p.add_argument('--out', help='output directory (checkpoints, metrics.jsonl, training.png)')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --out from its last checkpoint (same settings)')
    p.add_argument('--steps', type=int, default=100_000)
    p.add_argument('--batch-size', type=int, default=8, help='per process and micro-batch')
    p.add_argument('--grad-accum', type=int, default=1, help='micro-batches per optimizer step')
    p.add_argument('--seed', type=int, default=1000)
    p.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N')
    p.add_argument('--lr', type=float)
    p.add_argument('--betas', type=float, nargs=2)
    p.add_argument('--eps', type=float)
    p.add_argument('--weight-decay', type=float)
    p.add_argument('--grad-clip', type=float)
    p.add_argument('--warmup-steps', type=int)
    p.add_argument('--decay-steps', type=int)
    p.add_argument('--decay-lr', type=float)
    p.add_argument('--freeze-vision-encoder', type=_bool, metavar='BOOL')
    p.add_argument('--train-expert-only', type=_bool, metavar='BOOL')
    p.add_argument('--train-state-proj', type=_bool, metavar='BOOL')
    p.add_argument('--episodes', type=_episodes, help='training episodes, e.g. 0-49 (default all)')
    p.add_argument('--val-episodes', type=_episodes, default=(),
                   help='held-out episodes for the validation loss, e.g. 45-49')
    p.add_argument('--rename-map', type=_rename, default={},
                   help="dataset key -> policy key, e.g. 'observation.images.top="
                        "observation.images.camera1'")
    p.add_argument('--augment', action='store_true', help='image augmentation (off by default)')
    p.add_argument('--no-frame-cache', dest='frame_cache', action='store_false',
                   help='decode video for every sample instead of caching frames')
    p.add_argument('--cache-dir', help='frame cache location (default ~/.cache/smolvla_ros/frames)')
    p.add_argument('--save-every', type=int, default=20_000)
    p.add_argument('--log-every', type=int, default=200)
    p.add_argument('--keep-last', type=int, default=0, help='keep only the newest K checkpoints')
    p.add_argument('--amp', action='store_true', help='bf16 autocast (CUDA only)')
    p.add_argument('--compile', action='store_true', help='torch.compile the policy (CUDA only)')
    p.add_argument('--no-progress', dest='progress', action='store_false')
    p.add_argument('--torch-threads', type=int, default=0)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig from parsed arguments (not for --resume, which reads the saved one)."""
    if not args.out:
        raise TrainConfigError('--out is required')
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
              if hasattr(args, f.name)}
    values['datasets'] = tuple(args.datasets or ())
    if values.get('betas') is not None:
        values['betas'] = tuple(values['betas'])
    return TrainConfig(**values)
