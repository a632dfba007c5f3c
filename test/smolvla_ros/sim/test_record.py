"""sim-record: seeded variation, the bag it writes (the recorder's topics, types, stamps), the
success-only filter and the evaluation-seed guard. Frames are rendered small (64x48) to keep
this cheap; the comparison with a live recording is test/smolvla_ros/test_sim_record_live.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('mujoco')
pytest.importorskip('rosbags')

from smolvla_ros.cli.main import main  # noqa: E402
from smolvla_ros.sim.errors import SimConfigError  # noqa: E402
from smolvla_ros.sim.record import (  # noqa: E402
    BAG_ORIGIN_NS,
    check_demo_seeds,
)
from smolvla_ros.sim.scene import JOINT_NAMES  # noqa: E402
from smolvla_ros.sim.variation import (  # noqa: E402
    PERTURBATIONS,
    VariationConfig,
    draw_variation,
)
from smolvla_ros.sim.world import SimWorld  # noqa: E402

SMALL = ['--image-width', '64', '--image-height', '48']


def _read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(bag time ns, message)] through rosbags (what smolvla-convert reads)."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, t_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t_ns, reader.deserialize(raw, conn.msgtype)))
    out['__types__'] = types  # type: ignore[assignment]
    return out


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_seeds_vary_cube_pose_yaw_and_colour_and_the_expert() -> None:
    world = SimWorld()
    poses, colours = [], []
    for seed in range(6):
        world.reset(seed)
        pose = world.cube_pose()
        poses.append((*pose.position[:2], pose.yaw))
        colours.append(tuple(world.cube_rgba[:3]))
    assert len(set(poses)) == 6 and len(set(colours)) == 6
    assert np.ptp(np.array(poses), axis=0).min() > 0  # x, y and yaw all vary
    world.reset(3)
    again = world.cube_pose()
    assert (*again.position[:2], again.yaw) == poses[3]  # a seed is reproducible

    config = VariationConfig(recovery_fraction=0.5)
    draws = [draw_variation(s, config) for s in range(40)]
    assert draw_variation(7, config).summary() == draws[7].summary()
    speeds = {d.expert.joint_speed for d in draws}
    assert len(speeds) == 40 and max(speeds) / min(speeds) > 1.1
    kinds = [d.perturbation for d in draws]
    assert 5 < sum(k is not None for k in kinds) < 35
    assert {k for k in kinds if k} == set(PERTURBATIONS)
    plain = VariationConfig(noise_rad=0.0, speed_jitter=0.0, hover_jitter=0.0,
                            recovery_fraction=0.0)
    assert all(draw_variation(s, plain).perturbation is None for s in range(20))
    with pytest.raises(SimConfigError, match='kinds'):
        VariationConfig(kinds=('shake',))


def test_demonstrations_never_use_the_evaluation_seeds(tmp_path: Path) -> None:
    check_demo_seeds(0, 5000)
    check_demo_seeds(6000, 10)
    for first, count in ((4990, 11), (5000, 1), (5999, 3)):
        with pytest.raises(SimConfigError, match='evaluation seeds'):
            check_demo_seeds(first, count)
    rc = main(['sim-record', '--episodes', '1', '--out', str(tmp_path / 'bags'),
               '--seed-start', '5100', *SMALL])
    assert rc == 2 and not (tmp_path / 'bags').exists()


def test_episode_bag_has_the_recorders_topics_types_and_stamps(tmp_path: Path,
                                                                capsys) -> None:
    out = tmp_path / 'bags'
    assert main(['sim-record', '--episodes', '1', '--out', str(out), '--seed-start', '1',
                 *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['episodes'] == 1 and summary['failures'] == 0
    assert sorted(p.name for p in out.iterdir()) == ['episodes.jsonl', 'seed_000001',
                                                      'summary.json']
    line = json.loads((out / 'episodes.jsonl').read_text())
    assert line['seed'] == 1 and line['success'] and line['bag'] == 'seed_000001'
    bag = out / 'seed_000001'
    assert (bag / 'metadata.yaml').is_file()
    got = _read_bag(bag)
    # What nodes/recorder.py subscribes to for this contract, with the same message types.
    expected_types = {
        '/joint_states': 'sensor_msgs/msg/JointState',
        '/joint_commands': 'sensor_msgs/msg/JointState',
        '/task': 'std_msgs/msg/String', '/episode': 'std_msgs/msg/String',
        '/cameras/front/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
        '/cameras/wrist/image_raw/compressed': 'sensor_msgs/msg/CompressedImage'}
    assert got['__types__'] == expected_types
    assert line['messages'] == sum(len(got[t]) for t in expected_types)

    duration = line['duration_s']
    for topic, hz in (('/joint_states', 100.0), ('/joint_commands', 30.0),
                      ('/cameras/front/image_raw/compressed', 10.0),
                      ('/cameras/wrist/image_raw/compressed', 10.0)):
        msgs = got[topic]
        stamps = np.array([_stamp(m) for _, m in msgs])
        assert all(t == _stamp(m) for t, m in msgs), topic  # bag time = header stamp
        assert np.all(np.diff(stamps) > 0), topic
        gaps = np.diff(stamps) / 1e9
        assert np.allclose(gaps, 1 / hz, atol=1e-6), (topic, gaps.min(), gaps.max())
        assert stamps[0] >= BAG_ORIGIN_NS and stamps[-1] <= BAG_ORIGIN_NS + (duration + 0.001) * 1e9
    js = got['/joint_states'][-1][1]
    assert list(js.name) == list(JOINT_NAMES) and len(js.velocity) == len(js.effort) == 6
    ticks = np.asarray(js.position) / (2 * np.pi / 4096)  # quantized to encoder ticks
    assert np.abs(ticks - np.rint(ticks)).max() < 0.6
    cmd = got['/joint_commands'][0][1]
    assert list(cmd.name) == list(JOINT_NAMES) and len(cmd.velocity) == 0
    image = got['/cameras/front/image_raw/compressed'][0][1]
    assert image.format == 'jpeg' and image.header.frame_id == 'front_camera'
    assert [m.data for _, m in got['/task']] == ['pick up the cube']
    events = [(t, m.data) for t, m in got['/episode']]
    assert [e for _, e in events] == ['start', 'stop']
    assert events[0][0] <= min(_stamp(m) for _, m in got['/joint_states'])
    assert events[1][0] >= max(_stamp(m) for _, m in got['/joint_commands'])
    # The arm did the task: the gripper closed on the cube and the arm lifted it.
    grip = np.array([m.position[5] for _, m in got['/joint_states']])
    assert grip.min() < 0.35 < grip.max()


def test_only_successful_episodes_are_recorded_and_failures_are_counted(tmp_path: Path,
                                                                         capsys) -> None:
    # Too short to lift the cube: every seed fails, nothing is written, the failures counted.
    out = tmp_path / 'fail'
    rc = main(['sim-record', '--episodes', '2', '--out', str(out), '--timeout-s', '0.5',
               '--max-attempts', '3', '--jobs', '2', *SMALL])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and summary['episodes'] == 0 and summary['failed_seeds'] == [0, 1, 2]
    assert not list(out.glob('seed_*')) and not (out / 'failed').exists()
    lines = [json.loads(t) for t in (out / 'episodes.jsonl').read_text().splitlines()]
    assert [(ln['seed'], ln['success']) for ln in lines] == [(0, False), (1, False), (2, False)]
    # --resume runs only the seeds the manifest does not have yet.
    assert main(['sim-record', '--episodes', '2', '--out', str(out), '--timeout-s', '0.5',
                 '--max-attempts', '4', '--resume', *SMALL]) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['failed_seeds'] == [0, 1, 2, 3] and summary['attempts_per_min'] > 0
    lines = [json.loads(t) for t in (out / 'episodes.jsonl').read_text().splitlines()]
    assert [ln['seed'] for ln in lines] == [0, 1, 2, 3]
    # --keep-failures writes them apart, where a glob of the kept bags does not reach them.
    out = tmp_path / 'kept'
    assert main(['sim-record', '--episodes', '1', '--out', str(out), '--timeout-s', '0.5',
                 '--max-attempts', '1', '--keep-failures', *SMALL]) == 1
    assert [p.name for p in (out / 'failed').iterdir()] == ['seed_000000']
    assert not list(out.glob('seed_*'))
    # An existing recording is not overwritten unless resumed.
    assert main(['sim-record', '--episodes', '1', '--out', str(out), *SMALL]) == 2
