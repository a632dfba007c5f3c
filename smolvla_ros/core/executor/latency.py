"""Round-trip latency of chunk requests, and the estimate the trigger and RTC hints use.

The executor measures every request from the moment it is sent to the moment its chunk arrives
(both on the clock the node passes in) and keeps a rolling window (stats.LatencyRecorder): the
trigger requests no later than the p95 round trip plus a margin before the queue runs out, and
real-time chunking packs ceil(estimate / dt) as the inference delay. Before the first answer, a
configured prior stands in for the measurement.
"""
from __future__ import annotations

import math

from smolvla_ros.core.stats import LatencyRecorder, LatencySummary


class LatencyEstimator:
    """Rolling round-trip statistics and a conservative estimate (a percentile, default p95)."""

    def __init__(self, window: int = 100, percentile: float = 95.0,
                 initial_s: float = 0.2) -> None:
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f'percentile must be in (0, 100], got {percentile}')
        if not (math.isfinite(initial_s) and initial_s >= 0.0):
            raise ValueError(f'initial latency must be finite and >= 0 s, got {initial_s}')
        self.percentile = percentile
        self.initial_s = initial_s
        self._round_trips = LatencyRecorder(window)

    def add_round_trip(self, sent_ns: int, received_ns: int) -> float:
        """Record one request's round trip; returns it in seconds."""
        rtt_ns = int(received_ns) - int(sent_ns)
        if rtt_ns < 0:
            raise ValueError(f'received ({received_ns}) before sent ({sent_ns})')
        self._round_trips.add_ns(rtt_ns)
        return rtt_ns / 1e9

    @property
    def count(self) -> int:
        """Samples ever recorded."""
        return self._round_trips.total

    def estimate_s(self) -> float:
        """The percentile of the window in seconds, or the prior when nothing was measured."""
        if len(self._round_trips) == 0:
            return self.initial_s
        return self._round_trips.percentile(self.percentile) / 1e3

    def estimate_ns(self) -> int:
        return round(self.estimate_s() * 1e9)

    def summary(self) -> LatencySummary:
        """p50/p95/max of the window (ms), for metrics and diagnostics."""
        return self._round_trips.summary()
