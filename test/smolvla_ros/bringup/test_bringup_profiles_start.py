"""Every shipped profile starts with its defaults and does its job: commands flow to the arm.

Generic over config/profiles/*.yaml, so a new profile (or a changed default, such as the policy a
simulated profile serves) is covered without touching this file. Each profile runs with its
defaults, except:
- ``sim:=true`` where the profile has a ``sim`` argument (no hardware here; sim or emulated);
- every ``*port`` argument points into this test's tmp directory, so that concurrent runs on one
  machine never share a servo-bus link.
A profile with a ``shutdown_on_exit`` entry (a probe) must end by itself with status 0. Any other
must publish ``joint_commands`` (the executor executing accepted chunks, or teleop), then stop on
one Ctrl-C with status 130.
"""
from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import threading

import pytest

from smolvla_ros.bringup.processes import stop, up_command
from smolvla_ros.bringup.profile import available_profiles, load_profile
from smolvla_ros.bringup.watcher import StackWatcher

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]

START_S = 240.0  # wall: start-up (policy warm-up on a loaded 2-core machine) until commands flow
COMMANDS = 30  # joint_commands messages that count as flowing
STOP_S = 60.0


def _arguments(profile, tmp_path: Path) -> list[str]:
    args = []
    for spec in profile.arguments:
        if spec.name == 'sim':
            args.append('sim:=true')
        elif spec.name.endswith('port'):
            args.append(f'{spec.name}:={tmp_path / spec.name}')
    return args


class _CommandCounter(StackWatcher):
    """Counts joint_commands on the stack's domain (namespace '' in every default)."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, 'profile_start_watcher')
        from sensor_msgs.msg import JointState

        self.count = 0
        self.node.create_subscription(JointState, 'joint_commands', self._on_command, 50)

    def _on_command(self, _msg) -> None:
        self.count += 1


@pytest.mark.parametrize('path', available_profiles(), ids=lambda p: p.stem)
def test_profile_starts_with_its_defaults(path: Path, ros_env, tmp_path) -> None:
    profile = load_profile(path)
    probe = any(e.shutdown_on_exit for e in (*profile.nodes, *profile.processes))
    lines: list[str] = []
    proc = subprocess.Popen(up_command(profile.name, *_arguments(profile, tmp_path)),
                            env=ros_env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    counter = None if probe else _CommandCounter(int(ros_env['ROS_DOMAIN_ID']))
    try:
        if probe:
            assert proc.wait(START_S) == 0, ''.join(lines)[-8000:]
            return
        flowing = counter.spin_until(lambda: counter.count >= COMMANDS, START_S, proc)
        assert flowing, (f'{profile.name}: {counter.count} joint_commands within {START_S:g} s '
                         f'(up exit status {proc.poll()})\n' + ''.join(lines)[-8000:])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STOP_S) == 128 + signal.SIGINT, ''.join(lines)[-8000:]
    finally:
        if counter is not None:
            counter.close()
        stop(proc, STOP_S)  # SIGKILL if need be: its nodes then get SIGTERM (supervisor.py)
        reader.join(timeout=5)
