"""Configuration and joint geometry of one Feetech arm, as the ROS-free driver logic sees it.

:class:`ArmConfig` is what the ``feetech_driver`` node freezes its ROS parameters into; every
check lives in ``__post_init__`` so a bad parameter fails at start with the offending value.
:class:`ArmJoints` turns a LeRobot calibration (``range_min``/``range_max``/``drive_mode`` per
motor) into joint order, ids and limits in radians.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import enum
import math
from typing import Protocol

import numpy as np

from smolvla_ros.core.robot import units
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS


class Role(str, enum.Enum):
    """A follower is commanded and may hold torque; a leader is read only and stays limp."""

    FOLLOWER = 'follower'
    LEADER = 'leader'


# The SO-100/SO-101 joints that stall protection watches by default: all but the gripper.
SO101_ARM_JOINTS = tuple(n for n in SO101_MOTOR_IDS if n != 'gripper')


class ArmConfigError(ValueError):
    """An invalid driver parameter (the message names it and its value)."""


@dataclass(frozen=True)
class ArmConfig:
    """Driver behaviour; defaults match the ``feetech_driver`` parameter defaults."""

    role: Role = Role.FOLLOWER
    rate_hz: float = 100.0
    # Largest change of the goal per cycle (rad); 0 disables. 0.05 rad/cycle at 100 Hz = 5 rad/s.
    max_step_rad: float = 0.05
    # A joint's command older than this is not re-applied: the joint holds where it got to.
    command_timeout_s: float = 0.5
    # Consecutive failed cycles (each after the bus's own retries) before torque off + FAULT.
    max_consecutive_errors: int = 10
    # Seconds between attempts to reopen a port that disappeared.
    reconnect_interval_s: float = 1.0
    # Read Present_Velocity and Present_Load every cycle for joint_states velocity/effort.
    read_velocity_effort: bool = True
    # Temperature, voltage, status bits (and load when not read per cycle) every this many s.
    health_period_s: float = 1.0
    torque_off_on_shutdown: bool = True
    # Write the file's homing offsets and limits to the servos' EEPROM when they differ.
    write_calibration: bool = False
    # Readings may exceed the calibrated range by this much before enabling torque is refused.
    range_tolerance_rad: float = 0.1
    # Effort (N m) at 100 % Present_Load; STS3215 at 7.4 V stalls near 1.9 N m. 0 = no effort.
    effort_scale_nm: float = 1.9
    # Write LeRobot's servo setup (return delay, acceleration, PID, gripper current limits).
    configure_servos: bool = True
    enable_torque_on_start: bool = False
    # Stall protection (docs/driver.md, "Stall protection"): a watched joint whose |Present_Load|
    # (fraction of full) stays >= stall_load while its goal stays at least
    # stall_position_tolerance_rad away, for stall_timeout_s, stops pushing (goal := present,
    # latched). 0 = off. The gripper is not watched by default: a grasp is a stall by design.
    stall_load: float = 0.0
    stall_joints: tuple[str, ...] = SO101_ARM_JOINTS
    stall_position_tolerance_rad: float = 0.05
    stall_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, 'role', _role(self.role))
        object.__setattr__(self, 'stall_joints', _names('stall_joints', self.stall_joints))
        positive = ('rate_hz', 'command_timeout_s', 'reconnect_interval_s', 'health_period_s',
                    'stall_position_tolerance_rad', 'stall_timeout_s')
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ArmConfigError(f'{name} must be a finite number > 0, got {value}')
        for name in ('max_step_rad', 'range_tolerance_rad', 'effort_scale_nm'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ArmConfigError(f'{name} must be a finite number >= 0, got {value}')
        if self.max_consecutive_errors < 1:
            raise ArmConfigError(
                f'max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}'
            )
        if self.role is Role.LEADER and self.enable_torque_on_start:
            raise ArmConfigError('enable_torque_on_start is not allowed for role leader')
        if not (math.isfinite(self.stall_load) and 0.0 <= self.stall_load <= 1.0):
            raise ArmConfigError(
                f'stall_load must be a fraction of full load in 0..1 (0 = off), got '
                f'{self.stall_load}')
        if self.stall_load > 0.0 and self.role is Role.LEADER:
            raise ArmConfigError('stall_load is not allowed for role leader (it never holds '
                                 'torque)')
        if self.stall_load > 0.0 and not self.stall_joints:
            raise ArmConfigError('stall_load > 0 but stall_joints is empty: name the joints to '
                                 'watch, or set stall_load to 0')

    @property
    def stall_protection(self) -> bool:
        return self.stall_load > 0.0

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz


def _names(param: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ArmConfigError(f'{param} must be a list of joint names, got {value!r}')
    return tuple(value)


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ArmConfigError(f"role must be 'follower' or 'leader', got {value!r}") from None


class MotorCalibrationLike(Protocol):
    """The fields of a LeRobot calibration entry (``calibration.MotorCalibration``)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


@dataclass(frozen=True)
class ArmJoints:
    """Joint order, servo ids and calibrated limits (rad) of one arm, in calibration-file order."""

    names: tuple[str, ...]
    ids: tuple[int, ...]
    calibration: Mapping[str, MotorCalibrationLike]
    arrays: units.CalibrationArrays
    lower: np.ndarray  # (J,) rad
    upper: np.ndarray  # (J,) rad

    @classmethod
    def from_calibration(cls, calibration: Mapping[str, MotorCalibrationLike]) -> ArmJoints:
        if not calibration:
            raise ArmConfigError('the calibration has no motors')
        names = tuple(calibration)
        ids = tuple(int(calibration[n].id) for n in names)
        if len(set(ids)) != len(ids):
            pairs = dict(zip(names, ids, strict=True))
            raise ArmConfigError(f'duplicate motor ids in calibration: {pairs}')
        arrays = units.CalibrationArrays.from_calibration(calibration, names)
        lower, upper = units.radian_limits(arrays)
        return cls(names, ids, dict(calibration), arrays, lower, upper)

    def __len__(self) -> int:
        return len(self.names)

    def to_radians(self, raw: Mapping[str, int]) -> np.ndarray:
        """Present_Position ticks by name -> (J,) rad in joint order."""
        ticks = np.array([raw[n] for n in self.names], dtype=np.float64)  # (J,)
        return units.raw_to_radians(ticks, self.arrays)

    def to_ticks(self, rad: np.ndarray) -> dict[str, int]:
        """(J,) rad -> Goal_Position ticks by name, clamped to each calibrated tick range."""
        ticks = units.to_goal_ticks(rad, self.arrays)  # (J,) int64, nearest tick in range
        return dict(zip(self.names, ticks.tolist(), strict=True))

    def velocity_to_rad_s(self, raw: Mapping[str, int]) -> np.ndarray:
        """Present_Velocity (ticks/s, signed) by name -> (J,) rad/s, drive_mode applied."""
        v = np.array([raw[n] for n in self.names], dtype=np.float64)  # (J,)
        return v * self.arrays.sign * units.RAD_PER_TICK
