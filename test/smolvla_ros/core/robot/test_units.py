"""Raw ticks <-> LeRobot DEGREES / RANGE_M100_100 / RANGE_0_100 <-> radians."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smolvla_ros.core.robot.calibration import CalibrationError, MotorCalibration
from smolvla_ros.core.robot.units import (
    CalibrationArrays,
    NormMode,
    clamp_radians,
    degrees_to_raw,
    norm_to_radians,
    norm_to_raw,
    radian_limits,
    radians_to_norm,
    radians_to_raw,
    raw_to_degrees,
    raw_to_norm,
    raw_to_radians,
    to_goal_ticks,
)

# Joint a: range 1000..3000 (mid 2000). Joint b: same range, drive_mode 1 (inverted).
CAL = {'a': MotorCalibration(1, 0, 0, 1000, 3000), 'b': MotorCalibration(2, 1, 0, 1000, 3000)}
ARR = CalibrationArrays.from_calibration(CAL)


def test_degrees_mapping_matches_lerobot_formula() -> None:
    # deg = (raw - mid) * 360 / 4095, inverted for drive_mode 1.
    deg = raw_to_degrees([[2000, 2000], [3000, 3000], [500, 500]], ARR)
    expected_3000 = 1000 * 360 / 4095
    np.testing.assert_allclose(deg, [[0, 0], [expected_3000, -expected_3000],
                                     [-1500 * 360 / 4095, 1500 * 360 / 4095]])  # no clamp
    np.testing.assert_allclose(raw_to_radians([3000, 1000], ARR),
                               [math.radians(expected_3000)] * 2)


def test_writes_truncate_toward_zero_like_lerobot() -> None:
    # 10 deg -> 10 * 4095 / 360 + 2000 = 2113.75 -> 2113 ; -10 deg -> 1886.25 -> 1886
    raw = degrees_to_raw([10.0, 10.0], ARR)
    assert raw.dtype == np.int64 and raw.tolist() == [2113, 1886]
    raw = degrees_to_raw([-10.0, -10.0], ARR)
    assert raw.tolist() == [1886, 2113]


def test_range_modes() -> None:
    modes = [NormMode.RANGE_M100_100, NormMode.RANGE_0_100]
    np.testing.assert_allclose(raw_to_norm([1000, 1500], modes, ARR), [-100, 100 - 25])
    np.testing.assert_allclose(raw_to_norm([3000, 3000], modes, ARR), [100, 0])
    np.testing.assert_allclose(raw_to_norm([500, 3500], modes, ARR), [-100, 0])  # clamped
    assert norm_to_raw([50, 25], modes, ARR).tolist() == [2500, 2500]  # (b inverted: 100-25)
    assert norm_to_raw([150, -20], modes, ARR).tolist() == [3000, 3000]  # clamped to range
    np.testing.assert_allclose(raw_to_norm([1500, 1500], 'range_m100_100', ARR), [-50, 50])


def test_radians_round_trips_through_every_mode() -> None:
    rng = np.random.default_rng(0)
    rad = rng.uniform(-1.3, 1.3, size=(50, 2))  # (T, J) inside the calibrated range
    for mode in NormMode:
        values = radians_to_norm(rad, mode, ARR)
        np.testing.assert_allclose(norm_to_radians(values, mode, ARR), rad, atol=1e-9)
    np.testing.assert_allclose(raw_to_radians(radians_to_raw(rad, ARR), ARR), rad, atol=1e-12)


def test_goal_ticks_and_limits() -> None:
    lo, hi = radian_limits(ARR)
    np.testing.assert_allclose(lo, [-math.radians(1000 * 360 / 4095)] * 2)
    np.testing.assert_allclose(hi, -lo)
    ticks = to_goal_ticks([0.0, 10.0], ARR)
    assert ticks.tolist() == [2000, 1000]  # b inverted: +10 rad is below range_min
    clamped, clipped = clamp_radians([0.5, -9.0], ARR)
    assert clipped.tolist() == [False, True]
    assert clamped[0] == 0.5 and clamped[1] == pytest.approx(lo[1])


def test_shape_and_calibration_errors() -> None:
    with pytest.raises(ValueError, match='2 joints'):
        raw_to_degrees([1, 2, 3], ARR)
    with pytest.raises(ValueError, match='modes'):
        raw_to_norm([1, 2], ['degrees'], ARR)
    with pytest.raises(ValueError):
        raw_to_norm([1, 2], 'percent', ARR)
    with pytest.raises(CalibrationError, match='gripper'):
        CalibrationArrays.from_calibration(CAL, ['a', 'gripper'])
