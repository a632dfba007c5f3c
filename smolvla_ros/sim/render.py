"""Offscreen camera rendering with the fast CPU settings (docs/simulation.md, "Rendering").

On a CPU (Mesa llvmpipe through EGL) rendering is geometry bound, not pixel bound, with
multisampling, shadows and reflections off: measured on 2 cores, the front camera costs ~40 ms
at 256x256 or 320x240 and ~45 ms at 640x480, the wrist camera ~18 and ~21 ms (docs/simulation.md).
So the cameras render at the robot contract's size (640x480) and the rate is what to keep modest.
One ``mujoco.Renderer`` (one GL context) serves every camera and must be used from one thread.

MuJoCo's ``fovy`` is the vertical field of view and its pixels are square: a 4:3 frame sees more
to the sides than a square one of the same height, nothing is stretched, and the pinhole
intrinsics follow from fovy and the frame size alone (:func:`pinhole_intrinsics`).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np

from smolvla_ros.sim.errors import SimConfigError


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a rendered frame (px; OpenCV / sensor_msgs/CameraInfo convention).

    Pixel centres sit at integer coordinates, so the optical axis meets the image at
    ((width - 1) / 2, (height - 1) / 2); no distortion.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def k(self) -> tuple[float, ...]:
        """Row-major 3x3 camera matrix (CameraInfo.k)."""
        return (self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)

    @property
    def p(self) -> tuple[float, ...]:
        """Row-major 3x4 projection matrix of a monocular camera (CameraInfo.p)."""
        return (self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0)


def pinhole_intrinsics(fovy_deg: float, width: int, height: int) -> Intrinsics:
    """Intrinsics of a MuJoCo camera with vertical field of view `fovy_deg` at width x height."""
    if not 0 < fovy_deg < 180 or width < 1 or height < 1:
        raise SimConfigError(f'need 0 < fovy < 180 deg and a positive size, got {fovy_deg} deg, '
                             f'{width}x{height}')
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)  # square pixels: fx == fy
    return Intrinsics(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


class CameraRenderer:
    """Renders named cameras of a model to uint8 RGB [H, W, 3]."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int) -> None:
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise SimConfigError(
                f'{width}x{height} exceeds the offscreen buffer '
                f'{model.vis.global_.offwidth}x{model.vis.global_.offheight} '
                '(SceneConfig.image_width/height set it)')
        self.model = model
        self.width, self.height = width, height
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.cameras = tuple(model.camera(i).name for i in range(model.ncam))

    def check_camera(self, camera: str) -> None:
        """Raise SimConfigError unless the scene has `camera`."""
        if camera not in self.cameras:
            raise SimConfigError(f'no camera {camera!r}; the scene has {list(self.cameras)}')

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """[H, W, 3] uint8 RGB of `camera` (a name from the scene)."""
        self.check_camera(camera)
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render().copy()

    def intrinsics(self, camera: str) -> Intrinsics:
        """The pinhole intrinsics of `camera`'s frames at this renderer's size."""
        self.check_camera(camera)
        fovy = float(self.model.cam_fovy[self.model.camera(camera).id])
        return pinhole_intrinsics(fovy, self.width, self.height)

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
