"""A small latency recorder: rolling window of samples, percentiles on demand.

Used by the predict probe, the chunk executor (its request trigger uses the p95 of recent round
trips) and the policy server (p50/p95 in its logs and diagnostics). Samples are milliseconds
measured on a monotonic clock. No lock: a recorder belongs to one thread, a node's executor
thread (docs/ARCHITECTURE.md, "Threading"); the InferenceWorker, which records in its inference
thread, holds its own lock around its recorder.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Statistics over the current window (``count`` is the window size, ``total`` all samples)."""

    count: int
    total: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    min_ms: float

    def format(self) -> str:
        """One line for logs, e.g. ``p50 1.20 ms, p95 2.31 ms, max 4.00 ms (n=200)``."""
        if self.count == 0:
            return 'no samples'
        return (f'p50 {self.p50_ms:.2f} ms, p95 {self.p95_ms:.2f} ms, max {self.max_ms:.2f} ms, '
                f'mean {self.mean_ms:.2f} ms (n={self.count})')

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON output and diagnostics key/values."""
        return {
            'count': self.count, 'total': self.total, 'mean_ms': self.mean_ms,
            'p50_ms': self.p50_ms, 'p95_ms': self.p95_ms, 'max_ms': self.max_ms,
            'min_ms': self.min_ms,
        }


class LatencyRecorder:
    """Keeps the last ``window`` latency samples (ms) and summarizes them.

    A rolling window rather than all-time statistics: the executor must react to the latency of
    the policy as it is now (a GPU that warmed up, a network that got slower), not to its history.
    """

    def __init__(self, window: int = 1000) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f'window must be an int >= 1, got {window!r}')
        self._samples: deque[float] = deque(maxlen=window)
        self._total = 0

    @property
    def window(self) -> int:
        """Maximum number of samples kept."""
        return int(self._samples.maxlen or 0)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def total(self) -> int:
        """Number of samples ever recorded (including those that left the window)."""
        return self._total

    def add(self, latency_ms: float) -> None:
        """Record one sample in milliseconds; negative or non-finite values are rejected."""
        value = float(latency_ms)
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f'latency must be a finite number >= 0 ms, got {latency_ms!r}')
        self._samples.append(value)
        self._total += 1

    def add_ns(self, latency_ns: int) -> None:
        """Record one sample given in integer nanoseconds."""
        self.add(latency_ns / 1e6)

    def clear(self) -> None:
        """Forget the window (the all-time ``total`` is kept)."""
        self._samples.clear()

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100, linear interpolation) of the window; NaN when empty."""
        if not 0.0 <= q <= 100.0:
            raise ValueError(f'percentile must be in [0, 100], got {q}')
        if not self._samples:
            return math.nan
        return float(np.percentile(np.fromiter(self._samples, float), q))

    def summary(self) -> LatencySummary:
        """p50/p95/max/mean/min of the window; NaN statistics and count 0 when empty."""
        samples = np.fromiter(self._samples, float)  # [n]
        total = self._total
        if samples.size == 0:
            nan = math.nan
            return LatencySummary(0, total, nan, nan, nan, nan, nan)
        p50, p95 = np.percentile(samples, [50.0, 95.0])
        return LatencySummary(
            count=int(samples.size), total=total, mean_ms=float(samples.mean()),
            p50_ms=float(p50), p95_ms=float(p95), max_ms=float(samples.max()),
            min_ms=float(samples.min()))
