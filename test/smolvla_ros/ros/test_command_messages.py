"""The executor's command in each controller's message type (smolvla_ros.ros.commands)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from smolvla_ros.ros.commands import (  # noqa: E402
    COMMAND_INTERFACES,
    MESSAGE_TYPES,
    check_interface,
    command_message,
)
from smolvla_ros.ros.joint_state import joint_state_to_numpy  # noqa: E402

NAMES = ('shoulder_pan', 'shoulder_lift', 'gripper')
POSITION = np.array([0.1, -0.25, 0.75])
DUE_NS = 1_700_000_000_123_456_789
PERIOD_NS = 33_333_333


def test_joint_state_carries_names_positions_and_due_stamp() -> None:
    msg = command_message('joint_state', NAMES, POSITION, DUE_NS, PERIOD_NS)
    js = joint_state_to_numpy(msg)
    assert js.names == NAMES and js.stamp_ns == DUE_NS
    np.testing.assert_array_equal(js.position, POSITION)


def test_forward_position_is_the_plain_vector_in_contract_order() -> None:
    msg = command_message('forward_position', NAMES, POSITION, DUE_NS, PERIOD_NS)
    assert list(msg.data) == POSITION.tolist()


def test_joint_trajectory_is_one_named_point_one_period_ahead_starting_now() -> None:
    msg = command_message('joint_trajectory', NAMES, POSITION, DUE_NS, PERIOD_NS)
    assert list(msg.joint_names) == list(NAMES)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (0, 0)
    (point,) = msg.points
    assert list(point.positions) == POSITION.tolist()
    assert (point.time_from_start.sec, point.time_from_start.nanosec) == (0, PERIOD_NS)


@pytest.mark.parametrize('interface', COMMAND_INTERFACES)
def test_every_interface_serializes_as_its_declared_type(interface: str) -> None:
    msg = command_message(interface, NAMES, POSITION, DUE_NS, PERIOD_NS)
    kind = MESSAGE_TYPES[interface]
    assert isinstance(msg, kind)
    assert deserialize_message(serialize_message(msg), kind) == msg


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="command_interface must be one of .*'trajectory'"):
        check_interface('trajectory')
    with pytest.raises(ValueError, match=r'shape \(2,\), expected \(3,\)'):
        command_message('forward_position', NAMES, POSITION[:2], DUE_NS, PERIOD_NS)
    with pytest.raises(ValueError, match='period_ns must be > 0'):
        command_message('joint_trajectory', NAMES, POSITION, DUE_NS, 0)
    with pytest.raises(ValueError, match='command_interface must be one of'):
        command_message('effort', NAMES, POSITION, DUE_NS, PERIOD_NS)
