"""Success detection from privileged state: the cube lifted and held, or the cube in the bowl.

"Lifted" requires the cube to be near the grasp point too, so a cube that is knocked into the air
or balanced on the arm does not count.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.scene import SceneConfig

TASKS = ('lift', 'bowl')
# The language instruction of each task: what demonstrations record on the ``task`` topic and what
# evaluation sends the policy (the simulated profiles' task defaults say the same).
TASK_PROMPTS = {'lift': 'pick up the cube', 'bowl': 'pick up the cube and put it in the bowl'}


@dataclass(frozen=True)
class SuccessConfig:
    """What counts as done."""

    task: str = 'lift'  # 'lift': cube raised and held; 'bowl': cube resting in the bowl
    lift_height: float = 0.04  # m above its start height
    hold_distance: float = 0.05  # m: cube centre to grasp point while lifted

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SimConfigError(f'task must be one of {TASKS}, got {self.task!r}')
        if not 0 < self.lift_height < 0.3 or not 0 < self.hold_distance < 0.2:
            raise SimConfigError('lift_height must be in (0, 0.3) m and hold_distance in (0, 0.2)')


@dataclass(frozen=True)
class SuccessState:
    """Both criteria, and which one the task asks for."""

    lifted: bool
    in_bowl: bool
    task: str

    @property
    def success(self) -> bool:
        return self.lifted if self.task == 'lift' else self.in_bowl


def evaluate_success(model: mujoco.MjModel, data: mujoco.MjData, cube_start: np.ndarray,
                     scene: SceneConfig, config: SuccessConfig) -> SuccessState:
    cube = data.xpos[model.body('cube').id]
    grasp = data.site_xpos[model.site('gripperframe').id]
    lifted = bool(cube[2] > cube_start[2] + config.lift_height
                  and np.linalg.norm(cube - grasp) < config.hold_distance)
    in_bowl = False
    if scene.bowl:
        centre = np.asarray(scene.bowl_xy)
        in_bowl = bool(np.linalg.norm(cube[:2] - centre) < scene.bowl_radius
                       and cube[2] < scene.bowl_height + scene.cube_half_size)
    return SuccessState(lifted, in_bowl, config.task)
