"""oracle_policy_server in-process: the failure answer before any cube pose, and answers to two
concurrent slow requests while the cube pose keeps arriving on a single-threaded executor."""
from __future__ import annotations

import time

import numpy as np
import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('mujoco')

from executor_fixtures import Spin, wait_until  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from smolvla_msgs.srv import PredictChunk  # noqa: E402

from smolvla_ros.core.types import ObservationData  # noqa: E402
from smolvla_ros.nodes.oracle_policy_server import OraclePolicyServer  # noqa: E402
from smolvla_ros.ros.observation import observation_to_msg  # noqa: E402

pytestmark = pytest.mark.ros
JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
EXTRA_MS = 1500.0


def _request(request_id: int) -> PredictChunk.Request:
    obs = ObservationData(stamp_ns=9_000_000_000, request_id=request_id, task='pick',
                          joint_names=JOINTS, state=np.zeros(6), camera_names=('front',),
                          images={'front': np.full((24, 32, 3), 90, np.uint8)})
    return PredictChunk.Request(observation=observation_to_msg(obs))


def test_oracle_answers_concurrent_slow_requests_while_poses_keep_arriving(rclpy_context) -> None:
    server = OraclePolicyServer(context=rclpy_context, parameter_overrides=[
        Parameter('extra_latency_ms', value=EXTRA_MS)])
    client_node = rclpy.create_node('oracle_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, 'predict_chunk')
    pose = PoseStamped()
    pose.pose.position.x, pose.pose.position.z, pose.pose.orientation.w = 0.25, 0.015, 1.0
    publisher = client_node.create_publisher(PoseStamped, 'sim/cube_pose', 10)
    publishing = False

    def publish() -> None:
        if publishing:
            publisher.publish(pose)
    client_node.create_timer(0.02, publish)

    def server_cube_x() -> float | None:
        cube = server._cube  # what the server would hand to the expert now
        return None if cube is None else float(cube.position[0])

    try:
        with Spin(rclpy_context, server, client_node):
            assert client.wait_for_service(timeout_sec=10.0)
            no_pose = client.call_async(_request(1))  # no pose published yet
            assert wait_until(no_pose.done, 30.0), 'no answer'
            publishing = True
            assert wait_until(lambda: server_cube_x() == 0.25, 30.0), 'pose not received'
            futures = [client.call_async(_request(rid)) for rid in (2, 3)]
            pose.pose.position.x = 0.22
            # The new pose reaches the server while the first request still waits out its
            # 1.5 s: the subscription is not blocked by the emulated latency. (Seen before that
            # request is answered, so it was received before; a server that slept in the
            # callback would take the pose only after sending the answer.)
            assert wait_until(lambda: server_cube_x() == 0.22 or futures[0].done(), 30.0)
            pose_during_request = server_cube_x() == 0.22 and not futures[0].done()
            assert wait_until(lambda: all(f.done() for f in futures), 60.0), 'no answers'
    finally:
        client_node.destroy_node()
        server.destroy_node()
    failed = no_pose.result()
    assert not failed.success and failed.chunk.request_id == 1
    assert failed.message == ('RuntimeError: no sim/cube_pose received yet '
                              '(is so101_sim running?)')
    assert pose_during_request
    for rid, future in zip((2, 3), futures, strict=True):
        response = future.result()
        assert response.success, response.message
        assert response.chunk.request_id == rid and response.chunk.inference_ms >= EXTRA_MS
        assert len(response.chunk.positions) == 50 * 6


def test_an_unreachable_cube_gives_the_episode_up_once(rclpy_context) -> None:
    """IKError must not leave the demo answering failures for ever: the server asks so101_sim
    (sim/give_up) to end the episode, once per episode, and says so in the failure answer."""
    import json

    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    server = OraclePolicyServer(context=rclpy_context)
    client_node = rclpy.create_node('oracle_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, 'predict_chunk')
    latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    episodes = client_node.create_publisher(String, 'sim/episode', latched)
    episodes.publish(String(data=json.dumps({'event': 'reset', 'episode': 4})))
    pose = PoseStamped()  # a cube 1 m away: no top-down pose reaches it
    pose.pose.position.x, pose.pose.position.z, pose.pose.orientation.w = 1.0, 0.015, 1.0
    poses = client_node.create_publisher(PoseStamped, 'sim/cube_pose', 10)
    client_node.create_timer(0.05, lambda: poses.publish(pose))
    gave_up: list[dict] = []
    client_node.create_subscription(String, 'sim/give_up',
                                    lambda m: gave_up.append(json.loads(m.data)), 10)
    answers = []
    try:
        with Spin(rclpy_context, server, client_node):
            assert client.wait_for_service(timeout_sec=10.0)
            assert wait_until(lambda: server._cube is not None and server._episode == 4, 30.0)
            for rid in (1, 2):
                future = client.call_async(_request(rid))
                assert wait_until(future.done, 30.0), 'no answer'
                answers.append(future.result())
            assert wait_until(lambda: gave_up, 10.0)
            time.sleep(0.3)  # a second give-up would arrive by now
    finally:
        client_node.destroy_node()
        server.destroy_node()
    assert not answers[0].success and answers[0].message.startswith('IKError: no top-down pose')
    assert 'episode 4 given up (sim/give_up)' in answers[0].message
    assert not answers[1].success and 'episode 4 already given up' in answers[1].message
    assert len(gave_up) == 1 and gave_up[0]['episode'] == 4
    assert 'IKError' in gave_up[0]['reason']
