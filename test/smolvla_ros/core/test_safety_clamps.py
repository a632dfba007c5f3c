"""Safety clamps and the command watchdog: pure functions, no bus, no ROS."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.safety_clamps import clamp_to_limits, limit_step, outside_range
from smolvla_ros.hardware.arm.command_watchdog import (
    CommandWatchdog,
    InvalidCommandError,
    UnknownJointError,
)


def test_clamp_to_limits_reports_clipped_joints() -> None:
    r = clamp_to_limits(np.array([-2.0, 0.5, 3.0]), np.array([-1.0, -1.0, -1.0]),
                        np.array([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(r.value, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(r.clipped, [True, False, True])
    assert r.any_clipped


def test_clamp_rejects_nan_and_inverted_limits() -> None:
    with pytest.raises(ValueError, match='non-finite'):
        clamp_to_limits(np.array([np.nan]), np.array([-1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match='lower limit above upper'):
        clamp_to_limits(np.array([0.0]), np.array([1.0]), np.array([-1.0]))
    with pytest.raises(ValueError, match='expected 1'):
        clamp_to_limits(np.array([0.0]), np.array([1.0, 2.0]), np.array([1.0]))


def test_limit_step_ramps_toward_goal() -> None:
    prev = np.zeros(3)
    r = limit_step(np.array([1.0, -1.0, 0.01]), prev, 0.1)
    np.testing.assert_allclose(r.value, [0.1, -0.1, 0.01])
    np.testing.assert_array_equal(r.clipped, [True, True, False])
    # Repeated application converges in ceil(1.0 / 0.1) steps.
    pos = prev
    for _ in range(10):
        pos = limit_step(np.array([1.0, -1.0, 0.01]), pos, 0.1).value
    np.testing.assert_allclose(pos, [1.0, -1.0, 0.01])


def test_limit_step_per_joint_and_disabled() -> None:
    r = limit_step(np.array([1.0, 1.0]), np.zeros(2), np.array([0.5, 0.0]))
    np.testing.assert_allclose(r.value, [0.5, 1.0])  # 0 disables the limit for joint 1
    np.testing.assert_array_equal(r.clipped, [True, False])


def test_outside_range_with_tolerance() -> None:
    lo, hi = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0])
    mask = outside_range(np.array([1.05, 1.2, np.nan]), lo, hi, tolerance=0.1)
    np.testing.assert_array_equal(mask, [False, True, True])
    with pytest.raises(ValueError, match='tolerance'):
        outside_range(np.zeros(3), lo, hi, tolerance=-1.0)


def test_watchdog_partial_commands_age_per_joint() -> None:
    wd = CommandWatchdog(['a', 'b', 'c'], timeout_s=0.5)
    target, fresh = wd.fresh(now=0.0)
    assert not fresh.any() and np.isnan(target).all()
    wd.set({'a': 1.0}, now=0.0)
    wd.set({'b': 2.0}, now=0.4)
    target, fresh = wd.fresh(now=0.6)
    np.testing.assert_array_equal(fresh, [False, True, False])  # a is 0.6 s old
    assert target[0] == 1.0 and target[1] == 2.0
    assert wd.commands_received == 2


def test_watchdog_rejects_whole_command_on_bad_input() -> None:
    wd = CommandWatchdog(['a', 'b'], timeout_s=1.0)
    with pytest.raises(UnknownJointError, match="unknown joint"):
        wd.set({'a': 1.0, 'zz': 0.0}, now=0.0)
    with pytest.raises(InvalidCommandError):
        wd.set({'a': 1.0, 'b': float('inf')}, now=0.0)
    _, fresh = wd.fresh(now=0.0)
    assert not fresh.any()  # nothing of either command was applied
    assert wd.commands_rejected == 2
    wd.set({'a': 1.0}, now=0.0)
    wd.clear()
    assert not wd.fresh(now=0.0)[1].any()


def test_watchdog_config_errors() -> None:
    with pytest.raises(ValueError):
        CommandWatchdog([], 1.0)
    with pytest.raises(ValueError):
        CommandWatchdog(['a', 'a'], 1.0)
    with pytest.raises(ValueError):
        CommandWatchdog(['a'], 0.0)
