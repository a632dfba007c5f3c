"""A sim-record bag and a live recording of the real-time sim stack make the same dataset.

Live: `smolvla-ros up so101_demo oracle:=true` (so101_sim behind the emulated bus, the real driver,
the async executor, the oracle) with the `recorder` node beside it and the task published latched
on `task`, as a user records; it runs until the simulator reports the pick. Offline: `smolvla-ros
sim-record --plain` (the bare expert, no variation) on the same seed. Both bags go through
`smolvla-convert` with the same contract (cameras rendered at 64x48 to keep this cheap), and the
datasets must agree: the same features (names, dtypes, shapes, video info), fps and task, frame
timestamps on the 1/fps grid, state and action in the same units and joint order (the same cube
pose gives the same grasp pose), actions that the state follows a few frames later, and camera
frames of the same scene (same view, same cube colour).
"""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from smolvla_ros.bringup.processes import stop, up_command
from smolvla_ros.bringup.watcher import StackWatcher

pytestmark = [pytest.mark.integration, pytest.mark.ros, pytest.mark.slow]

SEED = 3
TASK = 'pick up the cube'
PICK_WALL_S = 90.0  # start-up of five processes on a loaded 2-core machine and the pick
W, H = 64, 48


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f'{name} is not installed')
    return str(path)


class _TaskAndEvents(StackWatcher):
    """Publishes the task (latched) and watches the simulator's events."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, 'sim_record_live_test')
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from std_msgs.msg import String

        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.task_pub = self.node.create_publisher(String, 'task', latched)
        self._task = String(data=TASK)
        self.task_pub.publish(self._task)
        self._task_subscribers = 0
        self.events: list[dict] = []
        self.node.create_subscription(
            String, 'sim/episode', lambda m: self.events.append(json.loads(m.data)),
            QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))

    def on_spin(self) -> None:
        # A subscriber that matched before discovery showed it our latched publisher is
        # volatile (the recorder adapts its QoS like ros2 bag record): publish again for it.
        count = self.task_pub.get_subscription_count()
        if count > self._task_subscribers:
            self.task_pub.publish(self._task)
        self._task_subscribers = count


def _record_live(tmp_path: Path, contract: Path, env: dict[str, str]) -> Path:
    log = tmp_path / 'live.log'
    watcher = _TaskAndEvents(int(env['ROS_DOMAIN_ID']))
    procs: list[subprocess.Popen] = []
    try:
        with log.open('w') as out:
            procs.append(subprocess.Popen(
                [_script('recorder'), '--ros-args', '-p', f'output_dir:={tmp_path}',
                 '-p', 'bag_name:=live', '-p', f'contract:={contract}'],
                env=env, stdout=out, stderr=subprocess.STDOUT))
            procs.append(subprocess.Popen(
                # Lenient executor ages: this compares data paths, not real-time margins, and
                # a loaded 2-core machine delivers frames and joint states late at times.
                up_command('so101_demo', 'oracle:=true', f'port:={tmp_path / "bus"}',
                           f'seed:={SEED}', f'image_width:={W}', f'image_height:={H}',
                           f'task:={TASK}',
                           'camera_max_age_s:=1.0', 'max_obs_age_s:=1.0'),
                env=env, stdout=out, stderr=subprocess.STDOUT))
        picked = watcher.spin_until(
            lambda: any(e['event'] == 'success' for e in watcher.events), PICK_WALL_S, procs)
        assert picked, f'no pick: events {watcher.events}\n{log.read_text()[-5000:]}'
        watcher.spin_until(lambda: False, 1.5, procs)  # the lifted cube, held a moment
    finally:
        for proc in procs:  # the recorder first: the bag ends while the stack still runs
            stop(proc, 60.0)
        watcher.close()
    assert procs[0].returncode in (0, 130), log.read_text()[-5000:]
    bag = tmp_path / 'live'
    assert (bag / 'metadata.yaml').is_file(), log.read_text()[-5000:]
    return bag


def _convert(bag: Path, out: Path, contract: Path, env: dict[str, str]):
    from smolvla_training.dataset.reader import LeRobotDatasetReader
    run = subprocess.run(
        [_script('smolvla-convert'), str(bag), '--out', str(out), '--contract', str(contract),
         '--vcodec', 'h264', '--no-progress'], env=env, capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return LeRobotDatasetReader(out)


def _best_lag(action: np.ndarray, state: np.ndarray, max_lag: int = 20) -> tuple[int, float]:
    """Lag (frames) at which the arm state best follows the action, and the mean error there."""
    errors = [float(np.abs(action[:len(action) - k, :5] - state[k:, :5]).mean())
              for k in range(max_lag + 1)]
    return int(np.argmin(errors)), min(errors)


def test_sim_record_and_live_recording_convert_to_the_same_dataset(tmp_path: Path,
                                                                   ros_env) -> None:
    pytest.importorskip('mujoco')
    pytest.importorskip('rosbags')
    pytest.importorskip('pyarrow')
    pytest.importorskip('smolvla_ros.nodes.so101_sim')
    from smolvla_training.convert.synthetic_bag import write_small_contract
    # Generous stream ages: on a loaded 2-core machine the real-time simulator renders late at
    # times, and a frame too old splits the live episode (the offline bag is exact either way).
    contract = write_small_contract(tmp_path / 'contract.yaml', W, H, max_age_s=0.5)
    live_bag = _record_live(tmp_path, contract, ros_env)

    sim_out = tmp_path / 'sim'
    run = subprocess.run(
        [_script('smolvla-ros'), 'sim-record', '--episodes', '1', '--seed-start', str(SEED),
         '--out', str(sim_out), '--plain', '--contract', str(contract), '--task-text', TASK],
        env=ros_env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    live = _convert(live_bag, tmp_path / 'ds_live', contract, ros_env)
    sim = _convert(sim_out / f'seed_{SEED:06d}', tmp_path / 'ds_sim', contract, ros_env)

    assert sim.features == live.features
    assert sim.fps == live.fps == 30.0
    assert sim.info['robot_type'] == live.info['robot_type']
    assert set(sim.tasks.values()) == set(live.tasks.values()) == {TASK}
    assert len(sim) > 50 and len(live) > 50
    for ds in (sim, live):
        assert np.allclose(ds.column('timestamp'), ds.column('frame_index') / ds.fps, atol=1e-4)

    s_state, l_state = sim.column('observation.state'), live.column('observation.state')
    s_action, l_action = sim.column('action'), live.column('action')
    # Same units and joint order: the same cube (seed) gives the same grasp pose, the state at
    # the first frame with the jaws closed on the cube.
    def grasp_pose(state: np.ndarray) -> np.ndarray:
        return state[int(np.flatnonzero(state[:, 5] <= state[:, 5].min() + 1.0)[0])]
    assert np.abs(grasp_pose(s_state)[:5] - grasp_pose(l_state)[:5]).max() < 4.0, (
        grasp_pose(s_state), grasp_pose(l_state))
    # The gripper in LeRobot's 0..100 range in both; it closes on the cube by the same amount.
    for state in (s_state, l_state):
        assert state[:, 5].min() >= 0 and state[:, 5].max() <= 100
        assert np.ptp(state[:, 5]) > 10
    assert abs(s_state[:, 5].min() - l_state[:, 5].min()) < 4.0
    # Per frame, the action is the command the arm then follows: the state matches it some
    # frames later (servo lag; live adds the driver and DDS, and a loaded machine's delays).
    s_lag, s_err = _best_lag(s_action, s_state)
    l_lag, l_err = _best_lag(l_action, l_state)
    assert 1 <= s_lag <= 6 and 1 <= l_lag <= 15, (s_lag, l_lag)
    assert s_err < 3.0 and l_err < 3.0, (s_err, l_err)

    # Camera frames of the same scene: the first front frame (fixed camera, arm near home, the
    # same cube and colour) nearly equal; the wrist camera moves with the arm, so only its size.
    a, b = sim[0]['observation.images.front'], live[0]['observation.images.front']
    assert a.shape == b.shape == (3, H, W)
    assert float(np.abs(a - b).mean()) < 0.05
    assert sim[0]['observation.images.wrist'].shape == live[0]['observation.images.wrist'].shape
