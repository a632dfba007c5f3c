"""Plain, validated data the whole stack passes around (ROS-free, numpy only).

The chunk executor, the policy server, the bag converter and the diagnostics all speak these two
types; only ``smolvla_ros.ros`` knows how they map onto ``smolvla_msgs``. Validation happens once,
at construction, so code that receives one of these never re-checks shapes or finiteness.

Time is an ``int`` of nanoseconds everywhere in the core (ROS time from the node clock, so that
``use_sim_time`` works); joint values are in ROS units (rad).

Arrays are stored without copying when they already have the right dtype, so the objects are
"frozen" in their fields but the arrays they hold stay the caller's: do not mutate an array after
handing it over.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import math
from types import MappingProxyType

import numpy as np

_UINT64_MAX = 2**64 - 1
_INT64_MAX = 2**63 - 1
# Frozen dataclasses normalise their own fields in __post_init__ through this.
_set = object.__setattr__


class InvalidDataError(ValueError):
    """Base class: a chunk or an observation that breaks its contract."""


class InvalidChunkError(InvalidDataError):
    """An ActionChunkData whose fields disagree (shape vs names, dt, non-finite values)."""


class InvalidObservationError(InvalidDataError):
    """An ObservationData whose fields disagree (state vs names, cameras vs images, ...)."""


def _check_int(value: object, name: str, lo: int, hi: int, error: type[InvalidDataError]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(f'{name} must be an int, got {type(value).__name__} {value!r}')
    value = int(value)
    if not lo <= value <= hi:
        raise error(f'{name} must be in [{lo}, {hi}], got {value}')
    return value


def _check_names(names: object, what: str, error: type[InvalidDataError]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise error(f'{what} must be a sequence of names, got the string {names!r}')
    names = tuple(names)  # type: ignore[arg-type]
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise error(f'{what} must be non-empty strings, got {bad!r}')
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise error(f'{what} contain duplicates: {dupes}')
    return names


def _check_finite(array: np.ndarray, what: str, error: type[InvalidDataError]) -> None:
    if array.size and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0].tolist()
        raise error(f'{what} holds a non-finite value at index {bad}: {array[tuple(bad)]}')


@dataclass(frozen=True, eq=False)
class ActionChunkData:
    """A chunk of future joint positions predicted from one observation.

    Action ``k`` is due at ``stamp_ns + k * dt`` (seconds -> ns): the executor places the chunk
    on its time line at the observation stamp, which is what makes delay compensation measurable.
    """

    stamp_ns: int  # ROS time of the observation the chunk was predicted from
    request_id: int  # id of the Observation this chunk answers
    joint_names: tuple[str, ...]  # column order of positions
    dt: float  # seconds between consecutive actions
    positions: np.ndarray  # float32 [T, J], ROS units (rad)
    inference_ms: float = 0.0  # server-side wall time spent on this chunk
    policy_id: str = ''  # checkpoint path or preset name

    def __post_init__(self) -> None:
        err = InvalidChunkError
        _set(self, 'stamp_ns', _check_int(self.stamp_ns, 'stamp_ns', 0, _INT64_MAX, err))
        _set(
            self, 'request_id', _check_int(self.request_id, 'request_id', 0, _UINT64_MAX, err))
        names = _check_names(self.joint_names, 'joint_names', err)
        if not names:
            raise err('joint_names is empty: a chunk needs at least one joint')
        _set(self, 'joint_names', names)
        dt = float(self.dt)
        if not (math.isfinite(dt) and dt > 0.0):
            raise err(f'dt must be a finite number > 0 s, got {self.dt!r}')
        _set(self, 'dt', dt)
        positions = np.asarray(self.positions, dtype=np.float32)
        if positions.ndim != 2 or positions.shape[1] != len(names) or positions.shape[0] < 1:
            raise err(
                f'positions must have shape [T >= 1, {len(names)}] for joints {list(names)}, '
                f'got {positions.shape}')
        _check_finite(positions, 'positions', err)
        _set(self, 'positions', positions)
        inference_ms = float(self.inference_ms)
        if not (math.isfinite(inference_ms) and inference_ms >= 0.0):
            raise err(f'inference_ms must be finite and >= 0, got {self.inference_ms!r}')
        _set(self, 'inference_ms', inference_ms)
        if not isinstance(self.policy_id, str):
            raise err(f'policy_id must be a str, got {type(self.policy_id).__name__}')

    @property
    def num_steps(self) -> int:
        """T, the number of actions."""
        return int(self.positions.shape[0])

    @property
    def num_joints(self) -> int:
        """J, the number of joints (columns)."""
        return int(self.positions.shape[1])

    @property
    def dt_ns(self) -> int:
        """dt in integer nanoseconds (rounded), for time-line arithmetic."""
        return round(self.dt * 1e9)

    def action_time_ns(self, k: int) -> int:
        """ROS time (ns) at which action ``k`` is due."""
        return self.stamp_ns + round(k * self.dt * 1e9)

    @property
    def end_ns(self) -> int:
        """Time at which the chunk runs out: one dt after its last action is due."""
        return self.action_time_ns(self.num_steps)


def _empty_leftover() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class ObservationData:
    """Everything a policy needs to predict one chunk, with images decoded to RGB.

    ``images`` maps each name in ``camera_names`` (exactly those, no more) to a uint8 [H, W, 3]
    RGB array. ``leftover`` is the not-yet-executed tail of the chunk being executed, starting at
    the action due at ``stamp_ns`` (real-time chunking hint; shape [0, J] when unused).
    """

    stamp_ns: int  # ROS time of the observation
    request_id: int  # chosen by the requester, echoed in the chunk
    task: str  # natural-language task
    joint_names: tuple[str, ...]  # order of state (and of leftover columns)
    state: np.ndarray  # float64 [J], ROS units (rad)
    camera_names: tuple[str, ...] = ()
    images: Mapping[str, np.ndarray] = field(default_factory=dict)  # name -> uint8 [H, W, 3] RGB
    inference_delay_steps: int = 0
    leftover: np.ndarray = field(default_factory=_empty_leftover)  # float32 [n, J]

    def __post_init__(self) -> None:
        err = InvalidObservationError
        _set(self, 'stamp_ns', _check_int(self.stamp_ns, 'stamp_ns', 0, _INT64_MAX, err))
        _set(
            self, 'request_id', _check_int(self.request_id, 'request_id', 0, _UINT64_MAX, err))
        if not isinstance(self.task, str):
            raise err(f'task must be a str, got {type(self.task).__name__}')
        names = _check_names(self.joint_names, 'joint_names', err)
        _set(self, 'joint_names', names)
        state = np.asarray(self.state, dtype=np.float64)
        if state.shape != (len(names),):
            raise err(f'state must have shape [{len(names)}] for joints {list(names)}, '
                      f'got {state.shape}')
        _check_finite(state, 'state', err)
        _set(self, 'state', state)
        cameras = _check_names(self.camera_names, 'camera_names', err)
        _set(self, 'camera_names', cameras)
        self._check_images(cameras)
        _set(self, 'inference_delay_steps', _check_int(
            self.inference_delay_steps, 'inference_delay_steps', 0, 2**32 - 1, err))
        leftover = np.asarray(self.leftover, dtype=np.float32)
        if leftover.size == 0 and leftover.ndim == 2:
            leftover = leftover.reshape(0, len(names))  # [0, J]
        if leftover.ndim != 2 or leftover.shape[1] != len(names):
            raise err(f'leftover must have shape [n, {len(names)}], got {leftover.shape}')
        _check_finite(leftover, 'leftover', err)
        _set(self, 'leftover', leftover)

    def _check_images(self, cameras: tuple[str, ...]) -> None:
        err = InvalidObservationError
        images = dict(self.images)
        missing = [c for c in cameras if c not in images]
        extra = sorted(k for k in images if k not in cameras)
        if missing or extra:
            raise err(f'images must match camera_names {list(cameras)}: missing {missing}, '
                      f'extra {extra}')
        for name in cameras:
            image = images[name]
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                kind = getattr(image, 'dtype', type(image).__name__)
                raise err(f'image {name!r} must be a uint8 numpy array, got {kind}')
            if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
                raise err(f'image {name!r} must have shape [H, W, 3] (RGB), got {image.shape}')
        # Ordered as camera_names; read-only view so the frozen object cannot be re-keyed.
        _set(self, 'images', MappingProxyType({c: images[c] for c in cameras}))

    @property
    def num_joints(self) -> int:
        """J, the number of joints in the state."""
        return len(self.joint_names)
