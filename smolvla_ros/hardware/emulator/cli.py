"""`smolvla-ros servo-emulator`: serve one emulated STS3215 bus on a pty until Ctrl-C / SIGTERM.

Bringup profiles start it as a plain process with `--link /tmp/NAME`, and point the driver's `port`
at that link (it appears once the bus is ready and disappears on exit). The pty path is printed on
stdout, one line, for scripts.
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time

from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.hardware.emulator.faults import parse_fault
from smolvla_ros.hardware.emulator.server import ServoEmulator
from smolvla_ros.hardware.emulator.servo import ServoConfig

logger = logging.getLogger(__name__)


def _ids(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(','):
        if '-' in part:
            lo, hi = part.split('-', 1)
            out += range(int(lo), int(hi) + 1)
        elif part:
            out.append(int(part))
    if not out or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f'ids {text!r}: need distinct ids like 1-6 or 1,2,3')
    return out


def _positions(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'positions {text!r}: comma-separated ticks') from None


def _sweep(text: str) -> tuple[float, float]:
    try:
        parts = [float(v) for v in text.split(':')]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or parts[0] <= 0 or (len(parts) == 2 and parts[1] <= 0):
        raise argparse.ArgumentTypeError(f'sweep {text!r}: AMPLITUDE_TICKS[:PERIOD_S], both > 0')
    return parts[0], parts[1] if len(parts) == 2 else 4.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--ids', type=_ids, default=_ids('1-6'),
                        help='servo ids, e.g. 1-6 (default: an SO-101 arm) or 1,2,7')
    parser.add_argument('--link', default=None,
                        help='stable path (symlink) to the pty for the driver, e.g. /tmp/so101')
    parser.add_argument('--positions', type=_positions, default=None,
                        help='initial encoder positions in ticks, one per id (default: the '
                             'middle of the calibrated range, or 2047)')
    parser.add_argument('--calibration', default=None,
                        help="LeRobot calibration JSON to preload into the servos' EEPROM")
    parser.add_argument('--motion', choices=('internal', 'external'), default='internal',
                        help='internal first-order motion model, or external (simulator)')
    parser.add_argument('--fault', action='append', type=parse_fault, default=[],
                        metavar='KIND:ID[:COUNT[:DELAY_S]]',
                        help='inject a fault from the start (repeatable), e.g. missing:3')
    parser.add_argument('--max-speed', type=float, default=ServoConfig.max_speed,
                        help='servo speed limit in ticks/s')
    parser.add_argument('--wire-timing', action='store_true',
                        help='delay replies by their transmit time at --baudrate plus the '
                             'servo return delay, as on a real bus')
    parser.add_argument('--baudrate', type=int, default=1_000_000,
                        help='line rate for --wire-timing (bits/s)')
    parser.add_argument('--sweep', type=_sweep, default=None, metavar='AMPLITUDE[:PERIOD_S]',
                        help='move the joints by "hand" (a leader arm): sine waves of this many '
                             'ticks around the initial positions, phase-shifted per joint')


def build_emulator(args: argparse.Namespace) -> ServoEmulator:
    """The emulator described by the parsed arguments (not started)."""
    cal = load_calibration(args.calibration) if args.calibration else {}
    for c in cal.values():
        if c.id not in args.ids:
            raise ValueError(f'calibration id {c.id} is not among the servos {args.ids}')
    if args.positions is None:
        # A calibrated joint starts at the middle of its range (Actual = mid + Homing_Offset).
        mids = {c.id: (c.mid + c.homing_offset) % 4096 for c in cal.values()}
        positions = [mids.get(i, ServoConfig.position) for i in args.ids]
    else:
        positions = args.positions
    if len(positions) != len(args.ids):
        raise ValueError(f'{len(positions)} positions for {len(args.ids)} ids')
    servos = {i: ServoConfig(position=p, max_speed=args.max_speed)
              for i, p in zip(args.ids, positions, strict=True)}
    emu = ServoEmulator(servos, args.fault, motion=args.motion, link_path=args.link,
                        wire_timing=args.wire_timing, baudrate=args.baudrate)
    for c in cal.values():
        emu.set_register(c.id, 'Homing_Offset', c.homing_offset)
        emu.set_register(c.id, 'Min_Position_Limit', c.range_min)
        emu.set_register(c.id, 'Max_Position_Limit', c.range_max)
    return emu


def sweep_positions(start: dict[int, float], amplitude: float, period_s: float,
                    t: float) -> dict[int, float]:
    """Encoder positions at time t of the scripted hand: one sine per joint, shifted by 60 deg."""
    return {i: min(4095.0, max(0.0, p + amplitude * math.sin(2 * math.pi * t / period_s
                                                             + k * math.pi / 3)))
            for k, (i, p) in enumerate(start.items())}


def sweep_until(emu: ServoEmulator, stop: threading.Event, amplitude: float,
                 period_s: float) -> None:
    start = emu.get_actual_positions()
    t0 = time.monotonic()
    while not stop.wait(0.02):  # 50 Hz, well above what a hand does
        emu.set_actual_positions(sweep_positions(start, amplitude, period_s,
                                                 time.monotonic() - t0))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='[servo-emulator] %(message)s')
    try:
        emu = build_emulator(args)
    except (ValueError, OSError) as exc:
        logger.error('%s', exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emu:
        sys.stdout.write(emu.pty_path + '\n')
        sys.stdout.flush()
        logger.info('%d servos %s on %s%s', len(args.ids), args.ids, emu.pty_path,
                    f' (link {args.link})' if args.link else '')
        if args.sweep is None:
            while not stop.wait(0.5):
                pass
        else:
            sweep_until(emu, stop, *args.sweep)
        stats = emu.stats()
        logger.info('stopping: %d bytes in, %d out, %d packets', stats.rx_bytes, stats.tx_bytes,
                    stats.rx_packets)
    return 0
