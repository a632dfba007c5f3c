"""How a new chunk is fused with the queued plan where their due times overlap.

User guide: docs/async_inference.md, "Fusion: what happens where two chunks overlap".

Every strategy is a convex blend ``fused = (1 - w) * old + w * new`` per due time of the new chunk,
where ``old`` is the queued plan read at that time and ``w`` the weight of the new chunk:

* ``crossfade`` (default): w ramps from 0 at the arrival time to 1 after ``crossfade_steps``
  actions (sooner if the old plan ends sooner), so the command leaves the old plan continuously
  and ends on the new one. When there is no old plan left (the arm was holding), the ramp starts
  from the held position.
* LeRobot's fixed blends (its async client's ``aggregate_fn_name``, for comparison; old = queued,
  new = incoming; docs/lerobot_compat.md, "Async inference: blends and trigger"):
  ``weighted_average`` = 0.3 old + 0.7 new, ``latest_only`` = new, ``average`` = 0.5 old + 0.5 new,
  ``conservative`` = 0.7 old + 0.3 new. Only due times the old plan covers are blended.
* ``rtc``: no blend (w = 1). The policy already guided the new chunk's prefix towards the queued
  actions (the request carried them), so the new chunk simply replaces the queue from its first
  action not yet due.

Actions of the new chunk whose due time has passed are dropped before fusion (chunk_queue).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

CROSSFADE_SHAPES = ('linear', 'smooth')


class FusionConfigError(ValueError):
    """Unknown fusion name or invalid fusion parameter."""


@dataclass(frozen=True)
class Fusion:
    """Base: a constant new-chunk weight on overlapping due times (LeRobot's blends)."""

    name: str
    weight_new: float = 1.0
    uses_rtc_hints: bool = False  # requests carry the delay and the unexecuted tail
    holds_old_end: bool = False  # blend against the old plan's last action beyond its end

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight_new <= 1.0:
            raise FusionConfigError(f'weight_new must be in [0, 1], got {self.weight_new}')

    def new_weight(self, times_ns: np.ndarray, now_ns: int, dt_ns: int,
                   old_last_ns: int | None = None) -> np.ndarray:
        """Weight w [M] of the new chunk at its due times [M].

        ``old_last_ns`` is the due time of the old plan's last action (None: no old plan left).
        """
        return np.full(times_ns.shape, self.weight_new, dtype=np.float64)

    def fuse(self, old: np.ndarray, old_valid: np.ndarray, new: np.ndarray,
             times_ns: np.ndarray, now_ns: int, dt_ns: int, old_last_ns: int | None = None
             ) -> np.ndarray:
        """Fused plan [M, J] at the new chunk's due times [M].

        ``old`` [M, J] is the queued plan read at those times, ``old_valid`` [M] where it exists
        (elsewhere the new action is taken as is).
        """
        w = self.new_weight(times_ns, now_ns, dt_ns, old_last_ns)  # [M]
        w = np.where(old_valid, w, 1.0)[:, None]  # [M, 1]
        return (1.0 - w) * old + w * new  # [M, J]


@dataclass(frozen=True)
class Crossfade(Fusion):
    """Time-indexed ramp from the queued plan to the new chunk over ``steps`` actions."""

    name: str = 'crossfade'
    steps: int = 10
    shape: str = 'linear'
    holds_old_end: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise FusionConfigError(f'crossfade_steps must be an int >= 0, got {self.steps!r}')
        if self.shape not in CROSSFADE_SHAPES:
            raise FusionConfigError(
                f'crossfade shape must be one of {CROSSFADE_SHAPES}, got {self.shape!r}')

    def new_weight(self, times_ns: np.ndarray, now_ns: int, dt_ns: int,
                   old_last_ns: int | None = None) -> np.ndarray:
        """Ramp from 0 at now to 1 after ``steps`` actions, or by the old plan's last action.

        Finishing the ramp before the old plan runs out means the blend never leans on a plan
        that has stopped (its held last action); with no old plan left (resuming from a hold)
        the full window is used.
        """
        elapsed = (np.asarray(times_ns, dtype=np.int64) - int(now_ns)).astype(np.float64)  # [M]
        window = float(self.steps * dt_ns)
        if old_last_ns is not None:
            window = min(window, float(old_last_ns - int(now_ns)))
        if window <= 0.0:
            return (elapsed > 0).astype(np.float64)
        x = np.clip(elapsed / window, 0.0, 1.0)  # [M]
        if self.shape == 'smooth':
            x = x * x * (3.0 - 2.0 * x)  # smoothstep: zero slope at both ends
        return x


LEROBOT_BLENDS = {
    'weighted_average': 0.7,
    'latest_only': 1.0,
    'average': 0.5,
    'conservative': 0.3,
}
FUSION_NAMES = ('crossfade', *LEROBOT_BLENDS, 'rtc')


def make_fusion(name: str, crossfade_steps: int = 10, crossfade_shape: str = 'linear') -> Fusion:
    """The fusion strategy called ``name`` (one of FUSION_NAMES)."""
    if name == 'crossfade':
        return Crossfade(steps=crossfade_steps, shape=crossfade_shape)
    if name in LEROBOT_BLENDS:
        return Fusion(name=name, weight_new=LEROBOT_BLENDS[name])
    if name == 'rtc':
        return Fusion(name='rtc', weight_new=1.0, uses_rtc_hints=True)
    raise FusionConfigError(f'unknown fusion {name!r}; use one of {list(FUSION_NAMES)}')


def rtc_delay_steps(latency_s: float, dt_s: float) -> int:
    """Actions that will be in the past when the chunk arrives: ceil(latency / dt).

    LeRobot's RTC rollout computes its ``inference_delay`` the same way (docs/lerobot_compat.md,
    "Real-time chunking").
    """
    if not (math.isfinite(latency_s) and latency_s >= 0.0):
        raise ValueError(f'latency must be finite and >= 0 s, got {latency_s}')
    if not dt_s > 0:
        raise ValueError(f'dt must be > 0, got {dt_s}')
    return int(math.ceil(latency_s / dt_s - 1e-6))  # tolerance: dt is rounded to whole ns
