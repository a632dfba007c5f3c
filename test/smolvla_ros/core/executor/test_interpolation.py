"""Linear interpolation and due-index lookup on time-indexed actions."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.executor.interpolation import due_index, interpolate_at, interpolate_one

TIMES = np.array([0, 100, 200, 400], dtype=np.int64)
VALUES = np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [3.0, 4.0]])


def test_linear_between_neighbours_and_exact_on_samples():
    q = np.array([0, 50, 100, 150, 300, 400])
    out = interpolate_at(TIMES, VALUES, q)
    np.testing.assert_allclose(out, [[0, 1], [0.5, 1], [1, 1], [2, 0.5], [3, 2], [3, 4]])


def test_no_extrapolation_outside_the_plan():
    out = interpolate_at(TIMES, VALUES, np.array([-50, 1000]))
    np.testing.assert_allclose(out, [VALUES[0], VALUES[-1]])
    np.testing.assert_allclose(interpolate_one(TIMES[:1], VALUES[:1], 7), VALUES[0])


def test_upsampling_a_30fps_line_at_100hz_is_exact():
    dt = round(1e9 / 30)
    times = np.arange(10, dtype=np.int64) * dt
    values = (0.2 * times / 1e9)[:, None]  # a straight line: linear interpolation is exact
    ticks = np.arange(0, 9 * dt, 10_000_000)
    np.testing.assert_allclose(interpolate_at(times, values, ticks)[:, 0], 0.2 * ticks / 1e9)


def test_due_index_with_tolerance():
    assert due_index(TIMES, -1) == -1
    assert due_index(TIMES, 100) == 1
    assert due_index(TIMES, 199) == 1
    assert due_index(TIMES, 199, tolerance_ns=5) == 2


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        interpolate_at(TIMES, VALUES[:2], np.array([0]))
    with pytest.raises(ValueError, match='empty'):
        interpolate_at(TIMES[:0], VALUES[:0], np.array([0]))
