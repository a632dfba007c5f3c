"""run_node: the shared main() of every node."""
from __future__ import annotations

import pytest

rclpy = pytest.importorskip('rclpy')

from smolvla_ros.nodes.node_main import EXIT_BAD_SETUP, run_node  # noqa: E402

pytestmark = pytest.mark.ros


class _BadCalibration(ValueError):
    pass


def _failing_factory():
    raise _BadCalibration('calibration file does not match the servos')


def test_setup_error_gives_exit_2_and_shuts_rclpy_down() -> None:
    assert run_node(_failing_factory, 'probe_node') == EXIT_BAD_SETUP
    assert not rclpy.ok(), 'the default context must be shut down after a failed start'


def test_unexpected_errors_are_not_swallowed() -> None:
    def factory():
        raise KeyError('bug')
    with pytest.raises(KeyError):
        run_node(factory, 'probe_node', setup_errors=(ValueError,))
    assert not rclpy.ok()
