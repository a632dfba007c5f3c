"""Sign-magnitude encodings and the control table."""
from __future__ import annotations

import pytest

from smolvla_ros.hardware.feetech.encoding import (
    decode_sign_magnitude,
    decode_value,
    encode_sign_magnitude,
    encode_value,
    from_bytes,
    to_bytes,
)
from smolvla_ros.hardware.feetech.errors import EncodingError, UnknownRegisterError
from smolvla_ros.hardware.feetech.tables import (
    CALIBRATION_REGISTERS,
    SRAM_START,
    STS3215_TABLE,
    register,
    status_flags,
)


@pytest.mark.parametrize(('value', 'bit', 'raw'), [
    (0, 11, 0x000), (10, 11, 0x00A), (-10, 11, 0x80A), (2047, 11, 0x7FF), (-2047, 11, 0xFFF),
    (-5, 15, 0x8005), (4095, 15, 0x0FFF), (-1000, 10, 0x400 | 1000),
])
def test_sign_magnitude_vectors(value: int, bit: int, raw: int) -> None:
    assert encode_sign_magnitude(value, bit) == raw
    assert decode_sign_magnitude(raw, bit) == value


def test_sign_magnitude_round_trip_and_overflow() -> None:
    for v in range(-2047, 2048, 7):
        assert decode_sign_magnitude(encode_sign_magnitude(v, 11), 11) == v
    with pytest.raises(EncodingError, match='does not fit'):
        encode_sign_magnitude(2048, 11)
    with pytest.raises(EncodingError):
        encode_sign_magnitude(-2048, 11)


def test_register_value_encoding() -> None:
    homing = register('Homing_Offset')
    assert to_bytes(encode_value(homing, -10), homing.size) == b'\x0a\x08'
    assert decode_value(homing, from_bytes(b'\x0a\x08')) == -10
    goal = register('Goal_Position')
    assert decode_value(goal, encode_value(goal, -300)) == -300
    with pytest.raises(EncodingError, match='unsigned'):
        encode_value(register('Torque_Enable'), -1)
    with pytest.raises(EncodingError, match='1 byte'):
        encode_value(register('Lock'), 256)
    with pytest.raises(EncodingError, match='not an integer'):
        encode_value(register('Goal_Position'), 1.5)
    assert encode_value(register('Goal_Position'), 2.0) == 2


def test_control_table_facts() -> None:
    assert (register('Present_Position').address, register('Present_Position').size) == (56, 2)
    assert (register('Goal_Position').address, register('Goal_Position').sign_bit) == (42, 15)
    assert register('Homing_Offset').sign_bit == 11 and register('Homing_Offset').eeprom
    assert register('Present_Load').sign_bit == 10
    assert register('Lock').address == 55 and not register('Lock').eeprom
    assert all(register(r).eeprom for r in CALIBRATION_REGISTERS)
    # No two registers overlap.
    spans = sorted((r.address, r.address + r.size) for r in STS3215_TABLE.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    assert all((r.address < SRAM_START) == r.eeprom for r in STS3215_TABLE.values())
    with pytest.raises(UnknownRegisterError, match='Present_Position'):
        register('Present_Positon')


def test_status_flags() -> None:
    assert status_flags(0) == ()
    assert status_flags(0x04 | 0x20) == ('overheat', 'overload')
