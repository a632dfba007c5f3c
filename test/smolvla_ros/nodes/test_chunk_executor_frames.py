"""chunk_executor and hostile camera frames: refused by their header at arrival, or when they do
not decode, counted per camera, never sent to the policy; good frames resume requests."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from executor_fixtures import FakeRobot, Spin, wait_until, write_contract  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from smolvla_ros.nodes.chunk_executor import ChunkExecutor  # noqa: E402
from smolvla_ros.ros.buffers import to_array  # noqa: E402
from smolvla_ros.ros.compressed import encode_jpeg, rgb_to_compressed  # noqa: E402
from smolvla_ros.ros.synthetic import synthetic_scene  # noqa: E402

pytestmark = pytest.mark.ros
FPS = 20.0


def _jpeg_message(data: bytes) -> CompressedImage:
    msg = CompressedImage(format='jpeg')
    msg.data = to_array(data, np.uint8)
    return msg


def _claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header rewritten to claim width x height pixels."""
    sof = jpeg.index(b'\xff\xc0')
    return jpeg[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big') + jpeg[sof + 9:]


def _status_messages(context) -> tuple[object, list[str]]:
    """A node that collects every /diagnostics status message into the returned list."""
    watcher = rclpy.create_node('diagnostics_watcher', context=context)
    messages: list[str] = []
    watcher.create_subscription(DiagnosticArray, '/diagnostics',
                                lambda m: messages.extend(s.message for s in m.status), 10)
    return watcher, messages


def test_bombs_and_truncated_scans_are_refused_and_never_sent(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS, camera_max_age_s=0.3)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=20, delay_s=0.05)
    good = encode_jpeg(synthetic_scene(48, 64, seed=2), 90)  # the contract's 64x48
    robot.frame = _jpeg_message(_claiming(good, 4000, 3000))  # a decompression bomb
    node = ChunkExecutor(context=rclpy_context, parameter_overrides=[
        Parameter('contract_file', value=contract), Parameter('task', value='test'),
        Parameter('request_timeout_s', value=1.0), Parameter('diagnostics_period_s', value=0.2)])
    watcher, messages = _status_messages(rclpy_context)
    try:
        with Spin(rclpy_context, robot, node, watcher):
            assert wait_until(lambda: node.frames_rejected['front'] >= 5, 20.0)
            assert robot.requests == [], 'a request was built from an oversized frame'
            # The status says why nothing happens, not just that the camera is missing.
            assert wait_until(lambda: any('4000x3000' in m for m in messages), 10.0), messages
            # The header is fine, the scan is cut short: refused when decoded for a request.
            rejected = node.frames_rejected['front']
            robot.frame = _jpeg_message(good[:len(good) // 2] + b'\xff\xd9')
            assert wait_until(lambda: node.frames_rejected['front'] >= rejected + 3, 20.0)
            assert robot.requests == [], 'a request was built from a truncated frame'
            assert node.core.metrics().stale_observations >= 3
            robot.frame = rgb_to_compressed(synthetic_scene(48, 64, seed=2))
            assert wait_until(lambda: len(robot.requests) >= 2, 20.0)
    finally:
        watcher.destroy_node()
        node.destroy_node()
        robot.destroy_node()


def test_a_missing_policy_is_named_in_the_status(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS, camera_max_age_s=0.3)
    robot = FakeRobot(rclpy_context, fps=FPS, serve=False)  # streams, but no policy server
    node = ChunkExecutor(context=rclpy_context, parameter_overrides=[
        Parameter('contract_file', value=contract), Parameter('diagnostics_period_s', value=0.2),
        Parameter('policy_service', value='no_policy_here')])
    watcher, messages = _status_messages(rclpy_context)
    try:
        with Spin(rclpy_context, robot, node, watcher):
            assert wait_until(lambda: any(
                'waiting for a first chunk: policy service no_policy_here not available' in m
                for m in messages), 20.0), messages
    finally:
        watcher.destroy_node()
        node.destroy_node()
        robot.destroy_node()
