"""`smolvla-ros up probe` end to end: two real ROS nodes in their own processes over DDS."""
from __future__ import annotations

import signal
import subprocess

import pytest
from up_process import run_up
from waiting import pid_alive

from smolvla_ros.bringup.processes import up_command

pytestmark = [pytest.mark.integration, pytest.mark.ros]

DEADLINE_S = 180  # generous: a loaded 2-core CI machine starts rclpy processes slowly


@pytest.fixture(autouse=True)
def _nodes_available() -> None:
    pytest.importorskip('smolvla_msgs.srv')
    pytest.importorskip('smolvla_ros.nodes.null_policy_server')
    pytest.importorskip('smolvla_ros.nodes.predict_probe')


def test_up_probe_exits_0_with_both_nodes_prefixed(ros_env) -> None:
    proc = run_up(up_command('probe', 'count:=20', 'num_cameras:=2', 'image_size:=224'),
                  ros_env, DEADLINE_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert '[null_policy_server] ' in proc.stdout and '[predict_probe] ' in proc.stdout, output
    assert '20/20 valid answers' in proc.stdout, output
    assert '[up] done: predict_probe finished successfully' in proc.stderr, output


def test_sigint_mid_run_stops_both_nodes_cleanly(ros_env) -> None:
    # The nodes must end on SIGINT alone; the window for that is generous (it costs nothing when
    # they do), so a loaded machine's slow rclpy shutdown is not mistaken for an escalation.
    proc = subprocess.Popen(up_command('--sigint-timeout', '60', 'probe', 'count:=100000000',
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
        assert not pid_alive(pid), f'child {pid} still runs'
