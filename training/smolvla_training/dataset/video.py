"""Decode frames of LeRobot mp4 files by timestamp through PyAV (AV1 via libdav1d, H.264).

LeRobot v3.0 concatenates episodes in one file: a frame is found at ``from_timestamp +
timestamp`` and must lie within the tolerance (1e-4 s) of a decoded frame's time, else the
dataset is out of sync and the read fails instead of returning a neighbouring frame.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from smolvla_training.lerobot_format import TOLERANCE_S


class VideoDecodeError(RuntimeError):
    """A frame that is not in the video within the tolerance, or an unreadable video file."""


def decode_all(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame of a video: (times s float64 [N], RGB uint8 [H, W, 3] list)."""
    times, frames = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                times.append(float(frame.pts * stream.time_base))
                frames.append(frame.to_ndarray(format='rgb24'))
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f'{path}: cannot decode ({exc})') from exc
    return np.asarray(times, dtype=np.float64), frames


class VideoFile:
    """One open mp4 from which frames are read by time (seek to the keyframe, decode forward)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            raise VideoDecodeError(f'{path}: cannot open ({exc})') from exc
        self._stream = self._container.streams.video[0]

    def frame_at(self, t_s: float, tolerance_s: float = TOLERANCE_S) -> np.ndarray:
        """RGB uint8 [H, W, 3] of the frame at ``t_s`` seconds (within ``tolerance_s``)."""
        tb = self._stream.time_base
        try:
            self._container.seek(max(0, int(t_s / tb)), stream=self._stream, backward=True,
                                 any_frame=False)
            for frame in self._container.decode(self._stream):
                ft = float(frame.pts * tb)
                if ft < t_s - tolerance_s:
                    continue
                if ft > t_s + tolerance_s:
                    break
                return frame.to_ndarray(format='rgb24')
        except av.FFmpegError as exc:
            raise VideoDecodeError(f'{self.path}: decode error at {t_s:.4f} s ({exc})') from exc
        raise VideoDecodeError(f'{self.path}: no frame within {tolerance_s} s of {t_s:.4f} s')

    def close(self) -> None:
        self._container.close()
