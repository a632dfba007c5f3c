"""The async stack end to end through `smolvla-ros up so101_async_emulated` (separate processes).

Emulated Feetech bus + driver + two synthetic cameras + chunk_executor from the shipped profile;
the policy_server (tiny preset) runs as its own process, as on a remote GPU host (policy:=false),
so the test can kill and restart it. One bringup walks through: commands flow without starvation
at the configured latency; killing the policy server makes the arm hold, restarting it resumes
execution; a frozen camera (SIGSTOP) stops requests, and requests resume when it thaws. A second
test shows that a contract/checkpoint camera mismatch ends the bringup at start with the exact keys.
"""
from __future__ import annotations

import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('torch')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from up_process import run_up  # noqa: E402

from smolvla_ros.bringup.processes import stop  # noqa: E402
from smolvla_ros.paths import config_path  # noqa: E402
from smolvla_ros.ros.time import stamp_to_ns  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]
BIN = Path(sys.executable).parent
CALIBRATION = config_path('calibration', 'so101_follower_example.json')
FPS = 10  # 50-step chunks last 5 s: room for a tiny policy on a loaded 2-core machine


def _contract(tmp_path: Path) -> str:
    joints = '\n'.join(f'  - {{name: {j}, unit: degrees}}' for j in (
        'shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll'))
    cams = '\n'.join(
        f'  {c}: {{topic: cameras/{c}/image_raw/compressed, width: 96, height: 72, fps: 15, '
        f'max_age_s: 0.5}}' for c in ('front', 'wrist'))
    path = tmp_path / 'contract.yaml'
    path.write_text(f'''version: 1
fps: {FPS}
joints:
{joints}
  - {{name: gripper, unit: range_0_100}}
state: {{topic: joint_states, max_age_s: 0.5}}
action: {{topic: joint_commands}}
policy_image_size: null
cameras:
{cams}
''')
    return str(path)


def _up(tmp_path: Path, contract: str, *args: str) -> list[str]:
    return [str(BIN / 'smolvla-ros'), 'up', 'so101_async_emulated', f'contract_file:={contract}',
            f'follower_port:={tmp_path / "bus"}', 'camera_width:=96', 'camera_height:=72',
            'camera_fps:=15.0', 'num_steps:=3', *args]


def _policy_server(contract: str) -> list[str]:
    return [str(BIN / 'policy_server'), '--ros-args', '--params-file',
            str(config_path('params', 'policy_server.yaml')), '-p', 'checkpoint:=tiny',
            '-p', f'contract_file:={contract}', '-p', f'calibration_file:={CALIBRATION}',
            '-p', 'rename_map:=front=camera1,wrist=camera2', '-p', 'num_steps:=3',
            '-p', 'warmup_runs:=1', '-p', 'torch_threads:=1']


class Monitor:
    """Listens to joint_commands and the executor's /diagnostics values in this process."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('integration_monitor', context=context)
        self.values: dict[str, str] = {}
        self.message = ''
        self.commands: list[tuple[int, np.ndarray]] = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.node.create_subscription(JointState, 'joint_commands', self._on_cmd, 50)
        self._executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith('chunk_executor: execution'):
                self.values = {kv.key: kv.value for kv in status.values}
                self.message = status.message

    def _on_cmd(self, msg: JointState) -> None:
        self.commands.append((stamp_to_ns(msg.header.stamp), np.array(msg.position)))

    def count(self, key: str) -> int:
        return int(self.values.get(key, 0))

    def wait(self, predicate, timeout_s: float, what: str, log: Path) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        pytest.fail(f'timed out after {timeout_s:g} s waiting for {what}; executor: '
                    f'{self.message!r} {self.values}\n--- bringup log ---\n{log.read_text()}')

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()


def _pid(log: Path, name: str) -> int:
    match = re.search(rf'started {name} \(pid (\d+)\)', log.read_text())
    assert match, log.read_text()
    return int(match.group(1))


def test_async_stack_flows_holds_resumes_and_stops_on_stale_camera(ros_env, rclpy_context,
                                                                   tmp_path) -> None:
    contract = _contract(tmp_path)
    log, server_log = tmp_path / 'up.log', tmp_path / 'server.log'
    # The monitor lives in this process: give the children its domain.
    env = dict(ros_env, ROS_DOMAIN_ID=str(rclpy_context.get_domain_id()))
    with log.open('w') as out, server_log.open('w') as server_out:
        up = subprocess.Popen(_up(tmp_path, contract, 'policy:=false'), env=env, stdout=out,
                              stderr=subprocess.STDOUT)
        server = subprocess.Popen(_policy_server(contract), env=env, stdout=server_out,
                                  stderr=subprocess.STDOUT)
        monitor = Monitor(rclpy_context)
        try:
            # 1. Commands flow and, once running, no tick starves at this latency.
            monitor.wait(lambda: monitor.count('chunks_accepted') >= 2, 150, 'two chunks', log)
            starved = monitor.count('starvation_ticks')
            accepted = monitor.count('chunks_accepted')
            monitor.wait(lambda: monitor.count('chunks_accepted') >= accepted + 2, 60,
                         'two more chunks', log)
            assert monitor.count('starvation_ticks') == starved, monitor.values
            assert len(monitor.commands) > 50

            # 2. Kill the policy server: the arm holds its last command ...
            server.kill()
            server.wait()
            monitor.wait(lambda: monitor.count('starvation_ticks') >= starved + 20, 30,
                         'starvation after the kill', log)
            held_from = time.time_ns()
            monitor.wait(lambda: monitor.count('starvation_ticks') >= starved + 40, 30,
                         'more held ticks', log)
            held = [p for t, p in monitor.commands if t >= held_from]
            assert len(held) >= 10 and all(np.array_equal(held[0], p) for p in held)
            # ... and a restarted server resumes execution.
            accepted = monitor.count('chunks_accepted')
            server = subprocess.Popen(_policy_server(contract), env=env, stdout=server_out,
                                      stderr=subprocess.STDOUT)
            monitor.wait(lambda: monitor.count('chunks_accepted') >= accepted + 2, 120,
                         'chunks from the restarted server', log)

            # 3. A frozen camera: no request goes out while its frames are stale.
            camera = _pid(log, 'camera_front')
            os.kill(camera, signal.SIGSTOP)
            try:
                stale = monitor.count('stale_observations')
                monitor.wait(lambda: monitor.count('stale_observations') >= stale + 5, 30,
                             'stale observations', log)
                requests = monitor.count('requests')
                stale = monitor.count('stale_observations')
                monitor.wait(lambda: monitor.count('stale_observations') >= stale + 20, 30,
                             'more stale observations', log)
                assert monitor.count('requests') == requests, monitor.values
                assert 'front is stale' in monitor.message, monitor.message
            finally:
                os.kill(camera, signal.SIGCONT)
            monitor.wait(lambda: monitor.count('requests') > requests, 60,
                         'requests after the camera thawed', log)
        finally:
            monitor.close()
            stop(server)
            stop(up)
    assert up.returncode == 128 + signal.SIGINT, log.read_text()


def test_camera_mismatch_with_the_checkpoint_fails_fast(ros_env, tmp_path) -> None:
    contract = _contract(tmp_path)
    proc = run_up(_up(tmp_path, contract, 'rename_map:=front=camera1'), ros_env,
                  240, merge_stderr=True)  # a failure bound, not a speed goal
    output = proc.stdout
    assert proc.returncode == 1, output
    assert '[up] ' in output and 'policy_server' in output, output
    line = next((ln for ln in output.splitlines() if 'does not match contract' in ln), '')
    assert "missing image features ['observation.images.camera2']" in line, output
    assert "unexpected image features ['observation.images.wrist']" in line, output
    assert 'rename_map' in line, output


def test_sync_profile_is_the_async_profile_with_mode_sync() -> None:
    import yaml
    load = lambda name: yaml.safe_load(config_path('profiles', f'{name}.yaml').read_text())  # noqa: E731
    sync, async_ = load('so101_sync_emulated'), load('so101_async_emulated')
    assert sync['arguments'].pop('mode')['default'] == 'sync'
    assert async_['arguments'].pop('mode')['default'] == 'async'
    for profile in (sync, async_):
        profile.pop('description')
    assert sync == async_
