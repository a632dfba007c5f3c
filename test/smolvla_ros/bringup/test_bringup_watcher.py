"""bringup/watcher.py: the in-process node that watches a stack started as processes."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip('rclpy')
from std_msgs.msg import String  # noqa: E402

from smolvla_ros.bringup.processes import random_domain_id  # noqa: E402
from smolvla_ros.bringup.watcher import StackWatcher  # noqa: E402

pytestmark = [pytest.mark.ros]

WAIT_S = 30.0  # failure bound on a loaded machine


class _Echo(StackWatcher):
    """Publishes on a topic of its own and counts what comes back: a stack in one node."""

    def __init__(self, domain_id: int, topic: str) -> None:
        super().__init__(domain_id, 'watcher_test')
        self.pub = self.node.create_publisher(String, topic, 10)
        self.seen: list[str] = []
        self.node.create_subscription(String, topic, lambda m: self.seen.append(m.data), 10)
        self.spins = 0

    def on_spin(self) -> None:
        self.spins += 1
        self.pub.publish(String(data=str(self.spins)))


def test_spin_until_runs_callbacks_until_done_then_close_ends_the_context() -> None:
    watcher = _Echo(random_domain_id(), f'watcher_test_{id(object())}')
    with watcher:
        assert watcher.spin_until(lambda: len(watcher.seen) >= 3, WAIT_S)
        assert watcher.spins >= 3
    assert not watcher.context.ok()


def test_spin_until_stops_when_a_watched_process_has_ended() -> None:
    ended = subprocess.Popen([sys.executable, '-c', 'pass'])
    ended.wait()
    with _Echo(random_domain_id(), 'watcher_test_ended') as watcher:
        assert watcher.spin_until(lambda: False, WAIT_S, ended) is False
        assert watcher.spins == 0  # it never spun: the stack was already gone
        assert watcher.spin_until(lambda: True, WAIT_S, [ended]) is True  # checked once more
