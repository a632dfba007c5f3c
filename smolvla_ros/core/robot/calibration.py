"""LeRobot's calibration file: one record per motor, read and written as LeRobot does.

A file is {motor name: {"id", "drive_mode", "homing_offset", "range_min", "range_max"}} (indent 4),
the same file LeRobot writes under ~/.cache/huggingface/lerobot/calibration/, so one calibration
serves both stacks. The ranges are raw ticks of the SO-100/SO-101 servos (STS3215, 12-bit); the
round trip to the servos' EEPROM is ``smolvla_ros.hardware.feetech.calibration``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import tempfile


class CalibrationError(ValueError):
    """A calibration file or calibration value that is malformed or does not match the motors."""


MAX_ID = 0xFC  # highest servo id on the bus (hardware/feetech/tables.py MAX_ID, checked by a test)
MAX_RAW = 4095  # STS3215 resolution 4096
MAX_HOMING_OFFSET = 2047  # sign-magnitude, sign in bit 11
FIELDS = ('id', 'drive_mode', 'homing_offset', 'range_min', 'range_max')


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's calibration (raw ticks, in the servo's Present frame after Homing_Offset)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CalibrationError(f'{name} must be an integer, got {value!r}')
        if not 0 <= self.id <= MAX_ID:
            raise CalibrationError(f'id must be in 0..{MAX_ID}, got {self.id}')
        if self.drive_mode not in (0, 1):
            raise CalibrationError(f'drive_mode must be 0 or 1, got {self.drive_mode}')
        if not -MAX_HOMING_OFFSET <= self.homing_offset <= MAX_HOMING_OFFSET:
            raise CalibrationError(
                f'homing_offset must be in -{MAX_HOMING_OFFSET}..{MAX_HOMING_OFFSET}, '
                f'got {self.homing_offset}')
        for name in ('range_min', 'range_max'):
            if not 0 <= getattr(self, name) <= MAX_RAW:
                raise CalibrationError(f'{name} must be in 0..{MAX_RAW}, got {getattr(self, name)}')
        if self.range_min >= self.range_max:
            raise CalibrationError(
                f'range_min ({self.range_min}) must be below range_max ({self.range_max})')

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2.0


def calibration_from_dict(data: object, source: str = '<dict>') -> dict[str, MotorCalibration]:
    """Validate a parsed JSON object; errors name the source and the motor."""
    if not isinstance(data, dict) or not data:
        raise CalibrationError(f'{source}: expected a non-empty JSON object of motors')
    out: dict[str, MotorCalibration] = {}
    for motor, entry in data.items():
        if not isinstance(entry, dict):
            raise CalibrationError(f'{source}: motor {motor!r} must be an object')
        missing = [f for f in FIELDS if f not in entry]
        extra = sorted(set(entry) - set(FIELDS))
        if missing or extra:
            raise CalibrationError(
                f'{source}: motor {motor!r} has missing fields {missing} / unknown fields {extra}')
        try:
            out[motor] = MotorCalibration(**{f: entry[f] for f in FIELDS})
        except CalibrationError as exc:
            raise CalibrationError(f'{source}: motor {motor!r}: {exc}') from None
    ids = [c.id for c in out.values()]
    if len(set(ids)) != len(ids):
        raise CalibrationError(f'{source}: motor ids are not unique: {ids}')
    return out


def load_calibration(path: str | os.PathLike[str]) -> dict[str, MotorCalibration]:
    """Read and validate a LeRobot calibration JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f'cannot read calibration file {path}: {exc}') from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f'{path}: not valid JSON: {exc}') from exc
    return calibration_from_dict(data, str(path))


def save_calibration(path: str | os.PathLike[str], cal: Mapping[str, MotorCalibration]) -> None:
    """Write `cal` in LeRobot's format (indent 4), atomically (no half-written file on error)."""
    if not cal:
        raise CalibrationError('refusing to save an empty calibration')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({name: asdict(c) for name, c in cal.items()}, indent=4)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
