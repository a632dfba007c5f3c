"""mp4 writing for the simulator's videos (``smolvla-ros demo``, ``smolvla-ros eval --video``).

PyAV (docs/ARCHITECTURE.md, "House rules": no torchvision/torchcodec, broken with our torch):
H.264 (libx264) when this PyAV build has it, else MPEG-4 part 2, both yuv420p, so any player opens
the files.
"""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CODECS = ('libx264', 'mpeg4')


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write RGB frames (uint8 [H, W, 3], one size, even H and W) as an mp4; returns `path`."""
    import av
    if not frames:
        raise RuntimeError('no frames were rendered')
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f'yuv420p needs an even frame size, got {w}x{h}')
    for codec in CODECS:
        try:
            container = av.open(str(path), mode='w')
            stream = container.add_stream(codec, rate=Fraction(round(fps * 1000), 1000))
        except (av.error.FFmpegError, ValueError) as exc:
            logger.info('codec %s unavailable (%s); trying the next', codec, exc)
            continue
        stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        return path
    raise RuntimeError(f'PyAV can encode none of {CODECS}')
