"""Checkpoints are written atomically: a failed save never leaves a `last` that does not load."""
from __future__ import annotations

from pathlib import Path

import pytest
from smolvla_training.train import checkpoints as cp
import torch

from smolvla_ros.policy.policy import SmolVLAPolicy


def _policy_and_optimizer() -> tuple[SmolVLAPolicy, torch.optim.Optimizer]:
    policy = SmolVLAPolicy.from_pretrained('tiny')
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return policy, opt


def test_failed_save_keeps_the_previous_last(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    policy, opt = _policy_and_optimizer()
    gen = torch.Generator().manual_seed(0)
    cp.save(tmp_path, 1, policy, opt, gen, {'samples': 8}, {'steps': 2})
    assert cp.last_step(tmp_path) == 1

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(cp, 'write_json', disk_full)
    with pytest.raises(cp.CheckpointWriteError, match='No space left on device'):
        cp.save(tmp_path, 2, policy, opt, gen, {'samples': 16}, {'steps': 2})
    assert cp.last_step(tmp_path) == 1
    assert not (tmp_path / 'checkpoints' / '000002').exists()
    assert [p.name for p in (tmp_path / 'checkpoints').iterdir() if p.name.startswith('.')] == []
    SmolVLAPolicy.from_pretrained(tmp_path / 'checkpoints' / 'last' / 'pretrained_model')


def test_training_state_round_trips(tmp_path: Path) -> None:
    policy, opt = _policy_and_optimizer()
    gen = torch.Generator().manual_seed(3)
    gen_state = gen.get_state()
    cp.save(tmp_path, 5, policy, opt, gen, {'samples': 40}, {'steps': 9})
    torch.rand(10, generator=gen)
    fresh = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    progress = cp.load_training_state(tmp_path, 5, fresh, gen)
    assert progress == {'step': 5, 'samples': 40}
    assert torch.equal(gen.get_state(), gen_state)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a['param_groups'] == b['param_groups']
    for idx, state in a['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b['state'][idx][name]))
