"""Measured frame rate over a sliding time window (for the camera's diagnostics)."""
from __future__ import annotations

from collections import deque


class RateMeter:
    """Events per second over the last ``window_s`` seconds of a monotonic clock.

    The rate is (events in the window - 1) / (span between the first and last of them), so a
    steady 30 fps stream reads 30.0 regardless of where the window cuts, and a stream that stopped
    reads 0 once its last event leaves the window.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        if not window_s > 0:
            raise ValueError(f'window_s must be > 0, got {window_s}')
        self.window_s = window_s
        self._times: deque[float] = deque()

    def add(self, t_s: float) -> None:
        self._times.append(t_s)
        self._trim(t_s)

    def _trim(self, now_s: float) -> None:
        while self._times and now_s - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now_s: float) -> float:
        """Events per second in the window ending at ``now_s`` (0 with fewer than 2 events)."""
        self._trim(now_s)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0
