"""Latency estimation: prior before measurements, p95 of the window after."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.executor.latency import LatencyEstimator


def test_prior_then_p95_of_the_window():
    est = LatencyEstimator(window=20, initial_s=0.25)
    assert est.estimate_s() == 0.25 and est.count == 0
    samples_ms = np.arange(1, 21) * 10.0  # 10..200 ms
    for ms in samples_ms:
        assert est.add_round_trip(0, int(ms * 1e6)) == pytest.approx(ms / 1e3)
    assert est.estimate_s() == pytest.approx(np.percentile(samples_ms, 95) / 1e3)
    assert est.estimate_ns() == round(est.estimate_s() * 1e9)
    s = est.summary()
    assert s.count == 20 and s.p50_ms == pytest.approx(105.0)


def test_window_forgets_old_latency():
    est = LatencyEstimator(window=5)
    for _ in range(5):
        est.add_round_trip(0, 10**9)
    for _ in range(5):
        est.add_round_trip(0, 10**8)
    assert est.estimate_s() == pytest.approx(0.1) and est.count == 10


def test_invalid_input():
    est = LatencyEstimator()
    with pytest.raises(ValueError, match='before sent'):
        est.add_round_trip(10, 5)
    with pytest.raises(ValueError):
        LatencyEstimator(percentile=0)
    with pytest.raises(ValueError):
        LatencyEstimator(initial_s=-1)
