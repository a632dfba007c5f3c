"""Calibration in LeRobot's JSON format, and its round trip to the servos' EEPROM.

A file is {motor name: {"id", "drive_mode", "homing_offset", "range_min", "range_max"}} (indent 4),
the same file LeRobot writes under ~/.cache/huggingface/lerobot/calibration/, so one calibration
serves both stacks. Homing_Offset, Min_Position_Limit and Max_Position_Limit live in EEPROM:
writing them needs torque off and Lock = 0, and a calibration is trusted only once read back.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import tempfile

from smolvla_ros.hardware.feetech.bus import FeetechBus
from smolvla_ros.hardware.feetech.errors import CalibrationError
from smolvla_ros.hardware.feetech.tables import MAX_ID

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


def _check_matches_bus(bus: FeetechBus, cal: Mapping[str, MotorCalibration]) -> None:
    unknown = sorted(set(cal) - set(bus.motors))
    if unknown:
        raise CalibrationError(f'calibration has motors {unknown} that the bus does not know')
    for name, c in cal.items():
        if bus.motors[name].id != c.id:
            raise CalibrationError(
                f'{name}: calibration id {c.id} != bus motor id {bus.motors[name].id}')


def read_calibration_from_bus(bus: FeetechBus, names: Sequence[str] | None = None,
                              drive_modes: Mapping[str, int] | None = None
                              ) -> dict[str, MotorCalibration]:
    """Calibration as stored in the servos' EEPROM (offset and position limits).

    The servo has no drive-mode register, so drive_mode comes from `drive_modes` (default 0, which
    is what LeRobot's procedure always writes).
    """
    block = bus.sync_read_registers(
        ['Min_Position_Limit', 'Max_Position_Limit', 'Homing_Offset'], names)
    drive_modes = drive_modes or {}
    out = {}
    for name, regs in block.items():
        try:
            out[name] = MotorCalibration(
                id=bus.motors[name].id, drive_mode=int(drive_modes.get(name, 0)),
                homing_offset=regs['Homing_Offset'], range_min=regs['Min_Position_Limit'],
                range_max=regs['Max_Position_Limit'])
        except CalibrationError as exc:
            raise CalibrationError(f'{name}: the servo holds an invalid calibration: {exc}'
                                   ) from None
    return out


def calibration_mismatches(bus: FeetechBus, cal: Mapping[str, MotorCalibration]) -> list[str]:
    """Human-readable differences between `cal` and the servos' EEPROM; empty when they agree."""
    _check_matches_bus(bus, cal)
    block = bus.sync_read_registers(
        ['Min_Position_Limit', 'Max_Position_Limit', 'Homing_Offset'], list(cal))
    problems = []
    for name, c in cal.items():
        for reg, want in (('Homing_Offset', c.homing_offset), ('Min_Position_Limit', c.range_min),
                          ('Max_Position_Limit', c.range_max)):
            have = block[name][reg]
            if have != want:
                problems.append(f'{name}: {reg} is {have} on the servo, {want} in the calibration')
    return problems


def write_calibration_to_bus(bus: FeetechBus, cal: Mapping[str, MotorCalibration]) -> None:
    """Write offsets and limits to EEPROM (torque off, Lock 0, write, Lock 1), then verify.

    Torque is left off: the caller decides when it is safe to hold position again (goal := present
    first). Raises CalibrationError if the read-back differs (e.g. the EEPROM stayed locked).
    """
    _check_matches_bus(bus, cal)
    for name, c in cal.items():
        bus.write('Torque_Enable', name, 0)
        bus.write('Lock', name, 0)
        bus.write('Homing_Offset', name, c.homing_offset)
        bus.write('Min_Position_Limit', name, c.range_min)
        bus.write('Max_Position_Limit', name, c.range_max)
        bus.write('Lock', name, 1)
    problems = calibration_mismatches(bus, cal)
    if problems:
        raise CalibrationError('calibration did not stick: ' + '; '.join(problems))
