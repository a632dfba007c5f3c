"""chunk_executor: runs action chunks on the arm while the next chunk is computed.

The behaviour (time line, trigger, fusion, clearing) is explained in docs/async_inference.md.

Every decision is in :class:`smolvla_ros.core.executor.executor_core.ExecutorCore` (queue,
trigger, fusion, safety, latency, metrics) and
:class:`~smolvla_ros.core.observation.assembly.ObservationAssembler` (as-of alignment, max age);
this node wires them to ROS:

* the ``control_hz`` timer -> ``joint_commands`` + ``executed_action`` (stamp = due time); the
  command's type follows ``command_interface`` (JointState for our driver, or the input of a
  ros2_control forward-position or trajectory controller: ros/commands.py, remap the topic);
* a timer at the same rate asks the trigger, assembles the observation from the frames as
  received, has them decoded, resized to the contract's policy size and JPEG-encoded in a worker
  thread (awaited, so the tick keeps running meanwhile), and sends it with ``call_async``: neither
  the codec work nor the round trip ever blocks the tick;
* every camera frame's header is checked against the contract when it arrives (ros/compressed.py:
  size from the JPEG/PNG header, a byte bound, no decoding): an oversized frame (a decompression
  bomb) is refused and counted (``frames_rejected.<camera>``), never stored; a frame that fails to
  decode later (a truncated scan) is counted the same way and no request goes out;
* joint_states, camera and task subscriptions, the service answers, ``/diagnostics``;
* the receive time of every joint_states and camera message feeds
  :class:`~smolvla_ros.core.observation.stream_rates.StreamRates`: ``/diagnostics`` carries each
  stream's measured rate and largest gap, and warns when a stream arrives slower than
  ``rate_warn_fraction`` x its contract rate (a camera's ``fps``; for joint_states, which has
  no rate of its own in the contract, the contract ``fps``);
* ``~/pause`` (std_srvs/SetBool): true drops the plan and commands and requests nothing (the
  driver holds its goal) until false resumes: the operator's stop without killing nodes;
* ``~/clear`` (std_srvs/Trigger) and, when ``reset_topic`` is set, every message on it (or only
  those whose JSON ``event`` is ``reset_event``) drop the plan: ``ExecutorCore.clear``. The
  simulated profiles point it at so101_sim's ``sim/episode`` so that ``sim/reset`` starts the
  new episode without the old episode's plan.

Threads (docs/ARCHITECTURE.md, "Threading"): every callback runs on the executor thread, which
owns the core, the assembler and every attribute here, without locks. The one other thread is
``codec``: it gets the frames looked up for a request (or the observation to encode) and returns
the decoded images (or the request message) through a future the request coroutine awaits, so the
codec work (a few ms per frame; docs/async_inference.md "Bounded decoding") never delays the tick.
The service call is asynchronous, so nothing waits on the policy.

A stale or missing stream means no request (counted, named in the log). A policy that stops
answering leaves the arm holding its last command; requests time out and are retried, and the
first answer of a returning policy resumes execution.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, fields, replace
from functools import partial
import signal
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from smolvla_msgs.msg import ActionChunk
from smolvla_msgs.srv import PredictChunk
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from smolvla_ros.core.executor.execution_status import StallCauses, execution_status
from smolvla_ros.core.executor.executor_core import ExecutorConfig, ExecutorCore, clears_plan
from smolvla_ros.core.observation.alignment import StaleStreamError
from smolvla_ros.core.observation.assembly import JointMismatchError, ObservationAssembler
from smolvla_ros.core.observation.stream_rates import StreamRates
from smolvla_ros.core.robot.contract import default_contract_path, load_contract
from smolvla_ros.core.stats import LatencyRecorder
from smolvla_ros.core.types import InvalidDataError
from smolvla_ros.nodes.node_main import ThreadResult, run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.chunk import msg_to_chunk
from smolvla_ros.ros.commands import MESSAGE_TYPES, check_interface, command_message
from smolvla_ros.ros.diagnostics import OK, WARN, diagnostic_array, diagnostic_status
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.frames import FrameError, check_frame, decode_frame
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state
from smolvla_ros.ros.observation import ImageEncoding, observation_to_msg
from smolvla_ros.ros.time import stamp_to_ns

# ExecutorConfig field -> description; defaults come from ExecutorConfig itself (one source of
# truth). joint_names and fps come from the contract, control_hz and the limits are read apart
# (0 and unset mean "the contract's" and "none"), latency_window is not a parameter.
EXECUTOR_PARAMETERS = {
    'mode': "'async' (overlap inference) or 'sync' (wait for it)",
    'chunk_threshold': 'request when remaining/chunk <= this',
    'fusion': 'crossfade, weighted_average, latest_only, average, conservative or rtc',
    'crossfade_steps': 'crossfade window (actions)',
    'crossfade_shape': "'linear' or 'smooth'",
    'interpolation': "'auto', 'linear' or 'none'",
    'latency_margin_s': 'lead time on top of the p95 (s)',
    'initial_latency_s': 'latency prior before answers (s)',
    'request_timeout_s': 'a request without answer expires (s)',
    'retry_interval_s': 'wait after a failed request (s)',
    'max_step_rad': 'largest command change per tick (rad); 0: off',
}
EXECUTOR_DEFAULTS = {f.name: f.default for f in fields(ExecutorConfig) if f.default is not MISSING}
STATE_RATE = 'joint_states'  # the joint state's name in the rate diagnostics
RATE_LOG_PERIOD_NS = 10_000_000_000  # at most one low-rate warning per stream per 10 s


class ChunkExecutor(Node):
    """See the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__('chunk_executor', **kwargs)
        p = partial(read_only_parameter, self)
        contract_file = p('contract_file', '', 'robot contract YAML (empty: config/contracts)')
        self.contract = c = load_contract(contract_file or default_contract_path())
        # The camera source's own rate and age, when the bringup knows them (the simulator's
        # 10 Hz rendering: params/chunk_executor_sim_true.yaml); camera_* override them.
        source_age = p('camera_source_max_age_s', 0.0, "the camera source's max frame age (s); "
                       "0: the contract's")
        camera_age = p('camera_max_age_s', 0.0, "cameras' max age (s); 0: the camera "
                       "source's") or source_age
        if camera_age:  # slower cameras (the simulator's 10 Hz); the joint state keeps its age
            self.contract = c = replace(c, cameras={
                n: replace(cam, max_age_s=camera_age) for n, cam in c.cameras.items()})
        source_fps = p('camera_source_fps', 0.0, "the camera source's frame rate (Hz); 0: the "
                       "contract's")
        camera_fps = p('camera_fps', 0.0, "cameras' expected rate (Hz); 0: the camera "
                       "source's") or source_fps
        if camera_fps:  # the simulator renders at its camera_hz, not at the contract's 30 fps
            self.contract = c = replace(c, cameras={
                n: replace(cam, fps=camera_fps) for n, cam in c.cameras.items()})
        limits = [p(n, Parameter.Type.DOUBLE_ARRAY, f'{n} per contract joint (rad); unset: none')
                  for n in ('lower_limits', 'upper_limits')]
        limits = [None if v is None else tuple(v) for v in limits]
        control_hz = p('control_hz', 0.0, 'tick rate (Hz); 0: the contract fps') or c.fps
        values = {name: p(name, EXECUTOR_DEFAULTS[name], text)
                  for name, text in EXECUTOR_PARAMETERS.items()}
        self.config = ExecutorConfig(joint_names=c.joint_names, fps=c.fps, control_hz=control_hz,
                                     lower_limits=limits[0], upper_limits=limits[1], **values)
        max_age = p('max_obs_age_s', 0.0, 'max input age (s); 0: the per-stream contract ages')
        self.task = p('task', c.task.default, 'task until one arrives on the task topic')
        service = p('policy_service', 'predict_chunk', 'PredictChunk service name')
        self.encoding = ImageEncoding(p('image_format', 'jpeg', "'jpeg' or 'raw'"),
                                      p('jpeg_quality', 90, 'JPEG quality 1..100'))
        diag_period = p('diagnostics_period_s', 1.0, '/diagnostics period (s)')
        self.command_interface = check_interface(p(
            'command_interface', 'joint_state', "message on the action topic: 'joint_state', "
            "'forward_position' (ros2_control forward command controller) or 'joint_trajectory'"))
        reset_topic = p('reset_topic', '', 'std_msgs/String topic whose messages clear the plan '
                        "(empty: off; the simulated profiles use 'sim/episode')")
        self.reset_event = p('reset_event', '', "clear only on JSON messages with this 'event' "
                             "(empty: on every message; 'reset' for sim/episode)")

        self.rates = StreamRates(
            {STATE_RATE: c.state.fps or c.fps, **{n: cam.fps for n, cam in c.cameras.items()}},
            warn_fraction=p('rate_warn_fraction', 0.8, 'warn when an input stream arrives '
                            'slower than this x its contract rate (0: never)'))
        self._rate_logged: dict[str, int] = {}  # stream -> monotonic ns of its last warning
        self.core = ExecutorCore(self.config)
        # Frames are stored as received and decoded only for the observations sent, in the
        # codec thread (see the module docstring).
        self.assembler = ObservationAssembler(c, max_age_s=max_age or None)
        self._max_sizes = {n: c.max_frame_size(n) for n in c.camera_names}
        self.frames_rejected = dict.fromkeys(c.camera_names, 0)
        self.causes = StallCauses()  # why no chunk arrives, for /diagnostics
        self._codec = ThreadPoolExecutor(1, 'codec', initializer=_block_shutdown_signals)
        self._codec_result = ThreadResult(self)
        self._pending: dict[int, tuple[int, object]] = {}  # request id -> (sent ns, future)
        self.tick_ms = LatencyRecorder(1000)  # control callback duration
        self.jitter_ms = LatencyRecorder(1000)  # |tick interval - period|
        self._last_tick: float | None = None
        self._no_service = 0

        self._cmd_pub = self.create_publisher(MESSAGE_TYPES[self.command_interface],
                                              c.action.topic, 10)
        self._exec_pub = self.create_publisher(JointState, 'executed_action', 10)
        self._chunk_pub = self.create_publisher(ActionChunk, 'predicted_chunk', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointState, c.state.topic, self._on_joint_state, 10)
        for cam in c.cameras.values():
            kind, qos = (CompressedImage, qos_profile_sensor_data) if cam.compressed else (
                Image, 2)
            self.create_subscription(kind, cam.topic, self._image_callback(cam.name), qos)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, c.task.topic, self._on_task, latched)
        self.client = self.create_client(PredictChunk, service)
        self.create_service(Trigger, '~/clear', self._on_clear_service)
        self.create_service(SetBool, '~/pause', self._on_pause_service)
        if reset_topic:
            # Volatile on purpose: a latched publisher (sim/episode) would replay its old events
            # to a late-joining executor, and an old reset must not drop a new plan.
            self.create_subscription(String, reset_topic, self._on_reset_message, 10)
        period = 1.0 / self.config.control_hz
        self.create_timer(period, self._on_tick)
        # A group of its own: the request coroutine holds it while the codec thread works, and
        # the tick (default group) must keep running meanwhile.
        self.create_timer(period, self._on_request_timer,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(diag_period, self._publish_diagnostics)
        self.get_logger().info(
            f'{self.config.mode} at {self.config.control_hz:g} Hz, fusion {self.config.fusion}, '
            f'threshold {self.config.chunk_threshold:g}, service {self.client.srv_name}, '
            f'cameras {list(c.camera_names)}, contract {c.source}')

    # -- inputs ----------------------------------------------------------------------------------
    def _reject_frame(self, error: FrameError, what: str) -> None:
        self.frames_rejected[error.camera] += 1
        self._stall(f'{what}: {error}')

    def _stall(self, cause: str) -> None:
        """Log why no chunk can come (throttled) and keep it for /diagnostics."""
        self.causes.note(cause, self.get_clock().now().nanoseconds)
        self.get_logger().warning(cause, throttle_duration_sec=2.0)

    def _decode_frames(self, frames: dict[str, object]) -> dict[str, np.ndarray]:
        """In the codec thread: every frame decoded (bounded) at the policy size [h, w, 3]."""
        return {cam: decode_frame(cam, frame, self._max_sizes[cam],
                                  self.contract.policy_image_shape(cam))
                for cam, frame in frames.items()}

    def _on_joint_state(self, msg: JointState) -> None:
        self.rates.add(STATE_RATE, time.monotonic_ns())  # every arrival, usable or not
        try:
            js = joint_state_to_numpy(msg)
            self.assembler.add_joint_state(js.stamp_ns, js.names, js.position)
        except (ConversionError, JointMismatchError) as exc:
            self.get_logger().warning(f'joint state ignored: {exc}', throttle_duration_sec=2.0)

    def _image_callback(self, camera: str):
        def store(msg) -> None:
            self.rates.add(camera, time.monotonic_ns())
            try:
                check_frame(camera, msg, self._max_sizes[camera])  # header only, no decoding
            except FrameError as exc:
                self._reject_frame(exc, 'frame refused')
                return
            self.assembler.add_image(camera, stamp_to_ns(msg.header.stamp), msg)
        return store

    def _on_task(self, msg: String) -> None:
        if msg.data != self.task:
            self.get_logger().info(f'task: {msg.data!r}')
        self.task = msg.data

    # -- control ---------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        start = time.perf_counter()
        if self._last_tick is not None:
            interval = start - self._last_tick
            self.jitter_ms.add(abs(interval - 1.0 / self.config.control_hz) * 1e3)
        self._last_tick = start
        if self.core.wants_anchor:  # after a clear: hold the first state observed after it
            state = self.assembler.latest_state()  # none from before the clear (discarded)
            if state is not None:
                self.core.anchor(state)
        result = self.core.tick(self.get_clock().now().nanoseconds)
        if result.position is not None:
            names, period_ns = self.config.joint_names, round(1e9 / self.config.control_hz)
            self._exec_pub.publish(numpy_to_joint_state(names, result.position,
                                                        stamp_ns=result.due_ns))
            self._cmd_pub.publish(command_message(self.command_interface, names,
                                                  result.position, result.due_ns, period_ns))
        self.tick_ms.add((time.perf_counter() - start) * 1e3)

    # -- clearing --------------------------------------------------------------------------------
    def _clear(self, why: str) -> str:
        now = self.get_clock().now().nanoseconds
        dropped = self.core.clear(now)
        # The world changed at now: the next observation (and the anchor) must come after it.
        self.assembler.discard_before(now)
        text = f'plan cleared ({why})' + (
            f'; the answer to request {dropped} will be ignored' if dropped is not None else '')
        self.get_logger().info(text)
        return text

    def _on_clear_service(self, request: Trigger.Request, response: Trigger.Response):
        response.message = self._clear('~/clear')
        response.success = True
        return response

    def _on_pause_service(self, request: SetBool.Request, response: SetBool.Response):
        changed = self.core.set_paused(request.data, self.get_clock().now().nanoseconds)
        state = 'paused: plan dropped, nothing commanded or requested' if request.data else (
            'resumed: requesting a chunk from the next observation')
        response.success, response.message = True, state if changed else f'already {state}'
        if changed:
            self.get_logger().info(state)
        return response

    def _on_reset_message(self, msg: String) -> None:
        if clears_plan(msg.data, self.reset_event):
            self._clear(f'reset_topic: {msg.data[:80]}')

    # -- requests --------------------------------------------------------------------------------
    async def _on_request_timer(self) -> None:
        now = self.get_clock().now().nanoseconds
        self._forget_expired(now)
        if not self.core.should_request(now):
            return
        if not self.client.service_is_ready():
            self._no_service += 1
            self._stall(f'policy service {self.client.srv_name} not available')
            return
        clears = self.core.clears
        try:
            state, frames = self.assembler.lookup(now)  # frames as received
        except StaleStreamError as exc:  # named in /diagnostics by the alignment report
            self.core.on_observation_stale(now)
            self.get_logger().warning(f'no request: {exc}', throttle_duration_sec=2.0)
            return
        try:  # decoding runs in the codec thread; the tick goes on meanwhile
            images = await self._codec_result.wait(self._codec.submit(self._decode_frames,
                                                                      frames))
        except FrameError as exc:
            self.core.on_observation_stale(now)
            self._reject_frame(exc, 'no request, a frame did not decode')
            return
        if (self.core.clears != clears
                or not self.core.should_request(self.get_clock().now().nanoseconds)):
            return  # paused, cleared (the frames are from before) or answered meanwhile
        obs = self.core.make_request(
            self.assembler.observation(now, state, images, task=self.task), now)
        try:
            request = await self._codec_result.wait(self._codec.submit(
                lambda: PredictChunk.Request(observation=observation_to_msg(obs, self.encoding))))
        except ConversionError as exc:  # encoding failed: nothing was sent
            self.core.on_request_failed(obs.request_id, now, str(exc))
            self.get_logger().error(f'request {obs.request_id} not sent: {exc}',
                                    throttle_duration_sec=2.0)
            return
        future = self.client.call_async(request)
        rid = obs.request_id
        self._pending[rid] = (now, future)
        future.add_done_callback(lambda f, rid=rid, sent=now: self._on_answer(rid, sent, f))

    def _forget_expired(self, now: int) -> None:
        timeout = round(self.config.request_timeout_s * 1e9)
        for rid, (sent, future) in list(self._pending.items()):
            if now - sent > timeout:
                self._pending.pop(rid, None)
                self.client.remove_pending_request(future)
                self._stall(f'request {rid}: no answer within '
                            f'{self.config.request_timeout_s:g} s')

    def _on_answer(self, rid: int, sent: int, future) -> None:
        now = self.get_clock().now().nanoseconds
        self._pending.pop(rid, None)
        if future.cancelled() or future.exception() is not None:
            self.core.on_request_failed(rid, now, 'service call failed')
            self._stall(f'request {rid}: the service call failed')
            return
        response = future.result()
        try:
            if not response.success:
                raise ConversionError(f'policy failed: {response.message}')
            chunk = msg_to_chunk(response.chunk)
            if chunk.request_id != rid:
                raise ConversionError(f'answer carries request_id {chunk.request_id}')
        except (ConversionError, InvalidDataError) as exc:
            self.core.on_request_failed(rid, now, str(exc))
            self._stall(f'request {rid}: {exc}')
            return
        outcome = self.core.on_chunk(chunk, sent, now)
        if outcome.accepted:
            self.causes.clear()
            self._chunk_pub.publish(response.chunk)
        else:
            self.get_logger().info(f'chunk {rid} dropped: {outcome.reason} '
                                   f'({outcome.late_steps} actions already past)',
                                   throttle_duration_sec=1.0)

    # -- diagnostics -----------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        now = self.get_clock().now().nanoseconds
        snap = self.core.metrics()
        report = self.assembler.report(now)
        values = {k: (f'{v:.4f}' if isinstance(v, float) else str(v))
                  for k, v in snap.as_dict().items()}
        tick, jitter = self.tick_ms.summary(), self.jitter_ms.summary()
        values.update({'tick_p50_ms': f'{tick.p50_ms:.3f}', 'tick_p95_ms': f'{tick.p95_ms:.3f}',
                       'jitter_p95_ms': f'{jitter.p95_ms:.3f}', 'mode': self.config.mode,
                       'fusion': self.config.fusion, 'in_flight': str(self.core.in_flight),
                       'clears': str(self.core.clears), 'paused': str(self.core.paused),
                       'service_unavailable': str(self._no_service)})
        values.update({f'frames_rejected.{n}': str(v) for n, v in self.frames_rejected.items()})
        level, text = execution_status(
            started=self.core.started, paused=self.core.paused,
            starved=self.core.started and self.core.remaining_ns(now) == 0,
            stale='' if report.ok else report.describe(), cause=self.causes.current(now))
        low = self._check_rates(values)
        if low:
            rate_text = 'input rate low: ' + '; '.join(low)
            text = rate_text if level == OK else f'{text}; {rate_text}'
            level = max(level, WARN)  # never lowers ERROR
        self._diag_pub.publish(diagnostic_array(now, [diagnostic_status(
            f'{self.get_fully_qualified_name()}: execution', level, text,
            self.contract.robot_type, values)]))

    def _check_rates(self, values: dict[str, str]) -> list[str]:
        """Add rate_hz.<stream> and max_gap_ms.<stream>; log and return the low streams."""
        now = time.monotonic_ns()
        low = []
        for rate in self.rates.measure(now):
            values[f'rate_hz.{rate.name}'] = f'{rate.rate_hz:.2f}'
            values[f'max_gap_ms.{rate.name}'] = f'{rate.max_gap_s * 1e3:.1f}'
            if not rate.low:
                continue
            low.append(rate.describe())
            last = self._rate_logged.get(rate.name)
            if last is None or now - last >= RATE_LOG_PERIOD_NS:
                self._rate_logged[rate.name] = now
                self.get_logger().warning(f'input rate low: {rate.describe()}')
        return low


    def destroy_node(self) -> None:
        codec = getattr(self, '_codec', None)  # absent when the setup failed part-way
        if codec is not None:
            codec.shutdown(wait=True)
        super().destroy_node()


def _block_shutdown_signals() -> None:
    """The codec thread leaves SIGINT/SIGTERM to the main thread, where rclpy expects them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def main(args: list[str] | None = None) -> int:
    """Console script ``chunk_executor``; exit 2 when the setup is invalid (named in the log)."""
    return run_node(ChunkExecutor, 'chunk_executor', args, setup_errors=(ValueError,))


if __name__ == '__main__':
    sys.exit(main())
