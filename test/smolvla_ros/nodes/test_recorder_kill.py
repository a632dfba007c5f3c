"""A recorder killed with SIGKILL: what it flushed is on disk, ``smolvla-convert --recover`` gets
it back (nothing it did not publish, nothing it flushed missing), and the result converts.

The recorder runs as a real process; a ROS node here publishes joint states, commands, both
cameras and the task. A first batch is waited for until the bag file on disk holds all of it (the
periodic flush), then a second batch is published and the recorder killed at once: the recovered
bag must hold every message of the first batch and a prefix of the second.
"""
from __future__ import annotations

from pathlib import Path
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402
from smolvla_training.convert.bag_source import make_typestore  # noqa: E402
from smolvla_training.convert.cli import main as convert_main  # noqa: E402
from smolvla_training.convert.mcap_scan import McapChannel, McapMessage, McapScan  # noqa: E402
from smolvla_training.convert.synthetic_bag import write_small_contract  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from smolvla_ros.nodes.recorder import Recorder, RecorderConfig  # noqa: E402
from smolvla_ros.ros.compressed import rgb_to_compressed  # noqa: E402
from smolvla_ros.ros.joint_state import numpy_to_joint_state  # noqa: E402

pytestmark = pytest.mark.ros
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
CAMS = ('front', 'wrist')


def _on_disk(bag: Path, storage: str) -> dict[str, int]:
    """Messages per topic that a crash right now would leave readable (taken from the live
    files: the mcap's complete records, or the sqlite3 rows committed so far)."""
    if storage == 'mcap':
        files = list(bag.glob('*.mcap'))
        if not files:
            return {}
        counts: dict[str, int] = {}
        topics: dict[int, str] = {}
        for rec in McapScan(files[0]):
            if isinstance(rec, McapChannel):
                topics[rec.id] = rec.topic
            elif isinstance(rec, McapMessage):
                counts[topics[rec.channel_id]] = counts.get(topics[rec.channel_id], 0) + 1
        return counts
    try:
        db = sqlite3.connect(f'file:{bag / (bag.name + ".db3")}?mode=ro', uri=True, timeout=10)
        try:
            return dict(db.execute('SELECT t.name, count(*) FROM messages m JOIN topics t '
                                   'ON m.topic_id = t.id GROUP BY t.name').fetchall())
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet, or busy committing: ask again
        return {}


class _Robot:
    """Publishes what a teleop session would: 100 Hz joint states, and every third tick a
    command and a JPEG per camera; joint position k and pixel value k identify each message."""

    def __init__(self, context) -> None:
        self.node = Node('fake_robot', context=context)
        self.js = self.node.create_publisher(JointState, 'joint_states', 500)
        self.cmd = self.node.create_publisher(JointState, 'joint_commands', 500)
        self.cams = [self.node.create_publisher(
            CompressedImage, f'cameras/{c}/image_raw/compressed', 500) for c in CAMS]
        self.task = self.node.create_publisher(String, 'task', QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.k = 0
        self.sent = {'/joint_states': 0, '/joint_commands': 0,
                     **{f'/cameras/{c}/image_raw/compressed': 0 for c in CAMS}}

    def connected(self) -> bool:
        return all(p.get_subscription_count() > 0
                   for p in (self.js, self.cmd, self.task, *self.cams))

    def publish(self, ticks: int) -> None:
        for _ in range(ticks):
            now = self.node.get_clock().now().nanoseconds
            self.js.publish(numpy_to_joint_state(JOINTS, np.full(6, float(self.k)), stamp_ns=now))
            self.sent['/joint_states'] += 1
            if self.k % 3 == 0:
                self.cmd.publish(numpy_to_joint_state(JOINTS, np.full(6, float(self.k)),
                                                      stamp_ns=now))
                self.sent['/joint_commands'] += 1
                img = rgb_to_compressed(np.full((48, 64, 3), self.k % 256, np.uint8),
                                        stamp_ns=now)
                for c, pub in zip(CAMS, self.cams, strict=True):
                    pub.publish(img)
                    self.sent[f'/cameras/{c}/image_raw/compressed'] += 1
            self.k += 1
            time.sleep(0.01)


def _wait(condition, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout  # a failure bound on a loaded machine, not a speed goal
    while not condition():
        assert proc.poll() is None, f'recorder exited early:\n{log.read_text()[-3000:]}'
        assert time.monotonic() < deadline, f'condition not met:\n{log.read_text()[-3000:]}'
        time.sleep(0.1)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_sigkilled_recorder_is_recovered_and_converted(tmp_path, ros_env, capsys,
                                                        storage) -> None:
    # max ages loose enough for a loaded CI machine's publishing loop
    contract = write_small_contract(tmp_path / 'contract.yaml', max_age_s=0.5)
    bag = tmp_path / 'session'
    log = tmp_path / 'recorder.log'
    cmd = [str(Path(sys.executable).parent / 'recorder'), '--ros-args',
           '-p', f'contract:={contract}', '-p', f'output_dir:={tmp_path}',
           '-p', 'bag_name:=session', '-p', f'storage:={storage}']
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    robot = _Robot(context)
    with log.open('w') as out:
        proc = subprocess.Popen(cmd, env=ros_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(robot.connected, 60, proc, log)
            robot.task.publish(String(data='pick the cube'))
            robot.publish(90)
            first = dict(robot.sent, **{'/task': 1})
            _wait(lambda: all(_on_disk(bag, storage).get(t, 0) >= n for t, n in first.items()),
                  60, proc, log)
            robot.publish(30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            robot.node.destroy_node()
            rclpy.try_shutdown(context=context)
    assert not (bag / 'metadata.yaml').exists()  # killed: never finalised

    assert convert_main(['--recover', str(bag)]) == 0
    assert 'recovered' in capsys.readouterr().out
    recovered = tmp_path / 'session.recovered'
    ts = make_typestore()
    got: dict[str, list] = {}
    with AnyReader([recovered], default_typestore=ts) as reader:
        for conn, _t, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            value = (msg.data if conn.msgtype == 'std_msgs/msg/String'
                     else float(msg.position[0]) if conn.msgtype.endswith('JointState')
                     else len(msg.data))
            got.setdefault(conn.topic, []).append(value)
    assert got['/task'] == ['pick the cube']
    positions = got['/joint_states']
    # Everything flushed before the kill is there; of the second batch, a prefix at most.
    assert first['/joint_states'] <= len(positions) <= robot.sent['/joint_states']
    assert positions == [float(k) for k in range(len(positions))]
    assert got['/joint_commands'] == [float(k) for k in range(0, 3 * len(got['/joint_commands']),
                                                              3)]
    for c in CAMS:
        topic = f'/cameras/{c}/image_raw/compressed'
        assert first[topic] <= len(got[topic]) <= robot.sent[topic]

    out = tmp_path / 'ds'
    assert convert_main([str(bag), '--recover', '--out', str(out), '--contract', str(contract),
                         '--vcodec', 'h264', '--no-progress']) == 0
    text = capsys.readouterr().out
    assert 'using the bag recovered earlier' in text and 'check OK' in text
    assert (out / 'meta' / 'info.json').is_file()


def test_flush_period_is_validated(rclpy_context) -> None:
    with pytest.raises(ValueError, match='flush_period_s'):
        RecorderConfig('', 'bags', '', 'mcap', 10, flush_period_s=-1.0)
    with pytest.raises(ValueError, match='flush_period_s'):
        Recorder(context=rclpy_context, parameter_overrides=[
            Parameter('flush_period_s', value=float('nan'))])
