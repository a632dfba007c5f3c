"""Per-joint command targets with a watchdog on their age.

The driver applies the latest commanded position of each joint only while that command is fresh.
Once a joint's command is older than the timeout, the driver stops moving the joint toward it and
holds the goal it reached: a publisher that died must not keep steering the arm. Commands may be
partial (any subset of joints, by name); the other joints keep their own targets and ages.

Time is passed in explicitly (monotonic seconds) so the logic is testable without sleeping.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

import numpy as np


class UnknownJointError(ValueError):
    """A command named a joint this driver does not own."""


class InvalidCommandError(ValueError):
    """A command carried a non-finite position."""


class CommandWatchdog:
    """Latest target per joint, the monotonic time it arrived, and whether it is still fresh.

    No lock: the driver node's subscriptions (:meth:`set`) and control timer (:meth:`fresh`) run
    on its one executor thread (docs/ARCHITECTURE.md, "Threading").
    """

    def __init__(self, joint_names: Sequence[str], timeout_s: float) -> None:
        if not joint_names:
            raise ValueError('joint_names must not be empty')
        if len(set(joint_names)) != len(joint_names):
            raise ValueError(f'duplicate joint names: {list(joint_names)}')
        if not timeout_s > 0.0:
            raise ValueError(f'timeout_s must be > 0, got {timeout_s}')
        self._names = list(joint_names)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._timeout = float(timeout_s)
        self._target = np.full(len(self._names), np.nan)  # (J,) rad, NaN = never commanded
        self._stamp = np.full(len(self._names), -np.inf)  # (J,) monotonic s of arrival
        self.commands_received = 0
        self.commands_rejected = 0

    @property
    def joint_names(self) -> list[str]:
        return list(self._names)

    @property
    def timeout_s(self) -> float:
        return self._timeout

    def set(self, positions: Mapping[str, float], now: float) -> None:
        """Record a (possibly partial) command received at monotonic time ``now``.

        The whole command is rejected, nothing applied, if any name is unknown or any value is
        not finite: a half-applied command would move some joints of a pose and not others.
        """
        unknown = [n for n in positions if n not in self._index]
        if unknown:
            self.commands_rejected += 1
            raise UnknownJointError(f'unknown joint(s) {unknown}; this driver has {self._names}')
        bad = {n: v for n, v in positions.items() if not math.isfinite(float(v))}
        if bad:
            self.commands_rejected += 1
            raise InvalidCommandError(f'non-finite command value(s): {bad}')
        for name, value in positions.items():
            i = self._index[name]
            self._target[i] = float(value)
            self._stamp[i] = now
        self.commands_received += 1

    def clear(self) -> None:
        """Forget all targets (e.g. when torque is switched off or re-enabled)."""
        self._target[:] = np.nan
        self._stamp[:] = -np.inf

    def fresh(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Targets and a mask of joints whose command is younger than the timeout at ``now``.

        Returns ``(target (J,), fresh (J,) bool)``; targets of stale joints are still returned
        (for diagnostics) but must not be applied.
        """
        target = self._target.copy()
        age = now - self._stamp  # (J,)
        return target, (age <= self._timeout) & np.isfinite(target)

    def ages(self, now: float) -> np.ndarray:
        """Age in seconds of each joint's last command (inf if never commanded)."""
        return now - self._stamp
