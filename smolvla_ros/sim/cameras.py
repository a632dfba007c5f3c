"""The simulator's cameras as the robot contract names and sizes them (no ROS).

Frames recorded in simulation must match the contract a dataset is converted with: so101_sim
renders every contract camera that the scene has (``front``, ``wrist``), on the contract's topic
and at the contract's width x height, unless one size is given for all cameras. A contract camera
the scene lacks is reported (the node warns); a contract none of whose cameras the scene has is a
configuration error, because no observation could ever be assembled from it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from smolvla_ros.core.robot.contract import RobotContract
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.render import CameraRenderer, Intrinsics

MIN_SIZE, MAX_SIZE = 16, 2048  # px, the scene's offscreen-buffer bounds (SceneConfig)


@dataclass(frozen=True)
class SimCamera:
    """One rendered camera: scene camera name, image topic, encoding and frame size."""

    name: str
    topic: str
    compressed: bool  # sensor_msgs/CompressedImage (JPEG), else sensor_msgs/Image (rgb8)
    width: int
    height: int

    @property
    def info_topic(self) -> str:
        """``cameras/<name>/camera_info``, where the ``camera`` node publishes it too."""
        return f'cameras/{self.name}/camera_info'


@dataclass(frozen=True)
class CameraSelection:
    cameras: tuple[SimCamera, ...]  # contract order
    missing: tuple[str, ...]  # contract cameras the scene does not have


def select_cameras(contract: RobotContract, available: Sequence[str], width: int = 0,
                   height: int = 0) -> CameraSelection:
    """The contract cameras the scene has, at the contract's size or at `width` x `height`.

    `width` and `height` are both 0 (each camera's contract size) or both set (every camera).
    """
    if (width == 0) != (height == 0):
        raise SimConfigError(f'give both image_width and image_height, or neither (0): got '
                             f'{width}x{height}')
    chosen, missing = [], []
    for cam in contract.cameras.values():
        if cam.name not in available:
            missing.append(cam.name)
            continue
        w, h = (width, height) if width else (cam.width, cam.height)
        if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
            raise SimConfigError(f'camera {cam.name}: {w}x{h} is outside [{MIN_SIZE}, '
                                 f'{MAX_SIZE}] px per side')
        chosen.append(SimCamera(cam.name, cam.topic, cam.compressed, w, h))
    if contract.cameras and not chosen:
        raise SimConfigError(f'{contract.source}: none of the contract cameras {list(missing)} '
                             f'is in the scene (it has {list(available)})')
    return CameraSelection(tuple(chosen), tuple(missing))


def buffer_size(cameras: Sequence[SimCamera]) -> tuple[int, int]:
    """(width, height) of the offscreen buffer that fits every camera (SceneConfig.image_*)."""
    if not cameras:
        return MIN_SIZE * 4, MIN_SIZE * 4
    return max(c.width for c in cameras), max(c.height for c in cameras)


class CameraRig:
    """Renders each SimCamera at its own size: one CameraRenderer (GL context) per distinct size.

    Like CameraRenderer, it must be used from one thread.
    """

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[SimCamera]) -> None:
        self.cameras = tuple(cameras)
        self._renderers: dict[tuple[int, int], CameraRenderer] = {}
        try:
            for cam in self.cameras:
                size = (cam.width, cam.height)
                if size not in self._renderers:
                    self._renderers[size] = CameraRenderer(model, *size)
                self._renderers[size].check_camera(cam.name)
        except Exception:
            self.close()
            raise
        self._by_name = {c.name: self._renderers[(c.width, c.height)] for c in self.cameras}

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """[H, W, 3] uint8 RGB of `camera` at its configured size."""
        return self._renderer(camera).render(data, camera)

    def intrinsics(self, camera: str) -> Intrinsics:
        return self._renderer(camera).intrinsics(camera)

    def _renderer(self, camera: str) -> CameraRenderer:
        try:
            return self._by_name[camera]
        except KeyError:
            raise SimConfigError(f'camera {camera!r} is not rendered; the rig has '
                                 f'{[c.name for c in self.cameras]}') from None

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> CameraRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
