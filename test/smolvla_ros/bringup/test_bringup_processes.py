"""bringup/processes.py: the stack's processes as tests and benchmarks start and stop them."""
from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys

import pytest
from waiting import pid_alive, wait_until

from smolvla_ros.bringup.processes import (
    DOMAIN_IDS,
    isolated_ros_env,
    stop,
    up_command,
)

WAIT_S = 30.0  # bound on a child's start-up on a loaded machine (failure only)


def _start(child_argv, name: str, mode: str, tmp_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(child_argv(name, ticks=2400, mode=mode))
    assert wait_until((tmp_path / f'{name}.ready').exists, WAIT_S), f'{name} never started'
    return proc


def test_a_process_that_ends_on_sigint_is_not_killed(child_argv, tmp_path: Path) -> None:
    proc = _start(child_argv, 'polite', 'normal', tmp_path)
    assert stop(proc, WAIT_S) is True
    assert proc.returncode == 0  # its handler's exit
    assert (tmp_path / 'polite.sig').read_text() == 'SIGINT'


def test_a_process_that_ignores_sigint_is_killed_and_reaped(child_argv, tmp_path: Path) -> None:
    proc = _start(child_argv, 'deaf', 'ignore-all', tmp_path)
    assert stop(proc, 0.5) is False
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / 'deaf.sig').exists()


def test_an_ended_process_is_left_alone(child_argv) -> None:
    proc = subprocess.Popen(child_argv('quick', code=3))
    proc.wait()
    assert stop(proc) is True
    assert proc.returncode == 3


def test_group_stop_reaches_every_process_of_the_session(child_argv, tmp_path: Path) -> None:
    # A leader that ignores SIGINT, with a child of its own that ignores it too (a launch whose
    # node does not stop): both get SIGKILL through the group.
    leader_code = (
        'import signal, subprocess, sys, time\n'
        'signal.signal(signal.SIGINT, signal.SIG_IGN)\n'
        f'child = subprocess.Popen({list(child_argv("node", ticks=2400, mode="ignore-all"))!r})\n'
        'print(child.pid, flush=True)\n'
        'time.sleep(120)\n')
    proc = subprocess.Popen([sys.executable, '-c', leader_code], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    child_pid = int(proc.stdout.readline())
    assert wait_until((tmp_path / 'node.ready').exists, WAIT_S), 'the node never started'
    assert stop(proc, 0.5, group=True) is False
    assert proc.returncode == -signal.SIGKILL
    assert wait_until(lambda: not pid_alive(child_pid), WAIT_S), 'the node survived'
    proc.stdout.close()


def test_isolated_env_has_a_domain_of_its_own_and_localhost_discovery() -> None:
    env = isolated_ros_env(base={'PATH': '/usr/bin', 'KEEP': 'me', 'ROS_DOMAIN_ID': '0'})
    assert DOMAIN_IDS[0] <= int(env['ROS_DOMAIN_ID']) <= DOMAIN_IDS[1]
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['PATH'].split(os.pathsep) == [os.path.dirname(sys.executable), '/usr/bin']
    assert env['PYTHONUNBUFFERED'] == '1' and env['KEEP'] == 'me'
    assert isolated_ros_env(42)['ROS_DOMAIN_ID'] == '42'


def test_up_command_runs_up_with_this_environment() -> None:
    cmd = up_command('probe', 'count:=3')
    assert cmd[-5:] == ['up', '--parent-pid', str(os.getpid()), 'probe', 'count:=3']
    assert cmd[0] in (str(Path(sys.executable).parent / 'smolvla-ros'), sys.executable)


@pytest.mark.parametrize('installed', [True, False])
def test_up_command_without_the_console_script_uses_the_module(installed: bool, tmp_path: Path,
                                                              monkeypatch) -> None:
    python = tmp_path / 'bin' / 'python'
    python.parent.mkdir()
    if installed:
        (python.parent / 'smolvla-ros').touch()
    monkeypatch.setattr(sys, 'executable', str(python))
    expected = ([str(python.parent / 'smolvla-ros')] if installed
                else [str(python), '-m', 'smolvla_ros.cli'])
    assert up_command('x') == [*expected, 'up', '--parent-pid', str(os.getpid()), 'x']
