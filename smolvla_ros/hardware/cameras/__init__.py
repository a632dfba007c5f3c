"""Camera sources behind one small ABC (ROS-free): OpenCV device, looping video file, test pattern.

The ``camera`` node only ever sees :class:`CameraSource`; tests and CI use the file and synthetic
sources, which need no device (hardware is faked at the lowest level: docs/ARCHITECTURE.md, "House
rules").
"""
from smolvla_ros.hardware.cameras.base import (
    CameraConfigError,
    CameraError,
    CameraNotConnectedError,
    CameraReadError,
    CameraSource,
    Frame,
)
from smolvla_ros.hardware.cameras.factory import SOURCE_KINDS, CameraSourceConfig, make_source

__all__ = [
    'SOURCE_KINDS', 'CameraConfigError', 'CameraError', 'CameraNotConnectedError',
    'CameraReadError', 'CameraSource', 'CameraSourceConfig', 'Frame', 'make_source',
]
