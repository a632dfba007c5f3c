"""A teleoperation session is recorded, converted to a LeRobot dataset and checked, end to end.

`smolvla-ros up so101_teleop_record` (two emulated buses with the leader moved by its emulator,
follower + leader drivers, teleop, two synthetic cameras, the recorder) runs for a few seconds and
is stopped with Ctrl-C, which must finalise the bag; `smolvla-convert` then turns the bag into a
LeRobot v3.0 dataset and `smolvla-convert --check` verifies it, and the recorded follower moved.
"""
from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]

RECORD_S = 12.0


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f'{name} is not installed')
    return str(path)


def test_teleop_session_records_converts_and_checks(tmp_path: Path, ros_env) -> None:
    pytest.importorskip('rosbags')
    pytest.importorskip('pyarrow')
    up = subprocess.Popen(
        [_script('smolvla-ros'), 'up', 'so101_teleop_record', f'output_dir:={tmp_path}',
         'bag_name:=session', f'follower_port:={tmp_path}/follower',
         f'leader_port:={tmp_path}/leader', 'camera_fps:=15.0'],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(RECORD_S)
        assert up.poll() is None, up.communicate()[0][-3000:]
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
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
