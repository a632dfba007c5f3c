"""Executor metrics: seam jumps vs ordinary steps, counters, flat dict."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.executor.metrics import ExecutorMetrics
from smolvla_ros.core.stats import LatencyRecorder


def test_seam_jump_is_the_largest_joint_step_at_a_switch():
    m = ExecutorMetrics()
    m.record_step(np.zeros(3), np.array([0.01, -0.02, 0.0]), seam=False)
    m.record_step(np.zeros(3), np.array([0.1, -0.3, 0.2]), seam=True)
    m.record_step(np.zeros(3), np.array([0.05, 0.0, 0.0]), seam=True)
    s = m.snapshot()
    assert s.seams == 2
    assert s.seam_jump_max == pytest.approx(0.3) and s.seam_jump_last == pytest.approx(0.05)
    assert s.seam_jump_mean == pytest.approx(0.175)
    assert s.step_max == pytest.approx(0.02)


def test_counters_fractions_and_dict():
    m = ExecutorMetrics()
    m.count('ticks', 10)
    m.count('idle_ticks', 2)
    m.count('starvation_ticks', 2)
    m.dropped['expired'] += 1
    m.record_late_steps(4)
    m.record_late_steps(2)
    rec = LatencyRecorder()
    rec.add(100.0)
    s = m.snapshot(rec.summary())
    assert s.starvation_fraction == pytest.approx(0.25)
    assert s.drops == 1 and s.late_steps_last == 2 and s.late_steps_max == 4
    d = s.as_dict()
    assert d['dropped_expired'] == 1 and d['latency_p95_ms'] == pytest.approx(100.0)
    assert d['starvation_fraction'] == pytest.approx(0.25)
