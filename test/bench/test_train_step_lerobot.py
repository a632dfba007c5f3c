"""The LeRobot rows of bench/train_step.py without LeRobot (docs/training.md, "Benchmarks"): the
parent's checks and ratios, the training spec StartedPeer hands the child, and one tiny geometry
stepped beside a fake child that speaks the training protocol. CI never needs the LeRobot venv.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
import sys
import textwrap

import pytest

BENCH = Path(__file__).resolve().parents[2] / 'bench'
sys.path.insert(0, str(BENCH))

import _lerobot_column as column  # noqa: E402
import train_step  # noqa: E402

OURS = {'preset': 'tiny', 'batch': 8, 'expert_only': False, 'params': 410_000, 'trained': 400_000,
        'params_m': 0.41, 'trained_m': 0.40, 'step_s_median': 0.06, 'samples_per_s': 133.3,
        'peak_rss_mib': 400.0, 'times': [0.05, 0.06, 0.09]}
READY = {'params': 410_000, 'trainable': 400_000, 'lerobot': '0.6.1', 'torch': '2.10.0',
         'python': '3.12.3', 'threads': 2}


def _replies(seconds: list[float], finite: bool = True) -> list[dict]:
    return [{'s': s, 'loss': 1.0, 'finite': finite, 'peak_mib': 500.0 + i}
            for i, s in enumerate(seconds)]


def test_equal_counts_are_no_mismatch() -> None:
    assert train_step.count_mismatch(OURS, READY) is None


def test_a_different_trainable_count_names_both_and_refuses_a_ratio() -> None:
    message = train_step.count_mismatch(OURS, {**READY, 'trainable': 399_999})
    assert message is not None
    assert '400,000' in message and '399,999' in message and 'trainable' in message
    assert 'configs differ' in message and message.startswith('trainable')


def test_the_lerobot_row_has_both_ratios_and_its_peak() -> None:
    row = train_step.lerobot_result(OURS, {'ready': READY, 'failed': None,
                                           'replies': _replies([0.10, 0.12, 0.30])})
    assert row['step_s_median'] == 0.12
    assert row['ratio'] == pytest.approx(0.06 / 0.12)
    assert row['paired_ratio'] == pytest.approx(0.5)  # 0.05/0.10, 0.06/0.12, 0.09/0.30
    assert row['peak_rss_mib'] == 502.0 and row['samples_per_s'] == pytest.approx(8 / 0.12)
    assert row['trained'] == 400_000 and row['lerobot'] == '0.6.1'


@pytest.mark.parametrize('side, reason', [
    ({'failed': 'trainable parameters: ours 1, LeRobot 2: the configs differ, no ratio',
      'replies': []}, 'configs differ'),
    ({'failed': None, 'replies': _replies([0.1, 0.1])}, 'answered 2 of 3'),
    ({'failed': None, 'replies': _replies([0.1, 0.1, 0.1], finite=False)}, 'not finite'),
])
def test_a_failed_lerobot_row_has_a_reason_and_no_ratio(side: dict, reason: str) -> None:
    row = train_step.lerobot_result(OURS, {'ready': READY, **side})
    assert reason in row['failed'] and 'ratio' not in row and 'step_s_median' not in row


def test_the_grad_check_gives_relative_differences() -> None:
    check = train_step.grad_check({'loss': 1.01, 'grad_norm': 2.0},
                                  {'loss': 1.0, 'grad_norm': 4.0})
    assert check['loss_rel_diff'] == pytest.approx(0.01)
    assert check['grad_norm_rel_diff'] == pytest.approx(0.5)


def test_the_table_puts_lerobot_under_ours() -> None:
    lerobot = train_step.lerobot_result(OURS, {'ready': READY, 'failed': None,
                                               'replies': _replies([0.10, 0.12, 0.30])})
    lines = train_step.table([{**OURS, 'lerobot': lerobot},
                              {**OURS, 'lerobot': {'failed': 'LeRobot child exited (code -9)'}},
                              {**OURS, 'failed': 'exit -9 (SIGKILL: out of memory?)'}])
    assert len(lines) == 6
    assert lines[1].startswith('tiny') and 'ours' in lines[1]
    assert 'LeRobot' in lines[2] and lines[2].split()[-2:] == ['0.50', '0.50']
    assert 'failed: LeRobot child exited' in lines[4]
    assert 'failed: exit -9' in lines[5]


def test_an_unusable_lerobot_python_flag_is_an_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    # Checked before any geometry is built: returns at once.
    assert train_step.main(['--lerobot-python', str(tmp_path / 'none'), '--no-loader',
                            '--out', str(tmp_path / 'out.json')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert not (tmp_path / 'out.json').exists()


# Speaks the training protocol of bench/_lerobot_child.py; its counts come from the test.
FAKE_TRAIN_CHILD = textwrap.dedent('''
    import json, os, sys
    from safetensors import safe_open
    spec = json.loads(sys.argv[1])
    weights = spec['train']['weights']
    with safe_open(spec['inputs'], 'pt') as f:
        inputs = sorted(f.keys())
    keys = []
    if weights:
        with safe_open(weights, 'pt') as f:
            keys = sorted(f.keys())
    print(json.dumps({'ready': True, 'params': int(os.environ['FAKE_PARAMS']),
                      'trainable': int(os.environ['FAKE_TRAINABLE']), 'spec': spec,
                      'inputs': inputs, 'weight_keys': len(keys),
                      'all_model': all(k.startswith('model.') for k in keys)}), flush=True)
    n = 0
    for line in sys.stdin:
        cmd = json.loads(line)['cmd']
        if cmd == 'quit':
            print(json.dumps({'bye': True}), flush=True)
            break
        if cmd == 'grad':
            reply = {'loss': 1.5, 'grad_norm': 3.0}
        elif cmd == 'step':
            n += 1
            reply = {'s': 0.001 * n, 'loss': 1.0, 'finite': True, 'peak_mib': 123.0}
        else:
            reply = {'error': f'unknown command {cmd!r}'}
        print(json.dumps(reply), flush=True)
''')


@pytest.fixture
def fake_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / 'fake_train_child.py'
    script.write_text(FAKE_TRAIN_CHILD)
    monkeypatch.setattr(column, 'StartedPeer', functools.partial(column.StartedPeer,
                                                                 script=script))
    monkeypatch.setattr(train_step.signal, 'signal', lambda *_: None)  # leave pytest's SIGTERM


def _tiny_counts() -> tuple[int, int]:
    policy = train_step._policy('tiny', expert_only=False)
    return (sum(p.numel() for p in policy.parameters()),
            sum(p.numel() for p in policy.parameters() if p.requires_grad))


SPEC = {'preset': 'tiny', 'batch': 2, 'expert_only': False, 'steps': 3, 'warmup': 1,
        'lerobot': sys.executable, 'same_weights': True}


@pytest.mark.usefixtures('fake_peer')
def test_a_tiny_geometry_steps_beside_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    params, trainable = _tiny_counts()
    monkeypatch.setenv('FAKE_PARAMS', str(params))
    monkeypatch.setenv('FAKE_TRAINABLE', str(trainable))
    row = train_step.child_step(SPEC)
    lerobot = row['lerobot']
    assert 'failed' not in lerobot, lerobot
    assert lerobot['times'] == [0.002, 0.003, 0.004]  # after one warm-up step, one per ours
    assert len(row['times']) == 3 and math.isfinite(lerobot['ratio'])
    assert lerobot['grad_check']['loss_lerobot'] == 1.5
    assert math.isfinite(lerobot['grad_check']['loss_ours'])
    assert lerobot['peak_rss_mib'] == 123.0
    json.dumps(row)  # what the parent reads back


@pytest.mark.usefixtures('fake_peer')
def test_a_count_mismatch_fails_the_lerobot_row_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    params, trainable = _tiny_counts()
    monkeypatch.setenv('FAKE_PARAMS', str(params))
    monkeypatch.setenv('FAKE_TRAINABLE', str(trainable - 1))
    row = train_step.child_step(SPEC)
    assert 'trainable parameters' in row['lerobot']['failed']
    assert 'grad_check' not in row['lerobot']
    assert len(row['times']) == 3 and row['step_s_median'] > 0


def test_the_training_spec_carries_the_batch_and_our_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from smolvla_ros.policy import SmolVLAConfig

    script = tmp_path / 'fake_train_child.py'
    script.write_text(FAKE_TRAIN_CHILD)
    monkeypatch.setenv('FAKE_PARAMS', '1')
    monkeypatch.setenv('FAKE_TRAINABLE', '1')
    inputs = {'observation.state': torch.zeros(2, 6), 'noise': torch.zeros(2, 50, 32),
              'time': torch.zeros(2)}
    weights = {'model.a': torch.ones(3), 'model.b': torch.ones(2, 2)}
    with column.StartedPeer(sys.executable, SmolVLAConfig.preset('tiny'), inputs, 2, train=True,
                            weights=weights, script=script) as peer:
        ready = peer.ready
        workdir = peer.workdir
    assert ready['spec']['train']['weights'].endswith('weights.safetensors')
    assert ready['weight_keys'] == 2 and ready['all_model']
    assert ready['inputs'] == ['noise', 'observation.state', 'time']
    assert not workdir.exists()  # removed on close
