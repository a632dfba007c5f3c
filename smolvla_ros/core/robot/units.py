"""Unit conversions: raw ticks <-> LeRobot's normalized units <-> radians, vectorised over joints.

LeRobot's three normalization modes (``MotorsBus._normalize``; docs/lerobot_compat.md, "SO-100 /
SO-101 arms and the Feetech bus"), with mid = (range_min + range_max) / 2:
  DEGREES:        deg = (raw - mid) * 360 / 4095            (raw not clamped)
  RANGE_M100_100: n = (clamp(raw) - min) / (max - min) * 200 - 100
  RANGE_0_100:    n = (clamp(raw) - min) / (max - min) * 100
drive_mode 1 inverts (deg -> -deg, n -> -n, n -> 100 - n). Writes truncate toward zero like
LeRobot's int(). ROS joint positions are the radians of the DEGREES mapping for every joint,
gripper included, so a calibrated mid pose is 0 rad and the direction matches LeRobot's degrees.

Arrays are (..., J): the last axis follows `CalibrationArrays.names`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import enum

import numpy as np

from smolvla_ros.core.robot.calibration import CalibrationError, MotorCalibration

TICKS_PER_TURN = 4095.0  # LeRobot divides by the max raw value, not 4096
DEG_PER_TICK = 360.0 / TICKS_PER_TURN
RAD_PER_TICK = np.deg2rad(DEG_PER_TICK)


class NormMode(str, enum.Enum):
    """LeRobot's MotorNormMode values."""

    DEGREES = 'degrees'
    RANGE_M100_100 = 'range_m100_100'
    RANGE_0_100 = 'range_0_100'


@dataclass(frozen=True, eq=False)
class CalibrationArrays:
    """Per-joint calibration as float arrays (J,), in a fixed joint order."""

    names: tuple[str, ...]
    range_min: np.ndarray
    range_max: np.ndarray
    drive_mode: np.ndarray  # (J,) bool: True inverts

    @classmethod
    def from_calibration(cls, cal: Mapping[str, MotorCalibration],
                         names: Sequence[str] | None = None) -> CalibrationArrays:
        names = tuple(cal) if names is None else tuple(names)
        missing = [n for n in names if n not in cal]
        if missing:
            raise CalibrationError(f'no calibration for joints {missing}; have {list(cal)}')
        return cls(
            names=names,
            range_min=np.array([cal[n].range_min for n in names], dtype=np.float64),
            range_max=np.array([cal[n].range_max for n in names], dtype=np.float64),
            drive_mode=np.array([cal[n].drive_mode == 1 for n in names], dtype=bool),
        )

    @property
    def mid(self) -> np.ndarray:
        return (self.range_min + self.range_max) / 2.0

    @property
    def span(self) -> np.ndarray:
        return self.range_max - self.range_min

    @property
    def sign(self) -> np.ndarray:
        return np.where(self.drive_mode, -1.0, 1.0)


def _arr(x: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape[-1:] != (len(cal.names),):
        raise ValueError(f'last axis must have {len(cal.names)} joints {cal.names}, got {a.shape}')
    return a


def _ticks(raw: np.ndarray, truncate: bool) -> np.ndarray:
    return np.trunc(raw).astype(np.int64) if truncate else raw


# -- DEGREES / radians ---------------------------------------------------------------------------

def raw_to_degrees(raw: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    return cal.sign * (_arr(raw, cal) - cal.mid) * DEG_PER_TICK


def degrees_to_raw(deg: np.ndarray | Sequence[float], cal: CalibrationArrays,
                   truncate: bool = True) -> np.ndarray:
    """Degrees -> raw ticks (no clamp, as LeRobot); int64 truncated unless `truncate=False`."""
    return _ticks(cal.sign * _arr(deg, cal) / DEG_PER_TICK + cal.mid, truncate)


def raw_to_radians(raw: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    return np.deg2rad(raw_to_degrees(raw, cal))


def radians_to_raw(rad: np.ndarray | Sequence[float], cal: CalibrationArrays,
                   truncate: bool = False) -> np.ndarray:
    """Radians -> raw ticks. Default keeps floats; use `to_goal_ticks` for a register value."""
    return degrees_to_raw(np.rad2deg(_arr(rad, cal)), cal, truncate=truncate)


def to_goal_ticks(rad: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    """Radians -> nearest raw tick inside the calibrated range (int64), for Goal_Position."""
    raw = radians_to_raw(rad, cal)
    return np.clip(np.rint(raw), cal.range_min, cal.range_max).astype(np.int64)


# -- LeRobot range modes -------------------------------------------------------------------------

def raw_to_range_m100_100(raw: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    r = np.clip(_arr(raw, cal), cal.range_min, cal.range_max)
    n = (r - cal.range_min) / cal.span * 200.0 - 100.0
    return cal.sign * n


def range_m100_100_to_raw(n: np.ndarray | Sequence[float], cal: CalibrationArrays,
                          truncate: bool = True) -> np.ndarray:
    v = np.clip(cal.sign * _arr(n, cal), -100.0, 100.0)
    return _ticks((v + 100.0) / 200.0 * cal.span + cal.range_min, truncate)


def raw_to_range_0_100(raw: np.ndarray | Sequence[float], cal: CalibrationArrays) -> np.ndarray:
    r = np.clip(_arr(raw, cal), cal.range_min, cal.range_max)
    n = (r - cal.range_min) / cal.span * 100.0
    return np.where(cal.drive_mode, 100.0 - n, n)


def range_0_100_to_raw(n: np.ndarray | Sequence[float], cal: CalibrationArrays,
                       truncate: bool = True) -> np.ndarray:
    v = _arr(n, cal)
    v = np.clip(np.where(cal.drive_mode, 100.0 - v, v), 0.0, 100.0)
    return _ticks(v / 100.0 * cal.span + cal.range_min, truncate)


# -- per-joint modes -----------------------------------------------------------------------------

def _modes(modes: NormMode | str | Sequence[NormMode | str], cal: CalibrationArrays
           ) -> list[NormMode]:
    if isinstance(modes, (str, NormMode)):
        return [NormMode(modes)] * len(cal.names)
    out = [NormMode(m) for m in modes]
    if len(out) != len(cal.names):
        raise ValueError(f'{len(out)} modes for {len(cal.names)} joints {cal.names}')
    return out


_TO_NORM = {
    NormMode.DEGREES: raw_to_degrees,
    NormMode.RANGE_M100_100: raw_to_range_m100_100,
    NormMode.RANGE_0_100: raw_to_range_0_100,
}
_FROM_NORM = {
    NormMode.DEGREES: degrees_to_raw,
    NormMode.RANGE_M100_100: range_m100_100_to_raw,
    NormMode.RANGE_0_100: range_0_100_to_raw,
}


def raw_to_norm(raw: np.ndarray | Sequence[float], modes: NormMode | str | Sequence[NormMode | str],
                cal: CalibrationArrays) -> np.ndarray:
    """Raw ticks -> LeRobot units, one mode per joint (e.g. DEGREES x5 + RANGE_0_100)."""
    raw = _arr(raw, cal)
    out = np.empty_like(raw)
    for j, mode in enumerate(_modes(modes, cal)):
        out[..., j] = _TO_NORM[mode](raw, cal)[..., j]
    return out


def norm_to_raw(values: np.ndarray | Sequence[float],
                modes: NormMode | str | Sequence[NormMode | str], cal: CalibrationArrays,
                truncate: bool = True) -> np.ndarray:
    """LeRobot units -> raw ticks (truncated int64 like LeRobot, or floats)."""
    values = _arr(values, cal)
    out = np.empty_like(values)
    for j, mode in enumerate(_modes(modes, cal)):
        out[..., j] = _FROM_NORM[mode](values, cal, truncate=False)[..., j]
    return _ticks(out, truncate)


def norm_to_radians(values: np.ndarray | Sequence[float],
                    modes: NormMode | str | Sequence[NormMode | str],
                    cal: CalibrationArrays) -> np.ndarray:
    """LeRobot units -> ROS radians (through float ticks, no rounding)."""
    return raw_to_radians(norm_to_raw(values, modes, cal, truncate=False), cal)


def radians_to_norm(rad: np.ndarray | Sequence[float],
                    modes: NormMode | str | Sequence[NormMode | str],
                    cal: CalibrationArrays) -> np.ndarray:
    """ROS radians -> LeRobot units (through float ticks, no rounding)."""
    return raw_to_norm(radians_to_raw(rad, cal), modes, cal)


# -- limits --------------------------------------------------------------------------------------

def radian_limits(cal: CalibrationArrays) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) joint limits in rad (J,); drive_mode 1 swaps which end is lower."""
    a = raw_to_radians(cal.range_min, cal)
    b = raw_to_radians(cal.range_max, cal)
    return np.minimum(a, b), np.maximum(a, b)


def clamp_radians(rad: np.ndarray | Sequence[float], cal: CalibrationArrays
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Clamp to the calibrated range; returns (clamped, bool mask of joints that were clipped)."""
    rad = _arr(rad, cal)
    lo, hi = radian_limits(cal)
    clamped = np.clip(rad, lo, hi)
    return clamped, clamped != rad
