"""Register value encodings: sign-magnitude and little-endian byte packing.

STS servos do not use two's complement for signed registers: the sign is one bit (bit 11 for
Homing_Offset, bit 15 for positions and velocities, bit 10 for load) and the rest is the magnitude.
Getting this wrong turns a small negative homing offset into a huge positive one, so it is kept in
one tested place.
"""
from __future__ import annotations

from smolvla_ros.hardware.feetech.errors import EncodingError
from smolvla_ros.hardware.feetech.tables import Register


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Signed integer -> raw register value with the sign in `sign_bit`."""
    magnitude = abs(int(value))
    max_magnitude = (1 << sign_bit) - 1
    if magnitude > max_magnitude:
        raise EncodingError(
            f'magnitude {magnitude} does not fit sign-magnitude with sign bit {sign_bit} '
            f'(max {max_magnitude})')
    return ((1 << sign_bit) | magnitude) if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Raw register value -> signed integer; bits above the sign bit are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def encode_value(reg: Register, value: int) -> int:
    """Decoded (signed where the register is signed) value -> raw unsigned register value."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            raise EncodingError(f'{reg.name}: value {value!r} is not an integer') from None
        if as_int != value:
            raise EncodingError(f'{reg.name}: value {value!r} is not an integer')
        value = as_int
    if reg.sign_bit is not None:
        raw = encode_sign_magnitude(value, reg.sign_bit)
    else:
        if value < 0:
            raise EncodingError(f'{reg.name} is unsigned; got {value}')
        raw = value
    if raw >= 1 << (8 * reg.size):
        raise EncodingError(f'{reg.name}: {value} does not fit in {reg.size} byte(s)')
    return raw


def decode_value(reg: Register, raw: int) -> int:
    """Raw unsigned register value -> decoded (signed where the register is signed) value."""
    if reg.sign_bit is not None:
        return decode_sign_magnitude(raw, reg.sign_bit)
    return raw


def to_bytes(raw: int, size: int) -> bytes:
    """Little-endian bytes of an unsigned raw value (protocol 0 word order)."""
    return int(raw).to_bytes(size, 'little')


def from_bytes(data: bytes | list[int]) -> int:
    """Little-endian bytes -> unsigned raw value."""
    return int.from_bytes(bytes(data), 'little')
