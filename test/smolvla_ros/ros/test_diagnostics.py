"""diagnostic_status / diagnostic_array: the one builder of every node's /diagnostics message."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus
import pytest

from smolvla_ros.ros.diagnostics import (
    ERROR,
    OK,
    STALE,
    WARN,
    diagnostic_array,
    diagnostic_status,
)


def test_levels_are_the_message_levels_as_ints() -> None:
    assert [bytes([lv]) for lv in (OK, WARN, ERROR, STALE)] == [
        DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE]


def test_status_carries_level_name_message_hardware_and_values_in_order() -> None:
    status = diagnostic_status('/arm: bus', WARN, '2 failed cycles', 'ttyACM0',
                               {'b': '2', 'a': '1'})
    assert status.level == DiagnosticStatus.WARN
    assert (status.name, status.message, status.hardware_id) == (
        '/arm: bus', '2 failed cycles', 'ttyACM0')
    assert [(kv.key, kv.value) for kv in status.values] == [('b', '2'), ('a', '1')]


def test_values_may_be_pairs() -> None:
    status = diagnostic_status('n', ERROR, 'm', values=[('x', '1'), ('x', '2')])
    assert status.level == DiagnosticStatus.ERROR
    assert [(kv.key, kv.value) for kv in status.values] == [('x', '1'), ('x', '2')]


@pytest.mark.parametrize('level', [-1, 4, True, 1.0])
def test_a_level_outside_the_four_is_refused(level) -> None:
    with pytest.raises(ValueError, match='diagnostic level must be one of'):
        diagnostic_status('n', level, 'm')


def test_array_is_stamped_and_keeps_the_statuses_in_order() -> None:
    first, second = diagnostic_status('a', OK, 'ok'), diagnostic_status('b', STALE, 'old')
    msg = diagnostic_array(3_000_000_007, iter([first, second]))
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (3, 7)
    assert [s.name for s in msg.status] == ['a', 'b']
