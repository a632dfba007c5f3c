"""camera: one camera (OpenCV device, looping video file, or synthetic test pattern) as ROS topics.

Publishes ``cameras/<name>/image_raw`` (sensor_msgs/Image, rgb8), ``.../image_raw/compressed``
(JPEG, optionally resized) and ``.../camera_info`` (size only: this node does not calibrate), all
stamped with the node-clock time at which the frame was captured. A capture thread blocks on the
source (sources pace themselves, see hardware/cameras/base.py), so nothing blocks the executor;
the capture statistics that thread and the diagnostics share are kept under one lock
(docs/ARCHITECTURE.md, "Threading"). ``/diagnostics`` reports the measured frame rate and warns
below ``warn_ratio`` x ``fps``.
"""
from __future__ import annotations

from functools import partial
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from smolvla_ros.core.observation.stream_rates import ArrivalWindow
from smolvla_ros.hardware.cameras import CameraError, CameraSourceConfig, make_source
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.opencv import cv2
from smolvla_ros.ros.compressed import rgb_to_compressed
from smolvla_ros.ros.diagnostics import OK, WARN, diagnostic_array, diagnostic_status
from smolvla_ros.ros.image import numpy_to_image
from smolvla_ros.ros.time import ns_to_stamp


class CameraNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__('camera', **kwargs)
        p = partial(read_only_parameter, self)
        self.name = p('name', 'front', 'camera name: topics are cameras/<name>/...')
        self.source_config = CameraSourceConfig(
            kind=p('source', 'synthetic', "'synthetic', 'device' or 'file'"),
            device=p('device', '0', "device index or path (source 'device')"),
            file=p('file', '', "video path (source 'file')"),
            width=p('width', 640, 'frame width (0: the source size)'),
            height=p('height', 480, 'frame height (0: the source size)'),
            fps=p('fps', 30.0, 'requested frame rate (0: the source rate)'),
            loop=p('loop', True, 'replay the file from the start when it ends'))
        self.publish_raw = p('publish_raw', True, 'publish image_raw (rgb8)')
        self.publish_compressed = p('publish_compressed', True, 'publish image_raw/compressed')
        self.jpeg_quality = p('jpeg_quality', 90, 'JPEG quality 1..100')
        size = (p('compressed_width', 0, 'resize JPEG frames to this width (0: no resize)'),
                p('compressed_height', 0, 'resize JPEG frames to this height (0: no resize)'))
        self.compressed_size = size if size[0] > 0 and size[1] > 0 else None
        self.frame_id = p('frame_id', '', 'header.frame_id (empty: <name>_camera)') or (
            f'{self.name}_camera')
        self.warn_ratio = p('warn_ratio', 0.9, 'warn when the rate is below this x fps')
        diag_period = p('diagnostics_period_s', 1.0, '/diagnostics period (s)')
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality}')

        self.source = make_source(self.source_config)
        self.source.connect()  # CameraError: fail fast at start, with what could not be opened
        base = f'cameras/{self.name}'
        self._raw_pub = self.create_publisher(Image, f'{base}/image_raw', 2)
        self._jpeg_pub = self.create_publisher(CompressedImage, f'{base}/image_raw/compressed', 2)
        self._info_pub = self.create_publisher(CameraInfo, f'{base}/camera_info', 2)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # Written by the capture thread, read by diagnostics: every access holds _capture_lock.
        self._capture_lock = threading.Lock()
        self.rate = ArrivalWindow(2.0)  # capture times
        self.frames = 0
        self.errors = 0
        self._last_error = ''
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name='capture', daemon=True)
        self.create_timer(diag_period, self._publish_diagnostics)
        self._thread.start()
        self.get_logger().info(f'{self.source.description} -> {base}/image_raw'
                               f'{"[/compressed]" if self.publish_compressed else ""}')

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except CameraError as exc:
                with self._capture_lock:
                    self.errors += 1
                    self._last_error = str(exc)
                self.get_logger().error(f'capture failed: {exc}', throttle_duration_sec=2.0)
                time.sleep(0.2)  # a lost device is retried, not spun on
                continue
            stamp_ns = self.get_clock().now().nanoseconds
            with self._capture_lock:
                self.rate.add(round(frame.capture_monotonic_s * 1e9))
                self.frames += 1
            if self._stop.is_set():
                break
            self.publish_frame(frame.rgb, stamp_ns)

    def publish_frame(self, rgb, stamp_ns: int) -> None:
        """Publish one RGB frame [H, W, 3] on every enabled topic with the capture stamp."""
        h, w = rgb.shape[:2]
        if self.publish_raw:
            self._raw_pub.publish(numpy_to_image(rgb, 'rgb8', stamp_ns=stamp_ns,
                                                 frame_id=self.frame_id))
        if self.publish_compressed:
            small = rgb
            if self.compressed_size is not None and (w, h) != self.compressed_size:
                small = cv2.resize(rgb, self.compressed_size, interpolation=cv2.INTER_AREA)
            self._jpeg_pub.publish(rgb_to_compressed(small, quality=self.jpeg_quality,
                                                     stamp_ns=stamp_ns, frame_id=self.frame_id))
        info = CameraInfo(width=w, height=h)
        info.header.stamp = ns_to_stamp(stamp_ns)
        info.header.frame_id = self.frame_id
        self._info_pub.publish(info)

    def _publish_diagnostics(self) -> None:
        with self._capture_lock:
            fps = self.rate.rate_hz(time.monotonic_ns())
            frames, errors, last_error = self.frames, self.errors, self._last_error
        wanted = self.source_config.fps
        level, text = OK, f'{fps:.1f} fps'
        if wanted and fps < self.warn_ratio * wanted:
            level = WARN
            text = f'{fps:.1f} fps, below the requested {wanted:g} fps'
        if errors and last_error:
            text += f'; last error: {last_error}'
        values = {'fps': f'{fps:.2f}', 'requested_fps': f'{wanted:g}', 'frames': str(frames),
                  'errors': str(errors), 'source': self.source.description}
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().nanoseconds, [
            diagnostic_status(f'{self.get_fully_qualified_name()}: {self.name}', level, text,
                              self.source.description, values)]))

    def destroy_node(self) -> None:
        if hasattr(self, '_thread'):  # absent when the setup failed part-way
            self._stop.set()
            self._thread.join(timeout=2.0)
            self.source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``camera``; exit 2 when the source cannot be opened or a parameter is bad."""
    return run_node(CameraNode, 'camera', args, setup_errors=(ValueError, CameraError))


if __name__ == '__main__':
    sys.exit(main())
