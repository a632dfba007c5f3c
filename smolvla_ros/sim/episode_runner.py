"""Run pick episodes with the real ExecutorCore on simulated time (no ROS, faster than real time).

The loop is what the chunk_executor node does, with the node's clock replaced by the simulator's:
every control tick the executor's command becomes the position targets, a request is answered by
the oracle from the observation of that instant, and the answer is delivered ``latency_s`` of
simulated time later (the injected inference latency). Only the oracle's own compute is timed on
the wall clock (for reports), so a run is deterministic and a 10 s episode takes a fraction of a
second: the sync-vs-async experiment (bench/sim_async_vs_sync.py) and the demo use it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import math
import time

import numpy as np

from smolvla_ros.core.executor_core import ExecutorConfig, ExecutorCore
from smolvla_ros.core.types import ActionChunkData, ObservationData
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.oracle import OraclePolicy
from smolvla_ros.sim.scene import JOINT_NAMES
from smolvla_ros.sim.world import SimWorld


@dataclass(frozen=True)
class RunConfig:
    """One executor setting of the experiment."""

    mode: str = 'async'  # 'async' | 'sync'
    latency_s: float = 0.1  # injected inference latency (simulated seconds)
    control_hz: float = 30.0
    chunk_threshold: float = 0.5
    fusion: str = 'crossfade'
    timeout_s: float = 30.0  # an episode without success ends here (failure)
    hold_s: float = 0.0  # success must hold this long (0: first instant counts)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            raise SimConfigError(f'latency_s must be finite and >= 0, got {self.latency_s}')
        if not self.timeout_s > 0 or not self.control_hz > 0:
            raise SimConfigError('timeout_s and control_hz must be > 0')


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
    oracle_ms: tuple[float, ...] = ()  # wall time of each oracle answer (the compute part)


def run_episode(world: SimWorld, oracle: OraclePolicy, config: RunConfig, seed: int,
                max_duration_s: float | None = None,
                trace: EpisodeTrace | None = None,
                on_tick: Callable[[SimWorld, float], None] | None = None,
                on_command: Callable[[int, np.ndarray], None] | None = None) -> EpisodeResult:
    """Reset the world with `seed` and run until success, timeout or `max_duration_s`.

    `on_tick(world, t)` is called every control tick before the physics step (to render).
    `on_command(due_ns, position)` gets every command the executor emits (what the node
    publishes on ``joint_commands``; sim/record.py records it), before `on_tick`.
    """
    world.reset(seed)
    core = ExecutorCore(ExecutorConfig(
        joint_names=JOINT_NAMES, fps=1.0 / oracle.config.dt, control_hz=config.control_hz,
        mode=config.mode, chunk_threshold=config.chunk_threshold, fusion=config.fusion,
        initial_latency_s=max(config.latency_s, 0.01),
        request_timeout_s=max(5.0, 3 * config.latency_s)))
    tick_s = 1.0 / config.control_hz
    limit = config.timeout_s if max_duration_s is None else min(config.timeout_s, max_duration_s)
    latency_ns = round(config.latency_s * 1e9)
    pending: list[tuple[int, int, ActionChunkData]] = []  # (due ns, sent ns, chunk)
    success_since: float | None = None
    completion = None
    oracle_ms: list[float] = []
    k = 0
    while True:
        t = k * tick_s
        now = round(t * 1e9) + 1  # > 0: a stamp of 0 means "unset" in ROS
        if t >= limit:
            break
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
            obs = ObservationData(stamp_ns=now, request_id=0, task='pick up the cube',
                                  joint_names=JOINT_NAMES, state=world.joint_positions())
            request = core.make_request(obs, now)
            wall = time.perf_counter()
            chunk = oracle.predict(request, world.cube_pose())
            oracle_ms.append((time.perf_counter() - wall) * 1e3)
            pending.append((now + latency_ns, now, chunk))
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
        seam_jump_mean=m.seam_jump_mean, oracle_ms=tuple(oracle_ms))
