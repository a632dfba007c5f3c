"""`smolvla-ros servo-emulator`: serve one emulated STS3215 bus on a pty until Ctrl-C / SIGTERM.

Bringup profiles start it as a plain process with `--link /tmp/NAME`, and point the driver's `port`
at that link (it appears once the bus is ready and disappears on exit). The pty path is printed on
stdout, one line, for scripts.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from smolvla_ros.hardware.emulator.faults import parse_fault
from smolvla_ros.hardware.emulator.server import ServoEmulator
from smolvla_ros.hardware.emulator.servo import ServoConfig
from smolvla_ros.hardware.feetech.calibration import load_calibration

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--ids', type=_ids, default=_ids('1-6'),
                        help='servo ids, e.g. 1-6 (default: an SO-101 arm) or 1,2,7')
    parser.add_argument('--link', default=None,
                        help='stable path (symlink) to the pty for the driver, e.g. /tmp/so101')
    parser.add_argument('--positions', type=_positions, default=None,
                        help='initial encoder positions in ticks, one per id (default 2047)')
    parser.add_argument('--calibration', default=None,
                        help="LeRobot calibration JSON to preload into the servos' EEPROM")
    parser.add_argument('--motion', choices=('internal', 'external'), default='internal',
                        help='internal first-order motion model, or external (simulator)')
    parser.add_argument('--fault', action='append', type=parse_fault, default=[],
                        metavar='KIND:ID[:COUNT[:DELAY_S]]',
                        help='inject a fault from the start (repeatable), e.g. missing:3')
    parser.add_argument('--max-speed', type=float, default=ServoConfig.max_speed,
                        help='servo speed limit in ticks/s')


def build_emulator(args: argparse.Namespace) -> ServoEmulator:
    """The emulator described by the parsed arguments (not started)."""
    positions = args.positions or [ServoConfig.position] * len(args.ids)
    if len(positions) != len(args.ids):
        raise ValueError(f'{len(positions)} positions for {len(args.ids)} ids')
    servos = {i: ServoConfig(position=p, max_speed=args.max_speed)
              for i, p in zip(args.ids, positions, strict=True)}
    emu = ServoEmulator(servos, args.fault, motion=args.motion, link_path=args.link)
    if args.calibration:
        cal = load_calibration(args.calibration)
        for c in cal.values():
            if c.id not in servos:
                raise ValueError(f'calibration id {c.id} is not among the servos {args.ids}')
            emu.set_register(c.id, 'Homing_Offset', c.homing_offset)
            emu.set_register(c.id, 'Min_Position_Limit', c.range_min)
            emu.set_register(c.id, 'Max_Position_Limit', c.range_max)
    return emu


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
        while not stop.wait(0.5):
            pass
        stats = emu.stats()
        logger.info('stopping: %d bytes in, %d out, %d packets', stats.rx_bytes, stats.tx_bytes,
                    stats.rx_packets)
    return 0
