"""Camera sources: synthetic pattern, looping video file, device errors, pacing, rate meter."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from smolvla_ros.hardware.cameras import (
    CameraConfigError,
    CameraError,
    CameraNotConnectedError,
    CameraReadError,
    CameraSourceConfig,
    make_source,
)


def _video(path, frames: int = 5, size=(32, 24)) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 50.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.release()
    return str(path)


def test_synthetic_frames_change_and_have_the_requested_size() -> None:
    with make_source(CameraSourceConfig('synthetic', width=64, height=48, fps=200.0)) as cam:
        a, b = cam.read(), cam.read()
    assert a.rgb.shape == (48, 64, 3) and a.rgb.dtype == np.uint8
    assert b.index == a.index + 1 and not np.array_equal(a.rgb, b.rgb)
    assert b.capture_monotonic_s > a.capture_monotonic_s


def test_sources_pace_reads_to_the_requested_fps() -> None:
    with make_source(CameraSourceConfig('synthetic', width=32, height=32, fps=20.0)) as cam:
        start = time.monotonic()
        for _ in range(6):
            cam.read()
        elapsed = time.monotonic() - start
    assert elapsed >= 5 * 0.05 * 0.9  # 6 frames at 20 fps span at least 5 periods


def test_video_file_loops_and_resizes(tmp_path) -> None:
    path = _video(tmp_path / 'clip.avi', frames=3)
    with make_source(CameraSourceConfig('file', file=path, width=16, height=12,
                                        fps=500.0)) as cam:
        means = [cam.read().rgb.mean() for _ in range(7)]
        assert cam.read().rgb.shape == (12, 16, 3)
    assert means[0] == pytest.approx(means[3], abs=3) and means[1] == pytest.approx(means[4],
                                                                                     abs=3)
    assert means[2] > means[1] > means[0]


def test_video_file_without_loop_ends_with_a_read_error(tmp_path) -> None:
    path = _video(tmp_path / 'clip.avi', frames=2)
    with make_source(CameraSourceConfig('file', file=path, width=0, height=0, fps=500.0,
                                        loop=False)) as cam:
        cam.read(), cam.read()
        with pytest.raises(CameraReadError, match='ended'):
            cam.read()


def test_missing_file_device_and_bad_config_fail_clearly(tmp_path) -> None:
    with pytest.raises(CameraConfigError, match='does not exist'):
        make_source(CameraSourceConfig('file', file=str(tmp_path / 'nope.mp4'))).connect()
    with pytest.raises(CameraError, match="cannot open camera device '/dev/video_missing'"):
        make_source(CameraSourceConfig('device', device='/dev/video_missing')).connect()
    with pytest.raises(CameraConfigError, match="source must be one of"):
        CameraSourceConfig('usb')
    with pytest.raises(CameraConfigError, match='both width and height'):
        CameraSourceConfig('synthetic', width=64, height=0)
    with pytest.raises(CameraConfigError, match="needs the file parameter"):
        CameraSourceConfig('file')


def test_read_before_connect_and_async_timeout() -> None:
    # 0.2 fps: the next frame is 5 s away, so a stalled test thread cannot reach it within 50 ms.
    cam = make_source(CameraSourceConfig('synthetic', width=32, height=32, fps=0.2))
    with pytest.raises(CameraNotConnectedError):
        cam.read()
    with cam:
        cam.read()  # the first frame is immediate; the next one is due in 5 s
        with pytest.raises(CameraReadError, match='no frame within 50 ms'):
            cam.async_read(50)

