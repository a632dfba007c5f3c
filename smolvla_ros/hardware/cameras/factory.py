"""Choose and build a camera source from frozen, validated parameters (the node's parameters)."""
from __future__ import annotations

from dataclasses import dataclass
import math

from smolvla_ros.hardware.cameras.base import CameraConfigError, CameraSource

SOURCE_KINDS = ('synthetic', 'device', 'file')


@dataclass(frozen=True)
class CameraSourceConfig:
    """Which source, and the geometry and rate asked of it.

    ``width``/``height`` = 0 keep the device's or file's own size (synthetic needs both);
    ``fps`` = 0 keeps the device's or file's own rate (synthetic needs it).
    """

    kind: str = 'synthetic'
    device: str = '0'  # index ('0') or path ('/dev/video0')
    file: str = ''
    width: int = 640
    height: int = 480
    fps: float = 30.0
    loop: bool = True

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise CameraConfigError(f'source must be one of {SOURCE_KINDS}, got {self.kind!r}')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CameraConfigError(f'{name} must be an int >= 0, got {value!r}')
        if (self.width == 0) != (self.height == 0):
            raise CameraConfigError(f'give both width and height, or neither (0), got '
                                    f'{self.width}x{self.height}')
        if not (math.isfinite(self.fps) and self.fps >= 0):
            raise CameraConfigError(f'fps must be a finite number >= 0, got {self.fps!r}')
        if self.kind == 'synthetic' and (self.width == 0 or self.fps == 0):
            raise CameraConfigError('the synthetic source needs width, height and fps > 0')
        if self.kind == 'file' and not self.file:
            raise CameraConfigError("source 'file' needs the file parameter (a video path)")
        if self.kind == 'device' and not self.device:
            raise CameraConfigError("source 'device' needs the device parameter (0 or a path)")


def make_source(config: CameraSourceConfig) -> CameraSource:
    """The (unconnected) source for a config; OpenCV is imported only by the sources using it."""
    if config.kind == 'synthetic':
        from smolvla_ros.hardware.cameras.synthetic import SyntheticSource
        return SyntheticSource(config.width, config.height, config.fps)
    from smolvla_ros.hardware.cameras.opencv_source import DeviceSource, VideoFileSource
    if config.kind == 'file':
        return VideoFileSource(config.file, config.width, config.height, config.fps, config.loop)
    device: int | str = int(config.device) if config.device.isdigit() else config.device
    return DeviceSource(device, config.width, config.height, config.fps)
