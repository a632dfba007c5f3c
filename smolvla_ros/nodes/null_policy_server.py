"""null_policy_server: a PredictChunk server without inference, to measure what the link costs.

It answers every ``predict_chunk`` request with a chunk that holds the observed state for
``chunk_size`` steps, after decoding the images (``decode_images``) exactly as a real policy
server would. Point a chunk executor or ``predict_probe`` at it to see the round trip of the
network, DDS and image decoding before any model is involved (``ros2 run smolvla_ros
null_policy_server``). The work per request is ``smolvla_ros.ros.predict.null_answer``.
"""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.stats import LatencyRecorder
from smolvla_ros.ros.observation import decode_pool
from smolvla_ros.ros.predict import NullPolicyConfig, null_answer

LOG_EVERY = 100  # requests between latency log lines


class NullPolicyServer(Node):
    """Serves ``predict_chunk`` with the observed state as the prediction."""

    def __init__(self, **kwargs) -> None:
        super().__init__('null_policy_server', **kwargs)
        self.config = NullPolicyConfig(
            chunk_size=self.declare_parameter('chunk_size', 50, ParameterDescriptor(
                description='actions per answered chunk', read_only=True,
                integer_range=[IntegerRange(from_value=1, to_value=10000, step=1)])).value,
            fps=self.declare_parameter('fps', 30.0, ParameterDescriptor(
                description='chunk rate; dt = 1/fps seconds', read_only=True,
                floating_point_range=[FloatingPointRange(
                    from_value=0.1, to_value=10000.0, step=0.0)])).value,
            decode_images=self.declare_parameter('decode_images', True, ParameterDescriptor(
                description='decode every image like a real server (pays the decode cost)',
                read_only=True)).value,
            decode_threads=self.declare_parameter('decode_threads', 4, ParameterDescriptor(
                description='threads decoding JPEG frames in parallel (1: inline)',
                read_only=True, integer_range=[IntegerRange(from_value=1, to_value=64, step=1)])
            ).value,
            policy_id=self.declare_parameter('policy_id', 'null', ParameterDescriptor(
                description='policy_id reported in each chunk', read_only=True)).value,
        )
        self._pool = decode_pool(self.config.decode_threads if self.config.decode_images else 1)
        self._latency = LatencyRecorder(window=LOG_EVERY)
        self._failures = 0
        self._service = self.create_service(PredictChunk, 'predict_chunk', self._on_request)
        self.get_logger().info(
            f'serving {self._service.srv_name}: {self.config.chunk_size} steps at '
            f'{self.config.fps:g} fps, decode_images={self.config.decode_images} '
            f'({self.config.decode_threads} threads)')

    def _on_request(
        self, request: PredictChunk.Request, response: PredictChunk.Response
    ) -> PredictChunk.Response:
        answer = null_answer(request.observation, self.config, self._pool)
        if answer.success:
            self._latency.add(answer.chunk.inference_ms)
        else:
            self._failures += 1
            self.get_logger().warning(
                f'request {request.observation.request_id} rejected: {answer.message}',
                throttle_duration_sec=1.0)
        if self._latency.total and self._latency.total % LOG_EVERY == 0 and answer.success:
            self.get_logger().info(
                f'{self._latency.total} answered, {self._failures} rejected; server time '
                f'{self._latency.summary().format()}')
        return answer

    def destroy_node(self) -> None:
        """Stop the decode threads with the node."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Console script ``null_policy_server``."""
    rclpy.init(args=args)
    node = None
    try:
        node = NullPolicyServer()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
