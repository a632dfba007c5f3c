"""OpenCV sources: a V4L2/USB device, and a video file played in a loop (the CI camera).

``cv2.VideoCapture.read`` blocks until the device delivers a frame, which paces a device source by
itself; a file would play as fast as it decodes, so the file source sleeps to the requested fps
(default: the file's own frame rate). Frames are converted to RGB and, when a size is given,
resized (bilinear) so that every source of one camera yields the same geometry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from smolvla_ros.hardware.cameras.base import (
    CameraConfigError,
    CameraError,
    CameraReadError,
    CameraSource,
    Pacer,
)
from smolvla_ros.opencv import cv2


class _CaptureSource(CameraSource):
    """What both OpenCV sources share: the capture handle, its release, and BGR -> RGB at size."""

    width: int
    height: int
    _cap: cv2.VideoCapture | None = None

    def _to_rgb(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        size = (self.width, self.height) if self.width and self.height else None
        if size is not None and (bgr.shape[1], bgr.shape[0]) != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # [H, W, 3]

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DeviceSource(_CaptureSource):
    """A camera device by index (``0``) or path (``/dev/video0``), through OpenCV."""

    def __init__(self, device: int | str, width: int = 0, height: int = 0,
                 fps: float = 0.0) -> None:
        super().__init__()
        self.device = device
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self._cap: cv2.VideoCapture | None = None

    @property
    def description(self) -> str:
        return f'device {self.device}'

    def _open(self) -> None:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f'cannot open camera device {self.device!r} (is it plugged in, '
                              'and readable by this user?)')
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap

    def _grab(self) -> np.ndarray:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise CameraReadError(f'{self.description}: read failed (device gone?)')
        return self._to_rgb(bgr)


class VideoFileSource(_CaptureSource):
    """A video file (anything OpenCV decodes: h264, mpeg4, MJPG; not AV1), looped by default."""

    def __init__(self, path: str | Path, width: int = 0, height: int = 0, fps: float = 0.0,
                 loop: bool = True) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.loop = loop
        self._cap: cv2.VideoCapture | None = None
        self._pacer: Pacer | None = None

    @property
    def description(self) -> str:
        return f'file {self.path}{" (loop)" if self.loop else ""}'

    def _open(self) -> None:
        if not self.path.is_file():
            raise CameraConfigError(f'video file {self.path} does not exist')
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise CameraError(f'OpenCV cannot open {self.path} (unsupported codec? AV1 is not '
                              'decoded by opencv-python; use h264, mpeg4 or MJPG)')
        fps = self.fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not fps > 0:
            fps = 30.0  # some containers carry no rate
        self._pacer = Pacer(fps)
        self._cap = cap

    def _grab(self) -> np.ndarray:
        assert self._cap is not None and self._pacer is not None
        self._pacer.wait()
        ok, bgr = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok or bgr is None:
            what = 'holds no decodable frame' if self.loop else 'ended'
            raise CameraReadError(f'{self.description} {what}')
        return self._to_rgb(bgr)
