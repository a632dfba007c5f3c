"""sensor_msgs/JointState <-> arrays, and picking joints by name."""
from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from smolvla_ros.ros.errors import DuplicateJointError, LengthMismatchError, MissingJointError
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state, pick_joints

NAMES = ['shoulder_pan', 'shoulder_lift', 'elbow_flex']


def test_round_trip_with_all_fields() -> None:
    msg = numpy_to_joint_state(NAMES, [0.1, -0.2, 0.3], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0],
                               stamp_ns=3_000_000_007, frame_id='base')
    assert msg.header.frame_id == 'base'
    arrays = joint_state_to_numpy(msg)
    assert arrays.stamp_ns == 3_000_000_007
    assert arrays.names == tuple(NAMES)
    np.testing.assert_array_equal(arrays.position, [0.1, -0.2, 0.3])
    np.testing.assert_array_equal(arrays.velocity, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(arrays.effort, [4.0, 5.0, 6.0])
    assert arrays.position.dtype == np.float64


def test_read_is_a_view_on_the_message() -> None:
    msg = numpy_to_joint_state(NAMES, [0.0, 0.0, 0.0])
    arrays = joint_state_to_numpy(msg)
    msg.position[1] = 42.0
    assert arrays.position[1] == 42.0


def test_missing_velocity_and_effort_are_empty() -> None:
    arrays = joint_state_to_numpy(numpy_to_joint_state(NAMES, [1.0, 2.0, 3.0]))
    assert arrays.velocity.shape == (0,) and arrays.effort.shape == (0,)


def test_message_built_by_hand_is_read() -> None:
    msg = JointState(name=['b', 'a'], position=[2.0, 1.0])
    assert joint_state_to_numpy(msg).positions_in_order(['a', 'b']).tolist() == [1.0, 2.0]


def test_length_mismatch_names_the_field() -> None:
    msg = JointState(name=['a', 'b'], position=[1.0, 2.0], velocity=[1.0])
    with pytest.raises(LengthMismatchError, match=r"velocity has 1 values for 2 names \['a'"):
        joint_state_to_numpy(msg)
    with pytest.raises(LengthMismatchError, match=r'position has shape \(2,\), expected \[3\]'):
        numpy_to_joint_state(NAMES, [1.0, 2.0])


def test_duplicates_are_rejected() -> None:
    with pytest.raises(DuplicateJointError, match=r"\['a'\]"):
        joint_state_to_numpy(JointState(name=['a', 'a'], position=[1.0, 2.0]))
    with pytest.raises(DuplicateJointError):
        numpy_to_joint_state(['a', 'a'], [1.0, 2.0])


def test_pick_reorders_and_ignores_extra_joints() -> None:
    names = ['gripper', 'elbow_flex', 'shoulder_pan', 'extra']
    values = [4.0, 3.0, 1.0, 9.0]
    np.testing.assert_array_equal(
        pick_joints(names, values, ['shoulder_pan', 'elbow_flex', 'gripper']), [1.0, 3.0, 4.0])


def test_pick_names_every_missing_joint() -> None:
    with pytest.raises(MissingJointError) as info:
        pick_joints(['a', 'b'], [1.0, 2.0], ['a', 'wrist_roll', 'gripper'])
    assert info.value.missing == ['wrist_roll', 'gripper']
    assert "missing joints ['wrist_roll', 'gripper']; the message has ['a', 'b']" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_pick_checks_lengths() -> None:
    with pytest.raises(LengthMismatchError):
        pick_joints(['a', 'b'], [1.0], ['a'])


def test_positions_in_order_without_positions_fails() -> None:
    arrays = joint_state_to_numpy(JointState(name=['a'], velocity=[1.0]))
    with pytest.raises(LengthMismatchError, match='no positions'):
        arrays.positions_in_order(['a'])
