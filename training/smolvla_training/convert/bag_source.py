"""Read the contract's streams out of one rosbag2 bag (mcap or sqlite3) through rosbags.

Pass 1 (:func:`read_bag`) deserializes every message of the contract's topics once and keeps only
what alignment needs: header stamps per stream, joint positions (contract order, rad), task strings
and episode events. Camera pixels are not kept (two 640x480 cameras for a minute would not fit);
:func:`iter_camera_frames` decodes the frames actually chosen, in a second pass per camera.

Time: every stream is aligned on header stamps (docs/data.md, "Frames on the exact grid"); topics
without a header (task, episode events) use the bag's receive time.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
import json
import os
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.ros.compressed import decode_to_rgb, parse_format
from smolvla_ros.ros.errors import ConversionError
from smolvla_ros.ros.image import image_to_rgb
from smolvla_ros.ros.joint_state import pick_joints
from smolvla_ros.ros.time import stamp_to_ns
from smolvla_training.convert.errors import (
    BagOpenError,
    EmptyBagError,
    MissingTopicError,
    NonMonotonicStampsError,
    UnknownMessageTypeError,
    WrongMessageTypeError,
)
from smolvla_training.convert.recover import bag_damage, default_output

JOINT_STATE = 'sensor_msgs/msg/JointState'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
IMAGE = 'sensor_msgs/msg/Image'
STRING = 'std_msgs/msg/String'
EPISODE_TOPIC = 'episode'  # std_msgs/String: start | stop | discard (or JSON {"event": ...})
EPISODE_EVENTS = ('start', 'stop', 'discard')
STORES = {'kilted': Stores.ROS2_KILTED, 'jazzy': Stores.ROS2_JAZZY, 'latest': Stores.LATEST}


def _msg_dir() -> Path | None:
    """msg/ of the source tree or of an installed smolvla_msgs share directory, if present."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / 'msg' / 'msg'
        if (candidate / 'ActionChunk.msg').is_file():
            return candidate.parent
    prefix = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
    for p in prefix:
        candidate = Path(p) / 'share' / 'smolvla_msgs'
        if (candidate / 'msg').is_dir():
            return candidate
    return None


def make_typestore(store: str = 'kilted', msg_dirs: Sequence[Path] = ()) -> Typestore:
    """A rosbags type store with smolvla_msgs (and any ``msg_dirs`` packages) registered.

    ``msg_dirs`` entries are interface package directories holding ``msg/*.msg``; the package
    name is the directory's name (``.../smolvla_msgs`` or the repo's ``msg`` -> smolvla_msgs).
    """
    if store not in STORES:
        raise ValueError(f'unknown type store {store!r}; choose one of {sorted(STORES)}')
    ts = get_typestore(STORES[store])
    dirs = list(msg_dirs)
    own = _msg_dir()
    if own is not None:
        dirs.insert(0, own)
    types: dict = {}
    for d in dirs:
        d = Path(d)
        package = 'smolvla_msgs' if d.name == 'msg' and d == own else d.name
        for path in sorted((d / 'msg').glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'{package}/msg/{path.stem}'))
    if types:
        ts.register(types)
    return ts


@dataclass
class StreamData:
    """One stream's header stamps (int64 ns, bag order) and, for joints, positions [N, J] rad."""

    topic: str
    stamps: np.ndarray
    values: np.ndarray | None = None
    receive_ns: np.ndarray | None = None  # bag receive (log) times, int64 [N]


@dataclass
class BagStreams:
    """What pass 1 keeps of one bag."""

    path: Path
    state: StreamData
    action: StreamData
    cameras: dict[str, StreamData]
    tasks: list[tuple[int, str]] = field(default_factory=list)  # (receive ns, task)
    events: list[tuple[int, str]] = field(default_factory=list)  # (receive ns, event)
    message_counts: dict[str, int] = field(default_factory=dict)


def _open(path: Path, typestore: Typestore) -> AnyReader:
    if not path.exists():
        raise BagOpenError(f'{path}: no such bag')
    damage = bag_damage(path)
    if damage is not None:
        raise BagOpenError(
            f'{path}: {damage}. Recover its complete messages with `smolvla-convert --recover '
            f'{path}` (writes {default_output(path)}, leaves the original untouched), or add '
            '--recover to this conversion')
    try:
        reader = AnyReader([path], default_typestore=typestore)
        reader.open()
    except (AnyReaderError, ReaderError, OSError, KeyError, ValueError) as exc:
        if 'Message type' in str(exc):  # a definition in the bag clashes with the type store
            raise UnknownMessageTypeError(
                f'{path}: {exc}; the bag was recorded with other message definitions than the '
                'type store has (try --typestore jazzy, or --msg-dir for custom types)') from exc
        raise BagOpenError(f'{path}: cannot open the bag ({type(exc).__name__}: {exc}); is it a '
                           'rosbag2 directory (metadata.yaml + .mcap/.db3) and complete? (the '
                           'messages of a truncated one: smolvla-convert --recover)') from exc
    return reader


def _normalize(topic: str) -> str:
    return topic if topic.startswith('/') else '/' + topic


def _find(reader: AnyReader, topic: str, expected: Sequence[str], path: Path,
          namespace: str) -> list:
    """The connections of a contract topic (relative names match under ``namespace``)."""
    wanted = _resolve(topic, namespace)
    conns = [c for c in reader.connections if c.topic == wanted]
    if not conns:
        raise MissingTopicError(
            f'{path}: topic {wanted!r} (contract) is not in the bag; it has '
            f'{sorted({c.topic for c in reader.connections})}. Pass --namespace if the arm was '
            'recorded under one.')
    for c in conns:
        if c.msgtype not in reader.typestore.types:
            raise UnknownMessageTypeError(
                f'{path}: topic {wanted!r} has type {c.msgtype}, which neither the bag nor the '
                f'type store defines (the contract expects {" or ".join(expected)})')
        if c.msgtype not in expected:
            raise WrongMessageTypeError(
                f'{path}: topic {wanted!r} has type {c.msgtype}, the contract expects '
                f'{" or ".join(expected)}')
    return conns


def _deserialize(reader: AnyReader, raw: bytes, conn, path: Path) -> object:
    try:
        return reader.deserialize(raw, conn.msgtype)
    except Exception as exc:  # rosbags raises assorted errors on bad CDR; name the message
        raise BagOpenError(f'{path}: cannot deserialize a {conn.msgtype} on {conn.topic} '
                           f'({type(exc).__name__}: {exc})') from exc


def _resolve(topic: str, namespace: str) -> str:
    ns = namespace.strip('/')
    return _normalize(topic if topic.startswith('/') or not ns else f'{ns}/{topic}')


def _optional(reader: AnyReader, topics: Sequence[str], path: Path) -> list:
    """Connections of the optional std_msgs/String topics (task, episode events), type-checked."""
    conns = [c for c in reader.connections if c.topic in topics]
    for c in conns:
        if c.msgtype == STRING:
            continue
        if c.msgtype not in reader.typestore.types:
            raise UnknownMessageTypeError(
                f'{path}: topic {c.topic!r} has type {c.msgtype}, which neither the bag nor the '
                f'type store defines (expected {STRING}); pass --msg-dir with its interface '
                'package or re-record it as std_msgs/String')
        raise WrongMessageTypeError(f'{path}: topic {c.topic!r} has type {c.msgtype}, '
                                    f'expected {STRING}')
    return conns


def _check_monotonic(stamps: np.ndarray, topic: str, path: Path) -> None:
    if stamps.size > 1:
        back = np.flatnonzero(np.diff(stamps) < 0)  # [k]
        if back.size:
            i = int(back[0]) + 1
            raise NonMonotonicStampsError(
                f'{path}: header stamps on {topic} go backwards at message {i} '
                f'({stamps[i]} ns < {stamps[i - 1]} ns, {back.size} time(s) in all); fix the '
                'publisher clock (use_sim_time?) or re-stamp the bag')


def _event_name(text: str) -> str:
    text = text.strip()
    if text.startswith('{'):
        try:
            text = str(json.loads(text).get('event', ''))
        except (json.JSONDecodeError, AttributeError):
            return ''
    return text.lower()


def read_bag(path: str | os.PathLike[str], contract: RobotContract, typestore: Typestore,
             namespace: str = '') -> BagStreams:
    """Pass 1 over one bag: stamps, joints, tasks, events (typed errors on every bad input)."""
    path = Path(path)
    reader = _open(path, typestore)
    try:
        if reader.message_count == 0:
            raise EmptyBagError(f'{path}: the bag holds no messages')
        state_c = _find(reader, contract.state.topic, [JOINT_STATE], path, namespace)
        action_c = _find(reader, contract.action.topic, [JOINT_STATE], path, namespace)
        cam_c = {name: _find(reader, cam.topic, [COMPRESSED if cam.compressed else IMAGE],
                             path, namespace)
                 for name, cam in contract.cameras.items()}
        task_topic = _resolve(contract.task.topic, namespace)
        extra = _optional(reader, (task_topic, _resolve(EPISODE_TOPIC, namespace)), path)
        owner: dict[int, str] = {}
        for c in state_c:
            owner[c.id] = 'state'
        for c in action_c:
            owner[c.id] = 'action'
        for name, conns in cam_c.items():
            for c in conns:
                owner[c.id] = 'cam:' + name
        for c in extra:
            owner[c.id] = 'task' if c.topic == task_topic else 'event'
        stamps: dict[str, list[int]] = {k: [] for k in set(owner.values())}
        recv: dict[str, list[int]] = {k: [] for k in set(owner.values())}
        joints: dict[str, list[np.ndarray]] = {'state': [], 'action': []}
        out = BagStreams(path, None, None, {})  # type: ignore[arg-type]
        conns = [c for c in reader.connections if c.id in owner]
        try:
            for conn, t_ns, raw in reader.messages(connections=conns):
                kind = owner[conn.id]
                msg = _deserialize(reader, raw, conn, path)
                recv[kind].append(int(t_ns))
                if kind in ('task', 'event'):
                    if kind == 'task':
                        out.tasks.append((int(t_ns), msg.data))
                    elif _event_name(msg.data) in EPISODE_EVENTS:
                        out.events.append((int(t_ns), _event_name(msg.data)))
                    continue
                stamps[kind].append(stamp_to_ns(msg.header.stamp))
                if kind in joints:
                    joints[kind].append(pick_joints(msg.name, msg.position,
                                                    contract.joint_names))
        except (ReaderError, AnyReaderError, OSError, EOFError) as exc:
            raise BagOpenError(f'{path}: the bag is truncated or corrupt '
                               f'({type(exc).__name__}: {exc}); smolvla-convert --recover '
                               'salvages its complete messages') from exc
        except ConversionError as exc:
            raise WrongMessageTypeError(f'{path}: {exc}') from exc
        topics = {'state': state_c[0].topic, 'action': action_c[0].topic,
                  **{'cam:' + n: c[0].topic for n, c in cam_c.items()}}
        for kind, topic in topics.items():
            if not stamps.get(kind):
                raise EmptyBagError(f'{path}: topic {topic} has no messages')
        streams = {}
        for kind, topic in topics.items():
            s = np.asarray(stamps[kind], dtype=np.int64)  # [N]
            _check_monotonic(s, topic, path)
            values = np.stack(joints[kind]) if kind in joints else None  # [N, J]
            streams[kind] = StreamData(topic, s, values, np.asarray(recv[kind], dtype=np.int64))
        out.state, out.action = streams['state'], streams['action']
        out.cameras = {n: streams['cam:' + n] for n in contract.camera_names}
        out.message_counts = {topics[k]: len(stamps[k]) for k in topics}
        return out
    finally:
        reader.close()


def iter_camera_frames(path: str | os.PathLike[str], contract: RobotContract, camera: str,
                       indices: np.ndarray, typestore: Typestore,
                       namespace: str = '') -> Iterator[np.ndarray]:
    """Pass 2: RGB uint8 [H, W, 3] of the camera's messages ``indices`` (non-decreasing, repeats
    allowed), in that order; each chosen message is decoded once.
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and np.any(np.diff(idx) < 0):
        raise ValueError('camera frame indices must be non-decreasing')
    cam = contract.cameras[camera]
    reader = _open(path, typestore)
    try:
        conns = _find(reader, cam.topic, [COMPRESSED if cam.compressed else IMAGE], path,
                      namespace)
        pos, last, last_rgb = 0, -1, None
        if idx.size == 0:
            return
        for i, (conn, _t, raw) in enumerate(reader.messages(connections=conns)):
            if i < idx[pos]:
                continue
            msg = _deserialize(reader, raw, conn, path)
            try:
                rgb = (decode_to_rgb(msg.data, parse_format(msg.format)) if cam.compressed
                       else np.ascontiguousarray(image_to_rgb(msg)))
            except ConversionError as exc:
                raise WrongMessageTypeError(f'{path}: {conn.topic} message {i}: {exc}') from exc
            if rgb.shape != (cam.height, cam.width, 3):
                raise WrongMessageTypeError(
                    f'{path}: {conn.topic} message {i} is {rgb.shape[1]}x{rgb.shape[0]}, the '
                    f'contract says {cam.width}x{cam.height} for camera {camera!r}')
            last, last_rgb = i, rgb
            while pos < idx.size and idx[pos] == last:
                yield last_rgb
                pos += 1
            if pos == idx.size:
                return
        raise BagOpenError(f'{path}: {cam.topic} ended before message {idx[pos]} '
                           f'(bag changed between passes?)')
    finally:
        reader.close()
