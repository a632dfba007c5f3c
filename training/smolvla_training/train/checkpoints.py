"""Training checkpoints in LeRobot's layout (`save_checkpoint` in LeRobot's train_utils), no pickle.

    OUT/checkpoints/<step:06d>/pretrained_model/   config.json, model.safetensors, processor
                                                   JSON + stats, tokenizer/, train_config.json
    OUT/checkpoints/<step:06d>/training_state/     optimizer_state.safetensors,
                                                   optimizer_param_groups.json,
                                                   scheduler_state.json, rng_state.safetensors,
                                                   training_step.json
    OUT/checkpoints/last -> <step:06d>, OUT/checkpoints/best -> the lowest validation loss

A checkpoint is written into a hidden temporary directory and renamed into place, and `last` is
swapped atomically (a new symlink renamed over the old), so a run killed while saving leaves the
previous checkpoint as `last`. Everything a bit-exact resume needs is here: the weights, AdamW's
moments and step counts, the schedule's step, torch's CPU (and CUDA) RNG and the trainer's own
generator, and the number of samples drawn.
"""
from __future__ import annotations

from collections.abc import Mapping
import json
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any

import torch

from smolvla_ros.policy.checkpoint import load_safetensors, save_safetensors
from smolvla_ros.policy.policy import SmolVLAPolicy

CHECKPOINTS = 'checkpoints'
PRETRAINED = 'pretrained_model'
TRAINING_STATE = 'training_state'
LAST = 'last'
BEST = 'best'


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class ResumeError(ValueError):
    """A run directory that cannot be resumed (names what is missing)."""


def step_dir(out: Path, step: int) -> Path:
    return out / CHECKPOINTS / f'{step:06d}'


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor],
                                                                   list[dict[str, Any]]]:
    """AdamW state as flat tensors `state.<param>.<name>` and the param groups as JSON."""
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd['state'].items():
        for name, value in state.items():
            tensors[f'state.{idx}.{name}'] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd['param_groups']]
    return tensors, groups


def _rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    out = {'torch_cpu': torch.get_rng_state(), 'trainer': generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            out[f'torch_cuda_{i}'] = state
    return out


def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + '\n')


def save(out: Path, step: int, policy: SmolVLAPolicy, optimizer: torch.optim.Optimizer,
         generator: torch.Generator, progress: Mapping[str, Any],
         train_config: Mapping[str, Any]) -> Path:
    """Write checkpoint `step` atomically and point `last` at it; returns its directory."""
    root = out / CHECKPOINTS
    final = step_dir(out, step)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f'.{step:06d}.', dir=root))
        try:
            pretrained = policy.save_pretrained(tmp / PRETRAINED)
            write_json(dict(train_config), pretrained / 'train_config.json')
            state = tmp / TRAINING_STATE
            state.mkdir()
            tensors, groups = _optimizer_tensors(optimizer)
            save_safetensors(tensors, state / 'optimizer_state.safetensors')
            write_json(groups, state / 'optimizer_param_groups.json')
            write_json({'step': step}, state / 'scheduler_state.json')
            save_safetensors(_rng_tensors(generator), state / 'rng_state.safetensors')
            write_json({'step': step, **progress}, state / 'training_step.json')
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        point(out, LAST, step)
    except OSError as exc:
        raise CheckpointWriteError(
            f'could not write the checkpoint of step {step} under {root}: {exc.strerror or exc} '
            f'(the previous checkpoint, if any, is intact)') from exc
    return final


def point(out: Path, name: str, step: int) -> None:
    """Atomically make OUT/checkpoints/<name> a relative symlink to <step:06d>."""
    root = out / CHECKPOINTS
    tmp = root / f'.{name}.{os.getpid()}'
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f'{step:06d}', tmp)
    os.replace(tmp, root / name)


def prune(out: Path, keep_last: int, protected: set[int]) -> None:
    """Delete all but the newest `keep_last` step directories (never `protected` ones)."""
    if keep_last <= 0:
        return
    steps = sorted(int(p.name) for p in (out / CHECKPOINTS).iterdir()
                   if p.is_dir() and not p.is_symlink() and p.name.isdigit())
    for step in steps[:-keep_last]:
        if step not in protected:
            shutil.rmtree(step_dir(out, step), ignore_errors=True)


def last_step(out: Path) -> int:
    link = out / CHECKPOINTS / LAST
    if not link.exists():
        raise ResumeError(f'{out} has no checkpoint to resume from ({link} is missing)')
    return int(link.resolve().name)


def load_training_state(out: Path, step: int, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator) -> dict[str, Any]:
    """Restore AdamW, RNGs and the trainer generator; returns training_step.json."""
    state = step_dir(out, step) / TRAINING_STATE
    try:
        tensors = load_safetensors(state / 'optimizer_state.safetensors')
        groups = json.loads((state / 'optimizer_param_groups.json').read_text())
        progress = json.loads((state / 'training_step.json').read_text())
        rng = load_safetensors(state / 'rng_state.safetensors')
    except (OSError, ValueError) as exc:
        raise ResumeError(f'{state}: cannot read the training state ({exc})') from None
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split('.', 2)
        per_param.setdefault(int(idx), {})[name] = value
    own = optimizer.state_dict()
    if len(groups) != len(own['param_groups']) or any(
            len(g['params']) != len(o['params']) for g, o in zip(groups, own['param_groups'],
                                                                  strict=True)):
        raise ResumeError(f'{state}: the optimizer state does not fit this model')
    for g in groups:
        if 'betas' in g:
            g['betas'] = tuple(g['betas'])
    optimizer.load_state_dict({'state': per_param, 'param_groups': groups})
    torch.set_rng_state(rng['torch_cpu'])
    generator.set_state(rng['trainer'])
    cuda = [rng[k] for k in sorted(rng) if k.startswith('torch_cuda_')]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return progress
