"""The real-time stack in simulation picks the cube: `smolvla-ros up so101_demo oracle:=true`
end to end (the oracle: a pick that must happen cannot depend on a learned policy's quality; the
profile's default, the shipped SmolVLA, is started by bringup/test_bringup_profiles_start.py).

so101_sim (MuJoCo arm behind the emulated Feetech bus on a pty) + the real feetech_driver +
chunk_executor (async) + oracle_policy_server, each in its own process over DDS. The first
episode must succeed (its simulated time includes the other nodes' start-up, the world runs from
the simulator's start); then the test starts a fresh episode through ``sim/reset`` and requires
the simulator's ``success`` event for it within a tight bound of simulated time, then stops the
stack with Ctrl-C and requires every node to exit on SIGINT alone.

The simulator renders both cameras at the contract's 640x480 (the profile's default). The
executor clears its plan on the simulator's ``reset`` event (``reset_topic``), checked through its
``clears`` counter. The reset still comes after a success on purpose: ``sim/reset`` teleports the
arm home, but the driver's goal stays where the arm was, so the arm first swings back toward it;
mid-approach that can push the new cube.
"""
from __future__ import annotations

import json
from pathlib import Path
import signal
import subprocess

import pytest
from up_process import spin_or_fail

from smolvla_ros.bringup.processes import stop, up_command
from smolvla_ros.bringup.watcher import StackWatcher

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]

FIRST_PICK_WALL_S = 50.0  # wall: start-up (slow on a loaded 2-core machine) and the first pick
FIRST_PICK_SIM_S = 20.0  # simulated seconds from the simulator's start, start-up included
PICK_WALL_S = 20.0  # wall: from the reset to the success event
PICK_SIM_S = 8.0  # simulated seconds from the reset: the oracle lifts the cube in ~3 s
STOP_S = 30.0


@pytest.fixture(autouse=True)
def _stack_available() -> None:
    pytest.importorskip('mujoco')
    pytest.importorskip('smolvla_msgs.srv')
    pytest.importorskip('std_srvs.srv')
    pytest.importorskip('smolvla_ros.nodes.so101_sim')
    pytest.importorskip('smolvla_ros.nodes.oracle_policy_server')


class _Watcher(StackWatcher):
    """Episode events and executor diagnostics, and the simulator's sim/reset service."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, 'sim_e2e_watcher')
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        self.events: list[dict] = []
        self.execution: dict[str, str] = {}
        self.execution_message = ''
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, 'sim/episode', self._on_event, latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.reset_client = self.node.create_client(Trigger, 'sim/reset')
        self._trigger = Trigger

    def _on_event(self, msg) -> None:
        self.events.append(json.loads(msg.data))

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith('chunk_executor: execution'):
                self.execution = {kv.key: kv.value for kv in status.values}
                self.execution_message = status.message

    def reset(self, proc: subprocess.Popen, log: Path) -> str:
        assert self.reset_client.wait_for_service(timeout_sec=10.0), 'no sim/reset service'
        future = self.reset_client.call_async(self._trigger.Request())
        assert spin_or_fail(self, future.done, 10.0, proc, log), 'sim/reset did not answer'
        response = future.result()
        assert response.success, response.message
        return response.message


def _wait_success(watcher: _Watcher, episode: int, timeout_s: float, proc: subprocess.Popen,
                  log: Path) -> dict:
    def found() -> dict | None:
        return next((e for e in watcher.events
                     if e['event'] == 'success' and e['episode'] == episode), None)

    assert spin_or_fail(watcher, lambda: found() is not None, timeout_s, proc, log), (
        f'no success for episode {episode} within {timeout_s} s: events {watcher.events}, '
        f'executor {watcher.execution_message!r} {watcher.execution}\n'
        f'{log.read_text()[-6000:]}')
    return found()


def test_async_oracle_picks_the_cube_in_real_time_then_stops_cleanly(ros_env, tmp_path) -> None:
    log = tmp_path / 'up.log'
    # The profile's cameras (the contract's 640x480 at 10 Hz) and camera_max_age_s (set from the
    # render rate, config/profiles/so101_demo.yaml): the deployed configuration.
    command = up_command('so101_demo', 'oracle:=true', f'port:={tmp_path / "bus"}', 'seed:=3')
    with log.open('w') as out:
        proc = subprocess.Popen(command, env=ros_env, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
    watcher = _Watcher(int(ros_env['ROS_DOMAIN_ID']))
    try:
        first = _wait_success(watcher, 0, FIRST_PICK_WALL_S, proc, log)
        assert first['seed'] == 3 and first['sim_time'] <= FIRST_PICK_SIM_S, first
        assert spin_or_fail(watcher, lambda: 'clears' in watcher.execution, 10.0, proc, log)
        clears_before = int(watcher.execution['clears'])  # the executor's start-up is long past

        message = watcher.reset(proc, log)  # a fresh episode, started while the stack runs
        episode = int(message.split()[1].rstrip(','))
        assert episode == 1, message
        success = _wait_success(watcher, episode, PICK_WALL_S, proc, log)
        assert success['seed'] == 4 and 0.5 < success['sim_time'] <= PICK_SIM_S, success
        assert any(e['event'] == 'reset' and e['episode'] == episode for e in watcher.events)

        # The executor drove the arm with policy chunks, not a lucky start.
        spin_or_fail(watcher, lambda: False, 1.5, proc, log)  # one more diagnostics period
        stats = watcher.execution
        assert int(stats['chunks_accepted']) >= 3, stats
        assert int(stats['commands']) > 30, stats
        assert stats['mode'] == 'async', stats
        # The reset event cleared the old episode's plan, once.
        assert int(stats['clears']) == clears_before + 1, (clears_before, stats)
    finally:
        watcher.close()
        if not stop(proc, STOP_S):
            pytest.fail(f'smolvla-ros up did not stop on SIGINT:\n{log.read_text()[-6000:]}')

    output = log.read_text()
    assert proc.returncode == 128 + signal.SIGINT, output[-6000:]
    assert '[up] stopped by SIGINT' in output, output[-6000:]
    assert 'sending SIGTERM' not in output and 'sending SIGKILL' not in output, output[-6000:]
    for node in ('so101_sim', 'follower_driver', 'oracle_policy_server', 'chunk_executor'):
        assert f'[up] {node} stopped (exit code 0)' in output, output[-6000:]
