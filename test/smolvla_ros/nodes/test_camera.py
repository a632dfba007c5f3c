"""camera node in-process: topics, sizes, capture stamps, camera_info, measured-rate diagnostics."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from executor_fixtures import Spin, wait_until  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from smolvla_ros.hardware.cameras import CameraConfigError  # noqa: E402
from smolvla_ros.nodes.camera import CameraNode  # noqa: E402
from smolvla_ros.ros.compressed import compressed_to_rgb  # noqa: E402
from smolvla_ros.ros.image import image_to_rgb  # noqa: E402
from smolvla_ros.ros.time import stamp_to_ns  # noqa: E402

pytestmark = pytest.mark.ros


class _Sink:
    def __init__(self, context, name: str) -> None:
        self.node = rclpy.create_node('camera_sink', context=context)
        self.msgs: dict[str, list] = {'raw': [], 'jpeg': [], 'info': [], 'diag': []}
        self._lock = threading.Lock()
        base = f'cameras/{name}'
        for key, kind, topic in (('raw', Image, f'{base}/image_raw'),
                                 ('jpeg', CompressedImage, f'{base}/image_raw/compressed'),
                                 ('info', CameraInfo, f'{base}/camera_info'),
                                 ('diag', DiagnosticArray, '/diagnostics')):
            self.node.create_subscription(kind, topic, self._store(key), 10)

    def _store(self, key: str):
        def store(msg) -> None:
            with self._lock:
                self.msgs[key].append(msg)
        return store


def _camera(context, **params) -> CameraNode:
    return CameraNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {'diagnostics_period_s': 0.3, **params}.items()])


def test_synthetic_camera_publishes_raw_resized_jpeg_and_info(rclpy_context) -> None:
    node = _camera(rclpy_context, name='front', width=64, height=48, fps=30.0,
                   publish_raw=True, compressed_width=32, compressed_height=24)
    sink = _Sink(rclpy_context, 'front')
    try:
        with Spin(rclpy_context, node, sink.node):
            assert wait_until(lambda: len(sink.msgs['jpeg']) >= 10 and sink.msgs['diag'], 20.0)
            assert wait_until(lambda: any(
                s.level == DiagnosticStatus.OK for d in sink.msgs['diag'] for s in d.status), 10)
    finally:
        node.destroy_node()
        sink.node.destroy_node()
    raw, jpeg, info = sink.msgs['raw'][-1], sink.msgs['jpeg'][-1], sink.msgs['info'][-1]
    assert image_to_rgb(raw).shape == (48, 64, 3)
    assert compressed_to_rgb(jpeg).shape == (24, 32, 3) and jpeg.format == 'jpeg'
    assert (info.width, info.height) == (64, 48) and info.header.frame_id == 'front_camera'
    raw_stamps = {stamp_to_ns(m.header.stamp) for m in sink.msgs['raw']}
    jpeg_stamps = [stamp_to_ns(m.header.stamp) for m in sink.msgs['jpeg']]
    assert set(jpeg_stamps) & raw_stamps  # one capture stamp per frame, on every topic
    assert all(b > a for a, b in zip(jpeg_stamps, jpeg_stamps[1:], strict=False))
    values = {kv.key: kv.value for d in sink.msgs['diag'] for s in d.status for kv in s.values}
    assert float(values['fps']) > 0 and values['requested_fps'] == '30'


def test_file_camera_warns_below_the_requested_rate(rclpy_context, tmp_path) -> None:
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (32, 24))
    for i in range(4):
        writer.write(np.full((24, 32, 3), 60 * i, np.uint8))
    writer.release()
    # warn_ratio 2: any rate at or near the requested one is "too slow", so the WARN path shows.
    node = _camera(rclpy_context, name='wrist', source='file', file=str(path), width=0,
                   height=0, fps=20.0, warn_ratio=2.0)
    sink = _Sink(rclpy_context, 'wrist')
    try:
        with Spin(rclpy_context, node, sink.node):
            assert wait_until(lambda: any(
                s.level == DiagnosticStatus.WARN for d in sink.msgs['diag'] for s in d.status),
                20.0)
            assert wait_until(lambda: len(sink.msgs['jpeg']) >= 6, 20.0)  # looped past the end
    finally:
        node.destroy_node()
        sink.node.destroy_node()
    warn = next(s for d in sink.msgs['diag'] for s in d.status
                if s.level == DiagnosticStatus.WARN)
    assert 'below the requested 20 fps' in warn.message
    assert compressed_to_rgb(sink.msgs['jpeg'][-1]).shape == (24, 32, 3)


def test_missing_video_file_fails_at_start(rclpy_context, tmp_path) -> None:
    with pytest.raises(CameraConfigError, match='does not exist'):
        _camera(rclpy_context, source='file', file=str(tmp_path / 'missing.mp4'))
