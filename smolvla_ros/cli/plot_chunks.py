"""``smolvla-ros plot-chunks BAG_OR_LIVE --out chunks.png``: predicted chunks vs what was executed.

The offline twin of the chunk visualizer for people without RViz (the pip-only path): per joint
over time (every predicted chunk thin, the executed command bold, the measured angle dashed) and,
next to it, the gripper-tip paths in 3D from the URDF's forward kinematics, coloured by time as in
RViz. Input is a rosbag2 bag (mcap or sqlite3, read with rosbags; smolvla_msgs types registered
from the .msg files) holding ``predicted_chunk``, ``executed_action`` and optionally
``joint_states``, or ``live``: record those topics from the running stack for ``--duration`` s.
``make demo`` draws its demo_out/chunks.png with the same renderer.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from smolvla_ros.core.types import ActionChunkData, InvalidDataError
from smolvla_ros.core.visualization.chunk_log import ChunkLog, ChunkLogError, JointTrack
from smolvla_ros.core.visualization.chunk_markers import ChunkGeometryError, MarkerStyle, chunk_path
from smolvla_ros.core.visualization.kinematics import TIP_LINK, ForwardKinematics
from smolvla_ros.core.visualization.urdf_model import UrdfError

logger = logging.getLogger(__name__)

CHUNK_TOPIC, EXECUTED_TOPIC, STATE_TOPIC = 'predicted_chunk', 'executed_action', 'joint_states'
CHUNK_TYPE = 'smolvla_msgs/msg/ActionChunk'
JOINT_STATE_TYPE = 'sensor_msgs/msg/JointState'


def _columns(names: tuple[str, ...], joint: str) -> int | None:
    return names.index(joint) if joint in names else None


def render_chunk_plot(log: ChunkLog, path: str | os.PathLike[str],
                      fk: ForwardKinematics | None = None, title: str = '') -> Path:
    """Write the PNG: per-joint time plots, plus 3D tip paths when `fk` is given."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    joints = log.joint_order()
    if not joints:
        raise ChunkLogError('nothing to plot: no joint names in the log')
    t0 = log.t0_ns()
    fig = plt.figure(figsize=(18 if fk else 12, max(8, 2 * len(joints))))
    grid = fig.add_gridspec(len(joints), 3 if fk else 1)
    axes = [fig.add_subplot(grid[j, :2] if fk else grid[j, 0]) for j in range(len(joints))]
    for j, (name, ax) in enumerate(zip(joints, axes, strict=True)):
        for chunk in log.chunks:
            col = _columns(chunk.joint_names, name)
            if col is not None:
                tc = (chunk.stamp_ns - t0) / 1e9 + chunk.dt * np.arange(chunk.num_steps)  # [T]
                ax.plot(tc, chunk.positions[:, col], color='tab:orange', lw=0.8, alpha=0.6)
        for track, style in ((log.executed, {'color': 'tab:blue', 'lw': 1.8}),
                             (log.measured, {'color': 'k', 'lw': 0.8, 'ls': '--'})):
            col = _columns(track.names, name)
            if col is not None and track.stamps_ns.size:
                ax.plot((track.stamps_ns - t0) / 1e9, track.positions[:, col], **style)
        for m in log.markers_ns:
            ax.axvline((m - t0) / 1e9, color='grey', lw=0.5)
        ax.set_ylabel(f'{name}\n(rad)')
        ax.grid(alpha=0.3)
        if j < len(joints) - 1:
            ax.tick_params(labelbottom=False)
    axes[0].plot([], [], color='tab:orange', label='predicted chunks')
    axes[0].plot([], [], color='tab:blue', lw=1.8, label='executed command')
    axes[0].plot([], [], color='k', ls='--', label='joint angle')
    axes[0].legend(loc='upper right', fontsize=8)
    axes[-1].set_xlabel('time (s)' + ('; grey lines: episode starts' if log.markers_ns else ''))
    if fk is not None:
        _plot_3d(fig.add_subplot(grid[:, 2], projection='3d'), log, fk)
    fig.suptitle(title or f'{len(log.chunks)} predicted chunks vs executed commands')
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _plot_3d(ax, log: ChunkLog, fk: ForwardKinematics) -> None:
    """Gripper-tip paths (base_link frame, mm), chunk colours by time as in RViz."""
    style = MarkerStyle()
    for chunk in log.chunks:
        path = chunk_path(fk, chunk, now_ns=-1, style=style)  # nothing "due": pure time colours
        p = path.points * 1e3  # [T, 3] mm
        ax.plot(p[:, 0], p[:, 1], p[:, 2], color='tab:orange', lw=0.5, alpha=0.4)
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=path.colors[:, :3], s=2, depthshade=False)
    if log.executed.stamps_ns.size:
        try:
            cols = [log.executed.names.index(n) for n in fk.joint_names]
        except ValueError:
            cols = None  # the executed stream lacks a joint FK needs: time plots only
        if cols is not None:
            tip = fk.tip_positions(log.executed.positions[:, cols]) * 1e3  # [N, 3] mm
            # One line per episode: no straight line across a reset.
            cuts = np.searchsorted(log.executed.stamps_ns, sorted(log.markers_ns))
            label = 'executed'
            for part in np.split(tip, cuts):
                if len(part):
                    ax.plot(part[:, 0], part[:, 1], part[:, 2], color='k', lw=1.5, label=label)
                    label = None
            ax.legend(loc='upper left', fontsize=8)
    _equal_axes(ax, log, fk)
    ax.set_xlabel('x (mm)')
    ax.set_ylabel('y (mm)')
    ax.set_zlabel('z (mm)')
    ax.set_title(f'{TIP_LINK} paths (blue: soon, orange: chunk end)', fontsize=9)


def log_from_traces(traces: list, joint_names: tuple[str, ...]) -> ChunkLog:
    """ChunkLog of the demo's episodes: [(offset s, sim.episode_runner.EpisodeTrace)], sim time."""
    chunks: list[ActionChunkData] = []
    t_exec: list[int] = []
    command: list[np.ndarray] = []
    measured: list[np.ndarray] = []
    starts: list[int] = []
    for offset, trace in traces:
        if not trace.t:
            continue
        starts.append(int(round(offset * 1e9)))
        for stamp, dt, positions in trace.chunks:
            chunks.append(ActionChunkData(int(round((offset + stamp) * 1e9)), len(chunks) + 1,
                                          joint_names, dt, positions))
        t_exec.extend(int(round((offset + t) * 1e9)) for t in trace.t)
        command.extend(trace.command)
        measured.extend(trace.measured)
    return ChunkLog(chunks, JointTrack.from_rows(joint_names, t_exec, command),
                    JointTrack.from_rows(joint_names, t_exec, measured), starts)


def _equal_axes(ax, log: ChunkLog, fk: ForwardKinematics, min_half_mm: float = 50.0) -> None:
    """Same scale on x, y, z (true path shapes), at least 10 cm wide so a still arm reads as one."""
    pts = [fk.tip_positions(c.positions[:, [c.joint_names.index(n) for n in fk.joint_names]])
           for c in log.chunks if set(fk.joint_names) <= set(c.joint_names)]
    if not pts:
        return
    p = np.vstack(pts) * 1e3  # [N, 3] mm
    center = (p.min(axis=0) + p.max(axis=0)) / 2
    half = max(float(np.ptp(p, axis=0).max()) / 2, min_half_mm)
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)
    ax.set_zlim(center[2] - half, center[2] + half)
    ax.set_box_aspect((1, 1, 1))


# -- bag input ------------------------------------------------------------------------------------

def _msg_dir() -> Path | None:
    """msg/ of the smolvla_msgs package: this source tree, or an installed share directory."""
    for parent in Path(__file__).resolve().parents:
        if (parent / 'msg' / 'msg' / 'ActionChunk.msg').is_file():
            return parent / 'msg' / 'msg'
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        candidate = Path(prefix) / 'share' / 'smolvla_msgs' / 'msg'
        if (candidate / 'ActionChunk.msg').is_file():
            return candidate
    return None


def make_typestore():
    """rosbags Kilted type store with smolvla_msgs registered from its .msg files."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    msg_dir = _msg_dir()
    if msg_dir is None:
        raise ChunkLogError('cannot find smolvla_msgs/msg/ActionChunk.msg (source tree or '
                            'AMENT_PREFIX_PATH share/smolvla_msgs) to decode predicted_chunk')
    types: dict = {}
    for path in sorted(msg_dir.glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'smolvla_msgs/msg/{path.stem}'))
    store.register(types)
    return store


def _pick(connections: list, name: str, namespace: str | None, msgtype: str,
          required: bool) -> list:
    """Connections of topic `<namespace>/<name>`; any namespace when there is exactly one."""
    found = [c for c in connections if c.topic.rstrip('/').rsplit('/', 1)[-1] == name
             and (namespace is None or c.topic == f'{namespace.rstrip("/")}/{name}')]
    topics = sorted({c.topic for c in found})
    if len(topics) > 1:
        raise ChunkLogError(f'several {name} topics in the bag ({topics}): pick one with '
                            '--namespace')
    if not found:
        if required:
            have = sorted({c.topic for c in connections})
            raise ChunkLogError(f'the bag has no {name} topic'
                                f'{f" under {namespace}" if namespace else ""}; topics: {have}')
        return []
    wrong = [c.msgtype for c in found if c.msgtype != msgtype]
    if wrong:
        raise ChunkLogError(f'{topics[0]} has type {wrong[0]}, expected {msgtype}')
    return found


def _stamp_ns(header, fallback_ns: int) -> int:
    ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
    return ns if ns > 0 else fallback_ns


def read_bag(path: str | os.PathLike[str], namespace: str | None = None) -> ChunkLog:
    """Chunks, executed actions and joint states of one bag (header stamps, bag order)."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.rosbag2 import ReaderError

    bag = Path(path)
    if not bag.exists():
        raise ChunkLogError(f'no bag at {bag}')
    store = make_typestore()
    chunks: list[ActionChunkData] = []
    rows: dict[str, tuple[list[int], list[np.ndarray], list[tuple[str, ...]]]] = {
        EXECUTED_TOPIC: ([], [], []), STATE_TOPIC: ([], [], [])}
    try:
        with AnyReader([bag], default_typestore=store) as reader:
            conns = reader.connections
            picked = {CHUNK_TOPIC: _pick(conns, CHUNK_TOPIC, namespace, CHUNK_TYPE, True),
                      EXECUTED_TOPIC: _pick(conns, EXECUTED_TOPIC, namespace, JOINT_STATE_TYPE,
                                            False),
                      STATE_TOPIC: _pick(conns, STATE_TOPIC, namespace, JOINT_STATE_TYPE, False)}
            topic_of = {c.id: name for name, cs in picked.items() for c in cs}
            for conn, log_ns, raw in reader.messages(connections=sum(picked.values(), [])):
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                except Exception as exc:  # rosbags raises assorted errors on bad CDR: name it
                    raise ChunkLogError(f'{bag}: cannot decode a {conn.msgtype} message on '
                                        f'{conn.topic} at {log_ns} ns: {exc}') from exc
                kind = topic_of[conn.id]
                if kind == CHUNK_TOPIC:
                    chunks.append(_chunk_from_msg(msg, log_ns))
                else:
                    stamps, values, names = rows[kind]
                    stamps.append(_stamp_ns(msg.header, log_ns))
                    values.append(np.asarray(msg.position, np.float64))
                    names.append(tuple(msg.name))
    except (AnyReaderError, ReaderError) as exc:
        raise ChunkLogError(f'cannot read bag {bag}: {exc}') from None
    if not chunks:
        raise ChunkLogError(f'{bag}: the {CHUNK_TOPIC} topic holds no messages')
    tracks = {k: _track(k, *v) for k, v in rows.items()}
    return ChunkLog(chunks, tracks[EXECUTED_TOPIC], tracks[STATE_TOPIC])


def _chunk_from_msg(msg, log_ns: int) -> ActionChunkData:
    names = tuple(msg.joint_names)
    flat = np.asarray(msg.positions, np.float32)  # [T*J]
    if not names or flat.size != int(msg.num_steps) * len(names):
        raise ChunkLogError(f'ActionChunk {msg.request_id}: {flat.size} positions for '
                            f'num_steps {msg.num_steps} x {len(names)} joints')
    try:
        return ActionChunkData(_stamp_ns(msg.header, log_ns), int(msg.request_id), names,
                               float(msg.dt), flat.reshape(int(msg.num_steps), len(names)),
                               float(msg.inference_ms), str(msg.policy_id))
    except InvalidDataError as exc:
        raise ChunkLogError(f'ActionChunk {msg.request_id}: {exc}') from None


def _track(kind: str, stamps: list[int], values: list[np.ndarray],
           names: list[tuple[str, ...]]) -> JointTrack:
    if not stamps:
        return JointTrack()
    first = names[0]
    bad = next((n for n, v in zip(names, values, strict=True)
                if n != first or v.shape != (len(first),)), None)
    if bad is not None:
        raise ChunkLogError(f'{kind}: joint names or position count change within the bag '
                            f'({list(first)} then {list(bad)})')
    order = np.argsort(np.asarray(stamps), kind='stable')
    return JointTrack.from_rows(first, [stamps[i] for i in order], [values[i] for i in order])


# -- CLI ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('source', metavar='BAG_OR_LIVE',
                        help="a rosbag2 bag (directory, .mcap or .db3) or 'live'")
    parser.add_argument('--out', default='chunks.png', help='PNG to write')
    parser.add_argument('--namespace', default=None,
                        help='arm namespace of the topics, e.g. /so101 (needed when a bag holds '
                             'several arms)')
    parser.add_argument('--duration', type=float, default=10.0,
                        help="seconds to record with 'live'")
    parser.add_argument('--urdf', default=None,
                        help='robot description for the 3D tip paths (default urdf/so101.urdf)')
    parser.add_argument('--no-3d', action='store_true', help='time plots only')


def load_fk(urdf: str | None, joint_names: tuple[str, ...]) -> ForwardKinematics:
    """FK over the URDF's movable joints that the chunks carry."""
    model = ForwardKinematics.from_urdf(urdf).model
    names = [j.name for j in model.movable_joints if j.name in joint_names]
    if not names:
        raise ChunkLogError(f'no joint of the chunks ({list(joint_names)}) is in the URDF')
    return ForwardKinematics(model, names)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='[plot-chunks] %(message)s')
    try:
        if args.source == 'live':
            if not 0 < args.duration <= 3600:
                raise ChunkLogError(f'--duration must be in (0, 3600] s, got {args.duration}')
            from smolvla_ros.nodes.chunk_visualizer import record_live
            log = record_live(args.duration, args.namespace or '')
            if not log.chunks:
                raise ChunkLogError(f'no predicted_chunk message in {args.duration} s: is the '
                                    'chunk executor running (same ROS_DOMAIN_ID)?')
        else:
            log = read_bag(args.source, args.namespace)
        fk = None if args.no_3d else load_fk(args.urdf, log.joint_order())
        out = render_chunk_plot(log, args.out, fk,
                                title=f'{args.source}: {len(log.chunks)} predicted chunks')
    except (ChunkLogError, ChunkGeometryError, UrdfError) as exc:
        logger.error('%s', exc)
        return 2
    logger.info('wrote %s (%d chunks, %d executed actions)', out, len(log.chunks),
                log.executed.stamps_ns.size)
    return 0
