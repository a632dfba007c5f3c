"""sensor_msgs/CompressedImage (JPEG, PNG) <-> RGB numpy arrays, through OpenCV.

RGB arrays in, RGB arrays out: OpenCV encodes and decodes BGR, so the channel swap happens here
and nowhere else. A JPEG stores colour (YCbCr), not a channel order, so the bytes are the same
whoever wrote them; a mono JPEG decodes to three equal channels.

Format strings accepted (``CompressedImage.format``): ``jpeg``/``jpg``/``png`` as this stack and
ROS image_transport write them, and image_transport's long form
``"<encoding>; jpeg compressed <encoding>"`` (e.g. ``"rgb8; jpeg compressed bgr8"``).
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage

from smolvla_ros.opencv import cv2
from smolvla_ros.ros.buffers import to_array, view
from smolvla_ros.ros.errors import (
    ImageDecodeError,
    ImageEncodeError,
    ImageSizeError,
    UnknownFormatError,
)
from smolvla_ros.ros.time import ns_to_stamp

JPEG = 'jpeg'
PNG = 'png'
_ALIASES = {'jpeg': JPEG, 'jpg': JPEG, 'png': PNG}
_JPEG_SOI = b'\xff\xd8'  # start of image marker
_JPEG_EOI = b'\xff\xd9'  # end of image marker
_EOI_SEARCH = 256  # bytes before the zero padding in which EOI must appear
# Decode straight to RGB where OpenCV supports it (>= 4.10): saves the BGR->RGB copy.
_IMREAD_RGB = getattr(cv2, 'IMREAD_COLOR_RGB', None)


def parse_format(fmt: str) -> str:
    """The codec ('jpeg' or 'png') of a CompressedImage format string."""
    text = fmt.strip().lower()
    if ';' in text:
        # image_transport: "<orig encoding>; <codec> compressed <encoding>"
        tail = text.split(';', 1)[1].split()
        codec = tail[0] if len(tail) >= 2 and tail[1] == 'compressed' else ''
    else:
        codec = text
    try:
        return _ALIASES[codec]
    except KeyError:
        raise UnknownFormatError(
            f'unsupported CompressedImage format {fmt!r}; supported: jpeg, png, or '
            f'"<encoding>; jpeg compressed <encoding>"') from None


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 [H, W, 3] image (quality 1..100, OpenCV's default 4:2:0)."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f'JPEG quality must be an int in [1, 100], got {quality!r}')
    bgr = _rgb_to_bgr(rgb)
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageEncodeError(f'OpenCV failed to JPEG-encode an image of shape {rgb.shape}')
    return buf.tobytes()


def rgb_to_compressed(
    rgb: np.ndarray, *, quality: int = 90, codec: str = JPEG, stamp_ns: int = 0,
    frame_id: str = '',
) -> CompressedImage:
    """A CompressedImage (format 'jpeg' or 'png') from RGB uint8 [H, W, 3]."""
    codec = parse_format(codec)
    if codec == JPEG:
        data = encode_jpeg(rgb, quality)
    else:
        ok, buf = cv2.imencode('.png', _rgb_to_bgr(rgb))
        if not ok:
            raise ImageEncodeError(f'OpenCV failed to PNG-encode an image of shape {rgb.shape}')
        data = buf.tobytes()
    msg = CompressedImage()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.format = codec
    msg.data = to_array(data, np.uint8)
    return msg


def decode_to_rgb(data: bytes | np.ndarray, codec: str = JPEG) -> np.ndarray:
    """Decode JPEG/PNG bytes to RGB uint8 [H, W, 3]; ImageDecodeError on corrupt input."""
    buf = view(data, np.uint8)  # [N], zero-copy over the message buffer
    if buf.size == 0:
        raise ImageDecodeError(f'empty {codec} data')
    if codec == JPEG:
        if bytes(buf[:2]) != _JPEG_SOI:
            raise ImageDecodeError(
                f'not a JPEG: starts with {bytes(buf[:4]).hex()} instead of ffd8 ({buf.size} B)')
        if not _has_end_marker(buf):
            raise ImageDecodeError(f'truncated JPEG: no end-of-image marker ({buf.size} B)')
    if _IMREAD_RGB is not None:
        rgb = cv2.imdecode(buf, _IMREAD_RGB)
    else:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        rgb = None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb is None:
        raise ImageDecodeError(f'corrupt {codec} data ({buf.size} B): OpenCV could not decode it')
    return rgb  # [H, W, 3]


def _has_end_marker(buf: np.ndarray) -> bool:
    """Whether a JPEG stream ends with EOI (ffd9), allowing zero padding and a short tail.

    libjpeg decodes a truncated stream into a partly grey image with only a warning, so the check
    must happen here. MJPEG webcams pad frames with zeros and some writers append a few bytes after
    EOI; inside the entropy-coded data 0xff is always stuffed, so ffd9 near the end is the marker.
    """
    end = buf.size
    while end > 0:  # skip trailing zero padding, one block at a time from the end
        block = buf[max(0, end - 4096):end]
        nonzero = np.flatnonzero(block)  # [k] indices of non-zero bytes in the block
        if nonzero.size:
            end = end - block.size + int(nonzero[-1]) + 1
            return _JPEG_EOI in bytes(buf[max(0, end - _EOI_SEARCH):end])
        end -= block.size
    return False


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a CompressedImage (format checked first)."""
    return decode_to_rgb(msg.data, parse_format(msg.format))


def _rgb_to_bgr(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ImageSizeError(f'RGB pixels must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}')
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # [H, W, 3], a copy in OpenCV's order
