"""ExecutorCore: the ROS-free chunk executor the ``chunk_executor`` node drives.

What it does and why is in docs/async_inference.md ("Concepts"); here is how it is driven.

The node owns the clock, the topics and the service client; the core owns every decision::

    every tick:      result = core.tick(now)                 -> publish result.position (if any)
                     if core.should_request(now):
                         obs = assembler.assemble(now)        (StaleStreamError ->
                                                               core.on_observation_stale(now))
                         request = core.make_request(obs, now)  -> call PredictChunk(request)
    on the answer:   core.on_chunk(chunk, sent_ns, received_ns)
    on an error:     core.on_request_failed(request_id, now, reason)
    new episode:     core.clear(now)                          (the ~/clear service, reset_topic)
    diagnostics:     core.metrics()

Time is injected as int nanoseconds on one clock (the node's), so the whole behaviour is
deterministic under test. It takes no lock: one thread drives it (the node's executor thread, or
the loop of sim/episode_runner.py and the benchmarks), as docs/ARCHITECTURE.md ("Threading") has
every node's state.

Pipeline of a tick: the queued plan at now (linear interpolation between due times, or the action
due now) -> safety (max step per tick from the last command, then joint limits) -> command. With
no plan (starvation, or sync mode waiting for inference) the last command is held and counted.

``clear`` drops the plan when the world changed under it (a new episode, an operator's stop): the
queue, the in-flight request (its answer, when it comes, is dropped as ``cleared``) and the last
command are forgotten, and the next tick asks for a new chunk. Until it arrives the arm is held
where it was observed after the clear (``anchor``: the caller passes the first joint state
stamped after it): the driver's last goal belongs to the old plan, and after a simulator's reset
teleported the arm it is far from the arm, which would move back toward it. Before that first
state, ticks are idle (nothing commanded, the driver holds its last goal). The new chunk then
starts from the state observed for it, not from a command of the old plan.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import json
import math

import numpy as np

from smolvla_ros.core.executor.chunk_queue import ChunkQueue, MergeResult
from smolvla_ros.core.executor.fusion import (
    CROSSFADE_SHAPES,
    FUSION_NAMES,
    make_fusion,
    rtc_delay_steps,
)
from smolvla_ros.core.executor.latency import LatencyEstimator
from smolvla_ros.core.executor.metrics import ExecutorMetrics, MetricsSnapshot
from smolvla_ros.core.executor.trigger import MODES, TriggerConfig, TriggerDecision, decide
from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.core.safety_clamps import clamp_to_limits, limit_step
from smolvla_ros.core.types import ActionChunkData, ObservationData

INTERPOLATION_MODES = ('auto', 'linear', 'none')


def clears_plan(text: str, event: str = '') -> bool:
    """Whether a message on the executor's ``reset_topic`` clears the plan.

    With no `event`, every message does. Otherwise only a JSON object whose ``event`` field
    equals it: so101_sim's ``sim/episode`` also announces successes, which must not stop the arm.
    """
    if not event:
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get('event') == event


class ExecutorConfigError(ValueError):
    """An invalid executor parameter (names it and its value)."""


class RequestInFlightError(RuntimeError):
    """make_request was called while another request is still in flight."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Executor parameters (the node's ROS parameters, frozen and validated)."""

    joint_names: tuple[str, ...]
    fps: float = 30.0  # chunk rate expected before the first chunk tells its dt
    control_hz: float = 30.0
    mode: str = 'async'  # 'async' | 'sync'
    chunk_threshold: float = 0.5
    fusion: str = 'crossfade'
    crossfade_steps: int = 10
    crossfade_shape: str = 'linear'
    interpolation: str = 'auto'  # auto: linear when control_hz exceeds the chunk rate
    latency_margin_s: float = 0.05
    initial_latency_s: float = 0.2  # round-trip estimate before the first answer
    latency_window: int = 100
    request_timeout_s: float = 5.0
    retry_interval_s: float = 0.1
    max_step_rad: float = 0.0  # per tick and joint; 0 disables
    lower_limits: tuple[float, ...] | None = None  # rad, per joint; None: no limit stage
    upper_limits: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        if not names or len(set(names)) != len(names) or not all(
                isinstance(n, str) and n for n in names):
            raise ExecutorConfigError(f'joint_names must be unique non-empty names, got {names}')
        object.__setattr__(self, 'joint_names', names)
        for name in ('fps', 'control_hz', 'request_timeout_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ExecutorConfigError(f'{name} must be a finite number > 0, got {value!r}')
        for name in ('initial_latency_s', 'max_step_rad'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ExecutorConfigError(f'{name} must be a finite number >= 0, got {value!r}')
        if self.mode not in MODES:
            raise ExecutorConfigError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.fusion not in FUSION_NAMES:
            raise ExecutorConfigError(f'fusion must be one of {FUSION_NAMES}, got {self.fusion!r}')
        if self.crossfade_shape not in CROSSFADE_SHAPES:
            raise ExecutorConfigError(
                f'crossfade_shape must be one of {CROSSFADE_SHAPES}, got {self.crossfade_shape!r}')
        if self.interpolation not in INTERPOLATION_MODES:
            raise ExecutorConfigError(f'interpolation must be one of {INTERPOLATION_MODES}, '
                                      f'got {self.interpolation!r}')
        if isinstance(self.latency_window, bool) or self.latency_window < 1:
            raise ExecutorConfigError(f'latency_window must be >= 1, got {self.latency_window}')
        if (self.lower_limits is None) != (self.upper_limits is None):
            raise ExecutorConfigError('give both lower_limits and upper_limits, or neither')
        if self.lower_limits is not None:
            lo, hi = tuple(map(float, self.lower_limits)), tuple(map(float, self.upper_limits))
            if len(lo) != len(names) or len(hi) != len(names):
                raise ExecutorConfigError(f'limits need {len(names)} values (joints {names}), '
                                          f'got {len(lo)} and {len(hi)}')
            bad = [n for n, a, b in zip(names, lo, hi, strict=True) if not a <= b]
            if bad:
                raise ExecutorConfigError(f'lower limit above upper limit for joints {bad}')
            object.__setattr__(self, 'lower_limits', lo)
            object.__setattr__(self, 'upper_limits', hi)
        _ = self.trigger  # validates chunk_threshold and the margins
        make_fusion(self.fusion, self.crossfade_steps, self.crossfade_shape)  # validates steps

    @classmethod
    def from_contract(cls, contract: RobotContract, **overrides: object) -> ExecutorConfig:
        """Joint order and fps from the contract; control_hz defaults to the contract fps."""
        values: dict[str, object] = {
            'joint_names': contract.joint_names, 'fps': contract.fps, 'control_hz': contract.fps}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def trigger(self) -> TriggerConfig:
        return TriggerConfig(self.mode, self.chunk_threshold, self.latency_margin_s,
                             self.retry_interval_s)


@dataclass(frozen=True)
class TickResult:
    """What to command at one tick."""

    position: np.ndarray | None  # [J] rad after safety; None: nothing to command yet
    due_ns: int  # the time this position is due (joint_commands header.stamp)
    # 'plan' (from the queue), 'hold' (starved: last command held), 'anchor' (after a clear, the
    # state observed after it held until a chunk comes), 'idle' (nothing to command), 'paused'
    status: str
    planned: np.ndarray | None = None  # [J] before safety (None unless status == 'plan')
    seam: bool = False  # first tick of a newly merged chunk
    limit_clipped: bool = False
    step_clipped: bool = False

    @property
    def held(self) -> bool:
        return self.status == 'hold'


@dataclass(frozen=True)
class ChunkOutcome:
    """What on_chunk did with a chunk."""

    accepted: bool
    reason: str  # 'ok', 'expired', 'out_of_order', 'joint_mismatch', 'cleared'
    request_id: int
    late_steps: int = 0  # actions already past on arrival (dropped)


@dataclass(frozen=True)
class _InFlight:
    request_id: int
    sent_ns: int


class ExecutorCore:
    """Time-indexed chunk execution: queue, fusion, trigger, latency, safety, metrics."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.fusion = make_fusion(config.fusion, config.crossfade_steps, config.crossfade_shape)
        self.queue = ChunkQueue(len(config.joint_names))
        self.latency = LatencyEstimator(config.latency_window, 95.0, config.initial_latency_s)
        self._metrics = ExecutorMetrics()
        self._trigger = config.trigger
        self._lower = None if config.lower_limits is None else np.array(config.lower_limits)
        self._upper = None if config.upper_limits is None else np.array(config.upper_limits)
        self._in_flight: _InFlight | None = None
        self._next_id = 1
        self._retry_at: int | None = None
        self._last_command: np.ndarray | None = None  # [J] after safety
        self._last_plan: np.ndarray | None = None  # [J] before safety (or the held position)
        self._seed: np.ndarray | None = None  # observed state at the first request
        self._anchor: np.ndarray | None = None  # [J] held after a clear until a chunk comes
        self._wants_anchor = False
        self._seen_generation = 0
        self._chunk_duration_ns: int | None = None
        self._dt_ns = round(1e9 / config.fps)
        self._newest_stamp: int | None = None
        self._timeout_ns = round(config.request_timeout_s * 1e9)
        self._tick_tolerance_ns = round(0.5e9 / config.control_hz)
        self._first_live_id = 1  # answers to requests below this were cleared: dropped
        self._clears = 0
        self._paused = False

    # -- state -----------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int | None:
        """The request id awaiting an answer, or None."""
        flight = self._in_flight  # read once: node tests poll this from their own thread
        return None if flight is None else flight.request_id

    @property
    def started(self) -> bool:
        """True once a chunk has been accepted (since the start or the last clear)."""
        return self._chunk_duration_ns is not None

    @property
    def wants_anchor(self) -> bool:
        """True after a clear until :meth:`anchor` got a state."""
        return self._wants_anchor

    def anchor(self, state: np.ndarray) -> None:
        """Hold ``state`` [J] (rad, observed after the last clear) until a chunk's plan starts.

        Only the first state after a clear counts: holding a state re-read every tick would let an
        arm under gravity creep down with its own sag. Joint limits apply, as to every command.
        """
        if not self._wants_anchor:
            return
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (len(self.config.joint_names),):
            raise ValueError(f'anchor state must have shape ({len(self.config.joint_names)},), '
                             f'got {state.shape}')
        if self._lower is not None:
            state = clamp_to_limits(state, self._lower, self._upper).value
        self._anchor = state.copy()
        self._wants_anchor = False

    @property
    def clears(self) -> int:
        """How many times the plan was cleared."""
        return self._clears

    @property
    def last_command(self) -> np.ndarray | None:
        return None if self._last_command is None else self._last_command.copy()

    def remaining_ns(self, now_ns: int) -> int:
        return self.queue.remaining_ns(now_ns)

    def _interpolate(self) -> bool:
        if self.config.interpolation == 'auto':
            return self.config.control_hz * self._dt_ns > 1e9 * (1 + 1e-6)
        return self.config.interpolation == 'linear'

    def _expire_request(self, now_ns: int) -> None:
        if self._in_flight is not None and now_ns - self._in_flight.sent_ns > self._timeout_ns:
            self._metrics.count('timeouts')
            self._in_flight = None
            self._retry_at = now_ns + round(self.config.retry_interval_s * 1e9)

    # -- the tick --------------------------------------------------------------------------------
    def tick(self, now_ns: int) -> TickResult:
        """The command due at now: the plan after safety, the held last command, or nothing."""
        now_ns = int(now_ns)
        m = self._metrics
        m.count('ticks')
        self._expire_request(now_ns)
        if self._paused:
            m.count('idle_ticks')
            return TickResult(None, now_ns, 'paused')
        self.queue.prune(now_ns)
        sample = self.queue.sample(now_ns, self._interpolate(), self._tick_tolerance_ns)
        if sample is None:
            if self._last_command is None and self._anchor is not None:
                m.count('idle_ticks')
                m.count('commands')
                return TickResult(self._anchor.copy(), now_ns, 'anchor')
            if not self.started or self._last_command is None:
                m.count('idle_ticks')
                return TickResult(None, now_ns, 'idle')
            m.count('starvation_ticks')
            m.count('commands')
            self._last_plan = self._last_command
            return TickResult(self._last_command.copy(), now_ns, 'hold')
        plan = sample.position  # [J]
        seam = self.queue.generation != self._seen_generation
        self._seen_generation = self.queue.generation
        if self._last_plan is not None:
            m.record_step(self._last_plan, plan, seam)
        self._last_plan = plan
        command, step_clipped, limit_clipped = self._safety(plan)
        self._last_command = command
        m.count('commands')
        return TickResult(command.copy(), sample.due_ns, 'plan', plan.copy(), seam,
                          limit_clipped, step_clipped)

    def _held(self) -> np.ndarray | None:
        """What the arm was last told to hold: the last command, else the anchor, else the
        state observed for the first request (the safety ramp and the crossfade start there)."""
        for held in (self._last_command, self._anchor, self._seed):
            if held is not None:
                return held
        return None

    def _safety(self, plan: np.ndarray) -> tuple[np.ndarray, bool, bool]:
        command = plan
        step_clipped = limit_clipped = False
        previous = self._held()
        if self.config.max_step_rad > 0 and previous is not None:
            result = limit_step(command, previous, self.config.max_step_rad)
            command, step_clipped = result.value, result.any_clipped
        if self._lower is not None:
            result = clamp_to_limits(command, self._lower, self._upper)
            command, limit_clipped = result.value, result.any_clipped
        if step_clipped:
            self._metrics.count('step_clips')
        if limit_clipped:
            self._metrics.count('limit_clips')
        return np.asarray(command, dtype=np.float64), step_clipped, limit_clipped

    # -- requests --------------------------------------------------------------------------------
    def trigger_decision(self, now_ns: int) -> TriggerDecision:
        """should_request with its reason (for diagnostics)."""
        now_ns = int(now_ns)
        self._expire_request(now_ns)
        if self._paused:
            return TriggerDecision(False, 'paused')
        return decide(
            self._trigger, now_ns=now_ns, in_flight=self._in_flight is not None,
            remaining_ns=self.queue.remaining_ns(now_ns),
            chunk_duration_ns=self._chunk_duration_ns,
            latency_ns=self.latency.estimate_ns(), retry_at_ns=self._retry_at)

    def should_request(self, now_ns: int) -> bool:
        """True when a request should be sent now (see trigger.decide)."""
        return self.trigger_decision(now_ns).request

    def make_request(self, observation: ObservationData, now_ns: int | None = None
                     ) -> ObservationData:
        """The observation to send: a fresh request id and, for rtc, the delay and the tail.

        ``now_ns`` (default: the observation stamp) is the send time the timeout counts from.
        The tail is the queued plan read at stamp + k*dt, so row k lines up with the new chunk's
        action k; the delay is ceil(latency estimate / dt).
        """
        if observation.joint_names != self.config.joint_names:
            raise ValueError(f'observation joints {list(observation.joint_names)} != executor '
                             f'joints {list(self.config.joint_names)}')
        if self._in_flight is not None:
            raise RequestInFlightError(
                f'request {self._in_flight.request_id} is still in flight')
        sent_ns = observation.stamp_ns if now_ns is None else int(now_ns)
        request_id = self._next_id
        self._next_id += 1
        if self._last_command is None:
            self._seed = observation.state.copy()
        delay, leftover = 0, np.zeros((0, len(self.config.joint_names)), dtype=np.float32)
        if self.fusion.uses_rtc_hints:
            delay = rtc_delay_steps(self.latency.estimate_s(), self._dt_ns / 1e9)
            leftover = self.queue.tail(observation.stamp_ns, self._dt_ns).astype(np.float32)
        self._in_flight = _InFlight(request_id, sent_ns)
        self._retry_at = None
        self._metrics.count('requests')
        return replace(observation, request_id=request_id, inference_delay_steps=delay,
                       leftover=leftover)

    def on_observation_stale(self, now_ns: int) -> None:
        """A request was due but the observation was stale or incomplete: nothing was sent."""
        self._metrics.count('stale_observations')

    def on_request_failed(self, request_id: int, now_ns: int, reason: str = '') -> None:
        """The request failed (service error, success=false, timeout seen by the node)."""
        self._metrics.count('failures')
        if self._in_flight is not None and self._in_flight.request_id == request_id:
            self._in_flight = None
            self._retry_at = int(now_ns) + round(self.config.retry_interval_s * 1e9)

    def clear(self, now_ns: int) -> int | None:
        """Drop the plan: queue, in-flight request and last command; request again next tick.

        Returns the id of the request that was in flight (its answer will be dropped as
        'cleared'), or None. Latency estimates, metrics and request ids carry over. After a clear
        ticks are idle until :meth:`anchor` gets the first state observed after it, then hold that
        state ('anchor') until a chunk is accepted; the request is not held back by a failure
        backoff, and the new chunk's safety ramp and crossfade start from the anchor.
        A request already past its timeout at `now_ns` counts as a timeout, not as dropped.
        """
        self._clears += 1
        dropped = self._drop_plan(int(now_ns))
        self._wants_anchor = True
        return dropped

    def _drop_plan(self, now_ns: int) -> int | None:
        self._expire_request(now_ns)
        dropped = None if self._in_flight is None else self._in_flight.request_id
        self.queue.clear()
        self._in_flight = None
        self._first_live_id = self._next_id
        self._retry_at = None
        self._last_command = None
        self._last_plan = None  # the new plan's first step is no seam of the old one
        self._seed = None
        self._anchor = None
        self._wants_anchor = False
        self._chunk_duration_ns = None
        self._newest_stamp = None  # stale answers are caught by request id instead
        return dropped

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool, now_ns: int) -> bool:
        """Pause (drop the plan as ``clear`` does, then command and request nothing) or resume.

        While paused the driver holds its last goal; resuming requests a chunk from the next
        fresh observation, as at start-up. Returns whether the state changed.
        """
        if paused == self._paused:
            return False
        if paused:
            self._drop_plan(int(now_ns))
        self._paused = paused
        return True

    # -- answers ---------------------------------------------------------------------------------
    def _columns(self, chunk: ActionChunkData) -> np.ndarray | None:
        if chunk.joint_names == self.config.joint_names:
            return chunk.positions.astype(np.float64)  # [T, J]
        index = {n: i for i, n in enumerate(chunk.joint_names)}
        if any(n not in index for n in self.config.joint_names):
            return None
        order = [index[n] for n in self.config.joint_names]
        return chunk.positions[:, order].astype(np.float64)  # [T, J] in executor order

    def on_chunk(self, chunk: ActionChunkData, sent_ns: int, received_ns: int,
                 now_ns: int | None = None) -> ChunkOutcome:
        """Place an answer on the time line (drop past actions, fuse the overlap).

        Async: action k is due at chunk.stamp + k*dt. Sync: the arm waited during inference, so
        the chunk is re-based to start at arrival (action 0 due now). ``now_ns`` defaults to
        ``received_ns``.
        """
        now_ns = int(received_ns if now_ns is None else now_ns)
        m = self._metrics
        m.count('answers')
        self.latency.add_round_trip(sent_ns, received_ns)
        if self._in_flight is not None and self._in_flight.request_id == chunk.request_id:
            self._in_flight = None
        positions = self._columns(chunk)
        reason = None
        if chunk.request_id < self._first_live_id:
            reason = 'cleared'  # asked for before a clear: its plan is obsolete
        elif positions is None:
            reason = 'joint_mismatch'
        elif self._newest_stamp is not None and chunk.stamp_ns <= self._newest_stamp:
            reason = 'out_of_order'
        if reason is not None:
            m.dropped[reason] += 1
            return ChunkOutcome(False, reason, chunk.request_id)
        start = chunk.stamp_ns
        if self.config.mode == 'sync':
            start = max(start, now_ns)
        offsets = np.rint(np.arange(chunk.num_steps) * chunk.dt * 1e9).astype(np.int64)
        times = start + offsets  # [T]
        end = start + round(chunk.num_steps * chunk.dt * 1e9)
        hold = self._held()
        result: MergeResult = self.queue.merge(times, positions, end, now_ns, self.fusion,
                                               chunk.dt_ns, hold)
        if not result.accepted:
            m.dropped[result.reason] += 1
            return ChunkOutcome(False, result.reason, chunk.request_id, result.late_steps)
        m.count('chunks_accepted')
        m.record_late_steps(result.late_steps)
        self._newest_stamp = chunk.stamp_ns
        self._chunk_duration_ns = end - start
        self._dt_ns = chunk.dt_ns
        return ChunkOutcome(True, 'ok', chunk.request_id, result.late_steps)

    def metrics(self) -> MetricsSnapshot:
        return self._metrics.snapshot(self.latency.summary())
