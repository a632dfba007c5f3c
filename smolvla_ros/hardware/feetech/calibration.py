"""A LeRobot calibration's round trip to the servos' EEPROM (the file is core/robot/calibration.py).

Homing_Offset, Min_Position_Limit and Max_Position_Limit live in EEPROM:
writing them needs torque off and Lock = 0, and a calibration is trusted only once read back.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from smolvla_ros.core.robot.calibration import CalibrationError, MotorCalibration
from smolvla_ros.hardware.feetech.bus import FeetechBus


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
