"""Between the simulated joints (rad) and the emulated STS3215 servos (encoder ticks).

The emulator's hooks work in the servo's Actual (encoder) frame: Present = Actual - Homing_Offset.
smolvla_ros maps Present ticks to radians through the LeRobot calibration (units.py: rad =
sign * (present - mid) * 2*pi/4095), and the ``so101_new_calib`` model has its zero at the same
mid pose with the same directions, so: simulated angle -> present ticks -> + Homing_Offset ->
the emulator, and the goals back the same way. The real driver, reading the emulator with the same
calibration file, then publishes exactly the simulated angles (to a tick).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from smolvla_ros.core.robot.calibration import MotorCalibration
from smolvla_ros.core.robot.units import (
    CalibrationArrays,
    radians_to_raw,
    raw_to_radians,
)
from smolvla_ros.sim.scene import JOINT_NAMES

RESOLUTION = 4096


class ServoBridge:
    """Converts joint angles [6] (JOINT_NAMES order) <-> {servo id: Actual ticks}."""

    def __init__(self, calibration: Mapping[str, MotorCalibration]) -> None:
        self.cal = CalibrationArrays.from_calibration(calibration, JOINT_NAMES)
        self.ids = [calibration[n].id for n in JOINT_NAMES]
        self.offsets = np.array([calibration[n].homing_offset for n in JOINT_NAMES], dtype=float)

    def actual_ticks(self, angles: np.ndarray) -> dict[int, float]:
        """Encoder positions (Actual frame) for simulated angles (rad)."""
        present = radians_to_raw(np.asarray(angles, dtype=np.float64), self.cal)  # [6] float
        actual = np.mod(present + self.offsets, RESOLUTION)
        return {i: float(a) for i, a in zip(self.ids, actual, strict=True)}

    def goal_angles(self, goals: Mapping[int, float]) -> np.ndarray:
        """Simulated target angles (rad) [6] from the servos' goals (Actual frame)."""
        actual = np.array([goals[i] for i in self.ids], dtype=np.float64)
        present = np.mod(actual - self.offsets, RESOLUTION)
        return raw_to_radians(present, self.cal)

    def torque_mask(self, enabled: Mapping[int, bool]) -> np.ndarray:
        """[6] bool: True where torque is off (the joint is limp)."""
        return np.array([not enabled[i] for i in self.ids], dtype=bool)
