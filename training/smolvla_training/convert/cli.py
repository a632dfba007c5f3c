"""``smolvla-convert``: rosbag2 bags -> LeRobot v3.0 dataset, and ``--check`` of a dataset.

    smolvla-convert BAG [BAG ...] --out DIR [--contract FILE] [--fps 30] [--vcodec h264]
                    [--task "pick the cube"] [--namespace so101] [--recover]
    smolvla-convert --check DIR
    smolvla-convert --recover BAG [BAG ...]

``--recover`` handles bags whose recording was killed (no metadata.yaml): their complete messages
are written into a new, finalised ``<bag>.recovered`` beside them (the original is only read) and
that bag is converted instead; without ``--out`` it only recovers, and prints what was saved.

Exit status 0 on success, 1 on a conversion or check error (the message says what and where;
a full disk or an unwritable output is one such line, never a traceback), 2 on bad usage, 128 + the
signal number when stopped by SIGINT, SIGTERM or SIGHUP. Every stop but SIGKILL removes the
half-written output; what a SIGKILL leaves is removed by the next run (``convert/partial.py``).
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
import json
import logging
import os
from pathlib import Path
import signal
import sys
import threading

from rosbags.typesys.store import Typestore

from smolvla_ros.core.robot.contract import ContractError, default_contract_path, load_contract
from smolvla_ros.core.robot.dataset_units import CalibrationRequiredError
from smolvla_training.convert.bag_source import make_typestore
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert, summarize
from smolvla_training.convert.errors import ConvertError, DatasetCheckError
from smolvla_training.convert.recover import bag_damage, recovered_twin
from smolvla_training.convert.video import VCODECS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='smolvla-convert', description='Convert rosbag2 bags (mcap or sqlite3) into a '
        'LeRobot v3.0 dataset on the exact 1/fps grid, or check a dataset.')
    p.add_argument('bags', nargs='*', type=Path, help='rosbag2 bag directories, in order')
    p.add_argument('--out', type=Path, help='new dataset directory (must not exist)')
    p.add_argument('--contract', type=Path, default=None,
                   help='robot contract YAML (default: the installed so101 contract)')
    p.add_argument('--fps', type=float, default=None, help='dataset fps (default: contract)')
    p.add_argument('--vcodec', choices=VCODECS, default='libsvtav1')
    p.add_argument('--task', default=None, help='task for every episode (default: task topic)')
    p.add_argument('--namespace', default='', help='namespace the arm was recorded under')
    p.add_argument('--calibration', type=Path, default=None,
                   help='LeRobot calibration JSON (default: the contract\'s calibration_file)')
    p.add_argument('--action-max-age', type=float, default=None,
                   help='max age of the joint command at a frame, s (default: state max age)')
    p.add_argument('--min-episode-frames', type=int, default=1,
                   help='drop episode pieces shorter than this after splitting at gaps')
    p.add_argument('--typestore', choices=('kilted', 'jazzy', 'latest'), default='kilted',
                   help='message definitions for bags that do not carry their own')
    p.add_argument('--msg-dir', type=Path, action='append', default=[],
                   help='interface package directory with msg/*.msg (custom types; repeatable)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    p.add_argument('--check', type=Path, metavar='DIR', help='verify a dataset and exit')
    p.add_argument('--recover', action='store_true',
                   help='bags of killed recordings (no metadata.yaml): write their complete '
                   'messages into a new <bag>.recovered and use that; alone (no --out): only '
                   'recover')
    return p


def _recover(bags: list[Path], typestore: Typestore, convert_after: bool) -> list[Path]:
    """Recover what needs it; the bags to convert. Each bag is read through first
    (``bag_damage(thorough=True)``): a bag cut short or damaged after it was finalised is
    recovered as well as one without metadata.yaml."""
    out = []
    for bag in bags:
        damage = bag_damage(bag, thorough=True)
        if damage is None:
            if not convert_after:
                print(f'{bag}: finalised and readable to its end, nothing to recover')
            out.append(bag)
            continue
        print(f'{bag}: {damage}')
        path, report = recovered_twin(bag, typestore)
        print(report.summary())
        out.append(path)
    return out


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGHUP (and SIGINT) so that a stop unwinds like a
    Ctrl-C: the converter's and the recovery's cleanup (``except BaseException``) remove the
    half-written output. A KeyboardInterrupt, so code that handles Ctrl-C handles these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn the first stop signal into :class:`Stopped`; later ones are ignored so that they
    cannot cut the cleanup short (SIGKILL still ends the process). Only signals left at their
    default action are taken over: a SIGHUP ignored by ``nohup`` stays ignored. Main thread only
    (Python's rule for signal handlers); elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Stopped(signum)

    previous = {}
    for sig in _STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _os_error(exc: OSError, out: Path | None) -> str:
    """One line for an I/O error: what failed, on which path (FFmpeg's messages carry it), and
    that a conversion left nothing behind (``convert`` removed its work directory)."""
    if exc.strerror and exc.filename:
        line = f'{exc.strerror}: {exc.filename}'
    else:
        line = str(exc) or type(exc).__name__
    if out is not None and not out.exists():
        line += f'; nothing was written to {out}'
    return line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    os.environ.setdefault('SVT_LOG', '1')  # SVT-AV1 prints its banner per file otherwise
    try:
        with _stop_on_signals():
            return _run(args)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, 'signum', signal.SIGINT)
        print(f'smolvla-convert: stopped by {signal.Signals(signum).name}; no half-written '
              'output is left behind', file=sys.stderr)
        return 128 + int(signum)
    except (ConvertError, DatasetCheckError, ContractError, CalibrationRequiredError,
            ValueError) as exc:
        print(f'smolvla-convert: error: {exc}', file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, read-only or unwritable output, a file vanished
        print(f'smolvla-convert: error: {_os_error(exc, args.out)}', file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    """The work of one invocation (main wraps it in the signal and error handling)."""
    if args.check is not None:
        if args.bags or args.out or args.recover:
            print('--check takes only a dataset directory', file=sys.stderr)
            return 2
        summary = check_dataset(args.check)
        print(f'OK {json.dumps(summary)}')
        return 0
    if args.recover and args.bags and args.out is None:
        _recover(args.bags, make_typestore(args.typestore, args.msg_dir), False)
        return 0
    if not args.bags or args.out is None:
        print('give at least one BAG and --out DIR (or --check DIR, or --recover BAG)',
              file=sys.stderr)
        return 2
    bags = args.bags
    if args.recover:
        bags = _recover(bags, make_typestore(args.typestore, args.msg_dir), True)
    contract = load_contract(args.contract or default_contract_path())
    config = ConvertConfig(
        fps=args.fps, vcodec=args.vcodec, task=args.task,
        action_max_age_s=args.action_max_age, min_episode_frames=args.min_episode_frames,
        namespace=args.namespace, typestore=args.typestore, msg_dirs=tuple(args.msg_dir),
        calibration=args.calibration, progress=not args.no_progress)
    result = convert(bags, contract, args.out, config)
    print(summarize(result.sync_report))
    print(f'wrote {result.root}: {result.episodes} episode(s), {result.frames} frames')
    summary = check_dataset(result.root)
    print(f'check OK {json.dumps(summary)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
