"""Intervention recording (DAgger): when the expert takes over, that the runner hands the arm
over cleanly, and that the recording starts at the takeover as if it were an episode start."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('rosbags')

from smolvla_ros.core.types import ActionChunkData, ObservationData  # noqa: E402
from smolvla_ros.sim.episode_runner import Handover, RunConfig, run_episode  # noqa: E402
from smolvla_ros.sim.errors import SimConfigError  # noqa: E402
from smolvla_ros.sim.intervention import (  # noqa: E402
    InterventionConfig,
    TakeoverRule,
    draw_takeover_s,
)
from smolvla_ros.sim.oracle import OraclePolicy  # noqa: E402
from smolvla_ros.sim.record import BAG_ORIGIN_NS, RecordConfig  # noqa: E402
from smolvla_ros.sim.world import CubePose, SimWorld  # noqa: E402


class FakeWorld:
    """joint_positions / cube_pose only: what TakeoverRule reads."""

    def __init__(self) -> None:
        self.grip, self.cube_z = 0.9, 0.02

    def joint_positions(self) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, self.grip])

    def cube_pose(self) -> CubePose:
        return CubePose(np.array([0.25, 0.0, self.cube_z]), np.array([1.0, 0, 0, 0]))


def test_takeover_rule_fires_at_its_time_or_after_a_miss_held_long_enough() -> None:
    world = FakeWorld()
    rule = TakeoverRule(at_s=5.0, miss_s=0.3, cube_half_size=0.02)
    assert not rule(world, 1.0)
    world.grip = 0.0  # closed on nothing, cube on the table
    assert not rule(world, 1.1) and not rule(world, 1.3)
    world.grip = 0.9  # re-opened in time: the miss is forgotten
    assert not rule(world, 1.35)
    world.grip = 0.0
    assert not rule(world, 1.4) and not rule(world, 1.6)
    assert rule(world, 1.7) and rule.reason == 'miss'

    lifted = TakeoverRule(at_s=5.0, miss_s=0.3, cube_half_size=0.02)
    world.cube_z = 0.1  # jaws closed while the cube is up: not a miss (e.g. squeezed flat)
    assert not lifted(world, 1.0) and not lifted(world, 2.0)
    assert lifted(world, 5.0) and lifted.reason == 'time'

    never = TakeoverRule(at_s=5.0, miss_s=0.0, cube_half_size=0.02)
    world.cube_z = 0.02
    assert not never(world, 1.0) and not never(world, 4.9) and never(world, 5.0)


def test_takeover_time_is_seeded_and_within_its_range() -> None:
    config = InterventionConfig('ckpt', takeover_s=(1.0, 4.0))
    draws = [draw_takeover_s(seed, config) for seed in range(50)]
    assert draws == [draw_takeover_s(seed, config) for seed in range(50)]
    assert all(1.0 <= d <= 4.0 for d in draws) and len(set(draws)) == 50
    with pytest.raises(SimConfigError, match='takeover_s'):
        InterventionConfig('ckpt', takeover_s=(3.0, 1.0))
    with pytest.raises(SimConfigError, match='miss_s'):
        InterventionConfig('ckpt', miss_s=-1.0)


class HoldPolicy:
    """Holds the observed state; counts its requests."""

    def __init__(self) -> None:
        self.stamps: list[int] = []

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        self.stamps.append(observation.stamp_ns)
        positions = np.tile(observation.state, (50, 1)).astype(np.float32)  # [50, 6]
        return ActionChunkData(stamp_ns=observation.stamp_ns, request_id=observation.request_id,
                               joint_names=observation.joint_names, dt=1 / 30,
                               positions=positions, policy_id='hold')


def test_handover_drops_the_plan_and_the_expert_finishes_the_task() -> None:
    world = SimWorld()
    hold = HoldPolicy()
    oracle = OraclePolicy(scene=world.scene, model=world.model)
    answered: list[str] = []

    class Spy:
        def predict(self, observation, cube):
            chunk = oracle.predict(observation, cube)
            answered.append(chunk.policy_id)
            return chunk

    handover = Handover(Spy(), due=lambda w, t: t >= 1.0)
    result = run_episode(world, hold, RunConfig(latency_s=0.1, timeout_s=12.0), seed=7,
                         handover=handover)
    assert handover.at_s == pytest.approx(1.0, abs=1 / 30 + 1e-9)
    assert hold.stamps and max(hold.stamps) < handover.at_s * 1e9  # nothing asked after
    assert answered and set(answered) == {'oracle'}
    assert result.success and result.completion_s > handover.at_s


@pytest.fixture(scope='module')
def sim_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny SmolVLA with the simulator's features (a stand-in for the shipped one)."""
    pytest.importorskip('torch')
    from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy
    from smolvla_ros.policy.configuration_smolvla import PolicyFeature

    image = PolicyFeature('VISUAL', (3, 64, 64))
    features = {'observation.images.front': image, 'observation.images.wrist': image,
                'observation.state': PolicyFeature('STATE', (6,))}
    config = dataclasses.replace(SmolVLAConfig.preset('tiny'), input_features=features)
    path = tmp_path_factory.mktemp('ckpt') / 'sim_tiny'
    SmolVLAPolicy(config).save_pretrained(path)
    return path


def test_recording_starts_at_the_takeover_like_an_episode_start(sim_checkpoint: Path) -> None:
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.sim.record import EpisodeRecorder

    contract = load_contract(default_contract_path())
    takeover = InterventionConfig(str(sim_checkpoint), takeover_s=(1.5, 1.5), miss_s=0.0)
    recorder = EpisodeRecorder(RecordConfig(intervention=takeover, timeout_s=12.0), contract)
    try:
        rec = recorder.record(11)
    finally:
        recorder.close()
    assert rec.takeover == 'time' and rec.takeover_s == pytest.approx(1.5, abs=1 / 30 + 1e-9)
    line = rec.summary()
    assert line['takeover'] == 'time' and line['success'] == rec.success
    stamps = {topic: [t for t, tp, _ in rec.messages if tp == topic]
              for topic in recorder.topics}
    state, action, task, event = list(recorder.topics)[:4]
    cameras = list(recorder.topics)[4:]
    # Everything before the takeover is gone; the takeover is t = 0 of the bag.
    assert min(t for t, _, _ in rec.messages) == BAG_ORIGIN_NS
    assert stamps[state][0] == BAG_ORIGIN_NS and stamps[task] == [BAG_ORIGIN_NS]
    assert stamps[event][0] == BAG_ORIGIN_NS
    for cam in cameras:
        assert stamps[cam][0] == BAG_ORIGIN_NS
        assert np.allclose(np.diff(stamps[cam]), 1e8, atol=2)  # 10 Hz from the takeover
    assert rec.camera_frames == len(stamps[cameras[0]])
    # The expert's commands follow on the 30 Hz grid from the takeover (after its latency).
    assert 0 < (stamps[action][0] - BAG_ORIGIN_NS) <= 0.2e9
    ticks = (np.array(stamps[action]) - BAG_ORIGIN_NS) * 30 / 1e9
    assert np.allclose(ticks, np.rint(ticks), atol=1e-6)
    end = stamps[event][-1] - BAG_ORIGIN_NS
    assert end == pytest.approx(rec.result.duration_s * 1e9, abs=2e6)
    assert rec.result.duration_s < 12.0 + 1e-6  # measured from the takeover, not the reset


def test_cli_refuses_a_directory_that_is_no_policy_and_a_bad_takeover_range(
        tmp_path: Path, caplog) -> None:
    from smolvla_ros.cli.main import main
    rc = main(['sim-record', '--episodes', '1', '--out', str(tmp_path / 'a'),
               '--intervene', str(tmp_path)])
    assert rc == 2 and 'not a policy directory' in caplog.text
    (tmp_path / 'config.json').write_text('{}')
    rc = main(['sim-record', '--episodes', '1', '--out', str(tmp_path / 'b'),
               '--intervene', str(tmp_path), '--takeover-s', '4'])
    assert rc == 2 and '--takeover-s must be LO,HI' in caplog.text
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()
