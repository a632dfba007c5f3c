"""oracle_policy_server: ``predict_chunk`` answered by the scripted expert (simulation only).

Subscribes to the simulator's privileged ``sim/cube_pose`` and answers every PredictChunk with
the expert's chunk from the observation's joint state (rad), stamped with the observation time,
like policy_server would (sim/oracle.py). An ``extra_latency_ms`` sleep emulates a slower policy
for the sync-vs-async experiment. No torch; the default policy of the simulated profiles until a
trained checkpoint ships.
"""
from __future__ import annotations

import sys
import threading
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.contract import default_contract_path, load_contract
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.ros.chunk import chunk_to_msg
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.observation import msg_to_observation
from smolvla_ros.sim.oracle import OracleConfig, OraclePolicy
from smolvla_ros.sim.world import CubePose


class OraclePolicyServer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('policy_server', **kwargs)
        p = self._param
        contract_file = p('contract_file', '', 'robot contract YAML (empty: config/contracts)')
        chunk_size = p('chunk_size', 50, 'actions per chunk')
        self.extra_latency_s = p('extra_latency_ms', 0.0, 'sleep added to every answer') / 1e3
        contract = load_contract(contract_file or default_contract_path())
        self.oracle = OraclePolicy(OracleConfig(chunk_size=chunk_size, dt=contract.dt))
        self._cube: CubePose | None = None
        self._lock = threading.Lock()
        self.create_subscription(PoseStamped, 'sim/cube_pose', self._on_cube, 10)
        self._service = self.create_service(PredictChunk, 'predict_chunk', self._on_request)
        self.get_logger().info(f'oracle serving {self._service.srv_name}: chunk {chunk_size} x '
                               f'{contract.dt * 1e3:.1f} ms, extra latency '
                               f'{self.extra_latency_s * 1e3:g} ms')

    def _param(self, name: str, default, description: str):
        is_float = isinstance(default, float)
        value = self.declare_parameter(name, default, ParameterDescriptor(
            description=description, read_only=True, dynamic_typing=is_float)).value
        return float(value) if is_float else value

    def _on_cube(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        with self._lock:
            self._cube = CubePose(np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z]))

    def _on_request(self, request: PredictChunk.Request, response: PredictChunk.Response):
        start = time.monotonic()
        msg = request.observation
        response.chunk.request_id = msg.request_id
        response.chunk.header.stamp = msg.header.stamp
        with self._lock:
            cube = self._cube
        try:
            if cube is None:
                raise RuntimeError('no sim/cube_pose received yet (is so101_sim running?)')
            chunk = self.oracle.predict(msg_to_observation(msg), cube)
        except (ConversionError, ValueError, RuntimeError) as exc:
            response.success, response.message = False, f'{type(exc).__name__}: {exc}'
            self.get_logger().warning(response.message, throttle_duration_sec=1.0)
            return response
        wait = self.extra_latency_s - (time.monotonic() - start)
        if wait > 0:
            time.sleep(wait)
        response.chunk = chunk_to_msg(chunk)
        response.chunk.inference_ms = (time.monotonic() - start) * 1e3
        response.success = True
        return response


def main(args: list[str] | None = None) -> int:
    return run_node(OraclePolicyServer, 'oracle_policy_server', args,
                    setup_errors=(ValueError, RuntimeError), threads=2)


if __name__ == '__main__':
    sys.exit(main())
