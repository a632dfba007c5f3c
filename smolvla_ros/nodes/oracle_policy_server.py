"""oracle_policy_server: ``predict_chunk`` answered by the scripted expert (simulation only).

Subscribes to the simulator's privileged ``sim/cube_pose`` and answers every PredictChunk with
the expert's chunk from the observation's joint state (rad), stamped with the observation time,
like policy_server would (sim/oracle.py). An ``extra_latency_ms`` wait emulates a slower policy
for the sync-vs-async experiment. No torch; the default policy of the simulated profiles until a
trained checkpoint ships.

Threads, as in policy_server (docs/ARCHITECTURE.md, "Threading"): every callback runs on the
executor thread; the service callback is a coroutine that takes the latest cube pose, decodes the
observation and hands both to the ``oracle`` thread, which runs the expert and then waits out the
rest of ``extra_latency_ms``; the callback awaits that (node_main.ThreadResult). So
``sim/cube_pose`` keeps being received during the emulated latency, and the pose needs no lock:
the thread gets the pose object current when the request arrived, which the executor thread
replaces but never changes. One request at a time: the service has a mutually exclusive group of
its own and the next request waits in its queue.

A cube the expert cannot reach (IKError, e.g. pushed out of the workspace) would otherwise be
answered with a failure for ever while the arm holds: the failure answer names it, and the server
publishes ``sim/give_up`` once per episode (the episode number from the simulator's
``sim/episode`` events), on which so101_sim records a failure and starts the next episode.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
import json
import sys
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from smolvla_msgs.srv import PredictChunk
from std_msgs.msg import String

from smolvla_ros.core.robot.contract import default_contract_path, load_contract
from smolvla_ros.core.types import ActionChunkData, ObservationData
from smolvla_ros.nodes.node_main import ThreadResult, run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.observation import msg_to_observation
from smolvla_ros.ros.predict import chunk_answer, failed_answer
from smolvla_ros.sim.errors import IKError
from smolvla_ros.sim.oracle import OracleConfig, OraclePolicy
from smolvla_ros.sim.world import CubePose


class OraclePolicyServer(Node):
    """Serves ``predict_chunk`` with the scripted expert (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('policy_server', **kwargs)
        p = partial(read_only_parameter, self)
        contract_file = p('contract_file', '', 'robot contract YAML (empty: config/contracts)')
        chunk_size = p('chunk_size', 50, 'actions per chunk')
        self.extra_latency_s = p('extra_latency_ms', 0.0, 'sleep added to every answer') / 1e3
        contract = load_contract(contract_file or default_contract_path())
        self.oracle = OraclePolicy(OracleConfig(chunk_size=chunk_size, dt=contract.dt))
        self._cube: CubePose | None = None
        self._pool = ThreadPoolExecutor(1, 'oracle')
        self._result = ThreadResult(self)
        self.create_subscription(PoseStamped, 'sim/cube_pose', self._on_cube, 10)
        self._episode: int | None = None  # the simulator's current episode, once known
        self._gave_up: int | None | bool = False  # the episode given up (False: none yet)
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, 'sim/episode', self._on_episode, latched)
        self._give_up_pub = self.create_publisher(String, 'sim/give_up', 10)
        self._max_sizes = {c: contract.max_frame_size(c) for c in contract.camera_names}
        # A group of its own: an awaiting request holds it, and the pose must still arrive.
        self._service = self.create_service(PredictChunk, 'predict_chunk', self._on_request,
                                            callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f'oracle serving {self._service.srv_name}: chunk {chunk_size} x '
                               f'{contract.dt * 1e3:.1f} ms, extra latency '
                               f'{self.extra_latency_s * 1e3:g} ms')

    def _on_cube(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._cube = CubePose(np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z]))

    def _on_episode(self, msg: String) -> None:
        with suppress(ValueError, TypeError, KeyError):  # else not an event of ours to read
            self._episode = int(json.loads(msg.data)['episode'])

    def _give_up(self, reason: str) -> str:
        """Ask the simulator to end this episode (once per episode); what the answer says."""
        if self._gave_up is not False and self._gave_up == self._episode:
            return f'episode {self._episode} already given up'
        self._gave_up = self._episode
        self._give_up_pub.publish(String(data=json.dumps({'episode': self._episode,
                                                          'reason': reason})))
        self.get_logger().error(f'episode {self._episode}: {reason}; asked so101_sim to end it '
                                '(sim/give_up)')
        return f'episode {self._episode} given up (sim/give_up)'

    def _predict(self, obs: ObservationData, cube: CubePose, start: float) -> ActionChunkData:
        """In the oracle thread: the expert's chunk, returned ``extra_latency_s`` after start."""
        chunk = self.oracle.predict(obs, cube)
        wait = self.extra_latency_s - (time.monotonic() - start)
        if wait > 0:
            time.sleep(wait)
        return chunk

    async def _on_request(self, request: PredictChunk.Request,
                          response: PredictChunk.Response) -> PredictChunk.Response:
        start = time.monotonic()
        msg = request.observation
        cube = self._cube
        try:
            if cube is None:
                raise RuntimeError('no sim/cube_pose received yet (is so101_sim running?)')
            obs = msg_to_observation(msg, max_sizes=self._max_sizes)
            chunk = await self._result.wait(self._pool.submit(self._predict, obs, cube, start))
        except IKError as exc:  # the cube is out of reach: end the episode, not the demo
            return failed_answer(response, msg,
                                 f'IKError: {exc}; {self._give_up(f"IKError: {exc}")}')
        except (ConversionError, ValueError, RuntimeError) as exc:
            failed = failed_answer(response, msg, exc)
            self.get_logger().warning(failed.message, throttle_duration_sec=1.0)
            return failed
        answer = chunk_answer(response, chunk)
        answer.chunk.inference_ms = (time.monotonic() - start) * 1e3  # decoding included
        return answer

    def destroy_node(self) -> None:
        """Let a running prediction finish before the node (and its wake-up guard) goes."""
        pool = getattr(self, '_pool', None)  # absent when the setup failed part-way
        if pool is not None:
            pool.shutdown(wait=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``oracle_policy_server``; exit 2 when the setup is invalid."""
    return run_node(OraclePolicyServer, 'oracle_policy_server', args,
                    setup_errors=(ValueError, RuntimeError))


if __name__ == '__main__':
    sys.exit(main())
