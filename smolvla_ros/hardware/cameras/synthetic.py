"""A synthetic test pattern: colour bars, a moving square and the frame number, at a fixed rate.

Every frame differs (the square moves, the counter changes), so a viewer or a test can tell a
live stream from a frozen one, and the pattern is cheap enough for 30 fps at 640x480 on one core.
"""
from __future__ import annotations

import numpy as np

from smolvla_ros.hardware.cameras.base import CameraConfigError, CameraSource, Pacer
from smolvla_ros.opencv import cv2

# SMPTE-like bars, RGB.
_BARS = ((192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192),
         (192, 0, 0), (0, 0, 192))


class SyntheticSource(CameraSource):
    """Test pattern of ``width`` x ``height`` pixels, paced at ``fps``."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__()
        if width < 16 or height < 16:
            raise CameraConfigError(f'synthetic pattern needs at least 16x16 pixels, got '
                                    f'{width}x{height}')
        if not fps > 0:
            raise CameraConfigError(f'fps must be > 0, got {fps}')
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self._background: np.ndarray | None = None
        self._pacer = Pacer(self.fps)

    @property
    def description(self) -> str:
        return f'synthetic {self.width}x{self.height} @ {self.fps:g} fps'

    def _open(self) -> None:
        bars = np.zeros((self.height, self.width, 3), dtype=np.uint8)  # [H, W, 3]
        edges = np.linspace(0, self.width, len(_BARS) + 1).astype(int)
        for colour, x0, x1 in zip(_BARS, edges[:-1], edges[1:], strict=True):
            bars[:, x0:x1] = colour
        ramp = np.linspace(0, 255, self.width, dtype=np.uint8)  # [W] grey ramp at the bottom
        bars[self.height * 3 // 4:] = ramp[None, :, None]
        self._background = bars
        self._pacer = Pacer(self.fps)

    def _grab(self) -> np.ndarray:
        self._pacer.wait()
        assert self._background is not None
        img = self._background.copy()
        n = self._count
        size = max(4, min(self.width, self.height) // 8)
        span = max(1, self.width - size)
        x = (n * 4) % (2 * span)
        x = x if x < span else 2 * span - x  # bounce left-right
        y = self.height // 2 - size // 2
        cv2.rectangle(img, (x, y), (x + size, y + size), (255, 255, 255), -1)
        cv2.putText(img, f'{n:06d}', (8, max(12, self.height // 8)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.3, self.height / 480), (0, 0, 0), 2)
        return img

    def _release(self) -> None:
        self._background = None
