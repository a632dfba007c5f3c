"""plot-chunks: a synthetic rosbag2 bag (written with rosbags) -> ChunkLog -> PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rosbags')
pytest.importorskip('matplotlib')

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402

from smolvla_ros.cli.main import main as cli_main  # noqa: E402
from smolvla_ros.cli.plot_chunks import (  # noqa: E402
    ChunkLogError,
    load_fk,
    make_typestore,
    read_bag,
    render_chunk_plot,
)

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
DT = 1 / 30
T0 = 1_700_000_000_000_000_000
PNG = b'\x89PNG\r\n\x1a\n'


def _header(store, ns: int):
    time_t = store.types['builtin_interfaces/msg/Time']
    header_t = store.types['std_msgs/msg/Header']
    return header_t(stamp=time_t(sec=ns // 10**9, nanosec=ns % 10**9), frame_id='')


def write_bag(path: Path, plugin: StoragePlugin = StoragePlugin.MCAP, chunks: int = 3,
              namespace: str = '/so101', with_chunks: bool = True,
              chunk_type: str = 'smolvla_msgs/msg/ActionChunk') -> Path:
    """Three 50-step chunks every 25 steps, executed actions and joint states at 30 Hz."""
    store = make_typestore()
    chunk_t = store.types['smolvla_msgs/msg/ActionChunk']
    js_t = store.types['sensor_msgs/msg/JointState']
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        c_chunk = writer.add_connection(f'{namespace}/predicted_chunk', chunk_type,
                                        typestore=store) if with_chunks else None
        c_exec = writer.add_connection(f'{namespace}/executed_action',
                                       'sensor_msgs/msg/JointState', typestore=store)
        c_js = writer.add_connection(f'{namespace}/joint_states', 'sensor_msgs/msg/JointState',
                                     typestore=store)
        for k in range(chunks):
            stamp = T0 + int(k * 25 * DT * 1e9)
            q = np.zeros((50, 6), np.float32)
            q[:, 0] = 0.2 * k + np.linspace(0, 0.4, 50)  # pan
            q[:, 2] = -0.5 + 0.01 * k
            if c_chunk is not None:
                msg = chunk_t(header=_header(store, stamp), request_id=k + 1, joint_names=JOINTS,
                              dt=DT, num_steps=50, positions=q.reshape(-1), inference_ms=12.0,
                              policy_id='synthetic')
                writer.write(c_chunk, stamp + 5_000_000, store.serialize_cdr(msg, chunk_type))
        for i in range(90):
            ns = T0 + int(i * DT * 1e9)
            pos = np.array([0.008 * i, 0, -0.5, 0, 0, 0.1])
            for conn, p in ((c_exec, pos), (c_js, pos - 0.01)):
                msg = js_t(header=_header(store, ns), name=JOINTS, position=p,
                           velocity=np.zeros(0), effort=np.zeros(0))
                writer.write(conn, ns + 1000, store.serialize_cdr(msg, conn.msgtype))
    return path


@pytest.mark.parametrize('plugin', [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_read_bag_returns_chunks_and_tracks(tmp_path: Path, plugin: StoragePlugin) -> None:
    log = read_bag(write_bag(tmp_path / 'bag', plugin))
    assert [c.request_id for c in log.chunks] == [1, 2, 3]
    assert log.chunks[1].stamp_ns == T0 + int(25 * DT * 1e9)
    assert log.chunks[2].positions.shape == (50, 6)
    assert log.chunks[2].positions[-1, 0] == pytest.approx(0.8)
    assert log.executed.names == tuple(JOINTS)
    assert log.executed.positions.shape == (90, 6)
    assert log.executed.positions[10, 0] == pytest.approx(0.08)
    assert np.all(np.diff(log.executed.stamps_ns) > 0)
    assert log.measured.positions[10, 0] == pytest.approx(0.07)


def test_cli_renders_a_png_from_a_bag(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / 'bag')
    out = tmp_path / 'plots' / 'chunks.png'
    assert cli_main(['plot-chunks', str(bag), '--out', str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == PNG and len(data) > 20_000
    flat = tmp_path / 'flat.png'
    assert cli_main(['plot-chunks', str(bag), '--out', str(flat), '--no-3d']) == 0
    assert flat.read_bytes()[:8] == PNG


def test_render_draws_the_chunk_data(tmp_path: Path) -> None:
    """The per-joint axes hold one line per chunk plus executed and measured, with our data."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    log = read_bag(write_bag(tmp_path / 'bag'))
    captured = {}
    real_savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        captured['fig'] = fig
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        render_chunk_plot(log, tmp_path / 'x.png', load_fk(None, tuple(JOINTS)))
    finally:
        plt.Figure.savefig = real_savefig
    fig = captured['fig']
    pan_ax = fig.axes[0]
    lines = [ln for ln in pan_ax.get_lines() if len(ln.get_xdata())]
    assert len(lines) == 3 + 2  # chunks, executed, measured
    np.testing.assert_allclose(lines[2].get_ydata(), log.chunks[2].positions[:, 0])
    np.testing.assert_allclose(lines[2].get_xdata()[0], 50 * DT, atol=1e-6)  # 3rd chunk start
    ax3d = fig.axes[-1]
    assert ax3d.name == '3d' and len(ax3d.collections) == 3  # one scatter per chunk


def test_bad_bags_fail_with_specific_errors(tmp_path: Path) -> None:
    with pytest.raises(ChunkLogError, match='no bag at'):
        read_bag(tmp_path / 'missing')
    with pytest.raises(ChunkLogError, match='no predicted_chunk topic'):
        read_bag(write_bag(tmp_path / 'nochunks', with_chunks=False))
    bag = write_bag(tmp_path / 'ns', namespace='/arm_a')
    with pytest.raises(ChunkLogError, match='under /so101'):
        read_bag(bag, namespace='/so101')
    assert len(read_bag(bag, namespace='/arm_a').chunks) == 3
    junk = tmp_path / 'junk'
    junk.mkdir()
    (junk / 'metadata.yaml').write_text('not: a bag')
    with pytest.raises(ChunkLogError, match='cannot read bag'):
        read_bag(junk)
    assert cli_main(['plot-chunks', str(tmp_path / 'missing'), '--out',
                     str(tmp_path / 'y.png')]) == 2
    assert not (tmp_path / 'y.png').exists()


def test_live_records_the_running_topics(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """`plot-chunks live` in a subprocess against chunks and executed actions published here."""
    import subprocess
    import sys
    import threading

    rclpy = pytest.importorskip('rclpy')
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState
    from smolvla_msgs.msg import ActionChunk

    from smolvla_ros.core.types import ActionChunkData
    from smolvla_ros.ros.chunk import chunk_to_msg

    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(ros_env['ROS_DOMAIN_ID']))
    node = rclpy.create_node('fake_executor', context=context)
    chunk_pub = node.create_publisher(ActionChunk, 'predicted_chunk', 10)
    exec_pub = node.create_publisher(JointState, 'executed_action', 10)
    count = {'n': 0}

    def tick() -> None:
        count['n'] += 1
        now = node.get_clock().now()
        if count['n'] % 10 == 1:
            q = np.zeros((20, 6), np.float32)
            q[:, 0] = np.linspace(0, 0.3, 20)
            chunk_pub.publish(chunk_to_msg(ActionChunkData(now.nanoseconds, count['n'],
                                                           tuple(JOINTS), DT, q)))
        msg = JointState(name=JOINTS, position=[0.01 * (count['n'] % 30)] + [0.0] * 5)
        msg.header.stamp = now.to_msg()
        exec_pub.publish(msg)

    node.create_timer(0.03, tick)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    out = tmp_path / 'live.png'
    try:
        proc = subprocess.run(
            [sys.executable, '-m', 'smolvla_ros.cli', 'plot-chunks', 'live', '--duration', '4',
             '--out', str(out)], env=ros_env, capture_output=True, text=True, timeout=120)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import re

    found = re.search(r'\((\d+) chunks, (\d+) executed actions\)', proc.stderr + proc.stdout)
    assert found is not None, proc.stderr
    assert int(found.group(1)) >= 2 and int(found.group(2)) >= 20  # ~4 s at 3 and 33 Hz
    assert out.read_bytes()[:8] == PNG
