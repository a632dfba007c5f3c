"""The executor's per-tick position command in the message its arm's controller listens to.

Why: our Feetech driver and the simulator take ``sensor_msgs/JointState`` on ``joint_commands``, but
most ROS 2 arms are driven through ros2_control, whose stock controllers take other types, and the
executor should drive any of them. The chunk executor computes one position vector per tick (rad,
contract joint order, due at ``due_ns``); this module is the one place that turns it into what the
controller expects:

- ``joint_state``: ``sensor_msgs/JointState``, joints by name, ``header.stamp`` = due time (our
  driver, the simulator, and any node that reads named joint commands);
- ``forward_position``: ``std_msgs/Float64MultiArray`` for ros2_control's
  ``position_controllers/JointGroupPositionController`` (``forward_command_controller``), topic
  ``<controller>/commands``. The message carries no names: the controller's ``joints`` list must
  be in the contract's joint order (docs/async_inference.md);
- ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` for ``joint_trajectory_controller``,
  topic ``<controller>/joint_trajectory``: one point with the joint names, reached
  ``time_from_start`` = one control period after the controller receives it (a zero header stamp
  means "start now"), so the controller interpolates between ticks and each tick's message
  replaces the last (streaming).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from smolvla_ros.ros.joint_state import numpy_to_joint_state
from smolvla_ros.ros.time import ns_to_duration

COMMAND_INTERFACES = ('joint_state', 'forward_position', 'joint_trajectory')
MESSAGE_TYPES = {'joint_state': JointState, 'forward_position': Float64MultiArray,
                 'joint_trajectory': JointTrajectory}


def check_interface(interface: str) -> str:
    """``interface`` if it is one of COMMAND_INTERFACES, else a ValueError naming the choices."""
    if interface not in COMMAND_INTERFACES:
        raise ValueError(f'command_interface must be one of {COMMAND_INTERFACES}, got '
                         f'{interface!r}')
    return interface


def command_message(interface: str, names: Sequence[str], position: np.ndarray, due_ns: int,
                    period_ns: int) -> JointState | Float64MultiArray | JointTrajectory:
    """The command for one tick: ``position`` [J] rad in ``names`` order, due at ``due_ns``.

    ``period_ns`` (the control period) is the trajectory point's time_from_start.
    """
    position = np.asarray(position, dtype=np.float64)  # [J]
    if position.shape != (len(names),):
        raise ValueError(f'position has shape {position.shape}, expected ({len(names)},) for '
                         f'joints {list(names)}')
    if interface == 'joint_state':
        return numpy_to_joint_state(names, position, stamp_ns=due_ns)
    if interface == 'forward_position':
        return Float64MultiArray(data=position.tolist())
    if interface == 'joint_trajectory':
        if period_ns <= 0:
            raise ValueError(f'period_ns must be > 0, got {period_ns}')
        point = JointTrajectoryPoint(positions=position.tolist(),
                                     time_from_start=ns_to_duration(period_ns))
        return JointTrajectory(joint_names=list(names), points=[point])  # stamp 0: start now
    check_interface(interface)
    raise AssertionError('unreachable')
