"""``smolvla-convert``: rosbag2 bags -> LeRobot v3.0 dataset, and ``--check`` of a dataset.

    smolvla-convert BAG [BAG ...] --out DIR [--contract FILE] [--fps 30] [--vcodec h264]
                    [--task "pick the cube"] [--namespace so101]
    smolvla-convert --check DIR

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

from smolvla_ros.core.contract import ContractError, default_contract_path, load_contract
from smolvla_ros.core.dataset_units import CalibrationRequiredError
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert, summarize
from smolvla_training.convert.errors import ConvertError, DatasetCheckError
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    os.environ.setdefault('SVT_LOG', '1')  # SVT-AV1 prints its banner per file otherwise
    try:
        if args.check is not None:
            if args.bags or args.out:
                print('--check takes only a dataset directory', file=sys.stderr)
                return 2
            summary = check_dataset(args.check)
            print(f'OK {json.dumps(summary)}')
            return 0
        if not args.bags or args.out is None:
            print('give at least one BAG and --out DIR (or --check DIR)', file=sys.stderr)
            return 2
        contract = load_contract(args.contract or default_contract_path())
        config = ConvertConfig(
            fps=args.fps, vcodec=args.vcodec, task=args.task,
            action_max_age_s=args.action_max_age, min_episode_frames=args.min_episode_frames,
            namespace=args.namespace, typestore=args.typestore, msg_dirs=tuple(args.msg_dir),
            calibration=args.calibration, progress=not args.no_progress)
        result = convert(args.bags, contract, args.out, config)
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
