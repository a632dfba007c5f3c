"""The robot contract's view of a SimWorld: its cameras and its joint units (no ROS).

A learned policy sees the simulator through the contract its dataset was converted with
(config/contracts/so101.yaml): the contract's cameras at the contract's frame size, the joint
state and actions in the dataset's units (degrees for the body joints, 0..100 for the gripper,
core/robot/dataset_units.py), in contract order. The Gymnasium environment (sim/pick_env.py) and
``smolvla-ros eval`` (sim/evaluation.py) both build the world through this class, so the two can
never disagree with each other or with the converted datasets about what a frame or a state is.

The scene matches the task: the bowl is there exactly when the task is ``bowl``.
"""
from __future__ import annotations

from dataclasses import replace
import os

import numpy as np

from smolvla_ros.core.robot.calibration import MotorCalibration
from smolvla_ros.core.robot.contract import RobotContract, default_contract_path, load_contract
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.sim.cameras import CameraRig, SimCamera, buffer_size, select_cameras
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.scene import CAMERA_NAMES, JOINT_NAMES, SceneConfig
from smolvla_ros.sim.success import TASKS, SuccessConfig
from smolvla_ros.sim.world import SimWorld


class ContractView:
    """A SimWorld for `task` plus the contract's cameras and unit conversion (see module doc).

    ``width`` x ``height`` (both 0: each camera's contract size) renders every camera at one
    size instead. Every contract camera must exist in the scene: a policy trained on the
    contract needs all of them. Call :meth:`close` (or use ``with``) to free the GL contexts.
    """

    def __init__(self, task: str = 'lift', contract: RobotContract | str | os.PathLike[str]
                 | None = None, *, width: int = 0, height: int = 0,
                 scene: SceneConfig | None = None,
                 calibration: dict[str, MotorCalibration] | str | os.PathLike[str] | None = None
                 ) -> None:
        if task not in TASKS:
            raise SimConfigError(f'task must be one of {TASKS}, got {task!r}')
        if contract is None or isinstance(contract, (str, os.PathLike)):
            contract = load_contract(contract or default_contract_path())
        self.task = task
        self.contract = contract
        self.units = DatasetUnits.from_contract(contract, calibration)
        unknown = [n for n in contract.joint_names if n not in JOINT_NAMES]
        if unknown or len(contract.joint_names) != len(JOINT_NAMES):
            raise SimConfigError(f'{contract.source}: joints {list(contract.joint_names)} are not '
                                 f'the simulated arm\'s {list(JOINT_NAMES)}')
        # contract column k <- world joint _from_world[k]; world joint i <- column _to_world[i]
        self._from_world = np.array([JOINT_NAMES.index(n) for n in contract.joint_names])
        self._to_world = np.argsort(self._from_world)
        selection = select_cameras(contract, CAMERA_NAMES, width, height)
        if selection.missing:
            raise SimConfigError(f'{contract.source}: contract cameras {list(selection.missing)} '
                                 f'are not in the simulated scene (it has {list(CAMERA_NAMES)})')
        self.cameras: tuple[SimCamera, ...] = selection.cameras
        buf_w, buf_h = buffer_size(self.cameras)
        scene = scene or SceneConfig()
        scene = replace(scene, bowl=task == 'bowl', image_width=max(buf_w, scene.image_width),
                        image_height=max(buf_h, scene.image_height))
        self.world = SimWorld(scene, SuccessConfig(task=task))
        self.rig = CameraRig(self.world.model, self.cameras)
        lower = self.units.to_dataset(self.world.lower[self._from_world])
        upper = self.units.to_dataset(self.world.upper[self._from_world])
        self.action_low = lower.astype(np.float32)  # [J] dataset units, contract order
        self.action_high = upper.astype(np.float32)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def frame_shape(self, camera: str) -> tuple[int, int, int]:
        """(height, width, 3) of the frames `camera` renders."""
        cam = next((c for c in self.cameras if c.name == camera), None)
        if cam is None:
            raise SimConfigError(f'no camera {camera!r}; the contract has {self.camera_names}')
        return cam.height, cam.width, 3

    def state(self) -> np.ndarray:
        """float32 [J]: the joint angles in dataset units, contract order."""
        rad = self.world.joint_positions()[self._from_world]  # [J] rad, contract order
        return self.units.to_dataset(rad).astype(np.float32)

    def targets_from_action(self, action: np.ndarray) -> np.ndarray:
        """Dataset-unit action [J] (contract order) -> world targets [6] rad (JOINT_NAMES order).

        Range units saturate at their calibrated ends (0..100), like the driver's conversion.
        """
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (len(JOINT_NAMES),) or not np.isfinite(a).all():
            raise ValueError(f'action must be {len(JOINT_NAMES)} finite values in dataset units '
                             f'({list(self.contract.feature_names)}), got {action!r}')
        return self.units.to_ros(a)[self._to_world]

    def render(self, camera: str) -> np.ndarray:
        """uint8 [H, W, 3] RGB of one contract camera at its frame size."""
        return self.rig.render(self.world.data, camera)

    def render_all(self) -> dict[str, np.ndarray]:
        """Every contract camera: name -> uint8 [H, W, 3] RGB."""
        return {name: self.render(name) for name in self.camera_names}

    def close(self) -> None:
        self.rig.close()

    def __enter__(self) -> ContractView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
