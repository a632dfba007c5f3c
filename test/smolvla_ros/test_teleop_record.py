"""A teleoperation session is recorded, converted to a LeRobot dataset and checked, end to end.

`smolvla-ros up so101_teleop_record` (two emulated buses with the leader moved by its emulator,
follower + leader drivers, teleop, two synthetic cameras, the recorder) runs for a few seconds and
is stopped with Ctrl-C, which must finalise the bag; `smolvla-convert` then turns the bag into a
LeRobot v3.0 dataset and `smolvla-convert --check` verifies it, and the recorded follower moved.
"""
from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest

from smolvla_ros.bringup.processes import stop, up_command

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]

RECORD_S = 8.0  # the session, counted from when every node is up (two sweeps of the leader)
START_S = 180.0  # bound on start-up (seven processes on a loaded 2-core machine), not a goal

# Lines of the bringup log that show each node up: the recorder subscribed, the follower holding
# torque (so it tracks the leader), both cameras publishing.
READY = ('[recorder] ', 'recording '), ('[follower_driver] ', 'torque enabled'), (
    '[camera_front] ', '/image_raw'), ('[camera_wrist] ', '/image_raw')


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f'{name} is not installed')
    return str(path)


def _wait_until_up(log: Path, proc: subprocess.Popen) -> bool:
    """Poll the bringup log until every READY line showed; False if it ended or START_S passed."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.poll() is None:
        lines = log.read_text(errors='replace').splitlines()
        if all(any(ln.startswith(who) and what in ln for ln in lines) for who, what in READY):
            return True
        time.sleep(0.2)
    return False


def test_teleop_session_records_converts_and_checks(tmp_path: Path, ros_env) -> None:
    pytest.importorskip('rosbags')
    pytest.importorskip('pyarrow')
    log = tmp_path / 'up.log'
    # The log goes to a file: a pipe nobody reads while the session runs could fill and block
    # the nodes. The SIGINT window is generous so that every node ends on SIGINT itself.
    with log.open('w') as out:
        up = subprocess.Popen(
            up_command('--sigint-timeout', '30', 'so101_teleop_record', f'output_dir:={tmp_path}',
                       'bag_name:=session', f'follower_port:={tmp_path}/follower',
                       f'leader_port:={tmp_path}/leader', 'camera_fps:=15.0'),
            env=ros_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            assert _wait_until_up(log, up), log.read_text()[-3000:]
            time.sleep(RECORD_S)  # the recording itself: a session of this length
            assert up.poll() is None, log.read_text()[-3000:]
        finally:
            stop(up, 90.0)
    out = log.read_text()
    assert up.returncode == 130, out[-3000:]  # stopped by SIGINT, every node ended cleanly
    bag = tmp_path / 'session'
    assert (bag / 'metadata.yaml').is_file(), out[-3000:]

    dataset = tmp_path / 'dataset'
    convert = subprocess.run(
        [_script('smolvla-convert'), str(bag), '--out', str(dataset), '--task', 'follow the leader',
         '--vcodec', 'h264', '--no-progress'],
        env=ros_env, capture_output=True, text=True, timeout=300)
    assert convert.returncode == 0, convert.stdout[-3000:] + convert.stderr[-3000:]
    check = subprocess.run([_script('smolvla-convert'), '--check', str(dataset)],
                           env=ros_env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]

    from smolvla_training.dataset.reader import LeRobotDatasetReader
    reader = LeRobotDatasetReader(dataset)
    assert len(reader) >= 30  # several seconds at the contract's fps
    states = np.stack([np.asarray(reader[i]['observation.state']) for i in range(len(reader))])
    assert np.ptp(states, axis=0).max() > 1.0, 'the follower did not track the moving leader'
    frame = reader[len(reader) // 2]
    assert set(k for k in frame if k.startswith('observation.images.')) == {
        'observation.images.front', 'observation.images.wrist'}
