"""The training loop: LeRobot's SmolVLA recipe over our policy, one process or torch DDP.

Per optimizer step: `grad_accum` micro-batches of `batch_size` samples per process; the global
batch (all processes, all micro-batches) is drawn as one slice of the (seed, epoch) sample order,
and noise and flow time for all of it come from the trainer's own generator, so 2 processes with
batch B see exactly the samples, noise and time of 1 process with batch 2B. The loss of each
micro-batch is its sum of masked squared errors divided by the valid-element count of the whole
global batch (times the process count, which DDP's gradient averaging divides out): the gradient
is then the one of LeRobot's loss over the global batch, whatever the split. Flow time is drawn
as U^(1/1.5) (exactly Beta(1.5, 1); LeRobot samples the same distribution) scaled to
[0.001, 1.0); docs/training.md has the details.
"""
from __future__ import annotations

from collections.abc import Callable
import contextlib
import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from smolvla_ros.policy import checkpoint as ckpt
from smolvla_ros.policy.flow_matching import sample_time_with
from smolvla_ros.policy.policy import SmolVLAPolicy
from smolvla_training.train import checkpoints as cp
from smolvla_training.train import distributed as dd
from smolvla_training.train.config import TrainConfig, TrainConfigError
from smolvla_training.train.data import (
    ACTION_KEY,
    STATE_KEY,
    TrainingData,
    augment_images,
    combined_stats,
    dataset_features,
    open_datasets,
)
from smolvla_training.train.metrics import METRICS, MetricsLog, plot
from smolvla_training.train.model_init import EMPTY_CAMERA_PREFIX, build_policy
from smolvla_training.train.schedule import CosineWarmupSchedule

VAL_SEED = 12345  # fixed noise/time for the validation loss: comparable across saves
VAL_MAX_SAMPLES = 512


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the run stopped and the last good checkpoint is kept."""


class _LossModule(nn.Module):
    """DDP hooks run through forward(): this wraps the policy's loss (reduction='none')."""

    def __init__(self, policy: SmolVLAPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, Any], noise: torch.Tensor,
                time_: torch.Tensor) -> torch.Tensor:
        return self.policy.compute_loss(batch, noise=noise, time=time_, reduction='none')  # [B]


@dataclasses.dataclass
class _Run:
    config: TrainConfig
    policy: SmolVLAPolicy
    train_data: TrainingData
    val_data: TrainingData | None
    optimizer: torch.optim.Optimizer
    schedule: CosineWarmupSchedule
    generator: torch.Generator
    dist: dd.Dist
    params: list[nn.Parameter]
    step: int = 0
    samples: int = 0  # samples drawn so far (global), the data position
    best_val: float = math.inf
    best_step: int | None = None


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _image_keys(policy: SmolVLAPolicy) -> list[str]:
    return [k for k in policy.config.image_features if not k.startswith(EMPTY_CAMERA_PREFIX)]


def setup(config: TrainConfig, resume: bool, log: Callable[[str], None]) -> _Run:
    """Datasets, policy, optimizer and (on resume) the saved state."""
    d = dd.init(config.device)
    if d.device.type != 'cuda' and (config.amp or config.compile):
        raise TrainConfigError('--amp and --compile are for CUDA; on CPU train in float32 '
                               'without compile (docs/training.md)')
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed + d.rank)
    readers = open_datasets(config.datasets)
    features = dataset_features(readers, config.rename_map)
    stats = combined_stats(readers, [STATE_KEY, ACTION_KEY], config.rename_map)
    policy = build_policy(config, features, stats)
    if resume:
        step = cp.last_step(config.out_dir)
        contents = ckpt.read_checkpoint(cp.step_dir(config.out_dir, step) / cp.PRETRAINED)
        policy.load_weights(contents.weights)
    policy.to(d.device)
    policy.train()
    size = policy.config.resize_imgs_with_padding
    total = sum(len(r.episodes) for r in readers)
    val_eps = tuple(config.val_episodes)
    train_eps = config.episodes if config.episodes is not None else tuple(
        e for e in range(total) if e not in set(val_eps))
    common = dict(image_keys=_image_keys(policy), chunk_size=policy.config.chunk_size,
                  image_size=tuple(size) if size else None, rename_map=config.rename_map,
                  use_cache=config.frame_cache, cache_dir=config.cache_dir,
                  log=log if d.main else (lambda _m: None))
    if d.active and config.frame_cache:  # rank 0 builds the cache, the others wait for it
        if d.main:
            TrainingData(readers, episodes=train_eps, **common)
        dd.barrier(d)
    train_data = TrainingData(readers, episodes=train_eps, **common)
    val_data = TrainingData(readers, episodes=val_eps, **common) if val_eps else None
    pc = policy.config
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=pc.optimizer_lr, betas=tuple(pc.optimizer_betas),
                                  eps=pc.optimizer_eps, weight_decay=pc.optimizer_weight_decay)
    schedule = CosineWarmupSchedule.for_run(pc.optimizer_lr, pc.scheduler_decay_lr,
                                            pc.scheduler_warmup_steps, pc.scheduler_decay_steps,
                                            config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    run = _Run(config, policy, train_data, val_data, optimizer, schedule, generator, d, params)
    if resume:
        progress = cp.load_training_state(config.out_dir, step, optimizer, generator)
        run.step = int(progress['step'])
        run.samples = int(progress['samples'])
        best = progress.get('best_val')
        run.best_val = math.inf if best is None else float(best)
        run.best_step = progress.get('best_step')
    return run


def _global_rows(run: _Run) -> np.ndarray:
    c = run.config
    n = c.batch_size * run.dist.world * c.grad_accum
    rows = run.train_data.rows_for(c.seed, run.samples, n)
    run.samples += n
    return rows


def train_step(run: _Run, model: nn.Module) -> tuple[float, float, np.ndarray]:
    """One optimizer step; returns (global loss, grad norm, this step's global rows)."""
    c, d = run.config, run.dist
    pc = run.policy.config
    rows = _global_rows(run)
    n_global = len(rows)
    noise = torch.randn(n_global, pc.chunk_size, pc.max_action_dim,
                        generator=run.generator)  # [G, T, max_action_dim]
    times = sample_time_with(run.generator, n_global)  # [G]
    count = run.train_data.valid_elements(rows)
    for group in run.optimizer.param_groups:
        group['lr'] = run.schedule.lr(run.step)
    run.optimizer.zero_grad(set_to_none=True)
    per_proc = c.batch_size * d.world
    local_sum = 0.0
    for micro in range(c.grad_accum):
        lo = micro * per_proc + d.rank * c.batch_size
        sel = slice(lo, lo + c.batch_size)
        batch = run.train_data.batch(rows[sel])
        if c.augment:
            for key in _image_keys(run.policy):
                batch[key] = augment_images(batch[key], run.generator)
        batch = _to_device(batch, d.device)
        sync = micro == c.grad_accum - 1 or not d.active
        ctx = model.no_sync() if (d.active and not sync) else contextlib.nullcontext()
        with ctx, torch.autocast(d.device.type, dtype=torch.bfloat16,
                                 enabled=c.amp and d.device.type == 'cuda'):
            per_sample = model(batch, noise[sel].to(d.device), times[sel].to(d.device))  # [B]
            valid = (~batch['action_is_pad']).sum(dim=1) * run.policy.action_dim  # [B]
            masked_sum = (per_sample * valid.clamp(min=1)).sum()
            loss = masked_sum * d.world / count
        loss.backward()
        local_sum += float(masked_sum.detach())
    total = dd.all_sum(local_sum, d) / count
    if not math.isfinite(total):
        raise NonFiniteLossError(
            f'the loss is {total} at step {run.step + 1} (batch: '
            f'{run.train_data.describe(rows)}{"..." if len(rows) > 8 else ""})')
    grad_norm = float(torch.nn.utils.clip_grad_norm_(run.params, pc.optimizer_grad_clip_norm))
    run.optimizer.step()
    run.step += 1
    return total, grad_norm, rows


@torch.no_grad()
def validation_loss(run: _Run) -> float:
    """LeRobot's loss over held-out frames with fixed noise and time (comparable across saves)."""
    data = run.val_data
    assert data is not None
    policy, pc = run.policy, run.policy.config
    rows = data.rows
    if len(rows) > VAL_MAX_SAMPLES:
        rows = rows[np.linspace(0, len(rows) - 1, VAL_MAX_SAMPLES).astype(np.int64)]
    gen = torch.Generator().manual_seed(VAL_SEED)
    noise = torch.randn(len(rows), pc.chunk_size, pc.max_action_dim, generator=gen)
    times = sample_time_with(gen, len(rows))
    was_training = policy.training
    policy.eval()
    total, count = 0.0, 0
    bs = max(run.config.batch_size, 1)
    for lo in range(0, len(rows), bs):
        sel = slice(lo, lo + bs)
        batch = _to_device(data.batch(rows[sel]), run.dist.device)
        per = policy.compute_loss(batch, noise=noise[sel].to(run.dist.device),
                                  time=times[sel].to(run.dist.device), reduction='none')
        valid = (~batch['action_is_pad']).sum(dim=1) * policy.action_dim
        total += float((per * valid).sum())
        count += int(valid.sum())
    policy.train(was_training)
    return total / max(count, 1)


def save(run: _Run, metrics: MetricsLog, log: Callable[[str], None]) -> None:
    """Checkpoint (rank 0), validation loss, best link, pruning and the plot."""
    d, c = run.dist, run.config
    if run.val_data is not None:
        val = validation_loss(run)
        metrics.write({'step': run.step, 'val_loss': val})
        if val < run.best_val:
            run.best_val, run.best_step = val, run.step
    if d.main:
        progress = {'samples': run.samples, 'best_val': run.best_val
                    if math.isfinite(run.best_val) else None, 'best_step': run.best_step}
        cp.save(c.out_dir, run.step, run.policy, run.optimizer, run.generator, progress,
                {**c.to_json(), 'policy': run.policy.config.to_dict()})
        if run.best_step is not None:
            cp.point(c.out_dir, cp.BEST, run.best_step)
        cp.prune(c.out_dir, c.keep_last, {run.best_step} if run.best_step is not None else set())
        if (c.out_dir / METRICS).exists():  # nothing logged yet before the first log_every
            plot(c.out_dir)
        log(f'step {run.step}: saved {cp.step_dir(c.out_dir, run.step)}'
            + (f' (val loss {run.best_val:.4f} best at step {run.best_step})'
               if run.val_data is not None else ''))
    dd.barrier(d)


def train(run: _Run, log: Callable[[str], None]) -> dict[str, Any]:
    """Run to config.steps; returns a summary. Raises NonFiniteLossError on NaN/inf loss."""
    c, d = run.config, run.dist
    out = c.out_dir
    metrics = MetricsLog(out, enabled=d.main)
    metrics.truncate_after(run.step)
    model: nn.Module = _LossModule(run.policy)
    if d.active:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == 'cuda' else None)
    if c.compile:
        model = torch.compile(model)
    bar = None
    if c.progress and d.main:
        from tqdm import tqdm
        bar = tqdm(total=c.steps, initial=run.step, unit='step', dynamic_ncols=True)
    window: list[float] = []
    t_window, n_window = time.perf_counter(), 0
    start = time.perf_counter()
    try:
        while run.step < c.steps:
            loss, grad_norm, rows = train_step(run, model)
            window.append(loss)
            n_window += len(rows)
            if bar is not None:
                bar.update(1)
            if run.step % c.log_every == 0 or run.step == c.steps:
                now = time.perf_counter()
                row = {'step': run.step, 'loss': float(np.mean(window)),
                       'lr': run.schedule.lr(run.step - 1), 'grad_norm': grad_norm,
                       'samples_per_s': n_window / max(now - t_window, 1e-9),
                       'epoch': run.samples / len(run.train_data),
                       'elapsed_s': now - start}
                metrics.write(row)
                if bar is not None:
                    bar.set_postfix(loss=f'{row["loss"]:.4f}', lr=f'{row["lr"]:.2e}',
                                    sps=f'{row["samples_per_s"]:.0f}')
                window, t_window, n_window = [], now, 0
            if run.step % c.save_every == 0 or run.step == c.steps:
                save(run, metrics, log)
    finally:
        if bar is not None:
            bar.close()
        metrics.close()
    return {'steps': run.step, 'samples': run.samples, 'wall_s': time.perf_counter() - start,
            'out': str(out), 'best_step': run.best_step,
            'best_val_loss': run.best_val if math.isfinite(run.best_val) else None}
