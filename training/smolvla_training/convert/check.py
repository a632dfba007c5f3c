"""``smolvla-convert --check DIR``: reload a LeRobot v3.0 dataset and verify it.

Checks what breaks training later (user_needs rows 9-10): info.json counters against the files,
keys and shapes, every episode's frame_index / index / timestamp sequence (timestamps within
LeRobot's 1e-4 s of frame_index / fps), the videos' frame times against every frame's
``from_timestamp + timestamp``, and stats for every feature. All problems are collected and
reported together.
"""
from __future__ import annotations

from collections import defaultdict
import os
from pathlib import Path

import numpy as np

from smolvla_training import lerobot_format as fmt
from smolvla_training.convert.errors import DatasetCheckError
from smolvla_training.dataset.reader import DatasetFormatError, LeRobotDatasetReader
from smolvla_training.dataset.video import VideoDecodeError, decode_all

REQUIRED_INFO = ('codebase_version', 'robot_type', 'total_episodes', 'total_frames',
                 'total_tasks', 'chunks_size', 'fps', 'splits', 'data_path', 'features')


def _check_episodes(reader: LeRobotDatasetReader, problems: list[str]) -> None:
    cols = reader._columns  # the reader's own decoded columns
    tol = fmt.TOLERANCE_S
    for ep in reader.episodes:
        rows = slice(ep.from_index, ep.from_index + ep.length)
        fi = cols['frame_index'][rows]
        if not np.array_equal(cols['episode_index'][rows], np.full(ep.length, ep.index)):
            problems.append(f'episode {ep.index}: rows {rows.start}..{rows.stop} carry other '
                            'episode indices')
        if not np.array_equal(fi, np.arange(ep.length)):
            problems.append(f'episode {ep.index}: frame_index is not 0..{ep.length - 1}')
        if not np.array_equal(cols['index'][rows], np.arange(rows.start, rows.stop)):
            problems.append(f'episode {ep.index}: index is not {rows.start}..{rows.stop - 1}')
        err = np.abs(cols['timestamp'][rows].astype(np.float64) - fi / reader.fps)  # [L]
        if err.size and err.max() > tol:
            k = int(err.argmax())
            problems.append(f'episode {ep.index}: timestamp of frame {k} is off the 1/fps grid '
                            f'by {err.max():.6f} s (> {tol} s)')


def _check_videos(reader: LeRobotDatasetReader, problems: list[str]) -> None:
    wanted: dict[str, list[np.ndarray]] = defaultdict(list)
    ts = reader._columns['timestamp'].astype(np.float64)
    for ep in reader.episodes:
        for key in reader.video_keys:
            rel, offset = ep.videos[key]
            wanted[rel].append(offset + ts[ep.from_index:ep.from_index + ep.length])
    for rel, parts in wanted.items():
        expected = np.sort(np.concatenate(parts))  # [M]
        try:
            times, _ = decode_all(reader.root / rel)
        except VideoDecodeError as exc:
            problems.append(str(exc))
            continue
        if times.size != expected.size:
            problems.append(f'{rel}: {times.size} frames, the episodes need {expected.size}')
            continue
        err = np.abs(np.sort(times) - expected)
        if err.max() > fmt.TOLERANCE_S:
            problems.append(f'{rel}: frame times differ from from_timestamp + timestamp by up '
                            f'to {err.max():.6f} s (> {fmt.TOLERANCE_S} s)')


def check_dataset(root: str | os.PathLike[str], decode_videos: bool = True) -> dict:
    """Verify a dataset; returns a summary dict, raises DatasetCheckError listing every problem."""
    root = Path(root)
    try:
        reader = LeRobotDatasetReader(root, decode_images=False)
    except (DatasetFormatError, OSError, KeyError, ValueError) as exc:
        raise DatasetCheckError(str(root), [f'cannot load: {exc}']) from exc
    problems: list[str] = []
    info = reader.info
    missing = [k for k in REQUIRED_INFO if k not in info]
    if missing:
        problems.append(f'info.json lacks {missing}')
    if reader.version != fmt.CODEBASE_VERSION:
        problems.append(f'codebase_version {reader.version!r}, expected {fmt.CODEBASE_VERSION}')
    for key in fmt.DEFAULT_FEATURES:
        if key not in reader.features:
            problems.append(f'features lack the default column {key!r}')
    if info.get('total_frames') != len(reader):
        problems.append(f'info total_frames {info.get("total_frames")} != {len(reader)} rows')
    if info.get('total_episodes') != len(reader.episodes):
        problems.append(f'info total_episodes {info.get("total_episodes")} != '
                        f'{len(reader.episodes)} episodes')
    if info.get('total_tasks') != len(reader.tasks):
        problems.append(f'info total_tasks {info.get("total_tasks")} != {len(reader.tasks)}')
    for name, feat in reader.features.items():
        if feat.get('dtype') == 'video':
            continue
        if name not in reader.table.column_names:
            problems.append(f'feature {name!r} has no data column')
        elif name in reader._vectors and list(reader._vectors[name].shape[1:]) != feat['shape']:
            problems.append(f'{name}: data shape {reader._vectors[name].shape[1:]} != '
                            f'feature shape {feat["shape"]}')
        if name not in reader.stats:
            problems.append(f'stats.json lacks {name!r}')
    for key in reader.video_keys:
        if key not in reader.stats:
            problems.append(f'stats.json lacks {key!r}')
    _check_episodes(reader, problems)
    if decode_videos:
        _check_videos(reader, problems)
    if problems:
        raise DatasetCheckError(str(root), problems)
    return {'root': str(root), 'episodes': len(reader.episodes), 'frames': len(reader),
            'fps': reader.fps, 'tasks': len(reader.tasks), 'video_keys': list(reader.video_keys)}
