"""Typed errors of the message <-> numpy conversions.

All derive from ``ConversionError`` (a ``ValueError``), so a node can skip one malformed message
with a single ``except ConversionError`` while tests assert the exact kind. Messages name the
offending values.
"""
from __future__ import annotations


class ConversionError(ValueError):
    """A message that cannot be converted (or data that cannot become a message)."""


class StampError(ConversionError):
    """A time stamp outside what builtin_interfaces/Time can hold, or malformed."""


class LengthMismatchError(ConversionError):
    """Parallel arrays of a message disagree in length (names vs positions, steps x joints...)."""


class DuplicateJointError(ConversionError):
    """The same joint name appears twice in one message."""


class MissingJointError(ConversionError):
    """Joints required in a given order are absent from a message."""

    def __init__(self, missing: list[str], available: list[str]) -> None:
        self.missing = list(missing)
        self.available = list(available)
        super().__init__(f'missing joints {self.missing}; the message has {self.available}')


class UnknownEncodingError(ConversionError):
    """A sensor_msgs/Image encoding this module does not handle (only rgb8, bgr8, mono8)."""


class ImageSizeError(ConversionError):
    """Image geometry and data disagree (step too small, data too short, wrong array shape)."""


class UnknownFormatError(ConversionError):
    """A CompressedImage format string this module does not decode (JPEG and PNG only)."""


class ImageDecodeError(ConversionError):
    """CompressedImage bytes that do not decode: empty, truncated or corrupt."""


class ImageEncodeError(ConversionError):
    """OpenCV refused to encode an image."""
