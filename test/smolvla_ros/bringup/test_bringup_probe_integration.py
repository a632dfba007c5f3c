"""`smolvla-ros up probe` end to end: two real ROS nodes in their own processes over DDS."""
from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ros]

DEADLINE_S = 180  # generous: a loaded 2-core CI machine starts rclpy processes slowly


def _up_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / 'smolvla-ros'
    base = [str(script)] if script.is_file() else [sys.executable, '-m', 'smolvla_ros.cli']
    return [*base, 'up', *args]


@pytest.fixture(autouse=True)
def _nodes_available() -> None:
    pytest.importorskip('smolvla_msgs.srv')
    pytest.importorskip('smolvla_ros.nodes.null_policy_server')
    pytest.importorskip('smolvla_ros.nodes.predict_probe')


def _run_up(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """subprocess.run for `up`, except that a run past DEADLINE_S gets SIGINT first: a SIGKILL
    would leave its nodes (each in its own session) running and slowing every later test."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        pytest.fail(f'up did not end within {DEADLINE_S} s:\n{out}\n{err}')
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_up_probe_exits_0_with_both_nodes_prefixed(ros_env) -> None:
    proc = _run_up(_up_command('probe', 'count:=20', 'num_cameras:=2', 'image_size:=224'),
                   ros_env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert '[null_policy_server] ' in proc.stdout and '[predict_probe] ' in proc.stdout, output
    assert '20/20 valid answers' in proc.stdout, output
    assert '[up] done: predict_probe finished successfully' in proc.stderr, output


def test_sigint_mid_run_stops_both_nodes_cleanly(ros_env) -> None:
    # The nodes must end on SIGINT alone; the window for that is generous (it costs nothing when
    # they do), so a loaded machine's slow rclpy shutdown is not mistaken for an escalation.
    proc = subprocess.Popen(_up_command('--sigint-timeout', '60', 'probe', 'count:=100000000',
                                        'num_cameras:=1', 'image_size:=64'),
                            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:  # the server logs 'serving ...' once its service exists
            lines.append(line.rstrip('\n'))
            if line.startswith('[null_policy_server]') and 'serving' in line:
                break
        assert any('serving' in line for line in lines), lines
        pids = [int(line.split('(pid ')[1].rstrip(')')) for line in lines if '(pid ' in line]
        assert len(pids) == 2, lines
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = '\n'.join(lines) + '\n' + rest
    assert proc.returncode == 128 + signal.SIGINT, output
    assert '[up] stopped by SIGINT' in output
    assert 'sending SIGTERM' not in output and 'sending SIGKILL' not in output, output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
