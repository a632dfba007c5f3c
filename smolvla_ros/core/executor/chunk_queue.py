"""The time-indexed action queue: the plan the executor follows, one due time per action.

Action k of a chunk is due at ``stamp + k * dt``. Placing chunks on this time line, rather than
in a FIFO, is what makes delay compensation exact and measurable: when a chunk arrives, its
actions due before now are already in the past and are dropped (their count is the measured delay
in steps), and the rest is fused with the queued plan at the same due times (fusion.py).

The queue keeps one action at or before now as an interpolation anchor; it runs out ``dt`` after
its last action is due (``end_ns``). Plain numpy, not thread-safe: ExecutorCore serialises access.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smolvla_ros.core.executor.fusion import Fusion
from smolvla_ros.core.executor.interpolation import due_index, interpolate_at, interpolate_one


@dataclass(frozen=True)
class MergeResult:
    """What happened to an incoming chunk."""

    accepted: bool
    reason: str  # 'ok', or why it was dropped ('expired')
    late_steps: int  # actions already due before now on arrival (dropped: delay compensation)
    kept_steps: int  # actions now on the time line (anchor included)


@dataclass(frozen=True)
class PlanSample:
    """The plan at one tick: the position and the time it is due."""

    position: np.ndarray  # [J] rad
    due_ns: int


class ChunkQueue:
    """Sorted due times [N] and positions [N, J] of the plan, plus the time it runs out."""

    def __init__(self, num_joints: int) -> None:
        if num_joints < 1:
            raise ValueError(f'num_joints must be >= 1, got {num_joints}')
        self.num_joints = num_joints
        self._times = np.zeros(0, dtype=np.int64)  # [N]
        self._pos = np.zeros((0, num_joints), dtype=np.float64)  # [N, J]
        self._end_ns: int | None = None
        self.generation = 0  # incremented by every accepted merge (seam detection)

    def __len__(self) -> int:
        return int(self._times.shape[0])

    @property
    def times_ns(self) -> np.ndarray:
        """Due times [N] (read-only view)."""
        view = self._times.view()
        view.flags.writeable = False
        return view

    @property
    def positions(self) -> np.ndarray:
        """Positions [N, J] (read-only view)."""
        view = self._pos.view()
        view.flags.writeable = False
        return view

    @property
    def end_ns(self) -> int | None:
        """Time at which the plan runs out (None before the first chunk)."""
        return self._end_ns

    def exhausted(self, now_ns: int) -> bool:
        """True when there is no plan for ``now_ns`` (empty, or run out)."""
        return self._end_ns is None or len(self) == 0 or now_ns >= self._end_ns

    def remaining_ns(self, now_ns: int) -> int:
        """Time left in the plan after now (0 when exhausted)."""
        if self._end_ns is None:
            return 0
        return max(0, self._end_ns - int(now_ns))

    def clear(self) -> None:
        self._times = self._times[:0]
        self._pos = self._pos[:0]
        self._end_ns = None

    def prune(self, now_ns: int) -> int:
        """Forget actions no longer needed at now (keeps the last one due <= now); returns count."""
        k = due_index(self._times, now_ns)
        if k <= 0:
            return 0
        self._times = self._times[k:]
        self._pos = self._pos[k:]
        return k

    def sample(self, now_ns: int, interpolate: bool, tolerance_ns: int = 0) -> PlanSample | None:
        """The plan at now: linear between neighbours, or the action due now (within tolerance).

        None when the plan is exhausted or its first action is not due yet.
        """
        if self.exhausted(now_ns):
            return None
        if interpolate:
            if now_ns < self._times[0]:
                return None
            return PlanSample(interpolate_one(self._times, self._pos, now_ns), int(now_ns))
        k = due_index(self._times, now_ns, tolerance_ns)
        if k < 0:
            return None
        return PlanSample(self._pos[k].copy(), int(self._times[k]))

    def tail(self, t_ns: int, dt_ns: int) -> np.ndarray:
        """The queued actions from t on, read at t + k*dt up to the last queued action: [n, J].

        This is the real-time-chunking leftover: row k lines up with action k of a chunk stamped
        at t. (1 us of slack absorbs the ns rounding of dt; the read is clipped to the plan.)
        """
        if self.exhausted(t_ns) or self._times[-1] < t_ns:
            return np.zeros((0, self.num_joints), dtype=np.float64)
        n = (int(self._times[-1]) - int(t_ns) + 1000) // int(dt_ns) + 1
        query = int(t_ns) + np.arange(n, dtype=np.int64) * int(dt_ns)  # [n]
        return interpolate_at(self._times, self._pos, np.minimum(query, self._times[-1]))

    def merge(self, times_ns: np.ndarray, positions: np.ndarray, end_ns: int, now_ns: int,
              fusion: Fusion, dt_ns: int, hold_position: np.ndarray | None = None
              ) -> MergeResult:
        """Fuse a chunk (due times [M], positions [M, J], run-out time) into the plan at now.

        ``hold_position`` [J] is where the arm is held when the plan is exhausted; strategies that
        hold the old plan's end (crossfade) blend from it, so resuming after starvation is smooth.
        """
        times_ns = np.asarray(times_ns, dtype=np.int64)  # [M]
        positions = np.asarray(positions, dtype=np.float64)  # [M, J]
        if positions.shape != (times_ns.shape[0], self.num_joints) or times_ns.shape[0] == 0:
            raise ValueError(f'chunk must be times [M] and positions [M, {self.num_joints}], got '
                             f'{times_ns.shape} and {positions.shape}')
        if end_ns <= now_ns:
            return MergeResult(False, 'expired', int(times_ns.shape[0]), 0)
        late = int(np.count_nonzero(times_ns < now_ns))
        first = max(due_index(times_ns, now_ns), 0)  # keep one anchor at or before now
        new_t, new_p = times_ns[first:], positions[first:]  # [M'], [M', J]
        old_last: int | None = None
        if not self.exhausted(now_ns):
            old_last = int(self._times[-1])
            old = interpolate_at(self._times, self._pos, new_t)  # [M', J], ends held
            if fusion.holds_old_end:
                valid = np.ones(new_t.shape, dtype=bool)
            else:
                # Only due times between queued actions overlap (LeRobot: same timestep queued).
                valid = (new_t >= self._times[0]) & (new_t <= self._times[-1])  # [M']
        elif hold_position is not None and fusion.holds_old_end:
            old = np.broadcast_to(np.asarray(hold_position, dtype=np.float64), new_p.shape)
            valid = np.ones(new_t.shape, dtype=bool)
        else:
            old, valid = new_p, np.zeros(new_t.shape, dtype=bool)
        fused = fusion.fuse(old, valid, new_p, new_t, now_ns, dt_ns, old_last)  # [M', J]
        self._times, self._pos, self._end_ns = new_t.copy(), fused, int(end_ns)
        self.generation += 1
        return MergeResult(True, 'ok', late, int(new_t.shape[0]))
