"""sensor_msgs/Image <-> numpy: exact round trips, zero-copy reads, row padding, errors."""
from __future__ import annotations

import array

import numpy as np
import pytest
from sensor_msgs.msg import Image

from smolvla_ros.ros.errors import ImageSizeError, UnknownEncodingError
from smolvla_ros.ros.image import image_to_numpy, image_to_rgb, numpy_to_image, rgb_to_image


def _rgb(h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_colour_round_trip_is_exact(encoding: str) -> None:
    pixels = _rgb()
    msg = numpy_to_image(pixels, encoding, stamp_ns=42, frame_id='cam')
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, encoding)
    assert msg.header.frame_id == 'cam' and msg.header.stamp.nanosec == 42
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


def test_mono_round_trip_is_exact() -> None:
    gray = _rgb()[:, :, 0]
    msg = numpy_to_image(gray, 'mono8')
    assert msg.step == 7
    np.testing.assert_array_equal(image_to_numpy(msg), gray)
    np.testing.assert_array_equal(image_to_rgb(msg), np.repeat(gray[:, :, None], 3, axis=2))


def test_bgr_is_converted_to_rgb() -> None:
    rgb = _rgb()
    msg = rgb_to_image(rgb, 'bgr8')
    np.testing.assert_array_equal(image_to_numpy(msg), rgb[:, :, ::-1])  # stored BGR
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.c_contiguous


def test_rgb_to_mono_image() -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 1] = 255  # pure green
    msg = rgb_to_image(rgb, 'mono8')
    assert msg.encoding == 'mono8'
    assert np.all(image_to_numpy(msg) == 150)  # 0.587 * 255, ITU-R BT.601 weights


def test_read_is_zero_copy() -> None:
    msg = numpy_to_image(_rgb(), 'rgb8')
    assert isinstance(msg.data, array.array)
    pixels = image_to_numpy(msg)
    assert np.shares_memory(pixels, np.frombuffer(msg.data, np.uint8))
    rgb = image_to_rgb(msg)  # rgb8 -> RGB is the same view
    assert np.shares_memory(rgb, np.frombuffer(msg.data, np.uint8))
    msg.data[0] = (int(msg.data[0]) + 1) % 256  # writes through: same memory
    assert pixels[0, 0, 0] == msg.data[0]


def test_row_padding_is_skipped_without_copy() -> None:
    h, w, pad = 4, 5, 3
    pixels = _rgb(h, w)
    padded = np.full((h, w * 3 + pad), 0xAB, np.uint8)  # [H, step], padding bytes set to 0xAB
    padded[:, :w * 3] = pixels.reshape(h, w * 3)
    msg = Image(height=h, width=w, encoding='rgb8', step=w * 3 + pad)
    msg.data = array.array('B', padded.tobytes())
    out = image_to_numpy(msg)
    assert out.shape == (h, w, 3)
    np.testing.assert_array_equal(out, pixels)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert not out.flags.c_contiguous  # strided over the padding
    np.testing.assert_array_equal(image_to_rgb(msg), pixels)


def test_row_padding_bgr_and_mono() -> None:
    h, w, pad = 3, 4, 4
    bgr = _rgb(h, w, seed=1)
    rows = np.zeros((h, w * 3 + pad), np.uint8)
    rows[:, :w * 3] = bgr.reshape(h, -1)
    msg = Image(height=h, width=w, encoding='bgr8', step=w * 3 + pad)
    msg.data = array.array('B', rows.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), bgr[:, :, ::-1])
    gray = bgr[:, :, 0]
    rows = np.zeros((h, w + pad), np.uint8)
    rows[:, :w] = gray
    msg = Image(height=h, width=w, encoding='mono8', step=w + pad)
    msg.data = array.array('B', rows.tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), gray)


def test_unknown_encoding_names_it() -> None:
    msg = Image(height=1, width=1, encoding='16UC1', step=2)
    msg.data = array.array('B', b'\x00\x00')
    with pytest.raises(UnknownEncodingError, match="'16UC1'.*supported"):
        image_to_numpy(msg)
    with pytest.raises(UnknownEncodingError, match='yuv422'):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'yuv422')


@pytest.mark.parametrize('height, width, step, size, match', [
    (2, 2, 6, 11, r'11 bytes, expected step 6 x height 2 = 12'),
    (2, 2, 6, 13, r'13 bytes, expected'),
    (2, 2, 5, 10, r'step 5 < width 2 x 3 channels = 6'),
    (0, 2, 6, 0, 'must be positive'),
])
def test_wrong_sizes_name_the_values(height, width, step, size, match) -> None:
    msg = Image(height=height, width=width, encoding='rgb8', step=step)
    msg.data = array.array('B', bytes(size))
    with pytest.raises(ImageSizeError, match=match):
        image_to_numpy(msg)


@pytest.mark.parametrize('pixels, encoding', [
    (np.zeros((2, 2), np.uint8), 'rgb8'),
    (np.zeros((2, 2, 4), np.uint8), 'bgr8'),
    (np.zeros((2, 2, 3), np.uint16), 'rgb8'),
    (np.zeros((2, 2, 3), np.uint8), 'mono8'),
    (np.zeros((0, 2, 3), np.uint8), 'rgb8'),
])
def test_building_rejects_wrong_arrays(pixels: np.ndarray, encoding: str) -> None:
    with pytest.raises(ImageSizeError):
        numpy_to_image(pixels, encoding)
