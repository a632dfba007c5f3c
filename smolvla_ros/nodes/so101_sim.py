"""so101_sim: the MuJoCo SO-101 pick scene behind an emulated Feetech bus, plus rendered cameras.

The real ``feetech_driver`` connects to ``port`` (a symlink to the emulator's pty) unchanged:
every physics tick the servos' goals become the position targets, and the simulated joint angles
become the servos' encoder positions (through the calibration, sim/servo_bridge.py); a servo
with torque off leaves its joint limp. Published (relative names):

- every contract camera the scene has (``front``, ``wrist``) on its contract topic (JPEG, or rgb8
  when the contract says ``compressed: false``) and ``cameras/<name>/camera_info`` (pinhole
  intrinsics from the camera's vertical fovy) at ``camera_hz``, at the contract's width x height
  unless ``image_width``/``image_height`` say otherwise (sim/cameras.py; CPU rendering costs
  ~70 ms for both cameras at 640x480 on 2 cores, so keep the rate modest);
- ``sim/cube_pose`` (geometry_msgs/PoseStamped, base frame; privileged, for the oracle);
- ``sim/success`` (std_msgs/Bool, every tick) and ``sim/episode`` (std_msgs/String JSON events:
  reset / success / failure, transient-local; a failure carries its ``reason``);
- service ``sim/reset`` (std_srvs/Trigger): next seeded episode.

An episode that cannot succeed must end visibly instead of leaving the demo stuck (a cube pushed
out of the arm's reach left the oracle answering IKError forever): a policy that knows it cannot
go on publishes ``sim/give_up`` (std_msgs/String, JSON ``{"episode": N, "reason": "..."}``; a
give-up for another episode is ignored), and, when ``episode_timeout_s`` is set, an episode
without success for that long in simulated time ends too. Either way the simulator publishes a
``failure`` event with the reason, logs it, and starts the next seeded episode (a ``reset``
event, which the executor's ``reset_topic`` turns into a cleared plan).

On shutdown the bus stays served until the driver has turned torque off (at most
``release_grace_s``; sim/bus_release.py), so that the driver's release does not race the
simulator's exit; ``bus_report_file`` then receives the servos' final state as JSON.

Physics follows the node clock in real time (steps of ``physics_dt`` to catch up, at most
``max_catch_up_s`` per tick, so a stall slows the world rather than making it jump).
"""
from __future__ import annotations

from functools import partial
import json
import logging
import sys
import time

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.core.robot.contract import default_contract_path, load_contract
from smolvla_ros.hardware.emulator.server import ServoEmulator
from smolvla_ros.nodes.node_main import run_node
from smolvla_ros.nodes.params import read_only_parameter
from smolvla_ros.ros.compressed import rgb_to_compressed
from smolvla_ros.ros.image import rgb_to_image
from smolvla_ros.ros.time import ns_to_stamp
from smolvla_ros.sim.bus_release import wait_for_release, write_report
from smolvla_ros.sim.cameras import CameraRig, SimCamera, buffer_size, select_cameras
from smolvla_ros.sim.render import Intrinsics
from smolvla_ros.sim.scene import CAMERA_NAMES, SceneConfig
from smolvla_ros.sim.servo_bridge import ServoBridge
from smolvla_ros.sim.success import SuccessConfig
from smolvla_ros.sim.world import SimWorld


class So101Sim(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('so101_sim', **kwargs)
        p = partial(read_only_parameter, self)
        port = p('port', '/tmp/smolvla_so101_sim', 'path of the symlink to the emulated bus')
        cal_file = p('calibration_file', '', 'LeRobot calibration JSON preloaded in the servos')
        seed = p('seed', 0, 'seed of the first episode (cube pose and colour)')
        contract_file = p('contract_file', '', 'robot contract YAML (empty: config/contracts/'
                          'so101.yaml): camera names, topics and frame sizes')
        width = p('image_width', 0, 'frame width of every camera (px); 0: the contract size')
        height = p('image_height', 0, 'frame height of every camera (px); 0: the contract size')
        self.camera_hz = p('camera_hz', 10.0, 'camera frame rate (Hz)')
        physics_hz = p('physics_hz', 100.0, 'rate of the physics/bus timer (Hz)')
        self.max_catch_up_s = p('max_catch_up_s', 0.05, 'most simulated time per tick (s)')
        self.jpeg_quality = p('jpeg_quality', 90, 'JPEG quality of the camera frames')
        bowl = p('bowl', False, 'add the target bowl')
        task = p('success_task', 'lift', "'lift' (cube raised and held) or 'bowl'")
        self.release_grace_s = p('release_grace_s', 2.0, 'on shutdown, how long the bus stays '
                                 'served for the driver to turn torque off (s)')
        self.bus_report_file = p('bus_report_file', '', 'on shutdown, write the servos\' final '
                                 'state (torque, goal, position) here as JSON; empty: do not')
        self.episode_timeout_s = p('episode_timeout_s', 0.0, 'an episode without success fails '
                                   'and the next starts after this much simulated time (s); 0: '
                                   'never (teleoperation and tests run for as long as they like)')
        if not cal_file:
            raise ValueError('parameter calibration_file is required')
        if not 0.5 <= self.camera_hz <= 60 or not 10 <= physics_hz <= 1000:
            raise ValueError('camera_hz must be in [0.5, 60] and physics_hz in [10, 1000]')
        if self.episode_timeout_s < 0.0:
            raise ValueError(f'episode_timeout_s must be >= 0, got {self.episode_timeout_s}')
        if not 0.0 <= self.release_grace_s <= 5.0:  # within run_node's cleanup bound (8 s)
            raise ValueError(f'release_grace_s must be in [0, 5], got {self.release_grace_s}')
        calibration = load_calibration(cal_file)
        contract = load_contract(contract_file or default_contract_path())
        selection = select_cameras(contract, CAMERA_NAMES, width, height)
        if selection.missing:
            self.get_logger().warning(f'contract cameras {list(selection.missing)} are not in '
                                      f'the scene (it has {list(CAMERA_NAMES)}): not published')
        self.cameras = selection.cameras
        buf_w, buf_h = buffer_size(self.cameras)
        self.world = SimWorld(SceneConfig(bowl=bowl, image_width=buf_w, image_height=buf_h),
                              SuccessConfig(task=task), seed=seed)
        self.bridge = ServoBridge(calibration)
        self.rig = CameraRig(self.world.model, self.cameras)
        start = self.bridge.actual_ticks(self.world.joint_positions())
        self.emulator = ServoEmulator(list(start), motion='external', link_path=port)
        for c in calibration.values():
            self.emulator.set_register(c.id, 'Homing_Offset', c.homing_offset)
            self.emulator.set_register(c.id, 'Min_Position_Limit', c.range_min)
            self.emulator.set_register(c.id, 'Max_Position_Limit', c.range_max)
        self.emulator.set_actual_positions(start)
        self.emulator.power_cycle()  # goal := present, torque off, as a real arm at power-on
        self.emulator.start()

        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._img_pubs = {c.name: self.create_publisher(
            CompressedImage if c.compressed else Image, c.topic, 2) for c in self.cameras}
        self._info_pubs = {c.name: self.create_publisher(CameraInfo, c.info_topic, 2)
                           for c in self.cameras}
        self._infos = {c.name: _camera_info(c, self.rig.intrinsics(c.name)) for c in self.cameras}
        self._cube_pub = self.create_publisher(PoseStamped, 'sim/cube_pose', 10)
        self._success_pub = self.create_publisher(Bool, 'sim/success', 10)
        self._episode_pub = self.create_publisher(String, 'sim/episode', latched)
        self.create_service(Trigger, 'sim/reset', self._on_reset)
        self.create_subscription(String, 'sim/give_up', self._on_give_up, 10)
        self._succeeded = False
        self._had_success = False  # in this episode
        self._last = time.monotonic()
        self.create_timer(1.0 / physics_hz, self._on_physics)
        if self.cameras:
            self.create_timer(1.0 / self.camera_hz, self._on_camera)
        self._event('reset')
        cams = ', '.join(f'{c.name} {c.width}x{c.height}' for c in self.cameras) or 'none'
        self.get_logger().info(
            f'SO-101 sim on {self.emulator.port_path} (pty {self.emulator.pty_path}), cameras '
            f'{cams} at {self.camera_hz:g} Hz, seed {seed}, contract {contract.source}')

    def _on_physics(self) -> None:
        now = time.monotonic()
        elapsed = min(now - self._last, self.max_catch_up_s)
        self._last = now
        w = self.world
        w.set_limp(self.bridge.torque_mask(self.emulator.get_torque_enabled()))
        w.set_targets(self.bridge.goal_angles(self.emulator.get_goal_positions()))
        w.advance(elapsed)
        self.emulator.set_actual_positions(self.bridge.actual_ticks(w.joint_positions()))
        stamp = ns_to_stamp(self.get_clock().now().nanoseconds)
        pose = w.cube_pose()
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, 'base'
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pose.position)
        q = msg.pose.orientation
        q.w, q.x, q.y, q.z = map(float, pose.quaternion)
        self._cube_pub.publish(msg)
        success = w.success().success
        self._success_pub.publish(Bool(data=success))
        if success and not self._succeeded:
            self._event('success')
        self._succeeded = success
        self._had_success |= success
        if (self.episode_timeout_s and not self._had_success
                and w.time >= self.episode_timeout_s):
            self._fail(f'no success within {self.episode_timeout_s:g} s of simulated time')

    def _on_camera(self) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        for cam in self.cameras:
            rgb = self.rig.render(self.world.data, cam.name)
            frame_id = f'{cam.name}_camera'
            if cam.compressed:
                msg = rgb_to_compressed(rgb, quality=self.jpeg_quality, stamp_ns=stamp_ns,
                                        frame_id=frame_id)
            else:
                msg = rgb_to_image(rgb, stamp_ns=stamp_ns, frame_id=frame_id)
            self._img_pubs[cam.name].publish(msg)
            info = self._infos[cam.name]
            info.header.stamp = ns_to_stamp(stamp_ns)
            self._info_pubs[cam.name].publish(info)

    def _event(self, kind: str, **extra: object) -> None:
        w = self.world
        self._episode_pub.publish(String(data=json.dumps({
            'event': kind, 'episode': w.episode, 'seed': w.seed, 'sim_time': w.time,
            'cube_start': [float(v) for v in w.cube_start], **extra})))

    def _reset(self) -> None:
        self.world.reset()
        self.emulator.set_actual_positions(self.bridge.actual_ticks(self.world.joint_positions()))
        self._succeeded = self._had_success = False
        self._event('reset')

    def _fail(self, reason: str) -> None:
        """End the episode as a failure (a visible event and log line), then start the next."""
        self.get_logger().warning(f'episode {self.world.episode} (seed {self.world.seed}) '
                                  f'failed: {reason}; starting the next episode')
        self._event('failure', reason=reason)
        self._reset()

    def _on_give_up(self, msg: String) -> None:
        try:
            data = json.loads(msg.data)
            reason, episode = str(data['reason']), data.get('episode')
        except (ValueError, TypeError, KeyError) as exc:
            self.get_logger().warning(f'sim/give_up ignored (want JSON with "reason"): {exc}',
                                      throttle_duration_sec=5.0)
            return
        if episode is not None and episode != self.world.episode:
            return  # a late give-up for an episode that already ended
        if self._had_success:
            # The task was done (the oracle has no plan for a cube already in the air): the
            # episode ends as the success it was, not as a failure (docs/simulation.md).
            self.get_logger().info(f'episode {self.world.episode} (seed {self.world.seed}) '
                                   f'ended after its success (policy: {reason})')
            self._reset()
            return
        self._fail(f'a policy gave up: {reason}')

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        self._reset()
        response.success = True
        response.message = f'episode {self.world.episode}, seed {self.world.seed}'
        return response

    def destroy_node(self) -> None:
        # Python logging: the ROS context is usually shut down by now (rosout is gone).
        release = wait_for_release(self.emulator, self.release_grace_s)
        if not release.released:
            logging.getLogger('so101_sim').warning(
                'the driver did not release the arm within %g s: torque still on for servo '
                'ids %s when the simulated bus stopped', self.release_grace_s, release.torque_on)
        if self.bus_report_file:
            write_report(self.bus_report_file, release)
        self.emulator.stop()
        self.rig.close()
        super().destroy_node()


def _camera_info(camera: SimCamera, k: Intrinsics) -> CameraInfo:
    """CameraInfo of a rendered camera: its size and the ideal pinhole (no distortion)."""
    info = CameraInfo(width=camera.width, height=camera.height, distortion_model='plumb_bob')
    info.header.frame_id = f'{camera.name}_camera'
    info.d = [0.0] * 5
    info.k = list(k.k)
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = list(k.p)
    return info


def main(args: list[str] | None = None) -> int:
    return run_node(So101Sim, 'so101_sim', args, setup_errors=(ValueError, RuntimeError))


if __name__ == '__main__':
    sys.exit(main())
