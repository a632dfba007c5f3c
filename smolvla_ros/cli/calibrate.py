"""``smolvla-ros calibrate``: LeRobot's calibration of an SO-100/SO-101 arm, and a sanity check.

Calibrate (writes LeRobot's JSON, and the offsets and limits to the servos' EEPROM)::

    smolvla-ros calibrate --port /dev/ttyACM0 --role follower --out follower.json

On a terminal it prompts: put the arm in the middle of its range, ENTER; move every joint except
wrist_roll through its full range, ENTER. ``--sweep-seconds S`` makes it scriptable: no prompts,
homing at once, ranges recorded for S seconds (a script or a simulator moves the joints).
Without a terminal and without ``--sweep-seconds``, a line on stdin ends each step.

Check a file against the servos (exit 0 when all is well, 1 when something is off)::

    smolvla-ros calibrate --check --port /dev/ttyACM0 --calibration follower.json
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
import select
import sys
import time
from typing import TextIO

from smolvla_ros.core.robot.calibration import load_calibration, save_calibration
from smolvla_ros.hardware.arm.arm_config import ArmJoints
from smolvla_ros.hardware.feetech.bus import FeetechBus, Motor
from smolvla_ros.hardware.feetech.calibrate import CalibrationProcedure, RangeProgress
from smolvla_ros.hardware.feetech.calibration import calibration_mismatches
from smolvla_ros.hardware.feetech.errors import FeetechError
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS

EXIT_OK, EXIT_CHECK_FAILED, EXIT_ERROR = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--port', required=True, help='serial port of the arm, e.g. /dev/ttyACM0')
    parser.add_argument('--baudrate', type=int, default=1_000_000, help='bus baud rate')
    parser.add_argument('--role', choices=('follower', 'leader'), default='follower',
                        help='which arm (only changes the prompts; the procedure is the same)')
    parser.add_argument('--out', type=Path, help='calibration JSON to write (LeRobot format)')
    parser.add_argument('--force', action='store_true', help='overwrite an existing --out file')
    parser.add_argument('--sweep-seconds', type=float, default=None,
                        help='non-interactive: home at once, record ranges for this many s')
    parser.add_argument('--no-write', action='store_true',
                        help="save the file but leave the servos' EEPROM unchanged")
    parser.add_argument('--check', action='store_true',
                        help='check --calibration against the servos instead of calibrating')
    parser.add_argument('--calibration', type=Path, help='calibration JSON for --check')


def run(args: argparse.Namespace, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    try:
        if args.check:
            if args.calibration is None:
                raise ValueError('--check needs --calibration FILE')
            return check(args.port, args.baudrate, args.calibration, out)
        if args.out is None:
            raise ValueError('calibrating needs --out FILE (or use --check)')
        if args.out.exists() and not args.force:
            raise ValueError(f'{args.out} exists; pass --force to overwrite it')
        if args.sweep_seconds is not None and not args.sweep_seconds > 0:
            raise ValueError(f'--sweep-seconds must be > 0, got {args.sweep_seconds}')
        return calibrate(args, out, stdin)
    except (ValueError, FeetechError) as exc:
        out.write(f'error: {exc}\n')
        return EXIT_ERROR


def _bus(port: str, baudrate: int, motors: dict[str, int]) -> FeetechBus:
    bus = FeetechBus(port, {n: Motor(i) for n, i in motors.items()}, baudrate)
    bus.connect()
    return bus


def calibrate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    scripted = args.sweep_seconds is not None
    interactive = not scripted and stdin.isatty()
    bus = _bus(args.port, args.baudrate, SO101_MOTOR_IDS)
    try:
        proc = CalibrationProcedure(bus)
        should_stop: Callable[[RangeProgress], bool]
        proc.prepare()
        if not scripted:
            out.write(f'Move the {args.role} arm to the middle of its range of motion, then press '
                      'ENTER.\n')
            out.flush()
            stdin.readline()
        offsets = proc.set_half_turn_homing()
        out.write(f'homing offsets: {offsets}\n')
        if scripted:
            out.write(f'recording ranges for {args.sweep_seconds:g} s\n')
            deadline = time.monotonic() + args.sweep_seconds

            def should_stop(_progress: RangeProgress) -> bool:
                return time.monotonic() >= deadline
        else:
            out.write(f'Move every joint except {proc.full_turn} through its full range, then '
                      'press ENTER.\n')
            should_stop = _enter_pressed(stdin, out if interactive else None)
        out.flush()
        progress = proc.record_ranges(should_stop)
        cal = proc.result() if args.no_write else proc.write()
    finally:
        bus.close()
    save_calibration(args.out, cal)
    out.write(_range_table(cal, progress) + f'saved {args.out}'
              f'{"" if args.no_write else " and wrote offsets/limits to the servos"}\n')
    return EXIT_OK


def _enter_pressed(stdin: TextIO, live: TextIO | None) -> Callable[[RangeProgress], bool]:
    """A should_stop callback: True once a line arrives on stdin; draws a live table if asked."""
    last_draw = [0.0]

    def should_stop(p: RangeProgress) -> bool:
        if live is not None and time.monotonic() - last_draw[0] > 0.2:
            last_draw[0] = time.monotonic()
            cells = '  '.join(f'{n}:{p.minimum[n]}<{p.current[n]}<{p.maximum[n]}'
                              for n in p.current)
            live.write(f'\r{cells}')
            live.flush()
        ready, _, _ = select.select([stdin], [], [], 0)
        if ready:
            stdin.readline()
            return True
        return False

    return should_stop


def _range_table(cal: dict, progress: RangeProgress) -> str:
    lines = [f'\n{"joint":<15}{"id":>3}{"offset":>8}{"min":>6}{"max":>6}',
             *(f'{n:<15}{c.id:>3}{c.homing_offset:>8}{c.range_min:>6}{c.range_max:>6}'
               for n, c in cal.items())]
    if progress.errors:
        lines.append(f'({progress.errors} reads failed and were skipped while recording)')
    return '\n'.join(lines) + '\n'


def check(port: str, baudrate: int, path: Path, out: TextIO) -> int:
    """Print per-joint sanity; EXIT_CHECK_FAILED when offsets/limits differ or a reading is
    outside its calibrated range."""
    cal = load_calibration(path)
    joints = ArmJoints.from_calibration(cal)
    bus = _bus(port, baudrate, {n: c.id for n, c in cal.items()})
    try:
        problems = calibration_mismatches(bus, cal)
        raw = bus.sync_read('Present_Position', list(cal))
    finally:
        bus.close()
    rad = joints.to_radians(raw)
    out.write(f'{"joint":<15}{"id":>3}{"present":>9}{"min":>6}{"max":>6}{"deg":>9}  verdict\n')
    for i, (name, c) in enumerate(cal.items()):
        inside = c.range_min <= raw[name] <= c.range_max
        if not inside:
            problems.append(f'{name}: reads {raw[name]}, outside [{c.range_min}, {c.range_max}]')
        mismatch = any(p.startswith(f'{name}:') for p in problems)
        verdict = 'ok' if inside and not mismatch else 'CHECK'
        out.write(f'{name:<15}{c.id:>3}{raw[name]:>9}{c.range_min:>6}{c.range_max:>6}'
                  f'{rad[i] * 57.29577951308232:>9.1f}  {verdict}\n')
    for p in problems:
        out.write(f'problem: {p}\n')
    out.write('calibration OK\n' if not problems else f'{len(problems)} problem(s) found\n')
    return EXIT_OK if not problems else EXIT_CHECK_FAILED
