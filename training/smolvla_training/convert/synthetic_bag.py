"""Synthetic rosbag2 bags (tests and the throughput benchmark), written with rosbags.

Streams are described by their header stamps, so tests can put jitter, drops and stalls exactly
where they want them and compute the expected frames independently of the converter. Pixels and
joint angles are deterministic functions of the message number / stamp (``camera_image``,
``joint_positions``), so a test can recompute what any frame must hold.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
import yaml

from smolvla_ros.core.robot.contract import RobotContract, contract_from_dict, default_contract_path
from smolvla_ros.ros.compressed import encode_jpeg

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
W, H = 64, 48  # default test frame size
T0 = 1_700_000_000 * 10**9  # a wall-clock-like start, ns
SEC = 10**9


def camera_image(k: int, cam_seed: int = 0, width: int = W, height: int = H) -> np.ndarray:
    """A smooth RGB uint8 [H, W, 3] image unique to frame k (JPEG/AV1 keep it close)."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 2 + k * 3) % 256, (y * 3 + cam_seed * 40) % 256,
                     np.full_like(x, (k * 7 + cam_seed * 90) % 200 + 20)], axis=-1)
    return base.astype(np.uint8)  # [H, W, 3]


def joint_positions(t_ns: int, offset: float = 0.0) -> np.ndarray:
    """Joint angles (rad) as a smooth function of time: float64 [6]."""
    t = t_ns / 1e9
    return np.array([0.3 * np.sin(t + i) + offset for i in range(5)] + [0.4 + 0.2 * np.sin(t)])


@dataclass
class BagSpec:
    """Stamps (ns) of each stream; receive time = stamp + ``latency_ns``."""

    state: Sequence[int]
    action: Sequence[int]
    cameras: dict[str, Sequence[int]]
    tasks: list[tuple[int, str]] = field(default_factory=lambda: [(T0, 'pick the cube')])
    events: list[tuple[int, str]] = field(default_factory=list)
    latency_ns: int = 2_000_000
    compressed: bool = True
    namespace: str = ''
    late: dict[str, dict[int, int]] = field(default_factory=dict)  # stream -> {i: extra ns}
    width: int = W
    height: int = H


def _topic(ns: str, name: str) -> str:
    return f'/{ns}/{name}' if ns else f'/{name}'


def write_bag(path: Path, spec: BagSpec, storage: str = 'mcap', version: int = 9,
              custom: tuple[str, str, str] | None = None) -> Path:
    """Write ``spec`` as a rosbag2 bag at ``path`` (mcap or sqlite3); returns path.

    ``custom`` = (topic, type name, .msg text) adds one default-valued message of a custom type.
    Registering it changes rosbags' shared type store for this process: tests do that in a
    subprocess.
    """
    ts = get_typestore(Stores.ROS2_KILTED)
    JointState = ts.types['sensor_msgs/msg/JointState']
    Header = ts.types['std_msgs/msg/Header']
    Time = ts.types['builtin_interfaces/msg/Time']
    CompressedImage = ts.types['sensor_msgs/msg/CompressedImage']
    Image = ts.types['sensor_msgs/msg/Image']
    String = ts.types['std_msgs/msg/String']

    def header(t: int) -> object:
        return Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id='')

    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    msgs: list[tuple[int, str, object]] = []
    def recv(stream: str, i: int, t: int) -> int:
        return t + spec.latency_ns + spec.late.get(stream, {}).get(i, 0)

    for i, t in enumerate(spec.state):
        msgs.append((recv('state', i, t), 'state', JointState(
            header=header(t), name=list(JOINTS), position=joint_positions(t),
            velocity=np.zeros(0), effort=np.zeros(0))))
    for i, t in enumerate(spec.action):
        msgs.append((recv('action', i, t), 'action', JointState(
            header=header(t), name=list(reversed(JOINTS)),
            position=joint_positions(t, 0.05)[::-1].copy(), velocity=np.zeros(0),
            effort=np.zeros(0))))
    for ci, (cam, stamps) in enumerate(spec.cameras.items()):
        for k, t in enumerate(stamps):
            rgb = camera_image(k, ci, spec.width, spec.height)
            if spec.compressed:
                msg = CompressedImage(header=header(t), format='jpeg', data=np.frombuffer(
                    encode_jpeg(rgb, 95), np.uint8))
            else:
                msg = Image(header=header(t), height=spec.height, width=spec.width,
                            encoding='rgb8', is_bigendian=0, step=spec.width * 3,
                            data=rgb.reshape(-1))
            msgs.append((recv(cam, k, t), 'cam:' + cam, msg))
    for t, task in spec.tasks:
        msgs.append((t, 'task', String(data=task)))
    for t, event in spec.events:
        msgs.append((t, 'event', String(data=event)))
    msgs.sort(key=lambda m: m[0])  # bag order = receive order
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        if custom is not None:
            topic, msgtype, text = custom
            ts.register(get_types_from_msg(text, msgtype))
            conn = writer.add_connection(topic, msgtype, typestore=ts)
            value = ts.types[msgtype](*[0] * len(ts.fielddefs[msgtype][1]))
            writer.write(conn, T0, bytes(ts.serialize_cdr(value, msgtype)))
        types = {'state': 'sensor_msgs/msg/JointState', 'action': 'sensor_msgs/msg/JointState',
                 'task': 'std_msgs/msg/String', 'event': 'std_msgs/msg/String'}
        topics = {'state': 'joint_states', 'action': 'joint_commands', 'task': 'task',
                  'event': 'episode'}
        for cam in spec.cameras:
            types['cam:' + cam] = ('sensor_msgs/msg/CompressedImage' if spec.compressed
                                   else 'sensor_msgs/msg/Image')
            topics['cam:' + cam] = (f'cameras/{cam}/image_raw/compressed' if spec.compressed
                                    else f'cameras/{cam}/image_raw')
        conns = {}
        for kind in {m[1] for m in msgs}:
            conns[kind] = writer.add_connection(_topic(spec.namespace, topics[kind]),
                                                types[kind], typestore=ts)
        for t, kind, msg in msgs:
            writer.write(conns[kind], t, bytes(ts.serialize_cdr(msg, types[kind])))
    return path


def regular(start_ns: int, end_ns: int, hz: float, jitter_ns: int = 0, seed: int = 0,
            drop: Sequence[int] = ()) -> list[int]:
    """Stamps at ``hz`` from start to end, with uniform jitter and dropped sample numbers."""
    rng = np.random.default_rng(seed)
    n = int((end_ns - start_ns) * hz / 1e9) + 1
    base = start_ns + np.rint(np.arange(n) * 1e9 / hz).astype(np.int64)
    if jitter_ns:
        base = base + rng.integers(-jitter_ns, jitter_ns + 1, n)
    dropped = set(drop)
    return [int(t) for i, t in enumerate(np.sort(base)) if i not in dropped]


def small_contract_data(compressed: bool = True, width: int = W, height: int = H,
                        max_age_s: float | None = None) -> dict:
    """The shipped so101 contract as parsed YAML, with cameras of ``width`` x ``height``.

    Its calibration_file is absolute, so the data can be written anywhere. ``max_age_s`` sets
    the joint state's and every camera's max age: tests whose publishing loop runs on a loaded
    machine loosen them (the alignment rule itself is tested with the shipped ages).
    """
    path = default_contract_path()
    data = yaml.safe_load(path.read_text())
    data['calibration_file'] = str((path.parent / data['calibration_file']).resolve())
    for cam in data['cameras'].values():
        cam['width'], cam['height'] = width, height
        cam['compressed'] = compressed
        if not compressed:
            cam['topic'] = cam['topic'].removesuffix('/compressed')
        if max_age_s is not None:
            cam['max_age_s'] = max_age_s
    if max_age_s is not None:
        data['state']['max_age_s'] = max_age_s
    return data


def small_contract(compressed: bool = True, width: int = W, height: int = H) -> RobotContract:
    """The shipped so101 contract with small cameras (fast video in tests)."""
    return contract_from_dict(small_contract_data(compressed, width, height),
                              source=str(default_contract_path()))


def write_small_contract(path: Path, width: int = W, height: int = H,
                         max_age_s: float | None = None) -> Path:
    """``small_contract_data`` written to ``path``, for what takes a contract file (nodes, CLIs)."""
    path.write_text(yaml.safe_dump(small_contract_data(True, width, height, max_age_s)))
    return path


def jittery_spec(seconds: float = 2.0, **kw: object) -> BagSpec:
    """100 Hz joint states, 30 Hz commands and two 30 Hz cameras from T0, all with jitter."""
    end = T0 + int(seconds * SEC)
    return BagSpec(state=regular(T0, end, 100, 2_000_000, 1),
                   action=regular(T0, end, 30, 1_000_000, 2),
                   cameras={'front': regular(T0, end, 30, 3_000_000, 3),
                            'wrist': regular(T0, end, 30, 3_000_000, 4)}, **kw)
