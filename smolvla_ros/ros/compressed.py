"""sensor_msgs/CompressedImage (JPEG, PNG) <-> RGB numpy arrays, through OpenCV.

RGB arrays in, RGB arrays out: OpenCV encodes and decodes BGR, so the channel swap happens here
and nowhere else. A JPEG stores colour (YCbCr), not a channel order, so the bytes are the same
whoever wrote them; a mono JPEG decodes to three equal channels.

Format strings accepted (``CompressedImage.format``): ``jpeg``/``jpg``/``png`` as this stack and
ROS image_transport write them, and image_transport's long form
``"<encoding>; jpeg compressed <encoding>"`` (e.g. ``"rgb8; jpeg compressed bgr8"``).

Untrusted bytes are bounded before they are decoded (docs/async_inference.md, "Bounded
decoding"): a 631-byte JPEG whose header claims 20000x20000 pixels takes a minute and gigabytes
to decode. With a ``max_size`` the frame header (JPEG SOFn, PNG IHDR) is read first, and a frame
larger than that, or carrying more bytes than such a frame can need, is refused before any pixel
is decoded. A JPEG must also be complete: libjpeg (and so OpenCV and Pillow) fills a scan that
ends early with grey and only prints a warning, which a JPEG cut short with its end marker
re-appended passes silently. The scan is therefore checked by FFmpeg's JPEG decoder (PyAV) with
``err_detect=explode``, which fails on a scan that runs out of data; OpenCV stays the decoder of
record. The check costs about one more decode of the frame; an arithmetic-coded JPEG (rare; not
supported by FFmpeg) is refused by it.
"""
from __future__ import annotations

from functools import lru_cache
from types import ModuleType

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
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG frame headers: SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: no length field
_MAX_SEGMENTS = 1024  # markers walked before the frame header, at most
# Bytes a compressed frame may carry beyond its raw pixel size (metadata, ICC profiles): a valid
# JPEG or PNG of w x h pixels is never larger than 3 w h + this.
_HEADER_ALLOWANCE = 1 << 20
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


def frame_size(data: bytes | np.ndarray, codec: str = JPEG) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header or a PNG's IHDR, without decoding anything.

    Raises ImageDecodeError when the bytes are not a JPEG/PNG or the header is missing or cut.
    """
    buf = view(data, np.uint8)  # [N], zero-copy
    if buf.size == 0:
        raise ImageDecodeError(f'empty {codec} data')
    return _jpeg_size(buf) if codec == JPEG else _png_size(buf)


def check_frame_size(data: bytes | np.ndarray, codec: str, max_size: tuple[int, int],
                     what: str = 'frame') -> tuple[int, int]:
    """Refuse (ImageSizeError) a frame larger than ``max_size`` = (width, height) before decoding.

    The byte count is bounded first (nothing is parsed in a payload no such frame can need),
    then the header's width and height. Returns the header's (width, height).
    """
    max_w, max_h = max_size
    buf = view(data, np.uint8)  # [N]
    max_bytes = 3 * max_w * max_h + _HEADER_ALLOWANCE
    if buf.size > max_bytes:
        raise ImageSizeError(f'{what}: {buf.size} B of {codec} data is more than a {max_w}x{max_h} '
                             f'frame can need ({max_bytes} B); refused without decoding')
    width, height = frame_size(buf, codec)
    if width > max_w or height > max_h:
        raise ImageSizeError(f'{what}: the {codec} header says {width}x{height}, larger than the '
                             f'{max_w}x{max_h} allowed; refused without decoding')
    return width, height


def decode_to_rgb(data: bytes | np.ndarray, codec: str = JPEG,
                  max_size: tuple[int, int] | None = None, what: str = 'frame') -> np.ndarray:
    """Decode JPEG/PNG bytes to RGB uint8 [H, W, 3]; ImageDecodeError on corrupt input.

    ``max_size`` (width, height) bounds the frame before anything is decoded (ImageSizeError
    naming ``what``); a JPEG's scan must be complete (see the module docstring).
    """
    buf = view(data, np.uint8)  # [N], zero-copy over the message buffer
    if buf.size == 0:
        raise ImageDecodeError(f'empty {codec} data')
    if max_size is not None:
        width, height = check_frame_size(buf, codec, max_size, what)
    else:
        width, height = frame_size(buf, codec)
    if codec == JPEG:
        if not _has_end_marker(buf):
            raise ImageDecodeError(f'truncated JPEG: no end-of-image marker ({buf.size} B)')
        _check_jpeg_scan(buf)
    if _IMREAD_RGB is not None:
        rgb = cv2.imdecode(buf, _IMREAD_RGB)
    else:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        rgb = None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb is None:
        raise ImageDecodeError(f'corrupt {codec} data ({buf.size} B): OpenCV could not decode it')
    if rgb.shape[:2] != (height, width):
        raise ImageDecodeError(f'{codec} header says {width}x{height} but {rgb.shape[1]}x'
                               f'{rgb.shape[0]} decoded')
    return rgb  # [H, W, 3]


def _jpeg_size(buf: np.ndarray) -> tuple[int, int]:
    """Walk the marker segments from SOI to the first SOFn and read its width and height."""
    n = buf.size
    if bytes(buf[:2]) != _JPEG_SOI:
        raise ImageDecodeError(
            f'not a JPEG: starts with {bytes(buf[:4]).hex()} instead of ffd8 ({n} B)')
    i = 2
    for _ in range(_MAX_SEGMENTS):
        if i >= n:
            break
        if buf[i] != 0xFF:
            raise ImageDecodeError(f'corrupt JPEG: no marker at byte {i} before the frame '
                                   f'header ({n} B)')
        while i < n and buf[i] == 0xFF:  # a marker may be preceded by fill bytes
            i += 1
        if i + 2 >= n:
            break
        marker = int(buf[i])
        i += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI or the scan before any frame header
            raise ImageDecodeError(f'corrupt JPEG: no frame header before marker ff{marker:02x}')
        length = int(buf[i]) << 8 | int(buf[i + 1])
        if length < 2:
            raise ImageDecodeError(f'corrupt JPEG: segment ff{marker:02x} of length {length}')
        if marker in _JPEG_SOF:
            if length < 8 or i + 7 > n:
                raise ImageDecodeError(f'truncated JPEG frame header ({n} B)')
            height = int(buf[i + 3]) << 8 | int(buf[i + 4])
            width = int(buf[i + 5]) << 8 | int(buf[i + 6])
            if not width or not height:
                raise ImageDecodeError(f'JPEG frame header says {width}x{height} (a height '
                                       'defined later by a DNL marker is not supported)')
            return width, height
        i += length
    else:
        raise ImageDecodeError(f'corrupt JPEG: no frame header in its first {_MAX_SEGMENTS} '
                               f'segments ({n} B)')
    raise ImageDecodeError(f'truncated JPEG: the data ends before the frame header ({n} B)')


def _png_size(buf: np.ndarray) -> tuple[int, int]:
    if bytes(buf[:8]) != _PNG_SIGNATURE:
        raise ImageDecodeError(f'not a PNG: starts with {bytes(buf[:8]).hex()} ({buf.size} B)')
    if buf.size < 24 or bytes(buf[12:16]) != b'IHDR':
        raise ImageDecodeError(f'corrupt PNG: no IHDR chunk first ({buf.size} B)')
    width = int.from_bytes(bytes(buf[16:20]), 'big')
    height = int.from_bytes(bytes(buf[20:24]), 'big')
    if not width or not height:
        raise ImageDecodeError(f'PNG header says {width}x{height}')
    return width, height


@lru_cache(maxsize=1)
def _av() -> ModuleType:
    import av  # PyAV (requirements/runtime.txt); imported on the first JPEG decode only
    return av


def _check_jpeg_scan(buf: np.ndarray) -> None:
    """ImageDecodeError unless FFmpeg decodes the JPEG without running out of scan data."""
    av = _av()
    ctx = av.CodecContext.create('mjpeg', 'r')  # one per call: thread-safe, ~10 us
    ctx.options = {'err_detect': 'explode'}
    ctx.thread_count = 1
    try:
        frames = ctx.decode(av.Packet(buf.tobytes()))
    except av.error.FFmpegError as exc:
        raise ImageDecodeError(f'corrupt or truncated JPEG scan ({buf.size} B): {exc}') from None
    if not frames:
        raise ImageDecodeError(f'corrupt JPEG ({buf.size} B): no frame decoded')


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


def compressed_to_rgb(msg: CompressedImage, max_size: tuple[int, int] | None = None,
                      what: str = 'frame') -> np.ndarray:
    """RGB uint8 [H, W, 3] from a CompressedImage (format checked first; ``max_size`` (width,
    height) bounds it before decoding, see :func:`decode_to_rgb`)."""
    return decode_to_rgb(msg.data, parse_format(msg.format), max_size, what)


def _rgb_to_bgr(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ImageSizeError(f'RGB pixels must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}')
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # [H, W, 3], a copy in OpenCV's order
