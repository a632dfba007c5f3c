"""Record scripted demonstrations as the ``recorder`` node would, on simulated time (no ROS node).

The sim's "teleoperator" is the scripted expert (sim/oracle.py) behind the real ExecutorCore on
simulated time (sim/episode_runner.py), so an episode takes a fraction of its length in wall time
and rendering dominates. Each episode becomes a rosbag2 bag that holds what the recorder
(nodes/recorder.py) writes when the live stack runs in simulation, topic for topic:

- contract state (``joint_states``), sensor_msgs/JointState, at ``state_hz`` (the driver's
  100 Hz), stamped at the sample time;
- contract action (``joint_commands``), sensor_msgs/JointState, every 30 Hz control tick,
  stamped with its due time;
- contract cameras (``cameras/<name>/image_raw/compressed``), sensor_msgs/CompressedImage (JPEG),
  every ``camera_every``-th tick (10 Hz, as so101_sim's camera_hz), stamped at render time;
- contract task (``task``), std_msgs/String, once at the episode start;
- ``episode``, std_msgs/String: ``start`` / ``stop`` around the episode.

Stamps are simulated time (``BAG_ORIGIN_NS`` + seconds since the episode's reset), and a
message's bag (receive) time equals its header stamp. The joint states are quantized to whole
encoder ticks through the contract's calibration, as the driver reads them from the servos. The
bag is written by the recorder's own writer (core/bag_writer.py); messages are serialized to CDR
by rosbags, so nothing here needs rclpy. ``smolvla-convert`` turns the bags into a LeRobot
dataset unchanged (docs/simulation.md, "Recording demonstrations").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
import math
from pathlib import Path
import shutil
import time

import numpy as np
from rosbags.typesys import Stores, get_typestore

from smolvla_ros.core.bag_writer import BagWriterThread
from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.core.robot.units import (
    CalibrationArrays,
    radians_to_raw,
    raw_to_radians,
)
from smolvla_ros.ros.compressed import encode_jpeg
from smolvla_ros.sim.cameras import CameraRig, buffer_size, select_cameras
from smolvla_ros.sim.episode_runner import EpisodeResult, Handover, RunConfig, run_episode
from smolvla_ros.sim.errors import IKError, SimConfigError
from smolvla_ros.sim.intervention import InterventionConfig, TakeoverRule, draw_takeover_s
from smolvla_ros.sim.oracle import OraclePolicy
from smolvla_ros.sim.scene import CAMERA_NAMES, JOINT_NAMES, SceneConfig
from smolvla_ros.sim.success import TASK_PROMPTS, TASKS, SuccessConfig
from smolvla_ros.sim.variation import (
    Disturber,
    EpisodeVariation,
    VariationConfig,
    draw_variation,
)
from smolvla_ros.sim.world import SimWorld

EPISODE_TOPIC = 'episode'  # the recorder's episode-event topic (nodes/recorder.py)
BAG_ORIGIN_NS = 1_000_000_000  # stamp of simulated t = 0 (a zero stamp means "unset" in ROS)
EVAL_SEEDS = range(5000, 6000)  # the project's evaluation seeds: never demonstrations
JOINT_STATE = 'sensor_msgs/msg/JointState'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
IMAGE = 'sensor_msgs/msg/Image'
STRING = 'std_msgs/msg/String'


@dataclass(frozen=True)
class RecordConfig:
    """What an episode records and how the expert is run (s, Hz)."""

    task: str = 'lift'  # 'lift' | 'bowl' (the world's success detector)
    task_text: str = ''  # the language instruction (default: TASK_PROMPTS[task])
    camera_every: int = 3  # render every k-th control tick (30 Hz / 3 = so101_sim's 10 Hz)
    state_hz: float = 100.0  # joint_states rate (the driver's rate_hz)
    jpeg_quality: int = 90  # so101_sim's default
    image_width: int = 0  # 0: the contract's size per camera
    image_height: int = 0
    post_success_s: float = 0.5  # keep recording while the success holds this long
    timeout_s: float = 12.0  # an episode without success ends here (a failure)
    latency_s: float = 0.1  # the expert's simulated inference latency (RunConfig)
    chunk_threshold: float = 0.5
    namespace: str = ''  # the arm's namespace (topics become /<ns>/joint_states ...)
    variation: VariationConfig = field(default_factory=VariationConfig)
    # A checkpoint drives until the expert takes over; only the takeover is recorded
    # (sim/intervention.py). None: the expert drives the whole episode.
    intervention: InterventionConfig | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SimConfigError(f'task must be one of {TASKS}, got {self.task!r}')
        if isinstance(self.camera_every, bool) or not 1 <= int(self.camera_every) <= 30:
            raise SimConfigError(f'camera_every must be an int in 1..30, got '
                                 f'{self.camera_every!r}')
        if not 10 <= self.state_hz <= 500:
            raise SimConfigError(f'state_hz must be in [10, 500], got {self.state_hz!r}')
        if not 1 <= self.jpeg_quality <= 100:
            raise SimConfigError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality!r}')
        if not (math.isfinite(self.post_success_s) and self.post_success_s >= 0):
            raise SimConfigError(f'post_success_s must be >= 0, got {self.post_success_s!r}')
        if not 0 < self.timeout_s <= 600:
            raise SimConfigError(f'timeout_s must be in (0, 600], got {self.timeout_s!r}')

    @property
    def instruction(self) -> str:
        return self.task_text or TASK_PROMPTS[self.task]


def check_demo_seeds(first: int, count: int) -> None:
    """Demonstrations use seeds below the evaluation range (5000-5999), never inside it."""
    if first < 0:
        raise SimConfigError(f'seeds must be >= 0, got {first}')
    last = first + count - 1
    if first <= EVAL_SEEDS[-1] and last >= EVAL_SEEDS[0]:
        raise SimConfigError(
            f'seeds {first}..{last} overlap the evaluation seeds {EVAL_SEEDS[0]}..'
            f'{EVAL_SEEDS[-1]}: demonstrations must stay below {EVAL_SEEDS[0]}')


class RecordingWorld(SimWorld):
    """SimWorld whose clock follows the executor's exactly and which samples the joint states.

    ``advance`` steps to the accumulated requested time (a 30 Hz tick is 16.67 physics steps of
    2 ms; rounding each tick to 17 would run the physics 2 % ahead of the stamps), and calls
    ``on_state(t)`` at every multiple of the state period: the driver's joint_states.
    """

    on_state: Callable[[float], None] | None = None
    state_period_s: float = 0.01

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._clock, self._steps, self._samples = 0.0, 0, 0
        self._sample()

    def advance(self, seconds: float) -> int:
        self._clock += seconds
        n = max(0, round(self._clock / self.dt) - self._steps)
        for _ in range(n):
            self.step(1)
            self._steps += 1
            self._sample()
        return n

    def _sample(self) -> None:
        t = self._steps * self.dt
        if self.on_state is not None and t + 1e-9 >= self._samples * self.state_period_s:
            self.on_state(t)
            self._samples += 1


@dataclass
class EpisodeRecording:
    """One episode in memory: its result, what varied, and its messages (bag time order)."""

    seed: int
    result: EpisodeResult
    variation: EpisodeVariation
    disturbances: list[tuple[float, str]]
    messages: list[tuple[int, str, bytes]]  # (stamp ns, topic, CDR bytes)
    camera_frames: int
    cube_start: list[float]
    cube_rgba: list[float]
    wall_s: float
    expert_error: str = ''  # why the expert gave up (IKError), if it did
    takeover_s: float | None = None  # intervention: when the expert took over (recording t=0)
    takeover: str = ''  # intervention: why ('time' | 'miss')
    skipped: str = ''  # intervention: why nothing worth keeping was recorded

    @property
    def success(self) -> bool:
        """Worth keeping: the world's success, reached by the expert."""
        return self.result.success and not self.skipped

    def summary(self) -> dict:
        """The episode's manifest line (JSON-ready)."""
        r = self.result
        return {'seed': self.seed, 'success': self.success,
                'completion_s': round(r.completion_s, 3), 'duration_s': round(r.duration_s, 3),
                'camera_frames': self.camera_frames, 'messages': len(self.messages),
                'cube_start': [round(v, 4) for v in self.cube_start],
                'cube_rgba': [round(v, 3) for v in self.cube_rgba],
                'disturbances': [[round(t, 3), k] for t, k in self.disturbances],
                **self.variation.summary(), 'wall_s': round(self.wall_s, 3),
                **({'expert_error': self.expert_error} if self.expert_error else {}),
                **({'takeover_s': round(self.takeover_s, 3), 'takeover': self.takeover}
                   if self.takeover_s is not None else {}),
                **({'skipped': self.skipped} if self.skipped else {})}


def topic_types(contract: RobotContract, namespace: str = '') -> dict[str, str]:
    """Absolute topic -> message type of everything the recorder records under `namespace`."""
    def absolute(name: str) -> str:
        return '/' + '/'.join(p for p in (namespace.strip('/'), name.strip('/')) if p)

    topics = {absolute(contract.state.topic): JOINT_STATE,
              absolute(contract.action.topic): JOINT_STATE,
              absolute(contract.task.topic): STRING, absolute(EPISODE_TOPIC): STRING}
    for cam in contract.cameras.values():
        topics[absolute(cam.topic)] = COMPRESSED if cam.compressed else IMAGE
    return topics


class EpisodeRecorder:
    """One world, camera rig and serializer; ``record(seed)`` runs and records one episode.

    Rendering is what costs (MuJoCo on the CPU): frames are rendered only every
    ``camera_every``-th control tick. Use from one thread (the rig owns a GL context).
    """

    def __init__(self, config: RecordConfig, contract: RobotContract) -> None:
        self.config, self.contract = config, contract
        selection = select_cameras(contract, CAMERA_NAMES, config.image_width,
                                   config.image_height)
        if selection.missing:
            raise SimConfigError(f'contract cameras {list(selection.missing)} are not in the '
                                 f'scene (it has {list(CAMERA_NAMES)})')
        self.cameras = selection.cameras
        width, height = buffer_size(self.cameras)
        self.scene = SceneConfig(bowl=config.task == 'bowl', image_width=width,
                                 image_height=height)
        self.world = RecordingWorld(self.scene, SuccessConfig(task=config.task))
        self.world.state_period_s = 1.0 / config.state_hz
        self.rig = CameraRig(self.world.model, self.cameras)
        if contract.calibration_file is None:
            raise SimConfigError(f'{contract.source}: the contract names no calibration_file '
                                 '(needed to quantize joint states to encoder ticks)')
        self.cal = CalibrationArrays.from_calibration(
            load_calibration(contract.calibration_file), JOINT_NAMES)
        self.ts = get_typestore(Stores.ROS2_KILTED)
        self.topics = topic_types(contract, config.namespace)
        names = list(self.topics)
        self._state_topic, self._action_topic, self._task_topic, self._event_topic = names[:4]
        self._camera_topics = dict(zip((c.name for c in contract.cameras.values()), names[4:],
                                       strict=True))
        self.learned = self.observe = None
        if config.intervention is not None:
            self._load_learned(config.intervention)

    def _load_learned(self, intervention: InterventionConfig) -> None:
        """The checkpoint that drives until the takeover, served as ``smolvla-ros eval`` serves
        it, with its frames rendered from this world at the contract's sizes."""
        from smolvla_ros.sim.evaluation import CheckpointEvalPolicy, CheckpointSpec, policy_observer
        cams = self.contract.cameras
        if any((c.width, c.height) != (cams[c.name].width, cams[c.name].height)
               for c in self.cameras):
            raise SimConfigError('intervention recording renders at the contract\'s frame '
                                 'sizes (the learned policy sees what it was trained on): '
                                 'leave --image-width/--image-height at 0')
        self.learned = CheckpointEvalPolicy(
            CheckpointSpec(intervention.checkpoint, threads=intervention.threads), self.contract)
        self.observe = policy_observer(self.contract, [c.name for c in self.cameras],
                                       lambda name: self.rig.render(self.world.data, name))

    # -- messages ----------------------------------------------------------------------------
    def _header(self, t_ns: int, frame_id: str = '') -> object:
        T = self.ts.types
        return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
            sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000), frame_id=frame_id)

    def _joint_state(self, t_ns: int, position: np.ndarray, velocity: np.ndarray | None = None,
                     effort: np.ndarray | None = None) -> bytes:
        empty = np.zeros(0)
        msg = self.ts.types[JOINT_STATE](
            header=self._header(t_ns), name=list(JOINT_NAMES),
            position=np.asarray(position, dtype=np.float64),
            velocity=empty if velocity is None else np.asarray(velocity, dtype=np.float64),
            effort=empty if effort is None else np.asarray(effort, dtype=np.float64))
        return bytes(self.ts.serialize_cdr(msg, JOINT_STATE))

    def _string(self, text: str) -> bytes:
        return bytes(self.ts.serialize_cdr(self.ts.types[STRING](data=text), STRING))

    def _image(self, t_ns: int, camera, rgb: np.ndarray) -> bytes:
        header = self._header(t_ns, f'{camera.name}_camera')  # so101_sim's frame_id
        if camera.compressed:
            data = np.frombuffer(encode_jpeg(rgb, self.config.jpeg_quality), np.uint8)
            msg = self.ts.types[COMPRESSED](header=header, format='jpeg', data=data)
            return bytes(self.ts.serialize_cdr(msg, COMPRESSED))
        h, w = rgb.shape[:2]
        msg = self.ts.types[IMAGE](header=header, height=h, width=w, encoding='rgb8',
                                   is_bigendian=0, step=w * 3, data=rgb.reshape(-1))
        return bytes(self.ts.serialize_cdr(msg, IMAGE))

    def quantize(self, angles: np.ndarray) -> np.ndarray:
        """Joint angles as the driver reports them: whole encoder ticks back to radians."""
        return raw_to_radians(np.rint(radians_to_raw(angles, self.cal)), self.cal)

    # -- episodes ----------------------------------------------------------------------------
    def record(self, seed: int) -> EpisodeRecording:
        """Run episode `seed` with the expert (with an intervention: the checkpoint until the
        expert takes over) and keep every message the recorder would have recorded."""
        c = self.config
        wall = time.perf_counter()
        variation = draw_variation(seed, c.variation)
        oracle = OraclePolicy(model=self.world.model, expert=variation.expert,
                              scene=self.scene)
        w = self.world
        messages: list[tuple[int, str, bytes]] = []
        frames = 0
        disturber: Disturber | None = None
        k0 = 0  # the first recorded control tick (the takeover's, with an intervention)
        handover = rule = None
        timeout_s = c.timeout_s
        if self.learned is not None:
            rule = TakeoverRule(draw_takeover_s(seed, c.intervention), c.intervention.miss_s,
                                self.scene.cube_half_size, variation.expert)
            timeout_s += rule.at_s  # the expert gets its full time after the takeover

            def due(world: SimWorld, t: float) -> bool:
                nonlocal k0, frames
                if not rule(world, t):
                    return False
                k0, frames = round(t / tick_s), 0
                messages.clear()  # the policy's part is not a demonstration
                on_state(k0 * tick_s)  # the state at the takeover, as a reset samples it
                return True
            handover = Handover(oracle, due)
        run = RunConfig(mode='async', latency_s=c.latency_s, chunk_threshold=c.chunk_threshold,
                        timeout_s=timeout_s, hold_s=c.post_success_s)
        tick_s = 1.0 / run.control_hz

        def on_state(t: float) -> None:
            t_ns = BAG_ORIGIN_NS + round((t - k0 * tick_s) * 1e9)
            messages.append((t_ns, self._state_topic, self._joint_state(
                t_ns, self.quantize(w.joint_positions()), w.joint_velocities(),
                w.actuator_forces())))

        def tick_ns(k: int) -> int:
            """Stamp of control tick k, exactly where smolvla-convert's frame grid puts frame
            k (core/observation/alignment.py frame_grid): a frame's action is that tick's."""
            return BAG_ORIGIN_NS + int(np.rint((k - k0) * (1e9 / run.control_hz)))

        def on_command(due_ns: int, position: np.ndarray) -> None:
            t_ns = tick_ns(round(due_ns * 1e-9 / tick_s))
            messages.append((t_ns, self._action_topic, self._joint_state(t_ns, position)))
            disturber.command(position)

        def on_tick(world: SimWorld, t: float) -> None:
            nonlocal frames
            k = round(t / tick_s)
            if (k - k0) % c.camera_every == 0:
                t_ns = tick_ns(k)
                for cam in self.cameras:
                    rgb = self.rig.render(world.data, cam.name)
                    messages.append((t_ns, self._camera_topics[cam.name],
                                     self._image(t_ns, cam, rgb)))
                frames += 1
            disturber.apply(world, t, tick_s)

        w.on_state = on_state
        # run_episode resets the world (seed: cube pose, yaw, colour) and then ticks; the
        # disturber needs the reset arm pose, so it is created on the first command or tick.
        w.reset(seed)
        disturber = Disturber(variation, c.variation, w.joint_positions(),
                              (self.scene.cube_x, self.scene.cube_y))
        messages.clear()
        expert_error = ''
        try:
            # Without an intervention: the expert from the start, no frames for it, no handover.
            result = run_episode(w, self.learned or oracle, run, seed, on_tick=on_tick,
                                 on_command=on_command, observe=self.observe, handover=handover)
        except IKError as exc:  # the expert cannot reach this cube pose: a failed episode
            expert_error = str(exc)
            result = EpisodeResult(seed=seed, success=False, completion_s=c.timeout_s,
                                   duration_s=w.time, requests=0, chunks=0, starvation_ticks=0,
                                   ticks=0, seam_jump_max=0.0, seam_jump_mean=0.0)
        finally:
            w.on_state = None
        skipped = ''
        if handover is not None:
            if handover.at_s is None:
                skipped = ('the policy succeeded before the takeover' if result.success
                           else 'no takeover')
            else:  # times from the takeover, where the recording starts
                t0 = k0 * tick_s
                result = replace(result, completion_s=max(0.0, result.completion_s - t0),
                                 duration_s=max(0.0, result.duration_s - t0))
        end_ns = BAG_ORIGIN_NS + round((w.time - k0 * tick_s) * 1e9)
        messages.append((BAG_ORIGIN_NS, self._task_topic, self._string(c.instruction)))
        messages.append((BAG_ORIGIN_NS, self._event_topic, self._string('start')))
        messages.append((end_ns, self._event_topic, self._string('stop')))
        messages.sort(key=lambda m: m[0])  # bag order = receive order; stable for equal times
        return EpisodeRecording(
            seed=seed, result=result, variation=variation, disturbances=disturber.events,
            messages=messages, camera_frames=frames,
            cube_start=[float(v) for v in w.cube_start],
            cube_rgba=[float(v) for v in w.cube_rgba], wall_s=time.perf_counter() - wall,
            expert_error=expert_error,
            takeover_s=None if handover is None else handover.at_s,
            takeover=rule.reason if rule is not None else '', skipped=skipped)

    def close(self) -> None:
        if self.learned is not None:
            self.learned.close()
        self.rig.close()


def write_bag(path: Path, recording: EpisodeRecording, topics: dict[str, str],
              storage: str = 'mcap') -> dict[str, int]:
    """Write one recorded episode as a finalised rosbag2 bag at `path` (must not exist).

    Written to ``<path>.partial`` by the recorder's writer (core/bag_writer.py) and renamed when
    complete, so a killed run never leaves a bag that looks finished. Returns messages per topic.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f'{path} already exists')
    partial = path.with_name(path.name + '.partial')
    if partial.exists():
        shutil.rmtree(partial)
    writer = BagWriterThread(partial, storage, topics, flush_period_s=0.0)
    for t_ns, topic, raw in recording.messages:
        writer.put(topic, t_ns, raw)
    writer.close()
    if writer.error is not None:
        raise RuntimeError(f'writing {partial} failed: {writer.error}') from writer.error
    partial.rename(path)
    return dict(writer.written)
