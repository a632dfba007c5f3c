"""recorder node in-process: streams at 100 Hz / 2 x 30 Hz go into an mcap bag without loss, the
episode services mark episodes in the bag, and smolvla-convert turns it into a checked dataset."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from recorder_fixtures import finish_recording  # noqa: E402
from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from smolvla_ros.nodes.recorder import Recorder  # noqa: E402
from smolvla_ros.ros.compressed import rgb_to_compressed  # noqa: E402
from smolvla_ros.ros.joint_state import numpy_to_joint_state  # noqa: E402

pytestmark = pytest.mark.ros
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def test_records_without_loss_and_converts(tmp_path, rclpy_context) -> None:
    from smolvla_training.convert.check import check_dataset
    from smolvla_training.convert.converter import ConvertConfig, convert
    from smolvla_training.convert.synthetic_bag import small_contract, write_small_contract

    rec = Recorder(context=rclpy_context, parameter_overrides=[
        Parameter('contract', value=str(write_small_contract(tmp_path / 'contract.yaml'))),
        Parameter('output_dir', value=str(tmp_path)), Parameter('bag_name', value='bag')])
    pub_node = Node('fake_robot', context=rclpy_context)
    js = pub_node.create_publisher(JointState, 'joint_states', 100)
    cmd = pub_node.create_publisher(JointState, 'joint_commands', 100)
    cams = {c: pub_node.create_publisher(CompressedImage, f'cameras/{c}/image_raw/compressed', 100)
            for c in ('front', 'wrist')}
    task = pub_node.create_publisher(String, 'task', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    client = pub_node.create_client(Trigger, 'recorder/start_episode')
    stop = pub_node.create_client(Trigger, 'recorder/stop_episode')
    # The recorder spins in its own thread, as `rclpy.spin` would in its process.
    rec_exec = SingleThreadedExecutor(context=rclpy_context)
    rec_exec.add_node(rec)
    spinner = threading.Thread(target=rec_exec.spin, daemon=True)
    spinner.start()
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(pub_node)
    deadline = time.monotonic() + 20
    while (js.get_subscription_count() < 1 or cams['wrist'].get_subscription_count() < 1
           or not client.service_is_ready()) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    task.publish(String(data='pick the cube'))
    future = client.call_async(Trigger.Request())
    executor.spin_until_future_complete(future, timeout_sec=10)
    assert future.result().success
    rgb = np.full((48, 64, 3), 120, np.uint8)
    sent = {'js': 0, 'cam': 0}
    t0 = rec.get_clock().now().nanoseconds
    for k in range(150):  # 1.5 s of 100 Hz joint states, every 3rd tick commands and frames
        now = t0 + k * 10_000_000
        js.publish(numpy_to_joint_state(JOINTS, np.full(6, 0.01 * k), stamp_ns=now))
        sent['js'] += 1
        if k % 3 == 0:
            cmd.publish(numpy_to_joint_state(JOINTS, np.full(6, 0.01 * k), stamp_ns=now))
            for pub in cams.values():
                pub.publish(rgb_to_compressed(rgb, stamp_ns=now))
            sent['cam'] += 1
        time.sleep(0.01)
    end = time.monotonic() + 10
    while rec.writer.written['/joint_states'] < sent['js'] and time.monotonic() < end:
        time.sleep(0.05)
    future = stop.call_async(Trigger.Request())
    executor.spin_until_future_complete(future, timeout_sec=10)
    assert future.result().success
    written = finish_recording(rec, rec_exec, spinner)
    executor.shutdown()
    rec.destroy_node()
    pub_node.destroy_node()
    assert written['/joint_states'] == sent['js']
    assert written['/cameras/front/image_raw/compressed'] == sent['cam']
    assert written['/episode'] == 2 and written['/task'] == 1
    result = convert([tmp_path / 'bag'], small_contract(), tmp_path / 'ds',
                     ConvertConfig(vcodec='h264', progress=False))
    assert result.episodes == 1 and result.frames > 30
    assert result.sync_report[0]['task'] == 'pick the cube'
    assert check_dataset(result.root)['frames'] == result.frames
