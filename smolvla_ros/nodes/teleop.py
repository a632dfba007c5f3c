"""teleop: leader ``leader/joint_states`` -> follower ``joint_commands``, one per leader message.

Each follower joint is ``scale * leader + offset`` (rad); ``inverted`` flips a joint, and joints in
``range_mapped`` (the gripper by default, as LeRobot maps it 0..100 on both arms) stretch the
leader's calibrated range onto the follower's, which needs both calibration files. The mapping
itself is :mod:`smolvla_ros.hardware.arm.teleop_mapping`; this file only wires ROS to it.
"""
from __future__ import annotations

from functools import partial
import sys

from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.hardware.arm.arm_config import ArmJoints
from smolvla_ros.hardware.arm.teleop_mapping import TeleopMapping, build_mapping
from smolvla_ros.hardware.feetech.errors import FeetechError
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state


def _ranges(path: str) -> dict[str, tuple[float, float]]:
    """Calibrated joint ranges (rad) from a LeRobot calibration file."""
    joints = ArmJoints.from_calibration(load_calibration(path))
    return {n: (float(lo), float(hi))
            for n, lo, hi in zip(joints.names, joints.lower, joints.upper, strict=True)}


class Teleop(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('teleop', **kwargs)
        p = partial(read_only_parameter, self)
        joints = p('joints', list(SO101_MOTOR_IDS), 'follower joints to command, in order')
        leader_joints = p('leader_joints', Parameter.Type.STRING_ARRAY,
                          'leader joint feeding each follower joint (default: same names)')
        offsets = p('offsets_rad', Parameter.Type.DOUBLE_ARRAY, 'offset per joint (rad)')
        inverted = p('inverted', Parameter.Type.BOOL_ARRAY, 'invert each joint (true/false)')
        range_mapped = p('range_mapped', Parameter.Type.STRING_ARRAY,
                         "joints whose leader range maps onto the follower's (e.g. [gripper])")
        leader_cal = p('leader_calibration_file', '', 'leader calibration (for range_mapped)')
        follower_cal = p('follower_calibration_file', '', 'follower calibration (range_mapped)')
        self.mapping: TeleopMapping = build_mapping(
            joints, offsets or (), inverted or (), leader_joints or (), range_mapped or (),
            _ranges(leader_cal) if leader_cal else None,
            _ranges(follower_cal) if follower_cal else None)
        self.forwarded = 0
        self._pub = self.create_publisher(JointState, 'joint_commands', 10)
        self.create_subscription(JointState, 'leader/joint_states', self._on_leader, 10)
        text = ', '.join(f'{m.follower_joint} = {m.scale:g} * {m.leader_joint} + {m.offset:g}'
                         for m in self.mapping.joints)
        self.get_logger().info(f'mapping: {text}')

    def _on_leader(self, msg: JointState) -> None:
        try:
            js = joint_state_to_numpy(msg)
            command = self.mapping.apply(dict(zip(js.names, js.position.tolist(), strict=True)))
        except ValueError as exc:
            self.get_logger().warning(f'leader state ignored: {exc}', throttle_duration_sec=1.0)
            return
        if not command:
            self.get_logger().warning(f'leader state has none of the mapped joints: {js.names}',
                                      throttle_duration_sec=5.0)
            return
        names = list(command)
        self._pub.publish(numpy_to_joint_state(
            names, [command[n] for n in names], stamp_ns=self.get_clock().now().nanoseconds))
        self.forwarded += 1


def main(args: list[str] | None = None) -> int:
    return run_node(Teleop, 'teleop', args, setup_errors=(ValueError, FeetechError))


if __name__ == '__main__':
    sys.exit(main())
