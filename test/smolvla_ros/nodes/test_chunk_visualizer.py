"""chunk_visualizer in-process: callbacks fed directly, MarkerArray content checked, and one
pass through DDS (robot_description latched, markers published by the timer)."""
from __future__ import annotations

from pathlib import Path
import subprocess
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('visualization_msgs')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from smolvla_ros.bringup.processes import stop, up_command  # noqa: E402
from smolvla_ros.core.types import ActionChunkData  # noqa: E402
from smolvla_ros.core.visualization.chunk_markers import TIME_GRADIENT  # noqa: E402
from smolvla_ros.core.visualization.kinematics import matrix_to_quaternion  # noqa: E402
from smolvla_ros.nodes.chunk_visualizer import ChunkVisualizer  # noqa: E402
from smolvla_ros.ros.chunk import chunk_to_msg  # noqa: E402
from smolvla_ros.ros.time import ns_to_stamp  # noqa: E402

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
DT = 1 / 30


def _chunk(stamp_ns: int, request_id: int, steps: int = 40) -> ActionChunkData:
    q = np.zeros((steps, 6), np.float32)
    q[:, 0] = np.linspace(0.0, 0.6, steps)
    q[:, 1] = -0.3
    return ActionChunkData(stamp_ns, request_id, JOINTS, DT, q)


def _joint_state(q: np.ndarray, stamp_ns: int) -> JointState:
    msg = JointState(name=list(JOINTS), position=[float(v) for v in q])
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


@pytest.fixture
def node(rclpy_context):
    n = ChunkVisualizer(context=rclpy_context)
    try:
        yield n
    finally:
        n.destroy_node()


def test_markers_for_a_synthetic_chunk(node: ChunkVisualizer) -> None:
    now = node.get_clock().now().nanoseconds
    for k in range(5):
        node.on_executed(_joint_state(np.full(6, 0.01 * k), now - (5 - k) * 10**7))
    stamp = now - int(4.5 * DT * 1e9)  # steps 0..4 of the chunk are already due
    node.on_chunk(chunk_to_msg(_chunk(stamp, request_id=7)))
    markers = node.build_markers().markers
    assert markers[0].action == Marker.DELETEALL
    by_ns = {m.ns: m for m in markers[1:]}
    assert set(by_ns) == {'predicted_chunk', 'executed', 'seams', 'seam_jumps', 'ghost'}
    path = by_ns['predicted_chunk']
    assert path.type == Marker.LINE_STRIP and path.header.frame_id == 'base_link'
    assert len(path.points) == len(path.colors) == 40
    expected = node.fk.tip_positions(_chunk(stamp, 7).positions.astype(np.float64))
    got = np.array([[p.x, p.y, p.z] for p in path.points])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    colors = np.array([[c.r, c.g, c.b, c.a] for c in path.colors])
    due = node.style.due_rgba
    assert np.sum(np.all(np.isclose(colors, due), axis=1)) >= 5  # the already-due head is grey
    np.testing.assert_allclose(colors[-1, :3], TIME_GRADIENT[-1])  # the end in the last colour
    assert len(by_ns['executed'].points) == 5
    assert len(by_ns['seams'].points) == 1 and len(by_ns['seam_jumps'].points) == 2
    assert len(by_ns['ghost'].points) % 2 == 0 and len(by_ns['ghost'].points) >= 10


def test_bad_messages_are_counted_and_skipped(node: ChunkVisualizer) -> None:
    msg = chunk_to_msg(_chunk(1, 1))
    msg.positions = msg.positions[:-1]  # truncated
    node.on_chunk(msg)
    short = JointState(name=['shoulder_pan'], position=[0.1])  # FK needs all six joints
    node.on_executed(short)
    assert node.bad_messages == 2
    assert [m.ns for m in node.build_markers().markers[1:]] == []


def test_transforms_follow_the_urdf_tree(node: ChunkVisualizer) -> None:
    q = np.array([0.5, -0.2, 0.3, 0.1, -0.4, 0.2])
    tfs = node.transforms(q, ns_to_stamp(5))
    assert [t.child_frame_id for t in tfs] == [j.child for j in node.fk.model.joints]
    for t, (parent, _child, mat) in zip(tfs, node.fk.joint_transforms(q), strict=True):
        assert t.header.frame_id == parent
        tr = t.transform
        np.testing.assert_allclose([tr.translation.x, tr.translation.y, tr.translation.z],
                                   mat[:3, 3])
        np.testing.assert_allclose([tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w],
                                   matrix_to_quaternion(mat[:3, :3]))


def test_publishes_description_and_markers_over_dds(rclpy_context, node) -> None:
    listener = Node('listener', context=rclpy_context)
    got: dict[str, list] = {'markers': [], 'description': []}
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(MarkerArray, 'chunk_markers', got['markers'].append, 10)
    listener.create_subscription(String, 'robot_description', got['description'].append, latched)
    pub = listener.create_publisher(JointState, 'executed_action', 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    executor.add_node(listener)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                got['description'] and any(len(m.markers) > 1 for m in got['markers'])):
            pub.publish(_joint_state(np.zeros(6), node.get_clock().now().nanoseconds))
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        listener.destroy_node()
    assert got['description'] and '<robot name="so101">' in got['description'][0].data
    executed = [m for arr in got['markers'] for m in arr.markers if m.ns == 'executed']
    assert executed and len(executed[-1].points) >= 2


@pytest.mark.integration
@pytest.mark.slow
def test_runs_in_the_simulation_profile(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """`smolvla-ros up so101_async sim:=true oracle:=true visualize:=true`: real chunks' markers."""
    # Listen on the subprocesses' domain (the one ros_env picked).
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    listener = Node('sim_listener', context=context)
    seen: list[MarkerArray] = []
    listener.create_subscription(MarkerArray, 'chunk_markers', seen.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    log = tmp_path / 'up.log'
    cmd = up_command('so101_async', 'sim:=true', 'oracle:=true', 'visualize:=true',
                     'max_obs_age_s:=0.5', 'camera_hz:=5.0', 'image_width:=64',
                     'image_height:=48', f'port:={tmp_path / "bus"}')

    def ready() -> bool:
        return any({'predicted_chunk', 'executed', 'ghost'} <= {m.ns for m in arr.markers}
                   for arr in seen)

    with log.open('w') as out:
        up = subprocess.Popen(cmd, env=ros_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120  # a failure bound, not a speed goal
            while time.monotonic() < deadline and up.poll() is None and not ready():
                executor.spin_once(timeout_sec=0.2)
        finally:
            stop(up)
            executor.shutdown()
            listener.destroy_node()
            rclpy.try_shutdown(context=context)
    assert ready(), log.read_text()[-3000:]
    arr = next(a for a in reversed(seen) if 'predicted_chunk' in {m.ns for m in a.markers})
    chunk = next(m for m in arr.markers if m.ns == 'predicted_chunk')
    assert len(chunk.points) == len(chunk.colors) == 50  # the oracle's 50-step chunks
    tips = np.array([[p.x, p.y, p.z] for p in chunk.points])
    assert np.all(np.linalg.norm(tips, axis=1) < 0.6)  # within the SO-101's reach of base_link
