"""Closed-loop evaluation in simulation: seeded episodes of a policy through ExecutorCore (no ROS).

``smolvla-ros eval`` (smolvla_ros/cli/evaluate.py) is the command; this module is the logic. Each
episode resets the world with its seed (cube pose, yaw and colour: the same scene the recorder and
the Gymnasium environment draw for that seed) and runs the real ExecutorCore on simulated time
(sim/episode_runner.py) until the world's own success detector fires (sim/success.py) or the
timeout. The policy is either

- a SmolVLA checkpoint, served exactly as the ``policy_server`` node serves it: loaded and checked
  against the contract by policy/serving.py, each request turned into a batch and the prediction
  into a chunk by core/inference/policy_io.py in core/inference/inference_worker.py. Its wall
  clock (the whole answer, as the node measures it) plus the injected latency is the delay the
  executor sees before the chunk arrives, in simulated time; or
- the oracle (the scripted expert with the privileged cube pose, sim/oracle.py), whose ~1 ms of
  compute is not counted, so that its rows reproduce bit for bit (the injected latency still is).

Images: at each request the contract cameras are rendered at the contract's frame size
(640x480, what the recorder records and the converter stores) and resized to the contract's
policy size with the executor's own resize (OpenCV INTER_AREA, nodes/chunk_executor.py), then
handed over as arrays. The live path also JPEG-encodes them twice on the way (camera topic, then
the request); that is skipped here: at quality 90 it moves pixels by about one grey level, which
the policy's own downscaling (to 96 px or so) averages away, and it would add ~15 ms of CPU per
request to an evaluation whose cost is already rendering. Frames are rendered only at request
time, not every tick, unless a video is written.

Seeds: demonstrations and any tuning use seeds below 5000; the project's own evaluations use
5000-5999 (:data:`EVAL_SEEDS`), so that any other range stays unseen data for everyone.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import math
import os
from pathlib import Path
import statistics
import time
from typing import Any

import numpy as np

from smolvla_ros.core.inference.inference_worker import InferenceWorker, WorkerConfig
from smolvla_ros.core.inference.policy_io import PolicyIO, parse_rename_map
from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.core.types import ActionChunkData, ObservationData
from smolvla_ros.opencv import cv2
from smolvla_ros.policy.serving import load_policy, predict_fn, seed_sampling, warm_up
from smolvla_ros.sim.contract_view import ContractView
from smolvla_ros.sim.episode_runner import EpisodeResult, RunConfig, run_episode
from smolvla_ros.sim.errors import IKError, SimConfigError
from smolvla_ros.sim.oracle import POLICY_ID as ORACLE_ID
from smolvla_ros.sim.oracle import OracleConfig, OraclePolicy
from smolvla_ros.sim.success import TASK_PROMPTS, TASKS
from smolvla_ros.sim.video import write_mp4
from smolvla_ros.sim.world import CubePose, SimWorld

EVAL_SEEDS = range(5000, 6000)  # the project's evaluation seeds; demonstrations use < 5000
MODES = ('async', 'sync')

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    del message


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: task, seeds, executor setting and outputs."""

    task: str = 'lift'
    episodes: int = 10
    seed_start: int = EVAL_SEEDS.start
    mode: str = 'async'
    latency_ms: float = 0.0  # injected on top of the policy's measured compute
    fixed_latency: bool = False  # True: latency_ms alone (compute not counted; reproducible)
    timeout_s: float = 20.0  # an episode without success ends here (a failure)
    task_prompt: str | None = None  # None: TASK_PROMPTS[task], what the demonstrations say
    chunk_threshold: float = 0.5
    fusion: str = 'crossfade'
    video_dir: Path | None = None  # one mp4 per episode (front | wrist) when set
    video_fps: float = 10.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SimConfigError(f'task must be one of {TASKS}, got {self.task!r}')
        if isinstance(self.episodes, bool) or not isinstance(self.episodes, int) or not (
                1 <= self.episodes <= 10_000):
            raise SimConfigError(f'episodes must be an int in 1..10000, got {self.episodes!r}')
        if isinstance(self.seed_start, bool) or not isinstance(self.seed_start, int) or (
                self.seed_start < 0):
            raise SimConfigError(f'seed_start must be an int >= 0, got {self.seed_start!r}')
        if self.mode not in MODES:
            raise SimConfigError(f'mode must be one of {MODES}, got {self.mode!r}')
        if not (math.isfinite(self.latency_ms) and 0 <= self.latency_ms <= 10_000):
            raise SimConfigError(f'latency_ms must be in [0, 10000], got {self.latency_ms!r}')
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 600):
            raise SimConfigError(f'timeout_s must be in (0, 600] s, got {self.timeout_s!r}')
        if self.task_prompt is not None and not self.task_prompt.strip():
            raise SimConfigError('task_prompt must not be empty')
        if not 1 <= self.video_fps <= 30:
            raise SimConfigError(f'video_fps must be in [1, 30], got {self.video_fps!r}')

    @property
    def seeds(self) -> range:
        return range(self.seed_start, self.seed_start + self.episodes)

    @property
    def prompt(self) -> str:
        return self.task_prompt if self.task_prompt is not None else TASK_PROMPTS[self.task]


@dataclass(frozen=True)
class CheckpointSpec:
    """How to serve a checkpoint (the policy_server parameters of the same names)."""

    path: str  # LeRobot policy directory (or a preset name, for tests)
    device: str = 'cpu'
    dtype: str = 'float32'
    num_steps: int = 0  # flow-matching steps (0: the checkpoint's)
    rename_map: str = ''  # e.g. 'front=camera1,wrist=camera2'
    threads: int = 0  # torch intra-op threads (0: torch's default)
    warmup_runs: int = 2
    calibration: str | os.PathLike[str] | None = None  # None: the contract's file


class EvalPolicy:
    """A policy the evaluation runs: predict(observation, cube) plus what the report needs."""

    policy_id: str = ''
    needs_images: bool = True
    count_inference: bool = True  # the compute is part of the latency the executor sees
    warmup_ms: tuple[float, ...] = ()

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        raise NotImplementedError

    def close(self) -> None:
        """Free threads and memory."""


class OracleEvalPolicy(EvalPolicy):
    """The scripted expert (privileged cube pose); its compute is not counted as latency."""

    needs_images = False
    count_inference = False

    def __init__(self, world: SimWorld, dt: float) -> None:
        self.policy_id = ORACLE_ID
        self._oracle = OraclePolicy(OracleConfig(dt=dt), scene=world.scene, model=world.model)

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        return self._oracle.predict(observation, cube)


class CheckpointEvalPolicy(EvalPolicy):
    """A SmolVLA checkpoint served through policy/serving.py and the policy server's worker."""

    def __init__(self, spec: CheckpointSpec, contract: RobotContract, log: Log = _quiet) -> None:
        self.policy_id = str(spec.path)
        units = DatasetUnits.from_contract(contract, spec.calibration)
        io = PolicyIO(contract, units, parse_rename_map(spec.rename_map, contract))
        policy = load_policy(str(spec.path), io, device=spec.device, dtype=spec.dtype,
                             threads=spec.threads, log=log)
        self.chunk_size = int(policy.config.chunk_size)
        self.worker = InferenceWorker(predict_fn(policy, spec.num_steps), io,
                                      WorkerConfig(self.chunk_size, policy_id=self.policy_id))
        try:
            # Judged by the report, not refused: max_latency_ms -1.
            self.warmup_ms = tuple(warm_up(self.worker, spec.warmup_runs, -1.0, log=log))
        except BaseException:
            self.worker.shutdown()
            raise

    def start_episode(self, seed: int) -> None:
        """Same episode seed, same sampling noise (run_episode calls it before the episode)."""
        seed_sampling(seed)

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        del cube  # privileged: a learned policy sees only the observation
        return self.worker.answer(observation)

    def close(self) -> None:
        self.worker.shutdown()


def policy_observer(contract: RobotContract, camera_names: Sequence[str],
                    render: Callable[[str], np.ndarray]
                    ) -> Callable[[SimWorld], Mapping[str, np.ndarray]]:
    """Renders each request's frames: contract cameras, resized to the contract's policy size.

    `render(name)` gives one camera's uint8 [H, W, 3] frame of the world being run (a
    ContractView's ``render``, or sim/record.py's camera rig).
    """
    def observe(world: SimWorld) -> dict[str, np.ndarray]:
        del world  # `render` knows its world
        frames = {}
        for name in camera_names:
            rgb = render(name)  # [H, W, 3] at the camera's contract size
            h, w = contract.policy_image_shape(name)
            if rgb.shape[:2] != (h, w):  # as the executor does (nodes/chunk_executor.py)
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)  # [h, w, 3]
            frames[name] = np.ascontiguousarray(rgb)
        return frames
    return observe


@dataclass(frozen=True)
class EpisodeRow:
    """One episode's outcome (times in seconds of simulated time unless named _wall)."""

    seed: int
    success: bool
    time_s: float  # completion time when it succeeded, else how long it ran
    chunks: int  # accepted by the executor
    requests: int
    starvation_ticks: int
    compute_p50_ms: float  # the policy's measured compute per request
    latency_p50_ms: float  # the delay the executor saw per chunk
    wall_s: float
    video: str | None = None
    error: str = ''  # why the episode ended early (the scripted expert cannot reach the cube)

    @classmethod
    def from_result(cls, result: EpisodeResult, wall_s: float,
                    video: Path | None) -> EpisodeRow:
        return cls(result.seed, result.success, result.completion_s, result.chunks,
                   result.requests, result.starvation_ticks, _pct(result.compute_ms, 50),
                   _pct(result.latency_ms, 50), wall_s, None if video is None else str(video))


@dataclass(frozen=True)
class EvalReport:
    """Every episode of one evaluation and the summary line of ``smolvla-ros eval``."""

    policy: str
    config: EvalConfig
    rows: tuple[EpisodeRow, ...]
    compute_ms: tuple[float, ...]  # every request's policy compute
    latency_ms: tuple[float, ...]  # every chunk's delay as the executor saw it
    warmup_ms: tuple[float, ...]
    wall_s: float
    render_ms: tuple[float, ...] = ()  # wall time rendering each request's frames

    def summary(self) -> dict[str, Any]:
        """The final JSON line: success rate, mean completion time of the successes, chunks,
        latency percentiles (the delay the executor saw), and the setting that produced them."""
        done = [r.time_s for r in self.rows if r.success]
        c = self.config
        return {
            'policy': self.policy, 'task': c.task, 'mode': c.mode,
            'success_rate': len(done) / len(self.rows), 'episodes': len(self.rows),
            'successes': len(done),
            'mean_time_s': round(statistics.fmean(done), 3) if done else None,
            'chunks': sum(r.chunks for r in self.rows),
            'requests': sum(r.requests for r in self.rows),
            'latency_p50_ms': round(_pct(self.latency_ms, 50), 2),
            'latency_p95_ms': round(_pct(self.latency_ms, 95), 2),
            'inference_p50_ms': round(_pct(self.compute_ms, 50), 2),
            'render_p50_ms': round(_pct(self.render_ms, 50), 2),
            'injected_latency_ms': c.latency_ms, 'fixed_latency': c.fixed_latency,
            'starvation_ticks': sum(r.starvation_ticks for r in self.rows),
            'seed_start': c.seed_start, 'seed_end': c.seed_start + c.episodes - 1,
            'timeout_s': c.timeout_s, 'wall_s': round(self.wall_s, 1),
        }


def _pct(values: tuple[float, ...] | list[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def run_config(policy: EvalPolicy, config: EvalConfig, contract: RobotContract) -> RunConfig:
    """The episode runner's setting for `policy` (the executor's first latency guess included)."""
    injected_s = config.latency_ms / 1e3
    counted = policy.count_inference and not config.fixed_latency
    expected_s = injected_s + (min(policy.warmup_ms) / 1e3 if policy.warmup_ms and counted
                               else 0.0)
    return RunConfig(
        mode=config.mode, latency_s=injected_s, control_hz=contract.fps, chunk_fps=contract.fps,
        chunk_threshold=config.chunk_threshold, fusion=config.fusion,
        timeout_s=config.timeout_s, task=config.prompt,
        count_inference=counted,
        initial_latency_s=max(expected_s, 0.01),
        request_timeout_s=max(5.0, 3 * expected_s))


def evaluate(policy: EvalPolicy, view: ContractView, config: EvalConfig,
             on_episode: Callable[[int, EpisodeRow], None] | None = None) -> EvalReport:
    """Run ``config.episodes`` seeded episodes of `policy` in `view`'s world; see module doc.

    `on_episode(index, row)` is called after each episode (for a live table).
    """
    if view.task != config.task:
        raise SimConfigError(f'the world is set up for task {view.task!r}, the evaluation '
                             f'asks for {config.task!r}')
    run = run_config(policy, config, view.contract)
    observe = (policy_observer(view.contract, view.camera_names, view.render)
               if policy.needs_images else None)
    if config.video_dir is not None:
        Path(config.video_dir).mkdir(parents=True, exist_ok=True)
    rows: list[EpisodeRow] = []
    compute: list[float] = []
    latency: list[float] = []
    render: list[float] = []
    start = time.perf_counter()
    for i, seed in enumerate(config.seeds):
        frames: list[np.ndarray] = []
        on_tick = _video_grabber(view, frames, config.video_fps) if config.video_dir else None
        wall = time.perf_counter()
        try:
            result = run_episode(view.world, policy, run, seed, on_tick=on_tick,
                                 observe=observe)
        except IKError as exc:  # only the oracle raises it: the expert's own failure
            row = EpisodeRow(seed, False, view.world.time, 0, 0, 0, 0.0, 0.0,
                             time.perf_counter() - wall, error=f'expert: {exc}')
            rows.append(row)
            if on_episode is not None:
                on_episode(i, row)
            continue
        video = None
        if config.video_dir is not None:
            video = write_mp4(frames, Path(config.video_dir) / f'episode_{seed}.mp4',
                              config.video_fps)
        row = EpisodeRow.from_result(result, time.perf_counter() - wall, video)
        rows.append(row)
        compute.extend(result.compute_ms)
        latency.extend(result.latency_ms)
        if observe is not None:
            render.extend(result.observe_ms)
        if on_episode is not None:
            on_episode(i, row)
    return EvalReport(policy.policy_id, config, tuple(rows), tuple(compute), tuple(latency),
                      policy.warmup_ms, time.perf_counter() - start, tuple(render))


def _video_grabber(view: ContractView, frames: list[np.ndarray],
                   fps: float) -> Callable[[SimWorld, float], None]:
    """on_tick that appends a front | wrist (every contract camera, side by side) frame at fps."""
    every = 1.0 / fps

    def grab(world: SimWorld, t: float) -> None:
        del world
        if t + 1e-9 >= len(frames) * every:
            shots = [view.render(name) for name in view.camera_names]
            height = max(s.shape[0] for s in shots)
            shots = [np.pad(s, ((0, height - s.shape[0]), (0, 0), (0, 0))) for s in shots]
            frames.append(np.concatenate(shots, axis=1))  # [H, sum W, 3]
    return grab
