"""LatencyRecorder: rolling window statistics."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from smolvla_ros.core.stats import LatencyRecorder


def test_summary_of_known_samples() -> None:
    rec = LatencyRecorder(window=100)
    for v in range(1, 101):  # 1..100 ms
        rec.add(float(v))
    s = rec.summary()
    assert (s.count, s.total) == (100, 100)
    assert s.mean_ms == pytest.approx(50.5)
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(95.05)
    assert (s.min_ms, s.max_ms) == (1.0, 100.0)
    assert rec.percentile(95) == pytest.approx(s.p95_ms)
    assert 'p50 50.50 ms' in s.format()


def test_window_forgets_old_samples_but_total_counts_all() -> None:
    rec = LatencyRecorder(window=3)
    for v in (100.0, 1.0, 2.0, 3.0):
        rec.add(v)
    s = rec.summary()
    assert (s.count, s.total, s.max_ms) == (3, 4, 3.0)
    assert len(rec) == 3 and rec.window == 3
    rec.clear()
    assert len(rec) == 0 and rec.total == 4


def test_empty_summary_is_nan_not_zero() -> None:
    s = LatencyRecorder().summary()
    assert s.count == 0 and math.isnan(s.p50_ms) and math.isnan(s.max_ms)
    assert s.format() == 'no samples'
    assert math.isnan(LatencyRecorder().percentile(50))


def test_add_ns_converts_to_ms() -> None:
    rec = LatencyRecorder()
    rec.add_ns(2_500_000)
    assert rec.summary().p50_ms == pytest.approx(2.5)


@pytest.mark.parametrize('bad', [-1.0, float('nan'), float('inf')])
def test_rejects_bad_samples(bad: float) -> None:
    with pytest.raises(ValueError, match='latency must be'):
        LatencyRecorder().add(bad)


@pytest.mark.parametrize('window', [0, -5, 2.5, True])
def test_rejects_bad_window(window) -> None:
    with pytest.raises(ValueError, match='window'):
        LatencyRecorder(window=window)


def test_rejects_bad_percentile() -> None:
    with pytest.raises(ValueError, match='percentile'):
        LatencyRecorder().percentile(101)


def test_concurrent_adds_are_all_counted() -> None:
    rec = LatencyRecorder(window=10_000)

    def worker() -> None:
        for _ in range(1000):
            rec.add(1.0)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.total == 4000 and len(rec) == 4000


def test_as_dict_round_trips_through_json_types() -> None:
    rec = LatencyRecorder()
    rec.add(1.0)
    d = rec.summary().as_dict()
    assert set(d) == {'count', 'total', 'mean_ms', 'p50_ms', 'p95_ms', 'max_ms', 'min_ms'}
    assert all(isinstance(v, (int, float)) and not isinstance(v, np.generic) for v in d.values())
