"""sensor_msgs/Image <-> numpy for the 8-bit encodings cameras produce: rgb8, bgr8, mono8.

Reading is zero-copy: the returned array is a view on the message's ``data`` buffer (shape
[H, W, C], strided over the ``step`` row padding when there is any), so it lives as long as the
message and writing to it writes into the message. A copy is unavoidable when:

- the encoding is not the one asked for (bgr8 -> RGB reorders channels, mono8 -> RGB expands);
- a consumer needs contiguous memory and the rows are padded (``np.ascontiguousarray``);
- building a message: rclpy keeps ``data`` as its own ``array.array``, so one memcpy
  (``buffers.to_array``; assigning a numpy array or ``bytes`` directly is ~100x slower).

No cv_bridge: the PyPI one is ROS 1 code and fails on numpy 2.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from smolvla_ros.opencv import cv2
from smolvla_ros.ros.buffers import to_array, view
from smolvla_ros.ros.errors import ImageSizeError, UnknownEncodingError
from smolvla_ros.ros.time import ns_to_stamp

RGB8 = 'rgb8'
BGR8 = 'bgr8'
MONO8 = 'mono8'
# Channels per pixel for each supported encoding (all 8 bits per channel).
CHANNELS = {RGB8: 3, BGR8: 3, MONO8: 1}


def _channels(encoding: str) -> int:
    try:
        return CHANNELS[encoding]
    except KeyError:
        raise UnknownEncodingError(
            f'unsupported image encoding {encoding!r}; supported: {sorted(CHANNELS)}') from None


def image_to_numpy(msg: Image) -> np.ndarray:
    """Zero-copy view of the pixels: uint8 [H, W, 3] for rgb8/bgr8, [H, W] for mono8.

    Honours ``step`` (row stride in bytes, >= width * channels); the view skips row padding.
    """
    channels = _channels(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels
    if height < 1 or width < 1:
        raise ImageSizeError(f'image size must be positive, got {width}x{height}')
    if step < row_bytes:
        raise ImageSizeError(
            f'step {step} < width {width} x {channels} channels = {row_bytes} bytes '
            f'({msg.encoding})')
    data = view(msg.data, np.uint8)  # [N], a view on the message buffer
    if data.size != step * height:
        raise ImageSizeError(
            f'image data has {data.size} bytes, expected step {step} x height {height} = '
            f'{step * height} ({width}x{height} {msg.encoding})')
    rows = data.reshape(height, step)[:, :row_bytes]  # [H, W*C], strided view when padded
    if channels == 1:
        return rows  # [H, W]
    return rows.reshape(height, width, channels)  # [H, W, C], still a view


def image_to_rgb(msg: Image) -> np.ndarray:
    """Pixels as RGB uint8 [H, W, 3]: a zero-copy view for rgb8, a contiguous copy otherwise."""
    pixels = image_to_numpy(msg)
    if msg.encoding == RGB8:
        return pixels
    if msg.encoding == BGR8:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)  # [H, W, 3], channel order reversed
    return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)  # mono8: [H, W] -> [H, W, 3]


def numpy_to_image(
    pixels: np.ndarray, encoding: str = RGB8, *, stamp_ns: int = 0, frame_id: str = ''
) -> Image:
    """Build an Image from pixels already in ``encoding``'s layout (no row padding, one copy).

    rgb8/bgr8 take uint8 [H, W, 3]; mono8 takes uint8 [H, W] (or [H, W, 1]).
    """
    channels = _channels(encoding)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ImageSizeError(f'{encoding} pixels must be uint8, got {pixels.dtype}')
    if channels == 1 and pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]  # [H, W, 1] -> [H, W]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels == 3 and pixels.shape[2] != 3) or (
            pixels.shape[0] < 1 or pixels.shape[1] < 1):
        want = '[H, W]' if channels == 1 else '[H, W, 3]'
        raise ImageSizeError(f'{encoding} pixels must have shape {want}, got {pixels.shape}')
    height, width = pixels.shape[:2]
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * channels
    msg.data = to_array(pixels, np.uint8)
    return msg


def rgb_to_image(
    rgb: np.ndarray, encoding: str = RGB8, *, stamp_ns: int = 0, frame_id: str = ''
) -> Image:
    """Build an Image from RGB pixels uint8 [H, W, 3], converting to ``encoding`` on the way."""
    _channels(encoding)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageSizeError(f'RGB pixels must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}')
    if encoding == BGR8:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == MONO8:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # [H, W]
    return numpy_to_image(rgb, encoding, stamp_ns=stamp_ns, frame_id=frame_id)
