"""Counters and seam statistics of the chunk executor, for diagnostics and benchmarks.

The seam jump (docs/async_inference.md, "Fusion") is the largest per-joint step of the planned
command at the first tick after a chunk switch; ``step_max`` is the largest such step at every other
tick, so the two compare directly (a good fusion keeps seam jumps at the size of ordinary steps).
Both are measured before the safety stage, which would otherwise hide a bad seam behind the step
clamp; what the safety stage changed is counted separately.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smolvla_ros.core.stats import LatencySummary


@dataclass(frozen=True)
class MetricsSnapshot:
    """A copy of the executor's counters at one moment."""

    ticks: int = 0
    commands: int = 0  # ticks that emitted a position (plan or hold)
    idle_ticks: int = 0  # before the first chunk: nothing to command yet
    starvation_ticks: int = 0  # after the first chunk: plan exhausted, holding
    requests: int = 0
    answers: int = 0  # chunks received (accepted or dropped)
    failures: int = 0  # requests reported failed by the node
    timeouts: int = 0  # requests without an answer within request_timeout_s
    chunks_accepted: int = 0
    chunks_dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    late_steps_last: int = 0  # actions already past when the last chunk arrived
    late_steps_max: int = 0
    stale_observations: int = 0  # requests not sent because an input stream was stale
    seams: int = 0
    seam_jump_last: float = 0.0  # rad, max over joints
    seam_jump_max: float = 0.0
    seam_jump_mean: float = 0.0
    step_max: float = 0.0  # rad, largest non-seam step of the planned command
    limit_clips: int = 0  # ticks where the joint limits changed the command
    step_clips: int = 0  # ticks where the max step per tick changed the command
    latency: LatencySummary | None = None  # round trips (ms)

    @property
    def drops(self) -> int:
        return sum(self.chunks_dropped.values())

    @property
    def starvation_fraction(self) -> float:
        """Share of ticks after the first chunk spent holding for lack of a plan."""
        active = self.ticks - self.idle_ticks
        return self.starvation_ticks / active if active > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Flat key/values for JSON output and diagnostics."""
        out: dict[str, Any] = {
            k: getattr(self, k) for k in (
                'ticks', 'commands', 'idle_ticks', 'starvation_ticks', 'requests', 'answers',
                'failures', 'timeouts', 'chunks_accepted', 'late_steps_last', 'late_steps_max',
                'stale_observations', 'seams', 'seam_jump_last', 'seam_jump_max',
                'seam_jump_mean', 'step_max', 'limit_clips', 'step_clips')}
        out['drops'] = self.drops
        out['starvation_fraction'] = self.starvation_fraction
        for reason, n in self.chunks_dropped.items():
            out[f'dropped_{reason}'] = n
        if self.latency is not None:
            for k, v in self.latency.as_dict().items():
                out[f'latency_{k}'] = v
        return out


class ExecutorMetrics:
    """Mutable counters behind MetricsSnapshot (owned by one ExecutorCore)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.late_steps_last = 0
        self.late_steps_max = 0
        self.seam_jump_last = 0.0
        self.seam_jump_max = 0.0
        self._seam_jump_sum = 0.0
        self.step_max = 0.0

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def record_late_steps(self, n: int) -> None:
        self.late_steps_last = n
        self.late_steps_max = max(self.late_steps_max, n)

    def record_step(self, previous: np.ndarray, current: np.ndarray, seam: bool) -> float:
        """Record the planned command's step (max |delta| over joints); returns it."""
        step = float(np.max(np.abs(current - previous)))  # max over joints of [J]
        if seam:
            self.counts['seams'] += 1
            self.seam_jump_last = step
            self.seam_jump_max = max(self.seam_jump_max, step)
            self._seam_jump_sum += step
        else:
            self.step_max = max(self.step_max, step)
        return step

    def snapshot(self, latency: LatencySummary | None = None) -> MetricsSnapshot:
        c = self.counts
        seams = c['seams']
        return MetricsSnapshot(
            ticks=c['ticks'], commands=c['commands'], idle_ticks=c['idle_ticks'],
            starvation_ticks=c['starvation_ticks'], requests=c['requests'],
            answers=c['answers'], failures=c['failures'], timeouts=c['timeouts'],
            chunks_accepted=c['chunks_accepted'], chunks_dropped=dict(self.dropped),
            late_steps_last=self.late_steps_last, late_steps_max=self.late_steps_max,
            stale_observations=c['stale_observations'], seams=seams,
            seam_jump_last=self.seam_jump_last, seam_jump_max=self.seam_jump_max,
            seam_jump_mean=self._seam_jump_sum / seams if seams else 0.0,
            step_max=self.step_max, limit_clips=c['limit_clips'], step_clips=c['step_clips'],
            latency=latency)
