"""Joint-space safety clamps: small pure functions the servo driver applies to every goal.

Each function returns the safe value together with what it changed, so the caller (a node) decides
how loudly to report it. They work on numpy vectors in joint order (radians), never on messages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClampResult:
    """A clamped goal vector and a mask of the joints that were changed."""

    value: np.ndarray  # (J,) float64, the safe goal
    clipped: np.ndarray  # (J,) bool, True where the input was changed

    @property
    def any_clipped(self) -> bool:
        return bool(self.clipped.any())


def _as_vector(name: str, x: np.ndarray | list[float], size: int | None = None) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f'{name} must be a 1-D vector, got shape {v.shape}')
    if size is not None and v.shape[0] != size:
        raise ValueError(f'{name} has {v.shape[0]} entries, expected {size}')
    return v


def clamp_to_limits(
    goal: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> ClampResult:
    """Clamp each joint goal into [lower, upper] (calibrated range of motion, rad).

    NaN goals are not clamped silently into a number: they are rejected, because a NaN reaching a
    servo would be encoded as an arbitrary tick count.
    """
    g = _as_vector('goal', goal)
    lo = _as_vector('lower', lower, g.shape[0])
    hi = _as_vector('upper', upper, g.shape[0])
    if np.any(lo > hi):
        bad = np.flatnonzero(lo > hi).tolist()
        raise ValueError(f'lower limit above upper limit for joint indices {bad}')
    if not np.all(np.isfinite(g)):
        raise ValueError(f'goal contains non-finite values: {g.tolist()}')
    out = np.clip(g, lo, hi)  # (J,)
    return ClampResult(out, out != g)


def limit_step(goal: np.ndarray, previous: np.ndarray, max_step: float | np.ndarray) -> ClampResult:
    """Move from ``previous`` toward ``goal`` by at most ``max_step`` per joint (rad per cycle).

    This is the per-cycle rate limit (LeRobot's ``max_relative_target`` applied to the goal the
    driver sent last cycle): a far command becomes a ramp instead of a jump. ``max_step`` <= 0 or
    ``inf`` disables the limit.
    """
    g = _as_vector('goal', goal)
    prev = _as_vector('previous', previous, g.shape[0])
    step = np.broadcast_to(np.asarray(max_step, dtype=np.float64), g.shape)  # (J,)
    if np.any(np.isnan(step)):
        raise ValueError('max_step must not be NaN')
    active = step > 0.0
    delta = g - prev  # (J,)
    limited = np.where(active, np.clip(delta, -step, step), delta)  # (J,)
    out = prev + limited
    return ClampResult(out, np.abs(limited - delta) > 0.0)


def outside_range(
    position: np.ndarray, lower: np.ndarray, upper: np.ndarray, tolerance: float = 0.0
) -> np.ndarray:
    """Mask of joints whose position lies outside [lower - tol, upper + tol].

    Used before torque is enabled: a reading outside the calibrated range means a wrong or stale
    calibration file, and enabling torque then could drive the joint against its stop.
    """
    p = _as_vector('position', position)
    lo = _as_vector('lower', lower, p.shape[0])
    hi = _as_vector('upper', upper, p.shape[0])
    if tolerance < 0.0:
        raise ValueError(f'tolerance must be >= 0, got {tolerance}')
    return (p < lo - tolerance) | (p > hi + tolerance) | ~np.isfinite(p)
