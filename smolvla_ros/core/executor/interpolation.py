"""Sampling a time-indexed action sequence at arbitrary times (linear, or the action due now).

The executor ticks at ``control_hz`` while chunks hold actions every ``dt`` (1/fps): at 100 Hz over
a 30 fps chunk, three ticks out of four fall between two actions and get the linear blend of its
neighbours (LeRobot's ``ActionInterpolator`` does the same up-sampling). Fusion also uses these
functions to read the queued plan at the due times of a new chunk, whose grid need not line up with
the old one.
"""
from __future__ import annotations

import numpy as np


def _check(times_ns: np.ndarray, values: np.ndarray) -> None:
    if times_ns.ndim != 1 or values.ndim != 2 or values.shape[0] != times_ns.shape[0]:
        raise ValueError(f'need times [N] and values [N, J], got {times_ns.shape} and '
                         f'{values.shape}')
    if times_ns.shape[0] == 0:
        raise ValueError('cannot sample an empty sequence')


def interpolate_at(times_ns: np.ndarray, values: np.ndarray, query_ns: np.ndarray) -> np.ndarray:
    """Linear interpolation of values [N, J] (at sorted times [N]) at query times [Q] -> [Q, J].

    Outside [times[0], times[-1]] the end values are held (no extrapolation: a plan is never
    extended beyond what the policy predicted).
    """
    _check(times_ns, values)
    q = np.asarray(query_ns, dtype=np.int64)  # [Q]
    hi = np.searchsorted(times_ns, q, side='right')  # [Q], first index with time > q
    hi = np.clip(hi, 1, len(times_ns) - 1) if len(times_ns) > 1 else np.zeros_like(hi)
    lo = np.maximum(hi - 1, 0)  # [Q]
    t0, t1 = times_ns[lo], times_ns[hi]  # [Q]
    span = (t1 - t0).astype(np.float64)  # [Q]
    with np.errstate(invalid='ignore', divide='ignore'):
        w = np.where(span > 0, (q - t0) / np.where(span > 0, span, 1.0), 0.0)  # [Q]
    w = np.clip(w, 0.0, 1.0)[:, None]  # [Q, 1]
    return values[lo] * (1.0 - w) + values[hi] * w  # [Q, J]


def interpolate_one(times_ns: np.ndarray, values: np.ndarray, t_ns: int) -> np.ndarray:
    """Linear interpolation at one time -> [J] (see interpolate_at)."""
    return interpolate_at(times_ns, values, np.array([t_ns], dtype=np.int64))[0]


def due_index(times_ns: np.ndarray, t_ns: int, tolerance_ns: int = 0) -> int:
    """Index of the action due at t: the latest with time <= t + tolerance, or -1 if none.

    The tolerance (half a tick period in the executor) absorbs timer jitter: a tick that fires a
    little before an action's due time still emits that action rather than the previous one.
    """
    return int(np.searchsorted(times_ns, int(t_ns) + int(tolerance_ns), side='right')) - 1
