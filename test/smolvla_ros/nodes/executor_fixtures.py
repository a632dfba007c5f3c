"""A fake robot and an analytic policy for in-process chunk_executor tests (no hardware, no torch).

``FakeRobot`` publishes ``joint_states`` and one compressed camera (both can be paused) and serves
``predict_chunk`` with ``f(stamp + k*dt)`` after an artificial delay, so that what the executor
commands can be checked against ``f`` at every due time.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, JointState
from smolvla_msgs.srv import PredictChunk
from waiting import wait_until  # noqa: F401  (re-exported: the executor tests import it here)

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.ros.chunk import chunk_to_msg
from smolvla_ros.ros.compressed import rgb_to_compressed
from smolvla_ros.ros.joint_state import numpy_to_joint_state
from smolvla_ros.ros.time import stamp_to_ns

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
AMPLITUDE = 0.4  # rad
PERIOD_S = 2.0


def analytic(t_ns: np.ndarray | int) -> np.ndarray:
    """f(t): a sine per joint with its own phase, [..., J] rad."""
    t = np.asarray(t_ns, dtype=np.float64)[..., None] / 1e9  # [..., 1]
    phase = np.arange(len(JOINTS)) * 0.7  # [J]
    return AMPLITUDE * np.sin(2 * np.pi * t / PERIOD_S + phase)


def interpolation_bound(dt_s: float) -> float:
    """Largest error of linear interpolation of f between samples dt apart: max|f''| dt^2 / 8."""
    return AMPLITUDE * (2 * np.pi / PERIOD_S) ** 2 * dt_s ** 2 / 8


def write_contract(path, fps: float = 20.0, camera_max_age_s: float = 0.3) -> str:
    """A one-camera contract with joints in degrees (no calibration needed)."""
    joints = '\n'.join(f'  - {{name: {j}, unit: degrees}}' for j in JOINTS)
    path.write_text(f'''version: 1
fps: {fps}
joints:
{joints}
state: {{topic: joint_states, max_age_s: 0.3}}
action: {{topic: joint_commands}}
task: {{topic: task, parameter: task, default: ''}}
policy_image_size: null
cameras:
  front: {{topic: cameras/front/image_raw/compressed, compressed: true, width: 64, height: 48,
          fps: 20, max_age_s: {camera_max_age_s}}}
''')
    return str(path)


class FakeRobot(Node):
    """Joint states and a camera (50 and 20 Hz: state_hz, camera_hz), a PredictChunk server.

    ``publish=False`` or ``serve=False`` leaves out the streams or the server: a hanging server
    blocks its node's single-threaded executor, so a test that needs the streams to go on while
    the server hangs runs the two halves as two nodes, each spun on its own.
    """

    def __init__(self, context, *, fps: float, chunk_size: int = 30, delay_s: float = 0.15,
                 function=analytic, name: str = 'fake_robot', publish: bool = True,
                 serve: bool = True, state_hz: float = 50.0, camera_hz: float = 20.0) -> None:
        super().__init__(name, context=context)
        self.dt = 1.0 / fps
        self.chunk_size = chunk_size
        self.delay_s = delay_s
        self.function = function
        self.answering = True
        self.camera_on = True
        self.requests: list[int] = []  # request ids received
        self.leftovers: list[tuple[int, int]] = []  # (inference_delay_steps, leftover_steps)
        self.frame = rgb_to_compressed(np.full((48, 64, 3), 100, np.uint8))  # what is published
        group = ReentrantCallbackGroup()
        self._js = self.create_publisher(JointState, 'joint_states', 10)
        self._cam = self.create_publisher(CompressedImage, 'cameras/front/image_raw/compressed',
                                          2)
        if publish:
            self.create_timer(1.0 / state_hz, self._publish_state, callback_group=group)
            self.create_timer(1.0 / camera_hz, self._publish_frame, callback_group=group)
        if serve:
            self.create_service(PredictChunk, 'predict_chunk', self._answer,
                                callback_group=MutuallyExclusiveCallbackGroup())

    def _publish_state(self) -> None:
        now = self.get_clock().now().nanoseconds
        self._js.publish(numpy_to_joint_state(JOINTS, self.function(now), stamp_ns=now))

    def _publish_frame(self) -> None:
        if self.camera_on:
            self.frame.header.stamp = self.get_clock().now().to_msg()
            self._cam.publish(self.frame)

    def _answer(self, request, response):
        obs = request.observation
        self.requests.append(obs.request_id)
        self.leftovers.append((obs.inference_delay_steps, obs.leftover_steps))
        while not self.answering:  # a server that hangs: the client times out
            time.sleep(0.05)
            if not self.context.ok():
                return response
        time.sleep(self.delay_s)
        stamp = stamp_to_ns(obs.header.stamp)
        times = stamp + np.rint(np.arange(self.chunk_size) * self.dt * 1e9).astype(np.int64)
        chunk = ActionChunkData(stamp_ns=stamp, request_id=obs.request_id, joint_names=JOINTS,
                                dt=self.dt, positions=self.function(times), policy_id='analytic')
        response.chunk = chunk_to_msg(chunk)
        response.success = True
        return response


class Recorder(Node):
    """Collects joint_commands as (stamp ns, positions [J]) and the last diagnostics values."""

    def __init__(self, context) -> None:
        super().__init__('recorder', context=context)
        self.commands: list[tuple[int, np.ndarray]] = []
        self._lock = threading.Lock()
        self.create_subscription(JointState, 'joint_commands', self._on_command, 100)

    def _on_command(self, msg: JointState) -> None:
        with self._lock:
            self.commands.append((stamp_to_ns(msg.header.stamp),
                                  np.array(msg.position, dtype=np.float64)))

    def since(self, t_ns: int) -> list[tuple[int, np.ndarray]]:
        with self._lock:
            return [c for c in self.commands if c[0] >= t_ns]


class Spin:
    """Spin each node in its own SingleThreadedExecutor thread inside a with-block.

    One executor per node, as in deployment where every node is its own process (and spins
    single-threaded: see the chunk_executor module docstring for why not MultiThreadedExecutor).
    """

    def __init__(self, context, *nodes) -> None:
        self.executors = []
        for node in nodes:
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            self.executors.append(executor)
        self._threads = [threading.Thread(target=e.spin, daemon=True) for e in self.executors]

    def __enter__(self) -> Spin:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for executor in self.executors:
            executor.shutdown(timeout_sec=5.0)
        for thread in self._threads:
            thread.join(timeout=5.0)
