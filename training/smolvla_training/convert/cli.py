"""``smolvla-convert``: rosbag2 bags -> LeRobot v3.0 dataset, and ``--check`` of a dataset.

    smolvla-convert BAG [BAG ...] --out DIR [--contract FILE] [--fps 30] [--vcodec h264]
                    [--task "pick the cube"] [--namespace so101] [--recover]
    smolvla-convert --check DIR
    smolvla-convert --recover BAG [BAG ...]

``--recover`` handles bags whose recording was killed (no metadata.yaml): their complete messages
are written into a new, finalised ``<bag>.recovered`` beside them (the original is only read) and
that bag is converted instead; without ``--out`` it only recovers, and prints what was saved.

Exit status 0 on success, 1 on a conversion or check error (the message says what and where),
2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
import sys

from rosbags.typesys.store import Typestore

from smolvla_ros.core.contract import ContractError, default_contract_path, load_contract
from smolvla_ros.core.dataset_units import CalibrationRequiredError
from smolvla_training.convert.bag_source import make_typestore
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert, summarize
from smolvla_training.convert.errors import ConvertError, DatasetCheckError
from smolvla_training.convert.recover import ensure_recovered, needs_recovery
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
    """Recover what needs it (all given bags when only recovering); the bags to convert."""
    out = []
    for bag in bags:
        if not convert_after and not needs_recovery(bag):
            print(f'{bag}: finalised (has metadata.yaml), nothing to recover')
            continue
        path, report = ensure_recovered(bag, typestore)
        if report is not None:
            print(report.summary())
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    os.environ.setdefault('SVT_LOG', '1')  # SVT-AV1 prints its banner per file otherwise
    try:
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
    except (ConvertError, DatasetCheckError, ContractError, CalibrationRequiredError,
            ValueError) as exc:
        print(f'smolvla-convert: error: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
