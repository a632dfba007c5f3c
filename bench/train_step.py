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

    python bench/train_step.py [--dataset DIR] [--big] [--full] [--steps N]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'train_step.json'
GOLDEN_DATASET = ROOT / 'test' / 'data' / 'lerobot_golden' / 'lerobot_dataset_v30'


def _peak_rss_mib() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return float('nan')


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


def child_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Time optimizer steps of one geometry (runs in a subprocess)."""
    import torch

    policy = _policy(spec['preset'], spec['expert_only'])
    cfg, b = policy.config, spec['batch']
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
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-10)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = policy.compute_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()

    for _ in range(spec['warmup']):
        step()
    times = []
    for _ in range(spec['steps']):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {'preset': spec['preset'], 'batch': b, 'expert_only': spec['expert_only'],
            'params_m': sum(p.numel() for p in policy.parameters()) / 1e6,
            'trained_m': sum(p.numel() for p in params) / 1e6,
            'step_s_median': med, 'step_s_min': min(times), 'samples_per_s': b / med,
            'peak_rss_mib': _peak_rss_mib(), 'torch_threads': torch.get_num_threads()}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dataset', type=Path, default=GOLDEN_DATASET)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--big', action='store_true',
                    help='also the smolvla_base geometry, expert-only (LeRobot\'s default)')
    ap.add_argument('--full', action='store_true',
                    help='also smolvla_base with the whole model trained (needs > 24 GiB on CPU)')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child_step(json.loads(args.child))))
        return 0
    specs = [{'preset': 'tiny', 'batch': 8, 'expert_only': False},
             {'preset': 'sim_small', 'batch': 8, 'expert_only': False},
             {'preset': 'sim_small', 'batch': 32, 'expert_only': False}]
    if args.big:
        specs.append({'preset': 'smolvla_base', 'batch': 8, 'expert_only': True})
    if args.full:
        specs.append({'preset': 'smolvla_base', 'batch': 8, 'expert_only': False})
    steps = []
    for spec in specs:
        spec = {**spec, 'steps': args.steps if spec['preset'] != 'smolvla_base' else 2,
                'warmup': 2 if spec['preset'] != 'smolvla_base' else 1}
        proc = subprocess.run([sys.executable, __file__, '--child', json.dumps(spec)],
                              capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:  # e.g. killed by the kernel's OOM killer: a row, not an abort
            print(proc.stderr[-2000:], file=sys.stderr)
            steps.append({**spec, 'failed': f'exit {proc.returncode}' + (
                ' (SIGKILL: out of memory?)' if proc.returncode == -9 else '')})
            continue
        steps.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    loader = loader_rows(args.dataset, batch=32, rounds=max(3, args.steps))
    print(f'{"geometry":<14}{"batch":>6}{"trained":>10}{"params M":>10}{"step s":>9}'
          f'{"samples/s":>11}{"peak MiB":>10}')
    for r in steps:
        if 'failed' in r:
            print(f'{r["preset"]:<14}{r["batch"]:>6}{"expert" if r["expert_only"] else "full":>10}'
                  f'  failed: {r["failed"]}')
            continue
        print(f'{r["preset"]:<14}{r["batch"]:>6}{"expert" if r["expert_only"] else "full":>10}'
              f'{r["params_m"]:>10.2f}{r["step_s_median"]:>9.3f}{r["samples_per_s"]:>11.1f}'
              f'{r["peak_rss_mib"]:>10.0f}')
    print(f'\nloader on {args.dataset} (sim_small resolution 96x96, batch 32):')
    for r in loader:
        if 'samples_per_s' in r:
            print(f'  {r["what"]:<14}{r["samples_per_s"]:>10.1f} samples/s')
        else:
            print(f'  {r["what"]}: {r["frames"]} frames x cameras in {r["seconds"]:.1f} s '
                  f'({r["frames_per_s"]:.0f} frames/s)')
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({'machine': machine(), 'dataset': str(args.dataset),
                                   'steps': steps, 'loader': loader}, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
