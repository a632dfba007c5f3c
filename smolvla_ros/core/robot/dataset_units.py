"""ROS radians <-> dataset units (LeRobot's per-joint norm modes), the one conversion of the stack.

The executor, the policy server's I/O and the bag converter all go through :class:`DatasetUnits`,
built from the contract (units per joint) and the arm's LeRobot calibration. The arithmetic is
``smolvla_ros.core.robot.units`` (the driver's own tick mapping), so a value converted here
and a value the driver reads from the servos can never disagree.

ROS radians are the radians of LeRobot's DEGREES mapping for every joint (units.py), so a joint in
``degrees`` converts without a calibration; ``range_m100_100`` / ``range_0_100`` joints depend on
the calibrated range and need one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
import os
from pathlib import Path

import numpy as np

from smolvla_ros.core.robot import units
from smolvla_ros.core.robot.calibration import MotorCalibration, load_calibration
from smolvla_ros.core.robot.contract import RobotContract


class CalibrationRequiredError(ValueError):
    """A range-unit joint has no calibration to convert with (names the joints and the key)."""


class DatasetUnits:
    """Vectorised conversion of joint arrays [..., J] between ROS rad and dataset units."""

    def __init__(self, joint_names: Sequence[str], modes: Sequence[units.NormMode | str],
                 calibration: Mapping[str, MotorCalibration] | None = None) -> None:
        self.joint_names = tuple(joint_names)
        self.modes = tuple(units.NormMode(m) for m in modes)
        if len(self.modes) != len(self.joint_names):
            raise ValueError(f'{len(self.modes)} units for {len(self.joint_names)} joints')
        self._cal: units.CalibrationArrays | None = None
        if calibration is not None:
            # Raises CalibrationError naming the joints the file lacks.
            self._cal = units.CalibrationArrays.from_calibration(calibration, self.joint_names)
        else:
            ranged = [n for n, m in zip(self.joint_names, self.modes, strict=True)
                      if m is not units.NormMode.DEGREES]
            if ranged:
                raise CalibrationRequiredError(
                    f'joints {ranged} use range units and need a calibration file '
                    '(contract key calibration_file)')

    @classmethod
    def from_contract(cls, contract: RobotContract,
                      calibration: Mapping[str, MotorCalibration] | str | os.PathLike[str] | None
                      = None) -> DatasetUnits:
        """Converter for a contract; ``calibration`` (dict or file) overrides the contract's file.

        The calibration file is only read when a joint uses a range unit.
        """
        if calibration is None and contract.needs_calibration:
            if contract.calibration_file is None:
                ranged = [j.name for j in contract.joints
                          if j.unit is not units.NormMode.DEGREES]
                raise CalibrationRequiredError(
                    f'{contract.source}: calibration_file: joints {ranged} use range units but '
                    'the contract names no calibration file')
            calibration = contract.calibration_file
        if isinstance(calibration, (str, os.PathLike)):
            calibration = load_calibration(Path(calibration))
        return cls(contract.joint_names, contract.joint_units, calibration)

    @property
    def calibration(self) -> units.CalibrationArrays | None:
        return self._cal

    def _check(self, values: np.ndarray | Sequence[float]) -> np.ndarray:
        a = np.asarray(values, dtype=np.float64)
        if a.shape[-1:] != (len(self.joint_names),):
            raise ValueError(f'last axis must hold {len(self.joint_names)} joints '
                             f'{list(self.joint_names)}, got shape {a.shape}')
        return a

    def to_dataset(self, rad: np.ndarray | Sequence[float]) -> np.ndarray:
        """ROS radians [..., J] -> dataset units [..., J] (float64)."""
        rad = self._check(rad)
        if self._cal is None:  # all joints in degrees: DEGREES is the radian mapping itself
            return np.rad2deg(rad)
        return units.radians_to_norm(rad, self.modes, self._cal)

    def to_ros(self, values: np.ndarray | Sequence[float]) -> np.ndarray:
        """Dataset units [..., J] -> ROS radians [..., J] (float64)."""
        values = self._check(values)
        if self._cal is None:
            return np.deg2rad(values)
        return units.norm_to_radians(values, self.modes, self._cal)
