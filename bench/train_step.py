"""Training throughput: optimizer-step time and peak memory per geometry, loader samples/s.

Each geometry runs in its own subprocess (a clean RSS high-water mark): a policy built from the
preset with the training recipe (AdamW over the trainable parameters, grad clip 10), a fixed
synthetic batch at the model's resolution, `--warmup` untimed then `--steps` timed optimizer
steps (forward + backward + clip + step). Rows: tiny, sim_small (batch 8 and 32), smolvla_base
geometry at batch 8 expert-only (LeRobot's default; --big) and full fine-tune (--full: more than
the 24 GiB of our CPU machine, the kernel kills it; a failed row is reported, not fatal).

Loader rows use a real LeRobot dataset (--dataset, default the LeRobot-made golden dataset in
test/data): `TrainingData.batch` with and without the frame cache at the sim_small resolution,
and loader + step together (what a run's samples/s is), alternating to share machine noise.

With a LeRobot venv (--lerobot-python PATH or $SMOLVLA_LEROBOT_PYTHON; docs/policy.md, "The
LeRobot column") every geometry gains a LeRobot row: LeRobot 0.6.1's own SmolVLAPolicy built from
the same config and stand-in SmolVLM directory as the inference column (bench/_lerobot_column.py),
in train mode in its own process (bench/_lerobot_child.py), stepping on the same batch with its
preset's AdamW and grad clip, as LeRobot's `update_policy` does, with our thread count. Our step
and LeRobot's alternate one by one (one computes while the other waits), so machine noise hits
both; `ours/LeRobot` = the ratio of the medians, `paired` the median of the per-round ratios.
Both sides count their parameters and trainable parameters; a different count means the configs
differ, and the LeRobot row fails instead of giving a ratio. Below smolvla_base, LeRobot also gets
our weights: the loss and gradient norm on one batch with the same noise and flow time are
compared before the timing. Peak RSS: each process's high-water mark over its steps (reset once
everything is built).

    python bench/train_step.py [--dataset DIR] [--big] [--full] [--steps N]
                               [--lerobot-python PATH] [--no-loader] [--out FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _machine import machine
from policy_latency import lerobot_column, paired_speedup, peak_rss_mib, reset_peak_rss

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'train_step.json'
GOLDEN_DATASET = ROOT / 'test' / 'data' / 'lerobot_golden' / 'lerobot_dataset_v30'


def _policy(preset: str, expert_only: bool) -> Any:
    import dataclasses

    import torch

    from smolvla_ros.policy.configuration_smolvla import SmolVLAConfig
    from smolvla_ros.policy.policy import SmolVLAPolicy

    config = dataclasses.replace(SmolVLAConfig.preset(preset), train_expert_only=expert_only,
                                 freeze_vision_encoder=expert_only)
    torch.manual_seed(0)
    stats = {'observation.state': {'mean': torch.zeros(6), 'std': torch.ones(6)},
             'action': {'mean': torch.zeros(6), 'std': torch.ones(6)}}
    policy = SmolVLAPolicy(config, stats)
    policy.train()
    return policy


def _batch(policy: Any, b: int) -> dict[str, Any]:
    """A fixed synthetic training batch at the model's resolution."""
    import torch

    cfg = policy.config
    gen = torch.Generator().manual_seed(0)
    # Pre-tokenized language (48 tokens, SmolVLA's max length): smolvla_base's tokenizer is not
    # on this machine, and the step time does not depend on which ids they are.
    vocab = policy.model.vlm_with_expert.vlm.config.text_config.vocab_size
    batch: dict[str, Any] = {
        'observation.state': torch.randn(b, 6, generator=gen),
        'action': torch.randn(b, cfg.chunk_size, 6, generator=gen),
        'observation.language.tokens': torch.randint(0, vocab, (b, cfg.tokenizer_max_length),
                                                     generator=gen),
        'observation.language.attention_mask': torch.ones(b, cfg.tokenizer_max_length,
                                                          dtype=torch.bool)}
    w, h = cfg.resize_imgs_with_padding
    for key in policy.required_image_keys:
        batch[key] = torch.rand(b, 3, h, w, generator=gen)
    return batch


def child_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Time optimizer steps of one geometry (runs in a subprocess), and LeRobot's beside them
    when spec['lerobot'] names its interpreter."""
    import torch

    policy = _policy(spec['preset'], spec['expert_only'])
    b = spec['batch']
    batch = _batch(policy, b)
    params = [p for p in policy.parameters() if p.requires_grad]
    cfg = policy.config  # the preset's optimizer fields: 1e-4, (0.9, 0.95), 1e-8, 1e-10, clip 10
    opt = torch.optim.AdamW(params, lr=cfg.optimizer_lr, betas=cfg.optimizer_betas,
                            eps=cfg.optimizer_eps, weight_decay=cfg.optimizer_weight_decay)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = policy.compute_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.optimizer_grad_clip_norm)
        opt.step()
        return time.perf_counter() - t0

    row: dict[str, Any] = {
        'preset': spec['preset'], 'batch': b, 'expert_only': spec['expert_only'],
        'params': sum(p.numel() for p in policy.parameters()),
        'trained': sum(p.numel() for p in params), 'torch_threads': torch.get_num_threads()}
    row.update(params_m=row['params'] / 1e6, trained_m=row['trained'] / 1e6)
    side: dict[str, Any] | None = None
    with contextlib.ExitStack() as stack:
        if spec.get('lerobot'):
            side, lerobot, fixed = _start_lerobot(spec, policy, batch, row, stack)

        def ask(cmd: str) -> dict[str, Any] | None:
            """LeRobot's reply, or None once its row has failed (a refused count, an error, a
            dead child): ours goes on alone."""
            from _lerobot_column import LeRobotError

            if side is None or side['failed'] is not None:
                return None
            try:
                return lerobot.request(cmd)
            except LeRobotError as exc:
                side['failed'] = str(exc)
                return None

        if side is not None and side['failed'] is None and spec.get('same_weights'):
            loss = policy.compute_loss(batch, noise=fixed['noise'], time=fixed['time'])
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, float('inf'))
            opt.zero_grad(set_to_none=True)
            theirs = ask('grad')
            if theirs is not None:
                side['grad'] = grad_check({'loss': loss.item(), 'grad_norm': norm.item()},
                                          theirs)
        reset_peak_rss()
        for _ in range(spec['warmup']):
            step()
            ask('step')
        times = []
        for _ in range(spec['steps']):
            times.append(step())
            reply = ask('step')
            if reply is not None:
                side['replies'].append(reply)
    med = statistics.median(times)
    row.update(step_s_median=med, step_s_min=min(times), samples_per_s=b / med,
               peak_rss_mib=peak_rss_mib(), times=times)
    if side is not None:
        row['lerobot'] = lerobot_result(row, side)
    return row


def _start_lerobot(spec: dict[str, Any], policy: Any, batch: dict[str, Any],
                   row: dict[str, Any], stack: contextlib.ExitStack) -> tuple[Any, Any, Any]:
    """(LeRobot's side of the row, its peer or None, the fixed noise and flow time): LeRobot's
    policy built in its process from our config (and our weights with spec['same_weights']),
    checked against our counts; a child that fails to start fails LeRobot's row, not ours."""
    from _lerobot_column import LeRobotError, StartedPeer
    import torch

    # SIGTERM as an exit, so that closing the peer removes its temporary directory.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg, b = policy.config, spec['batch']
    gen = torch.Generator().manual_seed(1)
    fixed = {'noise': torch.randn(b, cfg.chunk_size, cfg.max_action_dim, generator=gen),
             'time': torch.rand(b, generator=gen)}
    weights = ({k: v for k, v in policy.state_dict().items() if k.startswith('model.')}
               if spec.get('same_weights') else None)
    try:
        peer = stack.enter_context(StartedPeer(spec['lerobot'], cfg, {**batch, **fixed},
                                               torch.get_num_threads(), train=True,
                                               weights=weights))
    except LeRobotError as exc:
        return {'ready': {}, 'replies': [], 'failed': str(exc)}, None, fixed
    side = {'ready': peer.ready, 'replies': [], 'failed': count_mismatch(row, peer.ready)}
    return side, peer, fixed


def count_mismatch(ours: dict[str, Any], ready: dict[str, Any]) -> str | None:
    """Why LeRobot's policy is not the same model as ours (parameter or trainable-parameter
    count), or None."""
    pairs = (('parameters', ours['params'], ready['params']),
             ('trainable parameters', ours['trained'], ready['trainable']))
    problems = [f'{what}: ours {mine:,}, LeRobot {theirs:,}' for what, mine, theirs in pairs
                if mine != theirs]
    if not problems:
        return None
    return '; '.join(problems) + ': the configs differ, no ratio'


def grad_check(ours: dict[str, float], lerobot: dict[str, float]) -> dict[str, float]:
    """Loss and gradient norm of both at the same weights, batch, noise and flow time."""
    return {'loss_ours': ours['loss'], 'loss_lerobot': lerobot['loss'],
            'loss_rel_diff': abs(ours['loss'] - lerobot['loss']) / abs(lerobot['loss']),
            'grad_norm_ours': ours['grad_norm'], 'grad_norm_lerobot': lerobot['grad_norm'],
            'grad_norm_rel_diff': (abs(ours['grad_norm'] - lerobot['grad_norm'])
                                   / abs(lerobot['grad_norm']))}


def lerobot_result(ours: dict[str, Any], side: dict[str, Any]) -> dict[str, Any]:
    """LeRobot's row beside ours: its step times, the ratios, its peak RSS and versions; only
    the reason when it failed (different counts, a dead child, a non-finite loss)."""
    ready, replies = side['ready'], side['replies']
    out: dict[str, Any] = {
        'params': ready.get('params'), 'trained': ready.get('trainable'),
        'lerobot': ready.get('lerobot'), 'torch': ready.get('torch'),
        'python': ready.get('python'), 'threads': ready.get('threads')}
    if 'grad' in side:
        out['grad_check'] = side['grad']
    failed = side['failed']
    if failed is None and len(replies) != len(ours['times']):
        failed = f'LeRobot answered {len(replies)} of {len(ours["times"])} steps'
    if failed is None and not all(r['finite'] for r in replies):
        failed = 'LeRobot\'s loss was not finite'
    if failed is not None:
        return {**out, 'failed': failed}
    times = [r['s'] for r in replies]
    med = statistics.median(times)
    return {**out, 'step_s_median': med, 'step_s_min': min(times),
            'samples_per_s': ours['batch'] / med, 'times': times,
            'peak_rss_mib': max(r['peak_mib'] for r in replies),
            'ratio': ours['step_s_median'] / med,
            'paired_ratio': paired_speedup(ours['times'], times),  # median of ours_i / LeRobot_i
            'loss_last': replies[-1]['loss']}


def loader_rows(dataset: Path, batch: int, rounds: int) -> list[dict[str, Any]]:
    """Loader alone (cache vs decode) and loader + sim_small step, alternating."""
    from smolvla_training.train.data import TrainingData, open_datasets
    import torch

    readers = open_datasets([str(dataset)])
    reader = readers[0]
    keys = list(reader.video_keys)
    renamed = {k: f'observation.images.cam{i}' for i, k in enumerate(keys)}
    common = dict(image_keys=list(renamed.values()), chunk_size=50, image_size=(96, 96),
                  rename_map=renamed)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        cached = TrainingData(readers, use_cache=True, cache_dir=cache, log=lambda _m: None,
                              **common)
        build_s = time.perf_counter() - t0
        plain = TrainingData(readers, use_cache=False, **common)
        policy = _policy('sim_small', expert_only=False)
        import dataclasses

        from smolvla_ros.policy.configuration_smolvla import PolicyFeature
        from smolvla_ros.policy.policy import SmolVLAPolicy
        cfg = dataclasses.replace(policy.config, input_features={
            **{k: PolicyFeature('VISUAL', (3, 96, 96)) for k in renamed.values()},
            'observation.state': policy.config.input_features['observation.state']})
        policy = SmolVLAPolicy(cfg, {'observation.state': {'mean': torch.zeros(6),
                                                           'std': torch.ones(6)},
                                     'action': {'mean': torch.zeros(6), 'std': torch.ones(6)}})
        policy.train()
        params = [p for p in policy.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        results: dict[str, list[float]] = {k: [] for k in
                                           ('cache', 'decode', 'cache+step', 'decode+step')}
        pos = 0
        for _ in range(rounds):
            for name, data in (('cache', cached), ('decode', plain)):
                for with_step in (False, True):
                    rows = data.rows_for(0, pos, batch)
                    pos += batch
                    t0 = time.perf_counter()
                    b = data.batch(rows)
                    if with_step:
                        opt.zero_grad()
                        policy.compute_loss(b).backward()
                        opt.step()
                    results[name + ('+step' if with_step else '')].append(
                        time.perf_counter() - t0)
    out = []
    for name, times in results.items():
        med = statistics.median(times)
        out.append({'what': name, 'batch': batch, 'samples_per_s': batch / med})
    out.append({'what': 'cache build (once)', 'frames': len(reader), 'seconds': build_s,
                'frames_per_s': len(reader) * len(keys) / build_s})
    return out


def table(steps: list[dict[str, Any]]) -> list[str]:
    """The step rows as text: ours, then LeRobot's beside it when it ran (or why it failed)."""
    lines = [f'{"geometry":<14}{"batch":>6}{"trained":>8}{"side":>9}{"params M":>10}'
             f'{"train M":>9}{"step s":>9}{"samples/s":>11}{"peak MiB":>10}'
             f'{"ours/LeRobot":>14}{"paired":>8}']
    for r in steps:
        head = f'{r["preset"]:<14}{r["batch"]:>6}{"expert" if r["expert_only"] else "all":>8}'
        if 'failed' in r:
            lines.append(f'{head}{"ours":>9}  failed: {r["failed"]}')
            continue
        lines.append(f'{head}{"ours":>9}{r["params_m"]:>10.2f}{r["trained_m"]:>9.2f}'
                     f'{r["step_s_median"]:>9.3f}{r["samples_per_s"]:>11.1f}'
                     f'{r["peak_rss_mib"]:>10.0f}')
        lr = r.get('lerobot')
        if lr is None:
            continue
        blank = ' ' * len(head)
        if 'failed' in lr:
            lines.append(f'{blank}{"LeRobot":>9}  failed: {lr["failed"]}')
            continue
        paired = '-' if lr['paired_ratio'] is None else f'{lr["paired_ratio"]:.2f}'
        lines.append(f'{blank}{"LeRobot":>9}{lr["params"] / 1e6:>10.2f}{lr["trained"] / 1e6:>9.2f}'
                     f'{lr["step_s_median"]:>9.3f}{lr["samples_per_s"]:>11.1f}'
                     f'{lr["peak_rss_mib"]:>10.0f}{lr["ratio"]:>14.2f}{paired:>8}')
        if 'grad_check' in lr:
            g = lr['grad_check']
            lines.append(f'{blank}  same weights, noise, time: loss {g["loss_ours"]:.6f} vs '
                         f'{g["loss_lerobot"]:.6f} (rel {g["loss_rel_diff"]:.1e}), grad norm '
                         f'{g["grad_norm_ours"]:.5f} vs {g["grad_norm_lerobot"]:.5f} '
                         f'(rel {g["grad_norm_rel_diff"]:.1e})')
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dataset', type=Path, default=GOLDEN_DATASET)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--big', action='store_true',
                    help='also the smolvla_base geometry, expert-only (LeRobot\'s default)')
    ap.add_argument('--big-steps', type=int, default=2,
                    help='timed steps for smolvla_base (default 2; about 46 s each on 2 cores)')
    ap.add_argument('--full', action='store_true',
                    help='also smolvla_base with the whole model trained (needs > 24 GiB on CPU)')
    ap.add_argument('--lerobot-python', default=None, metavar='PATH',
                    help='Python of a LeRobot 0.6.1 venv: a LeRobot row beside every geometry '
                    '(default $SMOLVLA_LEROBOT_PYTHON; without either the rows are skipped)')
    ap.add_argument('--no-lerobot', action='store_true',
                    help='skip the LeRobot rows even when $SMOLVLA_LEROBOT_PYTHON is set')
    ap.add_argument('--no-loader', action='store_true', help='skip the loader rows')
    ap.add_argument('--out', type=Path, default=RESULTS, help=f'results JSON (default {RESULTS})')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child_step(json.loads(args.child))))
        return 0
    lerobot_info, lerobot_note = lerobot_column(args)
    if lerobot_info is None:
        if args.lerobot_python:  # asked for by the flag: an error, not a silent skip
            print(f'train_step: {lerobot_note}', file=sys.stderr)
            return 2
        print(f'train_step: no LeRobot rows ({lerobot_note})', file=sys.stderr)
    specs = [{'preset': 'tiny', 'batch': 8, 'expert_only': False},
             {'preset': 'sim_small', 'batch': 8, 'expert_only': False},
             {'preset': 'sim_small', 'batch': 32, 'expert_only': False}]
    if args.big:
        specs.append({'preset': 'smolvla_base', 'batch': 8, 'expert_only': True})
    if args.full:
        specs.append({'preset': 'smolvla_base', 'batch': 8, 'expert_only': False})
    steps = []
    for spec in specs:
        big = spec['preset'] == 'smolvla_base'
        # Our weights go to LeRobot (a file) where that is cheap: not smolvla_base's 450 M.
        spec = {**spec, 'steps': args.big_steps if big else args.steps, 'warmup': 1 if big else 2,
                'lerobot': args.lerobot_python, 'same_weights': not big}
        proc = subprocess.run([sys.executable, __file__, '--child', json.dumps(spec)],
                              capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:  # e.g. killed by the kernel's OOM killer: a row, not an abort
            print(proc.stderr[-2000:], file=sys.stderr)
            steps.append({**spec, 'failed': f'exit {proc.returncode}' + (
                ' (SIGKILL: out of memory?)' if proc.returncode == -9 else '')})
            continue
        steps.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print('\n'.join(table(steps[-1:])[1:]), file=sys.stderr, flush=True)
    loader = [] if args.no_loader else loader_rows(args.dataset, batch=32,
                                                   rounds=max(3, args.steps))
    print('\n'.join(table(steps)))
    if loader:
        print(f'\nloader on {args.dataset} (sim_small resolution 96x96, batch 32):')
    for r in loader:
        if 'samples_per_s' in r:
            print(f'  {r["what"]:<14}{r["samples_per_s"]:>10.1f} samples/s')
        else:
            print(f'  {r["what"]}: {r["frames"]} frames x cameras in {r["seconds"]:.1f} s '
                  f'({r["frames_per_s"]:.0f} frames/s)')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'machine': machine(), 'dataset': str(args.dataset),
                                    'lerobot': lerobot_info, 'steps': steps, 'loader': loader},
                                   indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
