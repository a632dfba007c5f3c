"""chunk_executor in-process against a fake robot and an analytic policy (no hardware, no torch).

The policy answers every request with f(stamp + k*dt) after a delay, so in async mode every
joint command must equal f at its own stamp (the due time), up to linear-interpolation error:
that proves the time line, the delay compensation and the
seams at once. Further tests: a stale camera stops requests; a policy that stops answering leaves
the arm holding, and execution resumes when it answers again; bad parameters fail at start.
"""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from executor_fixtures import (  # noqa: E402
    JOINTS,
    FakeRobot,
    Recorder,
    Spin,
    analytic,
    interpolation_bound,
    wait_until,
    write_contract,
)
from rclpy.parameter import Parameter  # noqa: E402

from smolvla_ros.core.executor.executor_core import ExecutorConfig, ExecutorConfigError  # noqa: E402
from smolvla_ros.nodes.chunk_executor import EXECUTOR_PARAMETERS, ChunkExecutor  # noqa: E402

pytestmark = pytest.mark.ros
FPS = 20.0


def _executor(context, contract: str, **params) -> ChunkExecutor:
    overrides = [Parameter('contract_file', value=contract), Parameter('task', value='test'),
                 Parameter('request_timeout_s', value=1.0)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return ChunkExecutor(context=context, parameter_overrides=overrides)


@pytest.mark.parametrize(('control_hz', 'fusion'), [(FPS, 'crossfade'), (50.0, 'crossfade'),
                                                   (50.0, 'rtc')])
def test_commands_follow_the_analytic_policy_at_due_times(rclpy_context, tmp_path, control_hz,
                                                          fusion) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=30, delay_s=0.15)
    node = _executor(rclpy_context, contract, control_hz=control_hz, fusion=fusion)
    recorder = Recorder(rclpy_context)
    try:
        with Spin(rclpy_context, robot, node, recorder):
            # Several chunk seams: a 30-step chunk at 20 fps lasts 1.5 s.
            assert wait_until(lambda: node.core.metrics().chunks_accepted >= 4, 30.0), (
                node.core.metrics())
            first = robot.get_clock().now().nanoseconds
            stale_before = node.core.metrics().stale_observations  # (missing streams at start)
            assert wait_until(lambda: node.core.metrics().seams >= 6, 30.0)
            commands = recorder.since(first)
            snap = node.core.metrics()
    finally:
        for n in (node, robot, recorder):
            n.destroy_node()
    assert len(commands) > 20
    stamps = np.array([c[0] for c in commands])  # [N]
    positions = np.stack([c[1] for c in commands])  # [N, J]
    expected = analytic(stamps)  # [N, J]
    error = np.abs(positions - expected).max()
    # Fusion reads the queued plan at the due times of a chunk stamped off the old grid (linear
    # interpolation: one bound), and ticks between due times interpolate those knots (another).
    bound = interpolation_bound(1.0 / FPS) * (2 if control_hz > FPS else 1)
    assert error <= bound + 1e-5, f'max |command - f(due time)| = {error:.2e} > {bound:.2e}'
    assert snap.starvation_ticks == 0, snap
    assert snap.stale_observations == stale_before and snap.drops == 0, snap
    if fusion == 'rtc':  # the requests carried the delay and the unexecuted tail
        assert any(steps > 0 and delay > 0 for delay, steps in robot.leftovers), robot.leftovers
    else:
        assert all(steps == 0 for _, steps in robot.leftovers), robot.leftovers


def test_stale_camera_stops_requests_and_fresh_frames_resume_them(rclpy_context,
                                                                  tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS, camera_max_age_s=0.3)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=20, delay_s=0.05)
    node = _executor(rclpy_context, contract)
    try:
        with Spin(rclpy_context, robot, node):
            assert wait_until(lambda: node.core.metrics().chunks_accepted >= 2, 30.0)
            robot.camera_on = False
            assert wait_until(lambda: node.core.metrics().stale_observations >= 3, 10.0)
            sent = len(robot.requests)
            stale = node.core.metrics().stale_observations
            assert wait_until(lambda: node.core.metrics().stale_observations >= stale + 5, 10.0)
            assert len(robot.requests) == sent, 'a request was sent with a stale camera'
            robot.camera_on = True
            assert wait_until(lambda: len(robot.requests) > sent, 10.0)
    finally:
        node.destroy_node()
        robot.destroy_node()


def test_silent_policy_holds_the_arm_then_execution_resumes(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=20, delay_s=0.05)
    node = _executor(rclpy_context, contract)
    recorder = Recorder(rclpy_context)
    try:
        with Spin(rclpy_context, robot, node, recorder):
            assert wait_until(lambda: node.core.metrics().chunks_accepted >= 2, 30.0)
            robot.answering = False
            assert wait_until(lambda: node.core.metrics().starvation_ticks >= 10, 10.0)
            held_from = robot.get_clock().now().nanoseconds
            assert wait_until(lambda: node.core.metrics().starvation_ticks >= 20, 10.0)
            held = recorder.since(held_from)
            accepted = node.core.metrics().chunks_accepted
            robot.answering = True
            assert wait_until(lambda: node.core.metrics().chunks_accepted > accepted + 1, 15.0)
            snap = node.core.metrics()
    finally:
        for n in (node, robot, recorder):
            n.destroy_node()
    assert len(held) >= 5
    first = held[0][1]
    assert all(np.array_equal(first, p) for _, p in held), 'the held command moved'
    assert snap.timeouts >= 1, snap


def test_parameters_default_to_the_executor_config_defaults(rclpy_context, tmp_path) -> None:
    """One source of truth: every ExecutorConfig field is a parameter with the dataclass's
    default, or comes from elsewhere for a stated reason (EXECUTOR_PARAMETERS' comment)."""
    from_elsewhere = {'joint_names', 'fps', 'control_hz', 'lower_limits', 'upper_limits',
                      'latency_window'}
    assert set(EXECUTOR_PARAMETERS) | from_elsewhere == {f.name for f in fields(ExecutorConfig)}
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    node = ChunkExecutor(context=rclpy_context,
                         parameter_overrides=[Parameter('contract_file', value=contract)])
    try:
        reference = ExecutorConfig(JOINTS)
        for name in EXECUTOR_PARAMETERS:
            assert node.get_parameter(name).value == getattr(reference, name), name
        assert node.config == replace(reference, fps=FPS, control_hz=FPS)  # 0: contract fps
    finally:
        node.destroy_node()


def test_invalid_mode_fails_at_start(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    with pytest.raises(ExecutorConfigError, match="mode must be one of .* got 'fast'"):
        _executor(rclpy_context, contract, mode='fast')


@pytest.mark.parametrize('interface', ['forward_position', 'joint_trajectory'])
def test_ros2_control_command_interfaces_carry_the_executed_positions(
        rclpy_context, tmp_path, interface: str) -> None:
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=20, delay_s=0.05)
    node = _executor(rclpy_context, contract, command_interface=interface)
    listener = rclpy.create_node('listener', context=rclpy_context)
    commands, executed = [], []
    kind = Float64MultiArray if interface == 'forward_position' else JointTrajectory
    listener.create_subscription(kind, 'joint_commands', commands.append, 100)
    listener.create_subscription(JointState, 'executed_action',
                                 lambda m: executed.append(tuple(m.position)), 100)
    try:
        with Spin(rclpy_context, robot, node, listener):
            assert wait_until(lambda: len(commands) >= 20 and len(executed) >= 20, 30.0)
    finally:
        for n in (node, robot, listener):
            n.destroy_node()
    if interface == 'forward_position':
        vectors = [tuple(m.data) for m in commands]
    else:
        assert all(list(m.joint_names) == list(node.config.joint_names) for m in commands)
        assert all(len(m.points) == 1 for m in commands)
        period_ns = round(1e9 / node.config.control_hz)
        assert {m.points[0].time_from_start.nanosec for m in commands} == {period_ns}
        vectors = [tuple(m.points[0].positions) for m in commands]
    # Each tick publishes the same positions on both topics. Delivery across two topics is not
    # ordered, and either subscription may match first, so only the middle is compared.
    assert set(vectors[5:-5]) <= set(executed)
    assert len(set(vectors)) > 1, 'the commands never moved'


def test_unknown_command_interface_fails_at_start(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    with pytest.raises(ValueError, match='command_interface must be one of'):
        _executor(rclpy_context, contract, command_interface='effort')
