"""Measured arrival rate and largest gap of input streams over a sliding window.

A camera that delivers 12 Hz instead of its contract's 30 Hz, or a bus that publishes joint states
at 40 Hz instead of 100 Hz, is otherwise only visible indirectly, as stale observations. The
chunk executor feeds every message's *arrival* time in and reports the rate per stream on
``/diagnostics``, warning below a fraction of the expected rate.

Times are int nanoseconds on a monotonic clock, passed in by the caller (the node's receive time):
header stamps say when a sample was taken, not when it arrived, and their clock (sim time, another
machine) may jump or pause.

Rate estimate, with n arrivals in the window (first f, last l) at time ``now``::

    rate = min((n - 1) / (l - f), n / (now - f))

The first term counts the n - 1 intervals between arrivals, so a periodic stream reads its exact
rate wherever the window cuts it (no one-arrival-per-window quantization as with ``n / window``).
The second also counts the interval still open since the last arrival; it is the smaller one only
when that open interval is longer than the mean interval, i.e. when the stream slowed down or
stopped. The two are equal when the open interval equals the mean one, so the estimate is
continuous, and a stream that stopped decays towards 0 while its arrivals leave the window (it
reads 0 once fewer than two are left).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
import math

MIN_PERIODS = 5  # a window shorter than a few expected periods cannot measure a rate


@dataclass(frozen=True)
class StreamRate:
    """One stream's measurement at one instant."""

    name: str
    rate_hz: float
    max_gap_s: float  # largest interval in the window, open one included; NaN before any arrival
    count: int  # arrivals in the window
    window_s: float
    filled: bool  # one whole window has passed since the first arrival
    expected_hz: float
    threshold_hz: float  # warn_fraction x expected_hz

    @property
    def low(self) -> bool:
        """Below the threshold, once the window has filled (no verdict during start-up).

        A stream that never arrived is never "low": the staleness report names it as missing.
        """
        return self.filled and self.rate_hz < self.threshold_hz

    def describe(self) -> str:
        """E.g. ``front at 6.7 Hz < 16 Hz (0.8 x 20 Hz), largest gap 150 ms``."""
        return (f'{self.name} at {self.rate_hz:.1f} Hz < {self.threshold_hz:.3g} Hz '
                f'({self.threshold_hz / self.expected_hz:.2g} x {self.expected_hz:g} Hz), '
                f'largest gap {self.max_gap_s * 1e3:.0f} ms')


class ArrivalWindow:
    """Arrival times of one stream over the last ``window_s`` seconds (not thread-safe).

    Each arrival keeps the gap that it closed, so the largest gap also covers the gap that
    straddles the window's start; the gap leaves the window with the arrival that ended it.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        if not (isinstance(window_s, (int, float)) and math.isfinite(window_s) and window_s > 0):
            raise ValueError(f'window_s must be a finite number > 0, got {window_s!r}')
        self.window_s = float(window_s)
        self._window_ns = round(window_s * 1e9)
        self._times: deque[int] = deque()  # arrival ns, non-decreasing
        self._gaps: deque[int] = deque()  # gap closed by the arrival at the same index (ns)
        self._first: int | None = None  # first arrival ever
        self._last: int | None = None  # last arrival, kept after it left the window

    def add(self, t_ns: int) -> None:
        """Record an arrival; a time before the last one counts as the last."""
        t = int(t_ns) if self._last is None else max(int(t_ns), self._last)
        if self._first is None:
            self._first = t
        self._times.append(t)
        self._gaps.append(0 if self._last is None else t - self._last)
        self._last = t
        self._trim(t)

    def _trim(self, now: int) -> None:
        while self._times and now - self._times[0] > self._window_ns:
            self._times.popleft()
            self._gaps.popleft()

    def _now(self, now_ns: int) -> int:
        # A "now" sampled just before an arrival was recorded must not read as a negative age.
        now = int(now_ns) if self._last is None else max(int(now_ns), self._last)
        self._trim(now)
        return now

    def count(self, now_ns: int) -> int:
        """Arrivals in the window ending at ``now_ns``."""
        self._now(now_ns)
        return len(self._times)

    def rate_hz(self, now_ns: int) -> float:
        """Arrivals per second at ``now_ns`` (module docstring); 0 with fewer than 2 arrivals."""
        now = self._now(now_ns)
        n = len(self._times)
        if n < 2:
            return 0.0
        first, last = self._times[0], self._times[-1]
        rate = n / (now - first) * 1e9 if now > first else 0.0
        if last > first:
            rate = min(rate, (n - 1) / (last - first) * 1e9)
        return rate

    def max_gap_s(self, now_ns: int) -> float:
        """Largest interval between arrivals in the window, or since the last arrival if longer.

        NaN before the first arrival. After the stream stopped, this is the time since its last
        message, so it keeps growing while the rate has already decayed to 0.
        """
        now = self._now(now_ns)
        if self._last is None:
            return math.nan
        return max(max(self._gaps, default=0), now - self._last) / 1e9

    def filled(self, now_ns: int) -> bool:
        """True once one whole window has passed since the first arrival."""
        return self._first is not None and int(now_ns) - self._first >= self._window_ns


class StreamRates:
    """One :class:`ArrivalWindow` per named stream, with its expected rate (not thread-safe: the
    chunk executor adds and measures on its one executor thread, docs/ARCHITECTURE.md
    "Threading").

    ``expected_hz`` maps stream name -> the rate the contract promises; a stream is ``low`` when,
    after its window filled once, it arrives slower than ``warn_fraction`` x that rate
    (``warn_fraction`` 0 turns the verdict off). Each stream's window is ``window_s``, stretched
    to ``MIN_PERIODS`` expected periods for slow streams.
    """

    def __init__(self, expected_hz: Mapping[str, float], *, warn_fraction: float = 0.8,
                 window_s: float = 2.0) -> None:
        if not (isinstance(warn_fraction, (int, float)) and 0.0 <= warn_fraction <= 1.0):
            raise ValueError(f'rate_warn_fraction must be in [0, 1], got {warn_fraction!r}')
        for name, hz in expected_hz.items():
            if not (isinstance(hz, (int, float)) and math.isfinite(hz) and hz > 0):
                raise ValueError(f'expected rate of {name!r} must be a number > 0 Hz, got {hz!r}')
        self.warn_fraction = float(warn_fraction)
        self.expected_hz = dict(expected_hz)
        self._windows = {name: ArrivalWindow(max(window_s, MIN_PERIODS / hz))
                         for name, hz in self.expected_hz.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._windows)

    @property
    def windows_s(self) -> dict[str, float]:
        """Each stream's window length in seconds (fixed at construction)."""
        return {name: window.window_s for name, window in self._windows.items()}

    def add(self, stream: str, t_ns: int) -> None:
        """Record an arrival of ``stream`` at ``t_ns`` (KeyError for an unknown stream)."""
        self._windows[stream].add(t_ns)

    def measure(self, now_ns: int) -> tuple[StreamRate, ...]:
        """Every stream's rate, largest gap and verdict at ``now_ns``, in construction order."""
        out = []
        for name, window in self._windows.items():
            expected = self.expected_hz[name]
            out.append(StreamRate(
                name=name, rate_hz=window.rate_hz(now_ns), max_gap_s=window.max_gap_s(now_ns),
                count=window.count(now_ns), window_s=window.window_s,
                filled=window.filled(now_ns), expected_hz=expected,
                threshold_hz=self.warn_fraction * expected))
        return tuple(out)
