"""feetech_driver: an SO-100/SO-101 arm on a Feetech STS3215 bus as ROS topics.

Publishes ``joint_states`` (rad, rad/s, N m) at ``rate_hz`` and ``/diagnostics``; a follower also
takes ``joint_commands`` (joints by name, partial allowed) and serves ``enable_torque``
(std_srvs/SetBool). All logic (safety clamps, watchdog, retries, faults, reconnects) lives in
:mod:`smolvla_ros.hardware.arm.arm_control`; this file declares parameters and wires ROS to it.
The bus is served from one timer: nothing blocks outside the executor.
"""
from __future__ import annotations

from functools import partial
import sys

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.hardware.arm.arm_config import ArmConfig, Role
from smolvla_ros.hardware.arm.arm_control import ArmController, ArmState, TorqueRequestError
from smolvla_ros.hardware.feetech.bus import FeetechBus, Motor
from smolvla_ros.hardware.feetech.errors import FeetechError
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.diagnostics import diagnostic_array, diagnostic_status
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state

# ArmConfig field -> description; defaults come from ArmConfig itself (one source of truth).
ARM_PARAMETERS = {
    'role': "'follower' (commanded, may hold torque) or 'leader' (read only, always limp)",
    'rate_hz': 'bus cycle and joint_states rate (Hz)',
    'max_step_rad': 'largest change of a goal per cycle (rad); 0 disables',
    'command_timeout_s': 'a joint command older than this is not re-applied (s)',
    'max_consecutive_errors': 'failed cycles in a row before torque off and FAULT',
    'reconnect_interval_s': 'seconds between attempts to reopen a lost port',
    'read_velocity_effort': 'read Present_Velocity/Present_Load every cycle',
    'health_period_s': 'period of temperature/voltage/status reads (s)',
    'torque_off_on_shutdown': 'turn torque off when the node stops',
    'write_calibration': "write the file's offsets/limits to the servos when they differ",
    'range_tolerance_rad': 'how far outside its range a joint may read when enabling (rad)',
    'effort_scale_nm': 'effort (N m) reported at 100 % Present_Load; 0 leaves effort empty',
    'configure_servos': "write LeRobot's servo setup (return delay, PID, gripper limits)",
    'enable_torque_on_start': 'enable torque once connected (follower only)',
    'stall_load': 'stall protection: |Present_Load| (fraction, 0..1) that counts; 0 = off',
    'stall_joints': 'joints stall protection watches (default all but the gripper)',
    'stall_position_tolerance_rad': 'stall: |goal - present| that counts as not reaching (rad)',
    'stall_timeout_s': 'stall: how long load and error must both persist before it trips (s)',
}


class FeetechDriver(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('feetech_driver', **kwargs)
        p = partial(read_only_parameter, self)
        port = p('port', '', 'serial port of the servo bus, e.g. /dev/ttyACM0')
        baudrate = p('baudrate', 1_000_000, 'bus baud rate')
        cal_file = p('calibration_file', '', 'LeRobot calibration JSON of this arm')
        retries = p('bus_retries', 2, 'retries per transfer before it counts as failed')
        timeout_ms = p('bus_timeout_ms', 50.0, 'reply timeout margin per transfer (ms)')
        diag_period = p('diagnostics_period_s', 1.0, '/diagnostics period (s)')
        defaults = ArmConfig()
        values = {name: p(name, _ros_default(getattr(defaults, name)), text)
                  for name, text in ARM_PARAMETERS.items()}
        self.config = ArmConfig(**values)
        if not port:
            raise ValueError('parameter port is required (e.g. port:=/dev/ttyACM0)')
        if not cal_file:
            raise ValueError('parameter calibration_file is required (run smolvla-ros calibrate)')
        calibration = load_calibration(cal_file)
        bus = FeetechBus(port, {n: Motor(c.id) for n, c in calibration.items()}, baudrate,
                         retries=retries, timeout_ms=timeout_ms)
        self.arm = ArmController(bus, calibration, self.config)
        self._diag_name = f'{self.get_fully_qualified_name()} ({port})'
        self._pending_enable = self.config.enable_torque_on_start

        self._js_pub = self.create_publisher(JointState, 'joint_states', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if self.config.role is Role.FOLLOWER:
            self.create_subscription(JointState, 'joint_commands', self._on_command, 10)
        self.create_service(SetBool, 'enable_torque', self._on_enable_torque)
        if not self.arm.connect():  # a port that is not there yet is retried by the timer
            self.get_logger().warning(f'{self.arm.fault_reason}; retrying')
        self.create_timer(self.config.period_s, self._on_cycle)
        self.create_timer(diag_period, self._publish_diagnostics)
        self.get_logger().info(
            f'{self.config.role.value} on {port} at {self.config.rate_hz:g} Hz, '
            f'joints {list(self.arm.joints.names)}')

    def _on_cycle(self) -> None:
        was = self.arm.state
        fresh = self.arm.cycle()
        if self.arm.state is not was:
            log = self.get_logger()
            text = f'state {was.value} -> {self.arm.state.value}'
            reason = f': {self.arm.fault_reason}' if self.arm.fault_reason else ''
            # Two call sites: rclpy refuses a second severity from one call site (it raises).
            if self.arm.state in (ArmState.FAULT, ArmState.TORQUE_LOST, ArmState.STALLED):
                log.error(text + reason)
            else:
                log.info(text + reason)
        if self._pending_enable and self.arm.state is ArmState.IDLE:
            self._try_enable_on_start()
        if fresh:
            arm = self.arm
            self._js_pub.publish(numpy_to_joint_state(
                arm.joints.names, arm.position,
                arm.velocity if self.config.read_velocity_effort else None,
                arm.effort if self.config.read_velocity_effort else None,
                stamp_ns=self.get_clock().now().nanoseconds))

    def _try_enable_on_start(self) -> None:
        try:
            self.arm.enable_torque()
        except TorqueRequestError as exc:
            self.get_logger().warning(f'enable_torque_on_start: {exc}',
                                      throttle_duration_sec=5.0)
            return
        self._pending_enable = False
        self.get_logger().info('torque enabled (enable_torque_on_start)')

    def _on_command(self, msg: JointState) -> None:
        try:
            js = joint_state_to_numpy(msg)
            if js.position.size == 0:
                raise ValueError('joint command without positions')
            self.arm.command(dict(zip(js.names, js.position.tolist(), strict=True)))
        except ValueError as exc:
            self.get_logger().warning(f'joint command ignored: {exc}', throttle_duration_sec=1.0)

    def _on_enable_torque(self, request: SetBool.Request, response: SetBool.Response):
        try:
            if request.data:
                self.arm.enable_torque()
            else:
                self.arm.disable_torque()
        except TorqueRequestError as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().warning(f'enable_torque({request.data}) refused: {exc}')
            return response
        self._pending_enable = False
        response.success = True
        response.message = f'torque {"on" if request.data else "off"}'
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().nanoseconds, [
            diagnostic_status(e.name, e.level, e.message, self._diag_name, e.values)
            for e in self.arm.status().entries(self._diag_name)]))

    def shutdown(self) -> None:
        """Torque off (if configured) and close the port. Idempotent."""
        self.arm.close()

    def destroy_node(self) -> None:
        # Every way out (Ctrl-C, external shutdown, an error, a test) releases the arm first.
        if hasattr(self, 'arm'):  # absent when the setup failed part-way
            self.shutdown()
        super().destroy_node()


def _ros_default(value):
    """ROS parameters are bool/int/float/str or lists: enums become their value."""
    if isinstance(value, tuple):
        return list(value)
    return value.value if isinstance(value, Role) else value


def main(args: list[str] | None = None) -> int:
    return run_node(FeetechDriver, 'feetech_driver', args, setup_errors=(ValueError, FeetechError))


if __name__ == '__main__':
    sys.exit(main())
