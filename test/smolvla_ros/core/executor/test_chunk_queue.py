"""The time-indexed queue: due times, dropping past actions, run-out, tail, sampling."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.executor.chunk_queue import ChunkQueue
from smolvla_ros.core.executor.fusion import make_fusion

DT = 100_000_000  # 0.1 s
T0 = 5 * 10**9
LATEST = make_fusion('latest_only')


def chunk(n: int = 10, start: int = T0) -> tuple[np.ndarray, np.ndarray, int]:
    times = start + np.arange(n, dtype=np.int64) * DT
    return times, np.arange(n, dtype=np.float64)[:, None] * [1.0, -1.0], start + n * DT


def test_past_actions_are_dropped_on_arrival():
    q = ChunkQueue(2)
    times, pos, end = chunk()
    now = T0 + 3 * DT + DT // 2  # 3.5 steps after the stamp
    result = q.merge(times, pos, end, now, LATEST, DT)
    assert result.accepted and result.late_steps == 4  # actions 0..3 were due before now
    assert result.kept_steps == 7  # anchor (action 3) + actions 4..9
    np.testing.assert_array_equal(q.times_ns, times[3:])
    assert q.remaining_ns(now) == end - now


def test_expired_chunk_is_refused_and_queue_unchanged():
    q = ChunkQueue(2)
    times, pos, end = chunk()
    result = q.merge(times, pos, end, end, LATEST, DT)
    assert not result.accepted and result.reason == 'expired'
    assert len(q) == 0 and q.end_ns is None and q.exhausted(end)


def test_prune_keeps_one_anchor_and_sample_interpolates():
    q = ChunkQueue(2)
    q.merge(*chunk(), T0, LATEST, DT)
    now = T0 + 2 * DT + DT // 4
    assert q.prune(now) == 2
    assert q.times_ns[0] == T0 + 2 * DT
    s = q.sample(now, interpolate=True)
    np.testing.assert_allclose(s.position, [2.25, -2.25])
    assert s.due_ns == now
    due = q.sample(now, interpolate=False, tolerance_ns=DT // 2)
    np.testing.assert_allclose(due.position, [2.0, -2.0])
    assert due.due_ns == T0 + 2 * DT
    # Jitter: a tick 1 ms early still gets the action due now.
    early = q.sample(T0 + 3 * DT - 10**6, interpolate=False, tolerance_ns=DT // 2)
    assert early.due_ns == T0 + 3 * DT


def test_plan_runs_out_one_dt_after_the_last_action():
    q = ChunkQueue(2)
    times, pos, end = chunk()
    q.merge(times, pos, end, T0, LATEST, DT)
    last = q.sample(end - 1, interpolate=True)
    np.testing.assert_allclose(last.position, [9.0, -9.0])  # held until the run-out time
    assert q.sample(end, interpolate=True) is None
    assert q.remaining_ns(end + 5) == 0


def test_tail_reads_the_plan_on_the_new_grid():
    q = ChunkQueue(2)
    times, pos, end = chunk()
    q.merge(times, pos, end, T0, LATEST, DT)
    tail = q.tail(T0 + 6 * DT, DT)
    np.testing.assert_allclose(tail[:, 0], [6, 7, 8, 9])
    off = q.tail(T0 + 6 * DT + DT // 2, DT)  # off-grid: interpolated, clipped to the last
    np.testing.assert_allclose(off[:, 0], [6.5, 7.5, 8.5])
    assert q.tail(end, DT).shape == (0, 2)


def test_merge_validates_shapes():
    q = ChunkQueue(2)
    with pytest.raises(ValueError, match='positions'):
        q.merge(np.arange(3), np.zeros((3, 3)), 10, 0, LATEST, DT)
    with pytest.raises(ValueError):
        ChunkQueue(0)
