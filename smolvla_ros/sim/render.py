"""Offscreen camera rendering with the fast CPU settings (platform.md "Simulation").

On a CPU (Mesa llvmpipe through EGL) a 256x256 frame costs ~50 ms, geometry bound, with
multisampling, shadows and reflections off; so cameras are rendered at a modest size and rate
(default 256x256 at 10 Hz) and the frames are resized up by whoever needs the contract size.
One ``mujoco.Renderer`` (one GL context) serves every camera and must be used from one thread.
"""
from __future__ import annotations

import mujoco
import numpy as np

from smolvla_ros.sim.errors import SimConfigError


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

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """[H, W, 3] uint8 RGB of `camera` (a name from the scene)."""
        if camera not in self.cameras:
            raise SimConfigError(f'no camera {camera!r}; the scene has {list(self.cameras)}')
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
