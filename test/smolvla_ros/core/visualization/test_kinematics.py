"""Forward kinematics: hand-computed poses of a toy arm, properties of the SO-101 chain, and the
same joint angles through MuJoCo's kinematics of the simulator's SO-101 model."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smolvla_ros.core.visualization.kinematics import (
    TIP_LINK,
    ForwardKinematics,
    axis_angle_matrices,
)
from smolvla_ros.core.visualization.urdf_model import UrdfError, parse_urdf

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')

# Planar 2-link arm: base -> (z 0.05) yaw joint about z -> 0.1 m along x -> pitch... kept planar:
# both joints rotate about z, links 0.1 m and 0.2 m along x, tip frame 0.2 m past joint 2.
TOY = '''<robot name="toy">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="tip"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.05"/><axis xyz="0 0 1"/><limit lower="-3" upper="3"/></joint>
  <joint name="j2" type="continuous"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.1 0 0"/><axis xyz="0 0 1"/></joint>
  <joint name="t" type="fixed"><parent link="l2"/><child link="tip"/>
    <origin xyz="0.2 0 0" rpy="0 0 0"/></joint>
</robot>'''


def test_toy_arm_matches_hand_computed_positions() -> None:
    fk = ForwardKinematics(parse_urdf(TOY), ['j1', 'j2'])
    q = np.array([[0.0, 0.0], [math.pi / 2, 0.0], [0.3, -1.1], [-2.0, 2.5]])
    tips = fk.tip_positions(q, link='tip')  # [4, 3]
    q1, q2 = q[:, 0], q[:, 1]
    expected = np.stack([0.1 * np.cos(q1) + 0.2 * np.cos(q1 + q2),
                         0.1 * np.sin(q1) + 0.2 * np.sin(q1 + q2),
                         np.full(4, 0.05)], axis=1)
    np.testing.assert_allclose(tips, expected, atol=1e-12)
    # Orientation of the tip: a rotation about z by q1 + q2.
    rot = fk.link_pose(q, 'tip')[:, :3, :3]
    np.testing.assert_allclose(rot, axis_angle_matrices(np.array([0, 0, 1.0]), q1 + q2),
                               atol=1e-12)


def test_single_pose_and_batch_agree() -> None:
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    q = np.random.default_rng(1).uniform(-1, 1, (7, 6))
    batch = fk.tip_positions(q)
    assert batch.shape == (7, 3)
    for i in range(7):
        np.testing.assert_allclose(fk.tip_positions(q[i]), batch[i], atol=1e-12)


def test_so101_zero_pose_reaches_forward_and_up() -> None:
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    tip = fk.tip_positions(np.zeros(6))
    # Mid pose of the calibrated ranges: the arm stretches forward (+x) above the base.
    assert 0.3 < tip[0] < 0.45
    assert abs(tip[1]) < 1e-3
    assert 0.15 < tip[2] < 0.3


def test_so101_pan_rotates_tip_about_the_pan_axis_and_gripper_does_not_move_it() -> None:
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    pan_axis_xy = fk.link_pose(np.zeros(6), 'shoulder_link')[:2, 3]  # [2] pan axis is vertical
    q = np.array([0.0, 0.4, -0.7, 0.5, 0.2, 0.0])
    base = fk.tip_positions(q)
    for pan in (-1.2, 0.5, 1.8):
        moved = fk.tip_positions(q + np.array([pan, 0, 0, 0, 0, 0]))
        r0 = base[:2] - pan_axis_xy
        r1 = moved[:2] - pan_axis_xy
        assert moved[2] == pytest.approx(base[2], abs=1e-9)
        assert np.linalg.norm(r1) == pytest.approx(np.linalg.norm(r0), abs=1e-9)
        angle = math.atan2(r1[1], r1[0]) - math.atan2(r0[1], r0[0])
        assert math.remainder(abs(angle) - abs(pan), 2 * math.pi) == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(fk.tip_positions(q + np.array([0, 0, 0, 0, 0, 1.0])), base,
                               atol=1e-12)


def test_bad_inputs_raise_specific_errors() -> None:
    with pytest.raises(UrdfError, match='not movable joints'):
        ForwardKinematics.from_urdf(joint_names=['shoulder_pan', 'elbow'])
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    with pytest.raises(ValueError, match=r'q must be \[N, 6\]'):
        fk.tip_positions(np.zeros((3, 5)))
    with pytest.raises(UrdfError, match='no link'):
        fk.link_pose(np.zeros(6), 'hand')
    assert TIP_LINK in fk.model.links


def test_matches_mujoco_kinematics_of_the_simulator_model() -> None:
    mujoco = pytest.importorskip('mujoco')
    from smolvla_ros.sim.assets import robot_mjcf_path
    from smolvla_ros.sim.scene import GRASP_SITE

    model = mujoco.MjModel.from_xml_path(str(robot_mjcf_path()))
    data = mujoco.MjData(model)
    qadr = [model.joint(n).qposadr[0] for n in JOINTS]
    ranges = model.jnt_range[[model.joint(n).id for n in JOINTS]]  # [6, 2]
    site = model.site(GRASP_SITE).id
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    rng = np.random.default_rng(0)
    samples = np.vstack([np.zeros(6), rng.uniform(ranges[:, 0], ranges[:, 1], (40, 6))])
    poses = fk.link_pose(samples)  # [41, 4, 4]
    for q, pose in zip(samples, poses, strict=True):
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        err_mm = 1000 * np.linalg.norm(pose[:3, 3] - data.site_xpos[site])
        assert err_mm < 2.0, f'tip position differs by {err_mm:.3f} mm at q={q}'
        np.testing.assert_allclose(pose[:3, :3], data.site_xmat[site].reshape(3, 3), atol=1e-3)


def test_joint_transforms_chain_to_the_link_poses() -> None:
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    q = np.array([0.4, -0.3, 0.8, -0.6, 1.1, 0.2])
    poses = fk.link_poses(q)
    tree = fk.joint_transforms(q)
    assert len(tree) == len(fk.model.joints)
    for parent, child, t in tree:
        np.testing.assert_allclose(poses[parent] @ t, poses[child], atol=1e-12)


@pytest.mark.parametrize('angle', [0.0, 0.7, math.pi - 1e-9, 2.5])
@pytest.mark.parametrize('axis', [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -2, 0.5)])
def test_matrix_to_quaternion_matches_axis_angle(angle: float, axis: tuple) -> None:
    from smolvla_ros.core.visualization.kinematics import matrix_to_quaternion

    u = np.array(axis, dtype=np.float64) / np.linalg.norm(axis)
    q = matrix_to_quaternion(axis_angle_matrices(u, np.array([angle]))[0])
    expected = np.append(u * math.sin(angle / 2), math.cos(angle / 2))
    np.testing.assert_allclose(q, expected, atol=1e-7)
