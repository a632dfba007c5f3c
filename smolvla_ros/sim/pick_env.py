"""SO101PickEnv: the simulated pick task as a Gymnasium environment, in LeRobot's terms.

``gymnasium.make('smolvla_ros/SO101Pick-v0', task='lift' | 'bowl')`` after ``import
smolvla_ros.sim.gym`` (which registers it without importing MuJoCo). docs/simulation.md has the
usage; the world, cameras and success detector are the simulator's own (sim/world.py,
sim/cameras.py, sim/success.py) through :class:`~smolvla_ros.sim.contract_view.ContractView`.

- Observation (a dict with LeRobot's dataset keys): ``observation.state`` float32 [6] in the
  dataset units of the contract (degrees; gripper 0..100), ``observation.images.<camera>`` uint8
  [H, W, 3] RGB for every contract camera (``front``, ``wrist``; 640x480 unless
  ``image_width``/``image_height`` say otherwise), and ``task``, the language instruction.
- Action: float32 [6] joint position targets in the same units and order (the dataset's
  ``action`` feature); the world clips them to the joint ranges like the servos do.
- One step is one frame of the contract (1/30 s of simulated time).
- ``reset(seed=S)`` draws the cube pose and colour from S exactly as the recorder and
  ``smolvla-ros eval`` do, so seed S is the same scene everywhere; ``reset()`` without a seed draws
  the scene seed from the environment's own generator (deterministic after a seeded reset).
- Reward 1.0 on the step the world's success detector fires, else 0.0; success terminates the
  episode; ``info`` carries ``is_success`` (the key LeRobot's evaluation reads), ``lifted``,
  ``in_bowl``, ``seed`` and ``sim_time``. The registration truncates at 600 steps (20 s).
- ``render()`` (render_mode ``rgb_array``) returns the ``render_camera`` frame (default
  ``front``) of the current state.
"""
from __future__ import annotations

import os
import string
from typing import Any

import gymnasium
from gymnasium import spaces
import numpy as np

from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.sim.contract_view import ContractView
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.success import TASK_PROMPTS
from smolvla_ros.sim.world import SimWorld

STATE_KEY = 'observation.state'
TASK_KEY = 'task'
TASK_CHARSET = string.ascii_letters + string.digits + string.punctuation + ' '
TASK_MAX_LENGTH = 256


class SO101PickEnv(gymnasium.Env):
    """The SO-101 pick task (see the module docstring)."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 30}

    def __init__(self, task: str = 'lift', render_mode: str | None = None, *,
                 contract: RobotContract | str | os.PathLike[str] | None = None,
                 image_width: int = 0, image_height: int = 0, render_camera: str = 'front',
                 task_prompt: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise SimConfigError(f'render_mode must be None or one of '
                                 f"{self.metadata['render_modes']}, got {render_mode!r}")
        if task not in TASK_PROMPTS:
            raise SimConfigError(f'task must be one of {tuple(TASK_PROMPTS)}, got {task!r}')
        prompt = TASK_PROMPTS[task] if task_prompt is None else task_prompt
        bad = sorted(set(prompt) - set(TASK_CHARSET))
        if not 1 <= len(prompt) <= TASK_MAX_LENGTH or bad:
            raise SimConfigError(f'task_prompt must be 1..{TASK_MAX_LENGTH} printable ASCII '
                                 f'characters, got {prompt!r}')
        self.view = ContractView(task, contract, width=image_width, height=image_height)
        try:
            self.view.frame_shape(render_camera)
        except SimConfigError:
            self.view.close()
            raise
        self.render_mode = render_mode
        self.render_camera = render_camera
        self.task = task
        self.task_prompt = prompt
        self.dt = self.view.contract.dt
        self.metadata = {**self.metadata, 'render_fps': self.view.contract.fps}
        obs: dict[str, spaces.Space] = {
            STATE_KEY: spaces.Box(-np.inf, np.inf, (len(self.view.contract.joints),), np.float32)}
        for cam in self.view.cameras:
            obs[self.view.contract.cameras[cam.name].feature] = spaces.Box(
                0, 255, self.view.frame_shape(cam.name), np.uint8)
        obs[TASK_KEY] = spaces.Text(TASK_MAX_LENGTH, charset=TASK_CHARSET)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(self.view.action_low, self.view.action_high,
                                       dtype=np.float32)
        self._frames: dict[str, np.ndarray] = {}
        self._steps = 0

    @property
    def world(self) -> SimWorld:
        """The underlying SimWorld (privileged state: cube pose, success; for experts and tests)."""
        return self.view.world

    def _observation(self) -> dict[str, Any]:
        self._frames = self.view.render_all()
        obs: dict[str, Any] = {STATE_KEY: self.view.state()}
        for name, frame in self._frames.items():
            obs[self.view.contract.cameras[name].feature] = frame.copy()
        obs[TASK_KEY] = self.task_prompt
        return obs

    def _info(self) -> dict[str, Any]:
        s = self.world.success()
        return {'is_success': s.success, 'lifted': s.lifted, 'in_bowl': s.in_bowl,
                'seed': self.world.seed, 'sim_time': self.world.time}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        scene_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.world.reset(scene_seed)
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool,
                                                dict[str, Any]]:
        self.world.set_targets(self.view.targets_from_action(action))
        self._steps += 1
        # Advance to the frame's time, not by a rounded dt: 1/30 s is 16.67 physics steps.
        self.world.advance(self._steps * self.dt - self.world.time)
        info = self._info()
        success = bool(info['is_success'])
        return self._observation(), float(success), success, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != 'rgb_array':
            return None
        frame = self._frames.get(self.render_camera)
        if frame is None:  # before the first reset
            frame = self.view.render(self.render_camera)
        return frame.copy()

    def close(self) -> None:
        self.view.close()
        super().close()
