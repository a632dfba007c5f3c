"""Per-camera mp4 writing through PyAV with LeRobot's encoding defaults
(docs/lerobot_compat.md, "Datasets").

One :class:`VideoWriter` holds one open mp4 (episodes are concatenated into it, v3.0 style);
frame k of the file has pts k in a 1/fps time base, so an episode's ``from_timestamp`` is simply
its first frame's index / fps. :func:`decoded_frame_times` is the check's side: it decodes a whole
file in constant memory.
"""
from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from smolvla_training.convert.errors import ConvertError
from smolvla_training.dataset.video import VideoDecodeError

VCODECS = ('libsvtav1', 'h264')
_CANONICAL = {'libsvtav1': 'av1', 'h264': 'h264'}
GOP = 2  # LeRobot's g
CRF = 30
SVTAV1_PRESET = 12


class VideoWriter:
    """Encode RGB frames of one size into one mp4 (yuv420p, g=2, crf=30)."""

    def __init__(self, path: Path, width: int, height: int, fps: float,
                 vcodec: str = 'libsvtav1') -> None:
        if vcodec not in VCODECS:
            raise ConvertError(f'vcodec must be one of {VCODECS}, got {vcodec!r}')
        if width % 2 or height % 2:
            raise ConvertError(f'yuv420p video needs even sizes, got {width}x{height}')
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.width, self.height, self.vcodec = path, width, height, vcodec
        self.frames = 0
        self._container = av.open(str(path), mode='w')
        rate = Fraction(fps).limit_denominator(1000)
        options = {'g': str(GOP), 'crf': str(CRF)}
        if vcodec == 'libsvtav1':
            options['preset'] = str(SVTAV1_PRESET)
        self._stream = self._container.add_stream(vcodec, rate=rate, options=options)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = 'yuv420p'
        self._stream.time_base = 1 / rate

    @property
    def codec_name(self) -> str:
        return _CANONICAL[self.vcodec]

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 [H, W, 3] frame."""
        if rgb.shape != (self.height, self.width, 3):
            raise ConvertError(f'{self.path.name}: frame of shape {rgb.shape}, expected '
                               f'{(self.height, self.width, 3)}')
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode(None):  # flush the encoder
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        """Close without flushing (the temp directory is deleted anyway)."""
        with contextlib.suppress(av.FFmpegError, OSError, ValueError):  # already broken
            self._container.close()

    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6 if self.path.exists() else 0.0


def decoded_frame_times(path: Path) -> np.ndarray:
    """Times (s, float64 [N], decode order) of every frame of an mp4, each frame decoded.

    Every frame is decoded, so a damaged stream is found, but no frame is kept or converted to
    RGB: memory stays that of one frame however long the file (keeping them cost 0.9 MB per
    640x480 frame, 9 GB for a 50-episode batch of two cameras; bench/convert_memory.py).
    """
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                times.append(float(frame.pts * stream.time_base))
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f'{path}: cannot decode ({exc})') from exc
    return np.asarray(times, dtype=np.float64)
