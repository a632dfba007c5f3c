"""Fusion formulas: LeRobot's fixed blends exactly, crossfade continuity, rtc replacement."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.executor.chunk_queue import ChunkQueue
from smolvla_ros.core.executor.fusion import (
    FUSION_NAMES,
    Crossfade,
    FusionConfigError,
    make_fusion,
    rtc_delay_steps,
)

DT = 33_333_333  # ns
NOW = 10**9


def queue_with(times: np.ndarray, values: np.ndarray) -> ChunkQueue:
    q = ChunkQueue(values.shape[1])
    q.merge(times, values, int(times[-1]) + DT, int(times[0]), make_fusion('latest_only'), DT)
    return q


@pytest.mark.parametrize('name,w_old,w_new', [
    ('weighted_average', 0.3, 0.7), ('latest_only', 0.0, 1.0), ('average', 0.5, 0.5),
    ('conservative', 0.7, 0.3)])
def test_lerobot_blends_match_the_facts(name, w_old, w_new):
    rng = np.random.default_rng(0)
    old_t = NOW - 2 * DT + np.arange(20) * DT  # old plan: 2 steps in the past .. 17 ahead
    old = rng.normal(size=(20, 4))
    new_t = NOW - 3 * DT + np.arange(30) * DT  # new chunk stamped 3 steps ago, same grid
    new = rng.normal(size=(30, 4))
    q = queue_with(old_t, old)
    result = q.merge(new_t, new, int(new_t[-1]) + DT, NOW, make_fusion(name), DT)
    assert result.accepted and result.late_steps == 3  # due before now: dropped
    times, pos = q.times_ns, q.positions
    np.testing.assert_array_equal(times, new_t[3:])  # anchor (= now) onwards
    for i, t in enumerate(times):
        k_new = int(np.flatnonzero(new_t == t)[0])
        k_old = np.flatnonzero(old_t == t)
        if k_old.size:  # overlapping due time: w_old * old + w_new * new
            expected = w_old * old[k_old[0]] + w_new * new[k_new]
        else:  # beyond the old plan: the new action as is
            expected = new[k_new]
        np.testing.assert_allclose(pos[i], expected, rtol=0, atol=1e-12)


def test_rtc_replaces_the_queue_without_blending():
    q = queue_with(NOW + np.arange(10) * DT, np.zeros((10, 2)))
    new = np.ones((10, 2))
    q.merge(NOW + np.arange(10) * DT, new, NOW + 10 * DT, NOW, make_fusion('rtc'), DT)
    np.testing.assert_array_equal(q.positions, new)
    assert make_fusion('rtc').uses_rtc_hints and not make_fusion('crossfade').uses_rtc_hints


def test_crossfade_weights_ramp_linearly_over_the_window():
    cf = Crossfade(steps=4)
    w = cf.new_weight(NOW + np.arange(-1, 7) * DT, NOW, DT)
    np.testing.assert_allclose(w, [0, 0, 0.25, 0.5, 0.75, 1, 1, 1])
    smooth = Crossfade(steps=4, shape='smooth').new_weight(NOW + np.arange(5) * DT, NOW, DT)
    np.testing.assert_allclose(smooth, [0, 0.15625, 0.5, 0.84375, 1])
    # The ramp finishes by the old plan's last action when that comes first.
    short = cf.new_weight(NOW + np.arange(4) * DT, NOW, DT, old_last_ns=NOW + 2 * DT)
    np.testing.assert_allclose(short, [0, 0.5, 1, 1])


def _max_step(q: ChunkQueue, start: int, stop: int, step: int) -> float:
    from smolvla_ros.core.executor.interpolation import interpolate_at
    ts = np.arange(start, stop, step)
    values = interpolate_at(q.times_ns, q.positions, ts)
    return float(np.abs(np.diff(values, axis=0)).max())


def test_crossfade_seam_is_continuous_when_chunks_agree():
    # Both chunks sample the same ramp, on grids offset by 1/3 step: the fused plan's steps are
    # no larger than the chunks' own steps.
    slope = 0.01  # rad per step
    old_t = NOW - DT + np.arange(30) * DT
    q = queue_with(old_t, (slope * (old_t - NOW) / DT)[:, None])
    new_t = NOW - DT // 3 + np.arange(30) * DT
    q.merge(new_t, (slope * (new_t - NOW) / DT)[:, None], int(new_t[-1]) + DT, NOW,
            Crossfade(steps=8), DT)
    assert _max_step(q, NOW, NOW + 20 * DT, DT) <= slope + 1e-9


def test_crossfade_bounds_the_seam_when_chunks_disagree():
    # New chunk 1 rad away: a hard switch would jump 1 rad; the crossfade spreads it over the
    # window, so each step is at most offset / steps (+ the chunks' own steps, here 0).
    steps, offset = 10, 1.0
    q = queue_with(NOW - DT + np.arange(40) * DT, np.zeros((40, 1)))
    q.merge(NOW + np.arange(40) * DT, np.full((40, 1), offset), NOW + 40 * DT, NOW,
            Crossfade(steps=steps), DT)
    assert q.positions[0, 0] == 0.0  # at now the command is still the old plan's
    assert _max_step(q, NOW, NOW + 30 * DT, DT) <= offset / steps + 1e-9
    np.testing.assert_allclose(q.positions[-1], offset)  # ends on the new chunk
    hard = queue_with(NOW - DT + np.arange(40) * DT, np.zeros((40, 1)))
    hard.merge(NOW + np.arange(40) * DT, np.full((40, 1), offset), NOW + 40 * DT, NOW,
               make_fusion('latest_only'), DT)
    assert hard.positions[0, 0] == offset  # the hard switch: the whole offset in one step


def test_crossfade_resumes_from_the_held_position():
    q = ChunkQueue(1)  # exhausted: the arm holds at 0.5
    q.merge(NOW + np.arange(20) * DT, np.full((20, 1), 1.5), NOW + 20 * DT, NOW,
            Crossfade(steps=5), DT, hold_position=np.array([0.5]))
    np.testing.assert_allclose(q.positions[:6, 0], [0.5, 0.7, 0.9, 1.1, 1.3, 1.5])


def test_make_fusion_names_and_errors():
    assert set(FUSION_NAMES) == {'crossfade', 'weighted_average', 'latest_only', 'average',
                                 'conservative', 'rtc'}
    with pytest.raises(FusionConfigError, match='unknown fusion'):
        make_fusion('temporal_ensemble')
    with pytest.raises(FusionConfigError):
        Crossfade(steps=-1)
    with pytest.raises(FusionConfigError):
        Crossfade(shape='cubic')


@pytest.mark.parametrize('latency,dt,expected', [
    (0.0, 1 / 30, 0), (0.1, 1 / 30, 3), (0.101, 1 / 30, 4), (0.3, 1 / 30, 9), (0.05, 0.01, 5)])
def test_rtc_delay_steps_is_ceil_latency_over_dt(latency, dt, expected):
    assert rtc_delay_steps(latency, dt) == expected
