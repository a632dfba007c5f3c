"""Assemble an ObservationData at time t from the contract's streams (as-of, per-stream max age).

The chunk executor feeds joint states and camera frames in as they arrive and asks for an
observation when it wants a chunk; the bag converter uses the batch form in ``alignment``. Frames
are stored as received (e.g. JPEG bytes) and decoded only for the observations actually sent, by a
``decode`` callable the caller provides (the ROS side owns image codecs).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smolvla_ros.core.observation.alignment import AlignmentReport, StreamBuffer, StreamSet
from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.core.types import ObservationData

STATE_STREAM = 'state'


class JointMismatchError(ValueError):
    """A joint state that lacks joints the contract needs (names the missing ones)."""


def _identity(camera: str, value: Any) -> np.ndarray:
    return value


class ObservationAssembler:
    """Per-stream buffers for one contract and the observation they give at a time t.

    ``max_age_s`` (the executor's ``max_obs_age_s``) overrides every stream's contract max age
    when given. The state stream is named ``state``, cameras by their contract names. No lock: the
    chunk executor's subscriptions, timer and request coroutine all run on its one executor
    thread (docs/ARCHITECTURE.md, "Threading"); the codec thread only gets looked-up frames.
    """

    def __init__(self, contract: RobotContract, *, capacity: int = 64,
                 max_age_s: float | None = None,
                 decode: Callable[[str, Any], np.ndarray] = _identity) -> None:
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f'max_age_s must be > 0 or None, got {max_age_s}')
        self.contract = contract
        self._decode = decode
        override = None if max_age_s is None else round(max_age_s * 1e9)
        buffers = [StreamBuffer(STATE_STREAM, capacity,
                                override if override is not None else contract.state.max_age_ns)]
        for cam in contract.cameras.values():
            buffers.append(StreamBuffer(cam.name, capacity,
                                        override if override is not None else cam.max_age_ns))
        self.streams = StreamSet(buffers)
        self._order_cache: dict[tuple[str, ...], np.ndarray] = {}

    def _order(self, names: tuple[str, ...]) -> np.ndarray:
        order = self._order_cache.get(names)
        if order is None:
            index = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.contract.joint_names if n not in index]
            if missing:
                raise JointMismatchError(
                    f'joint state lacks contract joints {missing} (it has {list(names)})')
            order = np.array([index[n] for n in self.contract.joint_names], dtype=np.int64)
            self._order_cache[names] = order
        return order

    def add_joint_state(self, stamp_ns: int, names: Sequence[str],
                        positions: np.ndarray | Sequence[float]) -> None:
        """Store a joint state (any joint order, extra joints ignored) in contract order, rad."""
        names = tuple(names)
        pos = np.asarray(positions, dtype=np.float64)  # [n]
        if pos.shape != (len(names),):
            raise JointMismatchError(f'{len(names)} joint names but positions of shape '
                                     f'{pos.shape}')
        self.streams[STATE_STREAM].add(stamp_ns, pos[self._order(names)])  # [J]

    def add_image(self, camera: str, stamp_ns: int, frame: Any) -> None:
        """Store a camera frame as received; ``decode`` turns it into RGB when it is used."""
        if camera not in self.contract.cameras:
            raise KeyError(f'camera {camera!r} is not in the contract '
                           f'{list(self.contract.camera_names)}')
        self.streams[camera].add(stamp_ns, frame)

    def discard_before(self, t_ns: int) -> None:
        """Forget every stream's samples stamped before t and ignore later arrivals stamped
        before it (see :meth:`StreamBuffer.discard_before`)."""
        for buffer in self.streams.buffers.values():
            buffer.discard_before(t_ns)

    def latest_state(self) -> np.ndarray | None:
        """The newest joint state [J] (contract order, rad), whatever its age; None if none."""
        sample = self.streams[STATE_STREAM].latest()
        return None if sample is None else sample.value

    def report(self, t_ns: int) -> AlignmentReport:
        """Which streams are fresh, missing or stale at t (for diagnostics)."""
        return self.streams.report(t_ns)

    def assemble(self, t_ns: int, *, request_id: int = 0, task: str = '') -> ObservationData:
        """The observation at t (stamp = t), or StaleStreamError naming every unusable stream."""
        state, frames = self.lookup(t_ns)
        images = {cam: self._decode(cam, frame) for cam, frame in frames.items()}
        return self.observation(t_ns, state, images, request_id=request_id, task=task)

    def lookup(self, t_ns: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The state [J] and each camera's frame as received, as of t (StaleStreamError naming
        every unusable stream). For callers that decode elsewhere (the executor's codec thread);
        :meth:`observation` then builds the observation from the decoded frames."""
        samples = self.streams.lookup(t_ns)
        return (samples[STATE_STREAM].value,
                {cam: samples[cam].value for cam in self.contract.camera_names})

    def observation(self, t_ns: int, state: np.ndarray, images: dict[str, np.ndarray], *,
                    request_id: int = 0, task: str = '') -> ObservationData:
        """The observation at t from a :meth:`lookup` state and the decoded frames."""
        return ObservationData(
            stamp_ns=int(t_ns), request_id=request_id, task=task,
            joint_names=self.contract.joint_names, state=state,
            camera_names=self.contract.camera_names, images=images)
