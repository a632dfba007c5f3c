"""LeRobot's calibration procedure for an SO-100/SO-101 arm, free of any user interface.

The steps of LeRobot's ``SOFollower.calibrate`` (docs/lerobot_compat.md, "SO-100 / SO-101 arms
and the Feetech bus"), each a method so a terminal UI, a script or a test can drive them:

1. :meth:`CalibrationProcedure.prepare`: torque off, EEPROM unlocked, position mode.
2. :meth:`~CalibrationProcedure.set_half_turn_homing`: with the arm in the middle of its range,
   reset offsets and limits, read each raw position p and write Homing_Offset = p - 2047, so that
   (Present = Actual - Homing_Offset) the mid pose reads 2047 on every servo.
3. :meth:`~CalibrationProcedure.record_ranges`: the user moves every joint but the full-turn ones
   (``wrist_roll``) through its whole range while min and max are tracked; full-turn joints get
   0..4095.
4. :meth:`~CalibrationProcedure.write`: offsets and limits to EEPROM, verified by read-back.

The caller decides when a step ends (ENTER on a terminal, a timer in a script), through the
``should_stop`` callback of :meth:`~CalibrationProcedure.record_ranges`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import logging
import time

from smolvla_ros.core.robot.calibration import (
    MAX_HOMING_OFFSET,
    MAX_RAW,
    CalibrationError,
    MotorCalibration,
)
from smolvla_ros.hardware.feetech.bus import FeetechBus
from smolvla_ros.hardware.feetech.calibration import write_calibration_to_bus
from smolvla_ros.hardware.feetech.errors import CommunicationError

logger = logging.getLogger(__name__)

HALF_TURN = 2047  # the mid pose reads this after homing
FULL_TURN_JOINTS = ('wrist_roll',)


@dataclass
class RangeProgress:
    """What a UI shows while ranges are recorded (raw ticks per joint)."""

    elapsed_s: float
    current: dict[str, int]
    minimum: dict[str, int]
    maximum: dict[str, int]
    errors: int


class CalibrationProcedure:
    """State of one calibration run on a connected bus (motors addressed by name)."""

    def __init__(self, bus: FeetechBus, names: Sequence[str] | None = None,
                 full_turn: Sequence[str] = FULL_TURN_JOINTS,
                 drive_modes: Mapping[str, int] | None = None) -> None:
        self.bus = bus
        self.names = list(names) if names is not None else list(bus.motors)
        unknown = sorted(set(self.names) - set(bus.motors))
        if unknown:
            raise CalibrationError(f'motors {unknown} are not on the bus ({list(bus.motors)})')
        self.full_turn = [n for n in self.names if n in full_turn]
        self.swept = [n for n in self.names if n not in self.full_turn]
        self.drive_modes = {n: int((drive_modes or {}).get(n, 0)) for n in self.names}
        self.homing: dict[str, int] | None = None
        self.range_min: dict[str, int] | None = None
        self.range_max: dict[str, int] | None = None

    def prepare(self) -> None:
        """Torque off and Lock 0 on every motor, then position mode (Operating_Mode 0)."""
        self.bus.disable_torque(self.names)
        for name in self.names:
            self.bus.write('Operating_Mode', name, 0)

    def set_half_turn_homing(self) -> dict[str, int]:
        """Make the current pose read 2047 on every servo; returns the offsets written.

        Raises CalibrationError naming every joint whose reading is too close to the end of the
        encoder for an offset to fit in the register's 11-bit magnitude (move it nearer its
        middle and retry).
        """
        for name in self.names:
            self.bus.write('Homing_Offset', name, 0)
            self.bus.write('Min_Position_Limit', name, 0)
            self.bus.write('Max_Position_Limit', name, MAX_RAW)
        raw = self.bus.sync_read('Present_Position', self.names)
        offsets = {n: raw[n] - HALF_TURN for n in self.names}
        bad = {n: raw[n] for n, o in offsets.items() if abs(o) > MAX_HOMING_OFFSET}
        if bad:
            raise CalibrationError(
                f'joint(s) read {bad}: homing offsets would exceed {MAX_HOMING_OFFSET}; put '
                f'these joints nearer the middle of their range and retry')
        for name, offset in offsets.items():
            self.bus.write('Homing_Offset', name, offset)
        self.homing = offsets
        return dict(offsets)

    def record_ranges(self, should_stop: Callable[[RangeProgress], bool], poll_s: float = 0.02,
                      max_consecutive_errors: int = 25,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> RangeProgress:
        """Track min/max of every swept joint until ``should_stop(progress)`` returns True.

        A read that fails after the bus's retries is skipped and counted; that many in a row
        raises. Returns the final progress; raises CalibrationError for joints that never moved.
        """
        if self.homing is None:
            raise CalibrationError('set_half_turn_homing() must run before record_ranges()')
        first = self.bus.sync_read('Present_Position', self.swept) if self.swept else {}
        progress = RangeProgress(0.0, dict(first), dict(first), dict(first), 0)
        start, consecutive = clock(), 0
        while not should_stop(progress):
            sleep(poll_s)
            progress.elapsed_s = clock() - start
            if not self.swept:
                continue
            try:
                raw = self.bus.sync_read('Present_Position', self.swept)
            except CommunicationError as exc:
                progress.errors += 1
                consecutive += 1
                if consecutive >= max_consecutive_errors:
                    raise CalibrationError(f'the bus keeps failing while recording: {exc}') from exc
                continue
            consecutive = 0
            for name, value in raw.items():
                progress.current[name] = value
                progress.minimum[name] = min(progress.minimum[name], value)
                progress.maximum[name] = max(progress.maximum[name], value)
        still = [n for n in self.swept if progress.minimum[n] == progress.maximum[n]]
        if still:
            raise CalibrationError(f'joint(s) {still} did not move: move every joint except '
                                   f'{self.full_turn} through its full range while recording')
        self.range_min = {**progress.minimum, **{n: 0 for n in self.full_turn}}
        self.range_max = {**progress.maximum, **{n: MAX_RAW for n in self.full_turn}}
        return progress

    def result(self) -> dict[str, MotorCalibration]:
        """The calibration (LeRobot's fields), in motor order."""
        if self.homing is None or self.range_min is None or self.range_max is None:
            raise CalibrationError('the procedure has not finished (homing and ranges)')
        return {n: MotorCalibration(id=self.bus.motors[n].id, drive_mode=self.drive_modes[n],
                                    homing_offset=self.homing[n], range_min=self.range_min[n],
                                    range_max=self.range_max[n])
                for n in self.names}

    def write(self) -> dict[str, MotorCalibration]:
        """Write offsets and limits to the servos' EEPROM (verified); returns the calibration."""
        cal = self.result()
        write_calibration_to_bus(self.bus, cal)
        logger.info('calibration written to %d servos', len(cal))
        return cal
