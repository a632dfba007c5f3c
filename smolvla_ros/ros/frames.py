"""Camera frames from topics: bounded before decoding, then decoded to the size a policy wants.

The chunk executor stores frames as received and decodes only those it sends. Both steps are
bounded by the contract (``RobotContract.max_frame_size``): :func:`check_frame` reads only the
header (JPEG SOFn, PNG IHDR, or a raw image's width and height), cheap enough for every arrival,
and :func:`decode_frame` repeats the bound before decoding (ros/compressed.py refuses oversized
and truncated JPEGs). Errors carry the camera name (:class:`FrameError`), so a node can count
refused frames per camera.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from smolvla_ros.opencv import cv2
from smolvla_ros.ros.compressed import check_frame_size, compressed_to_rgb, parse_format
from smolvla_ros.ros.errors import ConversionError, ImageSizeError
from smolvla_ros.ros.image import image_to_rgb


class FrameError(ConversionError):
    """A camera frame refused before or while decoding; ``camera`` names its stream."""

    def __init__(self, camera: str, error: ConversionError) -> None:
        self.camera = camera
        self.error = error
        super().__init__(f'camera {camera!r}: {error}')


def check_frame(camera: str, msg: CompressedImage | Image, max_size: tuple[int, int]) -> None:
    """FrameError unless the frame's header is within ``max_size`` (width, height); no decoding."""
    try:
        if isinstance(msg, CompressedImage):
            check_frame_size(msg.data, parse_format(msg.format), max_size)
        else:
            _check_raw(msg, max_size)
    except ConversionError as exc:
        raise FrameError(camera, exc) from exc


def decode_frame(camera: str, msg: CompressedImage | Image, max_size: tuple[int, int],
                 shape: tuple[int, int]) -> np.ndarray:
    """RGB uint8 [h, w, 3] at ``shape`` = (h, w), bounded by ``max_size`` before decoding."""
    try:
        if isinstance(msg, CompressedImage):
            rgb = compressed_to_rgb(msg, max_size)
        else:
            _check_raw(msg, max_size)
            rgb = image_to_rgb(msg)
    except ConversionError as exc:
        raise FrameError(camera, exc) from exc
    h, w = shape
    if rgb.shape[:2] != (h, w):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)  # [h, w, 3]
    return np.ascontiguousarray(rgb)


def _check_raw(msg: Image, max_size: tuple[int, int]) -> None:
    max_w, max_h = max_size
    if msg.width > max_w or msg.height > max_h:
        raise ImageSizeError(f'raw image {msg.width}x{msg.height} is larger than the '
                             f'{max_w}x{max_h} allowed')
