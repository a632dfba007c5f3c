"""`smolvla-train` end to end on LeRobot-made data: fine-tune, overfit, resume, data parallel."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import DATASET, run_train
import numpy as np
import pytest
from safetensors.torch import load_file
import torch

from smolvla_ros.policy.policy import SmolVLAPolicy

pytestmark = pytest.mark.slow


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / 'checkpoints' / f'{step:06d}' / 'pretrained_model'
                         / 'model.safetensors'))


def test_finetune_lerobot_checkpoint_on_lerobot_dataset(tmp_path: Path,
                                                        golden_checkpoint: Path) -> None:
    out = tmp_path / 'run'
    res = run_train('--dataset', str(DATASET), '--init', str(golden_checkpoint), '--out', str(out),
                    '--steps', '20', '--batch-size', '4', '--save-every', '10', '--log-every', '5',
                    '--val-episodes', '2', '--cache-dir', str(tmp_path / 'cache'))
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = out / 'checkpoints' / '000020'
    assert (out / 'checkpoints' / 'last').resolve() == ckpt.resolve()
    assert (out / 'checkpoints' / 'best').resolve().parent == ckpt.parent
    for name in ('optimizer_state.safetensors', 'optimizer_param_groups.json',
                 'scheduler_state.json', 'rng_state.safetensors', 'training_step.json'):
        assert (ckpt / 'training_state' / name).is_file(), name
    assert json.loads((ckpt / 'pretrained_model' / 'train_config.json').read_text())['steps'] == 20

    policy = SmolVLAPolicy.from_pretrained(ckpt / 'pretrained_model')  # loads back
    assert policy.config.chunk_size == 10
    before = load_file(str(golden_checkpoint / 'model.safetensors'))
    after = _weights(out, 20)
    assert set(after) == set(before)
    vlm = [k for k in before if k.startswith('model.vlm_with_expert.vlm.')]
    expert = [k for k in before if k.startswith('model.vlm_with_expert.lm_expert.')]
    assert vlm and expert
    assert all(torch.equal(before[k], after[k]) for k in vlm), 'a frozen VLM weight changed'
    moved = [k for k in expert + ['model.action_out_proj.weight', 'model.state_proj.weight']
             if not torch.equal(before[k], after[k])]
    assert len(moved) > len(expert) // 2, f'only {moved} moved'

    rows = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows if 'loss' in r] == [5, 10, 15, 20]
    assert [r['step'] for r in rows if 'val_loss' in r] == [10, 20]
    assert (out / 'training.png').stat().st_size > 1000

    chunk = policy.predict_chunk({
        'observation.state': torch.zeros(1, 6), 'task': 'pick',
        'observation.images.top': torch.rand(1, 3, 48, 64),
        'observation.images.wrist': torch.rand(1, 3, 48, 64)})
    assert chunk.shape == (1, 10, 6) and torch.isfinite(chunk).all()
    _serves_like_policy_server(ckpt / 'pretrained_model')


def _serves_like_policy_server(directory: Path) -> None:
    """Load and answer through policy/serving.py, the code policy_server runs (no ROS here)."""
    from smolvla_ros.core.inference.inference_worker import InferenceWorker, WorkerConfig
    from smolvla_ros.core.inference.policy_io import PolicyIO, parse_rename_map
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.core.robot.dataset_units import DatasetUnits
    from smolvla_ros.policy.serving import load_policy, predict_fn, warmup_observation

    contract = load_contract(default_contract_path())
    io = PolicyIO(contract, DatasetUnits.from_contract(contract),
                  parse_rename_map('front=observation.images.top', contract))
    policy = load_policy(str(directory), io)
    worker = InferenceWorker(predict_fn(policy), io, WorkerConfig(policy.config.chunk_size))
    try:
        chunk = worker.answer(warmup_observation(io))
    finally:
        worker.shutdown()
    assert chunk.positions.shape == (10, 6) and np.isfinite(chunk.positions).all()


def test_short_overfit_lowers_the_loss_on_a_fixed_batch(tmp_path: Path,
                                                        golden_checkpoint: Path) -> None:
    from smolvla_training.train.data import TrainingData, open_datasets

    out = tmp_path / 'run'
    res = run_train('--dataset', str(DATASET), '--init', str(golden_checkpoint), '--out', str(out),
                    '--episodes', '0', '--steps', '40', '--batch-size', '8', '--lr', '1e-3',
                    '--warmup-steps', '0', '--save-every', '40',
                    '--cache-dir', str(tmp_path / 'cache'))
    assert res.returncode == 0, res.stderr[-3000:]

    def fixed_loss(directory: Path) -> float:
        policy = SmolVLAPolicy.from_pretrained(directory)
        data = TrainingData(open_datasets([str(DATASET)]), image_keys=policy.required_image_keys,
                            chunk_size=policy.config.chunk_size, image_size=(64, 64),
                            episodes=[0], use_cache=False)
        batch = data.batch(data.rows[:8])
        gen = torch.Generator().manual_seed(0)
        noise = torch.randn(8, policy.config.chunk_size, policy.config.max_action_dim,
                            generator=gen)
        time = torch.full((8,), 0.5)
        with torch.no_grad():
            return float(policy.compute_loss(batch, noise=noise, time=time))

    start = fixed_loss(golden_checkpoint)
    end = fixed_loss(out / 'checkpoints' / 'last' / 'pretrained_model')
    assert end < 0.5 * start, (start, end)


def test_resume_after_a_kill_continues_bit_for_bit(tmp_path: Path,
                                                   golden_checkpoint: Path) -> None:
    args = ['--dataset', str(DATASET), '--init', str(golden_checkpoint), '--steps', '6',
            '--batch-size', '3', '--save-every', '3', '--log-every', '1', '--augment',
            '--cache-dir', str(tmp_path / 'cache')]
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    assert run_train(*args, '--out', str(straight)).returncode == 0
    res = run_train(*args, '--out', str(killed))
    assert res.returncode == 0, res.stderr[-3000:]
    # What a kill between the saves of step 3 and step 6 leaves on disk: `last` -> 000003.
    import shutil
    shutil.rmtree(killed / 'checkpoints' / '000006')
    (killed / 'checkpoints' / 'last').unlink()
    (killed / 'checkpoints' / 'last').symlink_to('000003')
    res = run_train('--resume', '--out', str(killed))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _weights(straight, 6), _weights(killed, 6)
    assert all(torch.equal(a[k], b[k]) for k in a), 'resumed weights differ'
    state = "checkpoints/000006/training_state/optimizer_state.safetensors"
    opt_a = load_file(str(straight / state))
    opt_b = load_file(str(killed / state))
    assert all(torch.equal(opt_a[k], opt_b[k]) for k in opt_a)
    rows = [json.loads(x) for x in (killed / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows if 'loss' in r] == [1, 2, 3, 4, 5, 6]


def test_two_processes_match_one_process_with_the_doubled_batch(
        tmp_path: Path, golden_checkpoint: Path) -> None:
    args = ['--dataset', str(DATASET), '--init', str(golden_checkpoint), '--steps', '4',
            '--save-every', '4', '--log-every', '1', '--cache-dir', str(tmp_path / 'cache')]
    one = run_train(*args, '--batch-size', '4', '--out', str(tmp_path / 'one'))
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_train(*args, '--batch-size', '2', '--out', str(tmp_path / 'two'), torchrun=2)
    assert two.returncode == 0, two.stderr[-3000:]

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / 'metrics.jsonl').read_text().splitlines()
        return [json.loads(x)['loss'] for x in lines if 'loss' in json.loads(x)]

    assert losses('one') == pytest.approx(losses('two'), rel=1e-5)
    a, b = _weights(tmp_path / 'one', 4), _weights(tmp_path / 'two', 4)
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst
