"""The narrow view of a Feetech bus that the driver logic needs, and the servo setup it applies.

:class:`ServoBus` is a Protocol: ``smolvla_ros.hardware.feetech.bus.FeetechBus`` satisfies it, and
so do the byte-free fakes of the unit tests. Values are decoded register values (signed where the
register is sign-magnitude), motors are addressed by name.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import logging
import termios
from typing import Any, Protocol

from smolvla_ros.core.robot.calibration import CalibrationError
from smolvla_ros.hardware.arm.arm_config import MotorCalibrationLike, Role
from smolvla_ros.hardware.feetech.calibration import (
    calibration_mismatches,
    write_calibration_to_bus,
)
from smolvla_ros.hardware.feetech.errors import (
    BusNotConnectedError,
    CommunicationError,
    MotorStatusError,
    PortError,
)

logger = logging.getLogger(__name__)

# The port is gone: close, then reopen later. pyserial's flush() raises termios.error (not an
# OSError) when the adapter has vanished, and the SDK lets it through.
PORT_ERRORS: tuple[type[BaseException], ...] = (
    BusNotConnectedError, PortError, OSError, termios.error)
# One transfer failed after the bus's own retries: count it, hold, maybe fault.
TRANSFER_ERRORS: tuple[type[BaseException], ...] = (CommunicationError, MotorStatusError)


class CalibrationMismatchError(CalibrationError):
    """The servos' homing offsets or position limits differ from the calibration file."""


class ServoBus(Protocol):
    """What :class:`~smolvla_ros.hardware.arm.arm_control.ArmController` calls on a bus."""

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def ping(self, name: str) -> int | None: ...
    def read(self, register: str, name: str) -> int: ...
    def write(self, register: str, name: str, value: int) -> None: ...
    def sync_read(self, register: str, names: Iterable[str] | None = None) -> dict[str, int]: ...
    def sync_read_registers(
        self, registers: Sequence[str], names: Sequence[str] | None = None
    ) -> dict[str, dict[str, int]]: ...
    def sync_write(self, register: str, values: Mapping[str, int]) -> None: ...
    def enable_torque(self, names: Iterable[str] | None = None) -> None: ...
    def disable_torque(self, names: Iterable[str] | None = None) -> None: ...

    @property
    def stats(self) -> Any: ...


# LeRobot's SO follower setup (``SOFollower.configure``; docs/lerobot_compat.md, "SO-100 / SO-101
# arms and the Feetech bus"): written only where the servo differs, so a restart does not wear
# the EEPROM.
COMMON_SETUP: tuple[tuple[str, int], ...] = (
    ('Return_Delay_Time', 0),
    ('Operating_Mode', 0),
)
FOLLOWER_SETUP: tuple[tuple[str, int], ...] = (
    ('Acceleration', 254),
    ('P_Coefficient', 16),
    ('I_Coefficient', 0),
    ('D_Coefficient', 32),
)
GRIPPER_SETUP: tuple[tuple[str, int], ...] = (
    ('Max_Torque_Limit', 500),
    ('Protection_Current', 250),
    ('Overload_Torque', 25),
)


def verify_calibration(
    bus: ServoBus, calibration: Mapping[str, MotorCalibrationLike], write: bool
) -> list[str]:
    """Check the servos against the file; write the file's values when ``write`` (torque off).

    Returns the differences found (and fixed). Raises :class:`CalibrationMismatchError` when
    values differ and ``write`` is False: driving with offsets the file does not describe would
    put every joint somewhere else than the published angle says.
    """
    problems = calibration_mismatches(bus, calibration)
    if not problems:
        return []
    if not write:
        raise CalibrationMismatchError(
            'servos differ from the calibration file (' + '; '.join(problems) + '); set '
            'write_calibration:=true to write the file to the servos, or recalibrate'
        )
    logger.warning('writing calibration to the servos: %s', '; '.join(problems))
    write_calibration_to_bus(bus, calibration)  # verifies the read-back itself
    return problems


def apply_servo_setup(bus: ServoBus, names: Iterable[str], role: Role) -> int:
    """Write LeRobot's per-role servo setup where it differs; returns the number of writes."""
    names = list(names)
    bus.disable_torque(names)  # Torque_Enable=0, Lock=0: EEPROM writable
    setup = COMMON_SETUP + (FOLLOWER_SETUP if role is Role.FOLLOWER else ())
    writes = 0
    for register, value in setup:
        current = bus.sync_read(register, names)
        for name in names:
            if current[name] != value:
                bus.write(register, name, value)
                writes += 1
    if role is Role.FOLLOWER and 'gripper' in names:
        for register, value in GRIPPER_SETUP:
            if bus.read(register, 'gripper') != value:
                bus.write(register, 'gripper', value)
                writes += 1
    return writes
