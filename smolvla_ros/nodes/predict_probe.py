"""predict_probe: send PredictChunk requests to a policy server, check and time every answer.

A synthetic observation (``num_cameras`` frames of ``image_size`` pixels, JPEG or raw, six SO-101
joints) is encoded once and sent ``count`` times back to back, each with a new request id and
stamp. Every answer is checked (success, id and stamp echoed, joints, positions shape, and the
number of steps when ``expected_chunk_size`` > 0). Logs p50/p95 round trip and bytes per request.

Exit status: 0 when all ``count`` answers were valid, 1 when any was invalid or timed out, 2 when
the service never appeared within ``wait_timeout_s``, 3 for invalid parameters; a bringup profile
can use it as its "done" node.
"""
from __future__ import annotations

from functools import partial
import sys
import time

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import serialize_message
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.stats import LatencyRecorder
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.observation import ImageEncoding, observation_to_msg
from smolvla_ros.ros.predict import AnswerError, ProbeConfig, check_answer, stamp_request
from smolvla_ros.ros.synthetic import synthetic_observation

EXIT_OK, EXIT_INVALID, EXIT_NO_SERVICE, EXIT_BAD_PARAMETERS = 0, 1, 2, 3



class PredictProbe(Node):
    """Client side of the round-trip diagnostic; ``run()`` returns the exit status."""

    def __init__(self, **kwargs) -> None:
        super().__init__('predict_probe', **kwargs)
        p = partial(read_only_parameter, self)
        self.config = ProbeConfig(
            count=p('count', 100, 'requests to send'),
            num_cameras=p('num_cameras', 3, 'synthetic cameras per observation'),
            image_size=p('image_size', 512, 'square frame size in pixels'),
            jpeg=p('jpeg', True, 'JPEG images (true) or raw rgb8 (false)'),
            jpeg_quality=p('jpeg_quality', 90, 'JPEG quality 1..100'),
            expected_chunk_size=p(
                'expected_chunk_size', 0, 'steps every chunk must have (0: any)'),
            wait_timeout_s=p('wait_timeout_s', 10.0, 'wait for the service, s'),
            request_timeout_s=p('request_timeout_s', 5.0, 'timeout per request, s'),
        )
        self._client = self.create_client(PredictChunk, 'predict_chunk')
        self.service_name = self.resolve_service_name('predict_chunk')  # remapping applied
        self.round_trip = LatencyRecorder(window=self.config.count)
        self.server_ms = LatencyRecorder(window=self.config.count)

    def run(self) -> int:
        """Send ``count`` requests one after the other; the exit status of the probe."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self)
        try:
            return self._run(executor)
        finally:
            executor.shutdown()

    def _run(self, executor: SingleThreadedExecutor) -> int:
        cfg, log = self.config, self.get_logger()
        if not self._client.wait_for_service(timeout_sec=cfg.wait_timeout_s):
            log.error(f'service {self.service_name} not available after '
                      f'{cfg.wait_timeout_s:g} s')
            return EXIT_NO_SERVICE
        servers = self.count_services(self.service_name)
        if servers > 1:
            log.warning(f'{servers} servers offer {self.service_name}: any of them may answer '
                        f'a request; use a ROS_DOMAIN_ID of your own or remap predict_chunk')
        obs = synthetic_observation(
            num_cameras=cfg.num_cameras, image_size=cfg.image_size)
        request = PredictChunk.Request()
        request.observation = observation_to_msg(
            obs, ImageEncoding('jpeg' if cfg.jpeg else 'raw', cfg.jpeg_quality))
        request_bytes = len(serialize_message(request))
        invalid = 0
        for i in range(1, cfg.count + 1):
            stamp_ns = self.get_clock().now().nanoseconds
            stamp_request(request, i, stamp_ns)
            start = time.perf_counter()
            future = self._client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=cfg.request_timeout_s)
            elapsed_ms = (time.perf_counter() - start) * 1e3
            if not future.done():
                self._client.remove_pending_request(future)
                log.error(f'request {i}: no answer within {cfg.request_timeout_s:g} s')
                invalid += 1
                continue
            try:
                chunk = check_answer(future.result(), request_id=i, stamp_ns=stamp_ns,
                                     joint_names=obs.joint_names,
                                     chunk_size=cfg.expected_chunk_size)
            except AnswerError as exc:
                log.error(str(exc))
                invalid += 1
                continue
            self.round_trip.add(elapsed_ms)
            self.server_ms.add(chunk.inference_ms)
        images = f'{cfg.num_cameras}x{cfg.image_size}px ' + (
            f'JPEG q{cfg.jpeg_quality}' if cfg.jpeg else 'raw rgb8')
        log.info(f'{cfg.count - invalid}/{cfg.count} valid answers ({images}, '
                 f'{request_bytes} B per request); round trip {self.round_trip.summary().format()}'
                 f'; server time {self.server_ms.summary().format()}')
        return EXIT_OK if invalid == 0 else EXIT_INVALID


def main(args: list[str] | None = None) -> int:
    """Console script ``predict_probe``; returns the exit status (see the module docstring)."""
    rclpy.init(args=args)
    node = None
    status = EXIT_INVALID
    try:
        node = PredictProbe()
        status = node.run()
    except (ValueError, ParameterException) as exc:  # say which parameter, no traceback
        rclpy.logging.get_logger('predict_probe').error(f'invalid parameters: {exc}')
        status = EXIT_BAD_PARAMETERS
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    sys.exit(main())
