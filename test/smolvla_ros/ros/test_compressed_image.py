"""CompressedImage JPEG/PNG: RGB in, RGB out, bounded JPEG error, specific decode errors."""
from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from smolvla_ros.ros.compressed import (
    check_frame_size,
    compressed_to_rgb,
    decode_to_rgb,
    encode_jpeg,
    frame_size,
    parse_format,
    rgb_to_compressed,
)
from smolvla_ros.ros.errors import ImageDecodeError, ImageSizeError, UnknownFormatError
from smolvla_ros.ros.synthetic import synthetic_scene


def _blocks() -> np.ndarray:
    """Four flat colour quadrants: JPEG reproduces them closely and any channel swap is huge."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:32, :32] = (220, 30, 30)  # red
    img[:32, 32:] = (30, 220, 30)  # green
    img[32:, :32] = (30, 30, 220)  # blue
    img[32:, 32:] = (240, 200, 40)  # yellow
    return img


def test_jpeg_round_trip_keeps_rgb_order() -> None:
    rgb = _blocks()
    msg = rgb_to_compressed(rgb, quality=95, stamp_ns=9, frame_id='front')
    assert msg.format == 'jpeg' and msg.header.frame_id == 'front'
    out = compressed_to_rgb(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # Quadrant centres, away from 8x8 block edges: a few grey levels off, colours not swapped.
    for y, x in ((8, 8), (8, 56), (56, 8), (56, 56)):
        assert np.abs(out[y, x].astype(int) - rgb[y, x]).max() <= 6, (y, x, out[y, x], rgb[y, x])


def test_jpeg_error_is_bounded_on_a_realistic_scene() -> None:
    rgb = synthetic_scene(128, 160, seed=3)
    out = compressed_to_rgb(rgb_to_compressed(rgb, quality=90))
    err = np.abs(out.astype(np.int16) - rgb)
    assert err.mean() < 6.0
    assert np.percentile(err, 99) < 30


def test_lower_quality_is_smaller_and_worse() -> None:
    rgb = synthetic_scene(96, 96, seed=1)
    hi, lo = encode_jpeg(rgb, 95), encode_jpeg(rgb, 30)
    assert len(lo) < len(hi)
    err = [np.abs(decode_to_rgb(b).astype(int) - rgb).mean() for b in (hi, lo)]
    assert err[1] > err[0]


def test_png_round_trip_is_exact() -> None:
    rgb = synthetic_scene(40, 50, seed=2)
    msg = rgb_to_compressed(rgb, codec='png')
    assert msg.format == 'png'
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)


def test_image_transport_format_from_opencv_bgr_bytes() -> None:
    """Bytes written the image_transport way (cv2 on BGR, long format) decode to the same RGB."""
    rgb = _blocks()
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    msg = CompressedImage(format='rgb8; jpeg compressed bgr8')
    msg.data = array.array('B', buf.tobytes())
    out = compressed_to_rgb(msg)
    assert np.abs(out[8, 8].astype(int) - rgb[8, 8]).max() <= 6


def test_mono_jpeg_decodes_to_three_equal_channels() -> None:
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))  # [16, 64]
    ok, buf = cv2.imencode('.jpg', gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    msg = CompressedImage(format='mono8; jpeg compressed mono8')
    msg.data = array.array('B', buf.tobytes())
    out = compressed_to_rgb(msg)
    assert out.shape == (16, 64, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert np.abs(out[..., 1].astype(int) - gray).max() <= 4


@pytest.mark.parametrize('fmt, codec', [
    ('jpeg', 'jpeg'), ('JPEG', 'jpeg'), ('jpg', 'jpeg'), ('png', 'png'),
    ('rgb8; jpeg compressed bgr8', 'jpeg'), ('bgr8; png compressed bgr8', 'png'),
])
def test_parse_format(fmt: str, codec: str) -> None:
    assert parse_format(fmt) == codec


@pytest.mark.parametrize(
    'fmt', ['', 'theora', 'rgb8; compressedDepth', 'h264', 'rgb8; qoi compressed'])
def test_unknown_format_names_it(fmt: str) -> None:
    with pytest.raises(UnknownFormatError, match='unsupported CompressedImage format'):
        parse_format(fmt)


def _message(data: bytes, fmt: str = 'jpeg') -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array('B', data)
    return msg


def test_corrupt_and_truncated_jpeg_are_rejected() -> None:
    good = encode_jpeg(synthetic_scene(64, 64), 90)
    with pytest.raises(ImageDecodeError, match='empty jpeg'):
        compressed_to_rgb(_message(b''))
    with pytest.raises(ImageDecodeError, match='not a JPEG: starts with 89504e47'):
        compressed_to_rgb(_message(b'\x89PNG\r\n\x1a\n' + bytes(100)))
    with pytest.raises(ImageDecodeError, match='truncated JPEG'):
        compressed_to_rgb(_message(good[: len(good) // 2]))
    garbled = good[:2] + bytes(len(good) - 4) + good[-2:]  # markers kept, content destroyed
    with pytest.raises(ImageDecodeError, match='corrupt JPEG: no marker at byte 2'):
        compressed_to_rgb(_message(garbled))
    with pytest.raises(ImageDecodeError, match='not a PNG'):
        compressed_to_rgb(_message(b'not a png at all', 'png'))
    png = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageDecodeError, match='corrupt png'):  # header fine, data cut short
        compressed_to_rgb(_message(png[:40] + png[-12:], 'png'))


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header rewritten to claim width x height."""
    sof = data.index(b'\xff\xc0')
    return (data[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
            + data[sof + 9:])


def test_frame_size_is_read_from_the_header() -> None:
    jpeg = encode_jpeg(synthetic_scene(48, 64), 90)
    assert frame_size(jpeg) == (64, 48)
    png = cv2.imencode('.png', np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    assert frame_size(png, 'png') == (7, 5)
    with pytest.raises(ImageDecodeError, match='DNL'):
        frame_size(_jpeg_with_size(jpeg, 64, 0))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    """A few hundred bytes whose header claims 20000x20000 (a minute and gigabytes to decode)."""
    small = encode_jpeg(np.full((8, 8, 3), 128, np.uint8), 50)
    bomb = _jpeg_with_size(small, 20000, 20000)
    assert len(bomb) < 1000
    with pytest.raises(ImageSizeError, match='20000x20000, larger than the 640x480 allowed'):
        decode_to_rgb(bomb, max_size=(640, 480), what='camera front')
    with pytest.raises(ImageSizeError, match='camera front'):
        check_frame_size(bomb, 'jpeg', (640, 480), 'camera front')
    png = bytearray(cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    png[16:24] = (20000).to_bytes(4, 'big') * 2
    with pytest.raises(ImageSizeError, match='20000x20000'):
        compressed_to_rgb(_message(bytes(png), 'png'), max_size=(640, 480))
    huge = encode_jpeg(np.zeros((8, 8, 3), np.uint8)) + bytes(2_000_000)  # padding is allowed,
    with pytest.raises(ImageSizeError, match='more than a 64x48 frame can need'):  # not this much
        decode_to_rgb(huge, max_size=(64, 48))
    ok = encode_jpeg(synthetic_scene(48, 64), 90)
    assert decode_to_rgb(ok, max_size=(64, 48)).shape == (48, 64, 3)  # the bound is inclusive


def test_jpeg_cut_short_with_its_end_marker_reappended_is_refused() -> None:
    """libjpeg fills the missing half with grey and only warns; the scan check refuses it."""
    good = encode_jpeg(synthetic_scene(480, 640, seed=3), 90)
    assert decode_to_rgb(good).shape == (480, 640, 3)
    cut = good[: len(good) // 2] + b'\xff\xd9'
    assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is not None  # accepted
    with pytest.raises(ImageDecodeError, match='corrupt or truncated JPEG scan'):
        decode_to_rgb(cut)


def test_padded_jpeg_from_a_webcam_is_accepted() -> None:
    """MJPEG webcams pad frames with zeros; some writers append bytes after the end marker."""
    rgb = synthetic_scene(48, 48, seed=6)
    good = encode_jpeg(rgb, 90)
    reference = decode_to_rgb(good)
    for data in (good + bytes(10_000), good + b'\x01\x02trailer', good + b'tail' + bytes(5000)):
        np.testing.assert_array_equal(compressed_to_rgb(_message(data)), reference)
    with pytest.raises(ImageDecodeError, match='truncated JPEG'):
        compressed_to_rgb(_message(good[:-300] + bytes(10_000)))


@pytest.mark.parametrize('quality', [0, 101, 9.5, True])
def test_bad_quality_is_rejected(quality) -> None:
    with pytest.raises(ValueError, match='quality'):
        encode_jpeg(np.zeros((8, 8, 3), np.uint8), quality)


def test_bad_input_array_is_rejected() -> None:
    with pytest.raises(ImageSizeError, match=r'\[H, W, 3\]'):
        encode_jpeg(np.zeros((8, 8), np.uint8))
