"""null_policy_server: a PredictChunk server without inference, to measure what the link costs.

It answers every ``predict_chunk`` request with a chunk that holds the observed state for
``chunk_size`` steps, after decoding the images (``decode_images``) exactly as a real policy
server would. Point a chunk executor or ``predict_probe`` at it to see the round trip of the
network, DDS and image decoding before any model is involved (``ros2 run smolvla_ros
null_policy_server``). The work per request is ``smolvla_ros.ros.predict.null_answer``;
``/diagnostics`` carries the counts and the p50/p95 server time.
"""
from __future__ import annotations

from functools import partial
import sys

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.stats import LatencyRecorder
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.diagnostics import OK, diagnostic_array, diagnostic_status
from smolvla_ros.ros.observation import codec_pool
from smolvla_ros.ros.predict import NullPolicyConfig, null_answer

LOG_EVERY = 100  # requests between latency log lines


class NullPolicyServer(Node):
    """Serves ``predict_chunk`` with the observed state as the prediction."""

    def __init__(self, **kwargs) -> None:
        super().__init__('null_policy_server', **kwargs)
        p = partial(read_only_parameter, self)
        int_range = [IntegerRange(from_value=1, to_value=100_000, step=1)]
        self.config = NullPolicyConfig(
            chunk_size=p('chunk_size', 50, 'actions per answered chunk',
                                   integer_range=int_range),
            fps=p('fps', 30.0, 'chunk rate; dt = 1/fps seconds',
                            floating_point_range=[FloatingPointRange(
                                from_value=0.1, to_value=10_000.0, step=0.0)]),
            decode_images=p(
                'decode_images', True, 'decode every image like a real server (pays the cost)'),
            decode_threads=p(
                'decode_threads', 1, 'threads decoding JPEG frames in parallel (1: inline)',
                integer_range=int_range),
            policy_id=p('policy_id', 'null', 'policy_id reported in each chunk'),
        )
        self._pool = codec_pool(self.config.decode_threads if self.config.decode_images else 1)
        self._latency = LatencyRecorder(window=LOG_EVERY)
        self._failures = 0
        diag_period = p('diagnostics_period_s', 1.0, '/diagnostics period (s)',
                                  floating_point_range=[FloatingPointRange(
                                      from_value=0.05, to_value=3600.0, step=0.0)])
        self._service = self.create_service(PredictChunk, 'predict_chunk', self._on_request)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # The periodic wake-up also bounds shutdown: rclpy (Kilted wheels) sometimes loses the
        # wake-up of a SIGINT/SIGTERM, and spin() only re-checks the context when it wakes.
        self.create_timer(diag_period, self._publish_diagnostics)
        name = self.resolve_service_name('predict_chunk')  # remapping applied
        self.get_logger().info(
            f'serving {name}: {self.config.chunk_size} steps at '
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

    def _publish_diagnostics(self) -> None:
        summary = self._latency.summary()
        values = {'answered': str(self._latency.total), 'rejected': str(self._failures),
                  'chunk_size': str(self.config.chunk_size),
                  'decode_images': str(self.config.decode_images),
                  **{f'server_time_{k}': f'{v:.2f}' if isinstance(v, float) else str(v)
                     for k, v in summary.as_dict().items()}}
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().nanoseconds, [
            diagnostic_status(f'{self.get_fully_qualified_name()}: null policy', OK,
                              f'serving (no inference); server time {summary.format()}',
                              self.config.policy_id, values)]))

    def destroy_node(self) -> None:
        """Stop the decode threads with the node."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``null_policy_server``; 2 for invalid parameters, 0 on shutdown."""
    return run_node(NullPolicyServer, 'null_policy_server', args,
                    setup_errors=(ValueError, ParameterException))

if __name__ == '__main__':
    sys.exit(main())
