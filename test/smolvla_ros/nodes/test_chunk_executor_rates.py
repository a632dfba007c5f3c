"""chunk_executor reports the measured rate of each input stream and warns below the contract.

A camera published at a third of the contract fps must turn ``/diagnostics`` into a WARN that
names it, once the rate window has filled; at the contract rate there is no rate warning. No
policy server runs: the rates do not depend on it (and a server that answers in the fake robot's
single-threaded executor would delay its frames). The rate meter belongs to the node's executor
thread (docs/ARCHITECTURE.md, "Threading"), so the test reads what the node publishes: once a
status shows every stream arriving, each window has filled one window length later (the meter's
window lengths are fixed at construction), on the monotonic clock this process shares with it.
"""
from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from executor_fixtures import FakeRobot, Spin, wait_until, write_contract  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from smolvla_ros.nodes.chunk_executor import ChunkExecutor  # noqa: E402

pytestmark = pytest.mark.ros
FPS = 20.0  # contract fps and the camera's contract fps (write_contract)
THRESHOLD_HZ = 0.8 * FPS  # the default rate_warn_fraction
RATE_WARNING = 'input rate low'


class DiagnosticsWatcher(Node):
    """The executor's execution statuses, each with its monotonic receive time."""

    def __init__(self, context) -> None:
        super().__init__('rate_watcher', context=context)
        self._lock = threading.Lock()
        self._statuses: list[tuple[int, DiagnosticStatus]] = []
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        now = time.monotonic_ns()
        with self._lock:
            self._statuses.extend((now, s) for s in msg.status
                                  if s.name.endswith('chunk_executor: execution'))

    def received_after(self, t_ns: int) -> list[DiagnosticStatus]:
        with self._lock:
            return [s for received, s in self._statuses if received > t_ns]


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _run(context, tmp_path, camera_hz: float, accept) -> DiagnosticStatus:
    """Spin robot, executor and watcher until a status published after every stream's window
    filled satisfies ``accept``; returns it (fails after a generous timeout)."""
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    robot = FakeRobot(context, fps=FPS, serve=False, camera_hz=camera_hz)
    node = ChunkExecutor(context=context, parameter_overrides=[
        Parameter('contract_file', value=contract), Parameter('task', value='test'),
        Parameter('diagnostics_period_s', value=0.25)])
    watcher = DiagnosticsWatcher(context)
    try:
        window_ns = round(max(node.rates.windows_s.values()) * 1e9)
        start_ns = time.monotonic_ns()
        with Spin(context, robot, node, watcher):
            def arriving(status: DiagnosticStatus) -> bool:
                values = _values(status)
                return all(float(values.get(f'rate_hz.{name}', 0.0)) > 0.0
                           for name in node.rates.names)

            assert wait_until(lambda: any(map(arriving, watcher.received_after(start_ns))),
                              30.0), [_values(s) for s in watcher.received_after(start_ns)[-3:]]
            filled_ns = time.monotonic_ns() + window_ns

            def found() -> DiagnosticStatus | None:
                # The first status received after the fill may have been published before it.
                return next((s for s in watcher.received_after(filled_ns)[1:] if accept(s)), None)

            assert wait_until(lambda: found() is not None, 30.0), [
                (s.message, _values(s)) for s in watcher.received_after(filled_ns)[-3:]]
            return found()
    finally:
        for n in (node, robot, watcher):
            n.destroy_node()


def test_camera_at_a_third_of_the_contract_fps_is_named_in_a_warning(rclpy_context,
                                                                     tmp_path) -> None:
    status = _run(rclpy_context, tmp_path, FPS / 3, lambda s: RATE_WARNING in s.message)
    values = _values(status)
    assert status.level == DiagnosticStatus.WARN, status
    rate_part = status.message.split(RATE_WARNING, 1)[1]
    assert 'front at' in rate_part and 'joint_states' not in rate_part, status.message
    assert 0.0 < float(values['rate_hz.front']) < THRESHOLD_HZ, values
    # About one 150 ms frame period; generous for timer delays on a loaded machine.
    assert float(values['max_gap_ms.front']) >= 100.0, values
    assert float(values['rate_hz.joint_states']) >= THRESHOLD_HZ, values


def test_streams_at_the_contract_rate_give_no_rate_warning(rclpy_context, tmp_path) -> None:
    status = _run(rclpy_context, tmp_path, FPS, lambda s: RATE_WARNING not in s.message)
    values = _values(status)
    assert float(values['rate_hz.front']) >= THRESHOLD_HZ, values
    assert float(values['rate_hz.joint_states']) >= THRESHOLD_HZ, values
    assert float(values['max_gap_ms.front']) > 0.0, values


def test_invalid_rate_warn_fraction_fails_at_start(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    with pytest.raises(ValueError, match='rate_warn_fraction'):
        ChunkExecutor(context=rclpy_context, parameter_overrides=[
            Parameter('contract_file', value=contract), Parameter('rate_warn_fraction',
                                                                   value=1.5)])
