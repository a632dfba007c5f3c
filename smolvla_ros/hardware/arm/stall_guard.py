"""Stall detection: a joint that pushes hard without reaching its goal, for long enough.

A servo in position mode drives toward its goal with all the torque its limits allow. Against an
obstruction (the table, an object, the arm's own links) it keeps pushing at full load, which
strips an SO-101's plastic gears; the servo's own overload protection acts late and leaves the
joint limp (docs/driver.md, "Stall protection"). :class:`StallDetector` decides, per watched
joint, when that is happening: |Present_Load| >= ``stall_load`` and |goal - present| >=
``stall_position_tolerance_rad`` in every good cycle for ``stall_timeout_s``. High load alone is
not a stall (holding the arm against gravity), nor is a lagging position alone (a fast move), nor
is a single cycle of both (a bump). The reaction (goal := present, latched) is the controller's.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from smolvla_ros.hardware.arm.arm_config import ArmConfigError


@dataclass(frozen=True)
class Stall:
    """One joint that just tripped, with the evidence (for the diagnostics and the log)."""

    index: int
    joint: str
    load: float  # signed fraction of full load at the trip
    error_rad: float  # goal - present at the trip
    duration_s: float  # how long both conditions had held

    def describe(self) -> str:
        return (f'stalled: load {abs(self.load):.2f} of full with the goal '
                f'{abs(self.error_rad):.3f} rad away for {self.duration_s:.2f} s; '
                'goal set to present')


class StallDetector:
    """Per-joint persistence of "high load and far from the goal"; latches what tripped."""

    def __init__(self, names: Sequence[str], watched: Iterable[str], stall_load: float,
                 tolerance_rad: float, timeout_s: float) -> None:
        self.names = tuple(names)
        watched = tuple(watched)
        self.enabled = stall_load > 0.0
        unknown = sorted(set(watched) - set(self.names))
        if self.enabled and unknown:
            raise ArmConfigError(
                f'stall_joints names joints the calibration does not have: {unknown}; '
                f'joints are {list(self.names)}')
        self.watched = np.array([n in watched for n in self.names])  # (J,) bool
        self.stall_load = stall_load
        self.tolerance_rad = tolerance_rad
        self.timeout_s = timeout_s
        self.stalled = np.zeros(len(self.names), dtype=bool)  # (J,) latched
        self.stalls = 0  # joints that tripped since start
        self._since = np.full(len(self.names), np.nan)  # (J,) first cycle of the current streak

    def update(self, now: float, load: np.ndarray, goal: np.ndarray,
               present: np.ndarray) -> list[Stall]:
        """Feed one good cycle: (J,) load fraction, goal and present (rad). Returns the joints
        whose streak reached the timeout; they are not latched until :meth:`latch`."""
        if not self.enabled:
            return []
        error = goal - present  # (J,)
        pressing = (self.watched & ~self.stalled & (np.abs(load) >= self.stall_load)
                    & (np.abs(error) >= self.tolerance_rad))
        self._since[~pressing] = np.nan  # a streak must be unbroken
        self._since[pressing & np.isnan(self._since)] = now
        duration = now - self._since  # nan where not pressing
        tripped = np.flatnonzero(pressing & (duration >= self.timeout_s))
        return [Stall(int(i), self.names[i], float(load[i]), float(error[i]), float(duration[i]))
                for i in tripped]

    def latch(self, stalls: Iterable[Stall]) -> None:
        """The reaction to these stalls took effect: stop watching them until :meth:`reset`."""
        for s in stalls:
            self.stalled[s.index] = True
            self._since[s.index] = np.nan
            self.stalls += 1

    def reset(self) -> None:
        """Forget streaks and latches (torque re-enabled or released)."""
        self.stalled[:] = False
        self._since[:] = np.nan
