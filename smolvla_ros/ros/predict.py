"""PredictChunk helpers shared by the policy servers, the predict probe and the benchmark.

``chunk_answer`` and ``failed_answer`` build every server's response (policy_server,
oracle_policy_server, null_policy_server): the chunk with ``success = true``, or ``success =
false`` with a message naming the error and the request id and stamp echoed. ``null_answer`` is
everything the null server does per request: decode the observation as a real server would (so
the decode cost is paid), then answer a chunk that holds the observed state for ``chunk_size``
steps. ``check_answer`` is the probe's contract check of one response. All are plain functions on
messages, so they are tested without a ROS graph.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
import math
import time

import numpy as np
from smolvla_msgs.msg import Observation
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.types import ActionChunkData, InvalidDataError
from smolvla_ros.ros.chunk import chunk_to_msg, msg_to_chunk
from smolvla_ros.ros.errors import ConversionError, LengthMismatchError
from smolvla_ros.ros.joint_state import joint_state_to_numpy
from smolvla_ros.ros.observation import msg_to_observation
from smolvla_ros.ros.time import ns_to_stamp, stamp_to_ns


class AnswerError(ConversionError):
    """A PredictChunk response that breaks the contract (failure, wrong id, wrong shape...)."""


@dataclass(frozen=True)
class NullPolicyConfig:
    """Parameters of the null policy server."""

    chunk_size: int = 50  # actions per chunk (SmolVLA's default chunk_size)
    fps: float = 30.0  # chunk rate: dt = 1 / fps
    decode_images: bool = True  # pay the image decode cost like a real server
    # JPEG frames decoded in parallel; 1 = inline, one after the other. On the 2-core CI machine
    # (shared, loaded) 4 threads gained nothing (bench/predict_roundtrip.py), so 1 is the default;
    # try the number of cameras on a multi-core server.
    decode_threads: int = 1
    policy_id: str = 'null'  # reported in every chunk

    def __post_init__(self) -> None:
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or (
                self.chunk_size < 1):
            raise ValueError(f'chunk_size must be an int >= 1, got {self.chunk_size!r}')
        if isinstance(self.decode_threads, bool) or not isinstance(self.decode_threads, int) or (
                self.decode_threads < 1):
            raise ValueError(f'decode_threads must be an int >= 1, got {self.decode_threads!r}')
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f'fps must be a finite number > 0, got {self.fps!r}')

    @property
    def dt(self) -> float:
        """Seconds between actions."""
        return 1.0 / self.fps


def chunk_answer(response: PredictChunk.Response, chunk: ActionChunkData
                 ) -> PredictChunk.Response:
    """``response`` answering with ``chunk`` (``success = true``; the chunk carries the request's
    id and the observation's stamp, as ``check_answer`` expects)."""
    response.chunk = chunk_to_msg(chunk)
    response.success = True
    return response


def failed_answer(response: PredictChunk.Response, observation: Observation,
                  error: BaseException | str) -> PredictChunk.Response:
    """``response`` refusing the request for ``observation``: ``success = false``, ``message`` the
    error (an exception as ``Type: text``), and the request id and stamp echoed so that the client
    can match the failure to its request."""
    response.success = False
    response.message = error if isinstance(error, str) else f'{type(error).__name__}: {error}'
    response.chunk.request_id = observation.request_id
    response.chunk.header.stamp = observation.header.stamp
    return response


def null_answer(
    observation: Observation, config: NullPolicyConfig, executor: Executor | None = None
) -> PredictChunk.Response:
    """Answer one request without inference: the observed state held for chunk_size steps.

    ``executor`` (a thread pool of ``config.decode_threads``) decodes the images in parallel.

    Malformed observations get ``success = False`` and the specific reason in ``message``; the
    request id and stamp are echoed either way so the client can match the failure.
    """
    start = time.perf_counter()
    try:
        if config.decode_images:
            obs = msg_to_observation(observation, executor)
            names, state, stamp_ns = obs.joint_names, obs.state, obs.stamp_ns
        else:
            joints = joint_state_to_numpy(observation.state)
            if joints.position.size != len(joints.names):
                raise LengthMismatchError(
                    f'observation state has {joints.position.size} positions for '
                    f'{len(joints.names)} joints {list(joints.names)}')
            names, state = joints.names, joints.position
            stamp_ns = stamp_to_ns(observation.header.stamp)
        positions = np.broadcast_to(state.astype(np.float32), (config.chunk_size, len(names)))
        chunk = ActionChunkData(
            stamp_ns=stamp_ns, request_id=int(observation.request_id), joint_names=names,
            dt=config.dt, positions=positions,  # [T, J], every row the observed state
            inference_ms=(time.perf_counter() - start) * 1e3, policy_id=config.policy_id)
    except (ConversionError, InvalidDataError) as exc:
        return failed_answer(PredictChunk.Response(), observation, exc)
    return chunk_answer(PredictChunk.Response(), chunk)


def check_answer(
    response: PredictChunk.Response,
    *,
    request_id: int,
    stamp_ns: int,
    joint_names: Sequence[str],
    chunk_size: int = 0,
) -> ActionChunkData:
    """The chunk of a response, or AnswerError saying which part of the contract it breaks.

    Checks: success, request id echoed, stamp = observation stamp, joint names as requested, a
    consistent positions array, and ``chunk_size`` steps when it is > 0.
    """
    if not response.success:
        raise AnswerError(f'request {request_id}: server reported failure: {response.message!r}')
    try:
        chunk = msg_to_chunk(response.chunk)
    except (ConversionError, InvalidDataError) as exc:
        raise AnswerError(f'request {request_id}: malformed chunk: {exc}') from exc
    if chunk.request_id != request_id:
        raise AnswerError(f'request {request_id}: answer carries request_id {chunk.request_id}')
    if chunk.stamp_ns != stamp_ns:
        raise AnswerError(
            f'request {request_id}: chunk stamp {chunk.stamp_ns} ns != observation stamp '
            f'{stamp_ns} ns')
    if chunk.joint_names != tuple(joint_names):
        raise AnswerError(
            f'request {request_id}: chunk joints {list(chunk.joint_names)} != requested '
            f'{list(joint_names)}')
    if chunk_size > 0 and chunk.num_steps != chunk_size:
        raise AnswerError(
            f'request {request_id}: chunk has {chunk.num_steps} steps, expected {chunk_size}')
    return chunk


def stamp_request(request: PredictChunk.Request, request_id: int, stamp_ns: int) -> None:
    """Give a (reused) request a new id and observation stamp, state stamp included.

    Reusing one encoded request keeps JPEG encoding out of the measured round trip; rclpy
    serializes a request inside ``call_async``, so mutating it afterwards is safe.
    """
    request.observation.request_id = request_id
    stamp = ns_to_stamp(stamp_ns)
    request.observation.header.stamp = stamp
    request.observation.state.header.stamp = stamp


@dataclass(frozen=True)
class ProbeConfig:
    """Parameters of the predict probe (a synthetic observation sent ``count`` times)."""

    count: int = 100  # requests to send
    num_cameras: int = 3
    image_size: int = 512  # square frames, SmolVLA's input resolution
    jpeg: bool = True  # JPEG in `images`; false: raw rgb8 in `raw_images`
    jpeg_quality: int = 90
    expected_chunk_size: int = 0  # > 0: answers must have exactly this many steps
    wait_timeout_s: float = 10.0  # for the service to appear
    request_timeout_s: float = 5.0  # per request

    def __post_init__(self) -> None:
        for name, lo in (('count', 1), ('num_cameras', 0), ('image_size', 8),
                         ('jpeg_quality', 1), ('expected_chunk_size', 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f'{name} must be an int >= {lo}, got {value!r}')
        if self.jpeg_quality > 100:
            raise ValueError(f'jpeg_quality must be <= 100, got {self.jpeg_quality}')
        for name in ('wait_timeout_s', 'request_timeout_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
