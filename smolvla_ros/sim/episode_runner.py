"""Run pick episodes with the real ExecutorCore on simulated time (no ROS, faster than real time).

The loop is what the chunk_executor node does, with the node's clock replaced by the simulator's:
every control tick the executor's command becomes the position targets, a request is answered by
the policy from the observation of that instant, and the answer is delivered later in simulated
time: ``latency_s`` (the injected inference latency) plus, with ``count_inference``, the policy's
own compute measured on the wall clock. The simulation stands still while the policy computes, so
a slow policy costs wall time, never simulated time it has not earned.

The policy is anything with ``predict(observation, cube) -> ActionChunkData``
(:class:`ChunkPolicy`): the oracle (sim/oracle.py), which also gets the privileged cube pose,
or a served SmolVLA checkpoint (sim/evaluation.py), which ignores it. Camera frames are rendered
only when a request is made, by the ``observe`` callable, because rendering is the expensive part
(~50-70 ms a frame pair on a CPU) and a policy asks about once per 25 ticks.

With the oracle and ``count_inference`` off (the default) a run is deterministic and a 10 s
episode takes a fraction of a second: the sync-vs-async experiment (bench/sim_async_vs_sync.py),
the demo and sim-record use it that way; ``smolvla-ros eval`` counts a learned policy's compute.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import math
import time
from typing import Protocol

import numpy as np

from smolvla_ros.core.executor.executor_core import ExecutorConfig, ExecutorCore
from smolvla_ros.core.types import ActionChunkData, ObservationData
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.scene import JOINT_NAMES
from smolvla_ros.sim.success import TASK_PROMPTS
from smolvla_ros.sim.world import CubePose, SimWorld


class ChunkPolicy(Protocol):
    """What the runner asks for chunks (the oracle, a served checkpoint, a test double)."""

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        """The chunk for `observation` (ROS units, stamped with its stamp and request id).

        `cube` is privileged simulator state: only the oracle may use it. A policy that samples
        may also have ``start_episode(seed)``: run_episode calls it after the world's reset, so
        that the same seed gives the same episode in any process.
        """
        ...


# Renders the policy's camera frames at request time: camera name -> uint8 [H, W, 3] RGB.
Observe = Callable[[SimWorld], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class RunConfig:
    """One executor setting of the experiment."""

    mode: str = 'async'  # 'async' | 'sync'
    latency_s: float = 0.1  # injected inference latency (simulated seconds)
    control_hz: float = 30.0
    chunk_fps: float = 30.0  # the policy's action rate (contract fps) until a chunk gives its dt
    chunk_threshold: float = 0.5
    fusion: str = 'crossfade'
    timeout_s: float = 30.0  # an episode without success ends here (failure)
    hold_s: float = 0.0  # success must hold this long (0: first instant counts)
    task: str = TASK_PROMPTS['lift']  # the language instruction sent with every request
    # True: the policy's measured compute (wall clock of predict) is added to latency_s, so the
    # executor sees a learned policy's real latency. False: latency_s alone (reproducible runs).
    count_inference: bool = False
    # The executor's round-trip estimate before the first answer (None: max(latency_s, 10 ms))
    # and its request timeout (None: max(5 s, 3 x latency_s)), both simulated seconds.
    initial_latency_s: float | None = None
    request_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise SimConfigError(f'latency_s must be finite and >= 0, got {self.latency_s}')
        if not self.timeout_s > 0 or not self.control_hz > 0 or not self.chunk_fps > 0:
            raise SimConfigError('timeout_s, control_hz and chunk_fps must be > 0')


@dataclass
class Handover:
    """Hand the arm to another policy in the middle of an episode: an operator taking over.

    ``due(world, t)`` is asked at the start of every control tick until it says yes. Then the
    executor's plan is dropped as the node's ``~/clear`` drops it (ExecutorCore.clear), chunks
    still in flight are discarded, and ``policy`` answers from that tick on, its frames rendered
    by ``observe``. Its compute is never counted as latency (an operator's reaction is the
    runner's ``latency_s``). ``at_s`` records the simulated time of the switch
    (sim/record.py records what follows it; sim/intervention.py decides when).
    """

    policy: ChunkPolicy
    due: Callable[[SimWorld, float], bool]
    observe: Observe | None = None
    at_s: float | None = None


@dataclass
class EpisodeTrace:
    """Per-tick and per-chunk records for plots (filled when tracing)."""

    t: list[float] = field(default_factory=list)  # s
    command: list[np.ndarray] = field(default_factory=list)  # [6] rad sent to the arm
    measured: list[np.ndarray] = field(default_factory=list)  # [6] rad joint angles
    chunks: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    # (stamp s, dt s, positions [T, 6]) of every accepted chunk


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    completion_s: float  # sim time to success (timeout_s when it failed)
    duration_s: float  # sim time the episode ran
    requests: int
    chunks: int
    starvation_ticks: int
    ticks: int
    seam_jump_max: float  # rad
    seam_jump_mean: float
    compute_ms: tuple[float, ...] = ()  # wall time of each predict call (the policy's compute)
    latency_ms: tuple[float, ...] = ()  # delay of each chunk in simulated time (what was seen)
    observe_ms: tuple[float, ...] = ()  # wall time spent rendering each request's frames

    @property
    def oracle_ms(self) -> tuple[float, ...]:
        """compute_ms under its older name (the oracle's compute)."""
        return self.compute_ms


def run_episode(world: SimWorld, policy: ChunkPolicy, config: RunConfig, seed: int,
                max_duration_s: float | None = None,
                trace: EpisodeTrace | None = None,
                on_tick: Callable[[SimWorld, float], None] | None = None,
                on_command: Callable[[int, np.ndarray], None] | None = None,
                observe: Observe | None = None,
                handover: Handover | None = None) -> EpisodeResult:
    """Reset the world with `seed` and run `policy` until success, timeout or `max_duration_s`.

    `observe(world)` renders the camera frames of each request (None: requests carry no images,
    enough for the oracle). `on_tick(world, t)` is called every control tick before the physics
    step (to render a video).
    `on_command(due_ns, position)` gets every command the executor emits (what the node
    publishes on ``joint_commands``; sim/record.py records it), before `on_tick`.
    `handover` switches to another policy mid-episode when its ``due`` says so (:class:`Handover`).
    """
    world.reset(seed)
    start_episode = getattr(policy, 'start_episode', None)  # a learned policy seeds its noise
    if start_episode is not None:
        start_episode(seed)
    core = ExecutorCore(ExecutorConfig(
        joint_names=JOINT_NAMES, fps=config.chunk_fps, control_hz=config.control_hz,
        mode=config.mode, chunk_threshold=config.chunk_threshold, fusion=config.fusion,
        initial_latency_s=(max(config.latency_s, 0.01) if config.initial_latency_s is None
                           else config.initial_latency_s),
        request_timeout_s=(max(5.0, 3 * config.latency_s) if config.request_timeout_s is None
                           else config.request_timeout_s)))
    tick_s = 1.0 / config.control_hz
    limit = config.timeout_s if max_duration_s is None else min(config.timeout_s, max_duration_s)
    latency_ns = round(config.latency_s * 1e9)
    pending: list[tuple[int, int, ActionChunkData]] = []  # (due ns, sent ns, chunk)
    success_since: float | None = None
    completion = None
    compute_ms: list[float] = []
    latency_ms: list[float] = []
    observe_ms: list[float] = []
    count_inference = config.count_inference
    k = 0
    while True:
        t = k * tick_s
        now = round(t * 1e9) + 1  # > 0: a stamp of 0 means "unset" in ROS
        if t >= limit:
            break
        if handover is not None and handover.at_s is None and handover.due(world, t):
            handover.at_s = t
            pending.clear()
            core.clear(now)
            policy, observe, count_inference = handover.policy, handover.observe, False
        while pending and pending[0][0] <= now:
            _, sent, chunk = pending.pop(0)
            outcome = core.on_chunk(chunk, sent, now)
            if outcome.accepted and trace is not None:
                trace.chunks.append((chunk.stamp_ns / 1e9, chunk.dt, chunk.positions.copy()))
        result = core.tick(now)
        if result.position is not None:
            world.set_targets(result.position)
            if on_command is not None:
                on_command(result.due_ns, result.position)
        if core.should_request(now):
            wall = time.perf_counter()
            images = dict(observe(world)) if observe is not None else {}
            observe_ms.append((time.perf_counter() - wall) * 1e3)
            obs = ObservationData(stamp_ns=now, request_id=0, task=config.task,
                                  joint_names=JOINT_NAMES, state=world.joint_positions(),
                                  camera_names=tuple(images), images=images)
            request = core.make_request(obs, now)
            wall = time.perf_counter()
            chunk = policy.predict(request, world.cube_pose())
            compute_ns = round((time.perf_counter() - wall) * 1e9)
            compute_ms.append(compute_ns / 1e6)
            delay_ns = latency_ns + (compute_ns if count_inference else 0)
            latency_ms.append(delay_ns / 1e6)
            pending.append((now + delay_ns, now, chunk))
        if trace is not None:
            trace.t.append(t)
            trace.command.append(world.targets())
            trace.measured.append(world.joint_positions())
        if on_tick is not None:
            on_tick(world, t)
        world.advance(tick_s)
        k += 1
        if world.success().success:
            success_since = world.time if success_since is None else success_since
            if world.time - success_since >= config.hold_s:
                completion = success_since
                break
        else:
            success_since = None
    m = core.metrics()
    return EpisodeResult(
        seed=seed, success=completion is not None,
        completion_s=completion if completion is not None else limit,
        duration_s=world.time, requests=m.requests, chunks=m.chunks_accepted,
        starvation_ticks=m.starvation_ticks, ticks=m.ticks, seam_jump_max=m.seam_jump_max,
        seam_jump_mean=m.seam_jump_mean, compute_ms=tuple(compute_ms),
        latency_ms=tuple(latency_ms), observe_ms=tuple(observe_ms))
