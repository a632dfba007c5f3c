"""``smolvla-convert --check DIR``: reload a LeRobot v3.0 dataset and verify it.

Checks what breaks training later: info.json counters against the files, keys and shapes, every
episode's frame_index / index / timestamp sequence (timestamps finite, strictly increasing, within
LeRobot's 1e-4 s of frame_index / fps), the videos' frame times against every frame's
``from_timestamp + timestamp``, and stats for every feature. The values themselves are checked too,
because a corrupted file (flipped bytes, a NaN or 1e30 written by a bad converter or editor) loads
without complaint and poisons training silently: every numeric feature must be finite, inside its
stats' [min, max], and its stats must be what the data gives (``stats.numeric_stats``, within
float32 rounding); the first bad row is named. Parquet page CRCs are verified where present (our
writer stores them), which finds any flipped byte in a data page. All problems are collected and
reported together.
"""
from __future__ import annotations

from collections import defaultdict
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla_training import lerobot_format as fmt
from smolvla_training.convert.errors import DatasetCheckError
from smolvla_training.convert.stats import numeric_stats
from smolvla_training.convert.video import decoded_frame_times
from smolvla_training.dataset.reader import DatasetFormatError, LeRobotDatasetReader
from smolvla_training.dataset.video import VideoDecodeError

# Stats are float64 over the float32 data (LeRobot's may be accumulated in float32): allow that
# rounding, relative to the values' scale. A corruption smaller than this in one value of a long
# episode stays invisible to a stats check: the limit of what a dataset without checksums allows.
_STATS_RTOL = 1e-6
_STATS_ATOL = 1e-6
REQUIRED_INFO = ('codebase_version', 'robot_type', 'total_episodes', 'total_frames',
                 'total_tasks', 'chunks_size', 'fps', 'splits', 'data_path', 'features')


def _check_episodes(reader: LeRobotDatasetReader, problems: list[str]) -> None:
    cols = reader._columns  # the reader's own decoded columns
    tol = fmt.TOLERANCE_S
    unknown = np.flatnonzero(~np.isin(cols['task_index'], list(reader.tasks)))
    if unknown.size:
        row = int(unknown[0])
        problems.append(f'task_index: {_where(reader, row)} is {int(cols["task_index"][row])}, '
                        f'not a task of meta/tasks ({sorted(reader.tasks)})')
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
        ts = cols['timestamp'][rows].astype(np.float64)  # [L]
        bad = np.flatnonzero(~np.isfinite(ts))
        if bad.size:
            problems.append(f'episode {ep.index}: timestamp of frame {int(bad[0])} is '
                            f'{ts[bad[0]]}')
            continue
        back = np.flatnonzero(np.diff(ts) <= 0)
        if back.size:
            k = int(back[0]) + 1
            problems.append(f'episode {ep.index}: timestamps not increasing at frame {k} '
                            f'({ts[k - 1]:.6f} then {ts[k]:.6f} s)')
        err = np.abs(ts - fi / reader.fps)  # [L]
        if err.size and err.max() > tol:
            k = int(err.argmax())
            problems.append(f'episode {ep.index}: timestamp of frame {k} is off the 1/fps grid '
                            f'by {err.max():.6f} s (> {tol} s)')


def _where(reader: LeRobotDatasetReader, row: int) -> str:
    cols = reader._columns
    return (f'row {row} (episode {int(cols["episode_index"][row])}, frame '
            f'{int(cols["frame_index"][row])})')


def _check_values(reader: LeRobotDatasetReader, problems: list[str]) -> None:
    """Finite values inside the stats' range, and stats that the data reproduces."""
    for name, values in reader._vectors.items():  # float32 [N, D]
        finite = np.isfinite(values).all(axis=1)  # [N]
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            problems.append(f'{name}: {_where(reader, row)} is not finite: '
                            f'{values[row].tolist()} ({int((~finite).sum())} such rows)')
            continue
        stats = reader.stats.get(name)
        if stats is None or not values.size:
            continue  # reported above (stats.json lacks it)
        v64 = values.astype(np.float64)
        scale = np.maximum(np.abs(v64).max(axis=0), 1.0)  # [D]
        tol = _STATS_ATOL + _STATS_RTOL * scale
        lo, hi = (np.asarray(stats.get(k, np.nan), dtype=np.float64).reshape(-1)
                  for k in ('min', 'max'))
        if lo.shape == hi.shape == scale.shape:
            outside = ((v64 < lo - tol) | (v64 > hi + tol)).any(axis=1)  # [N]
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                problems.append(f'{name}: {_where(reader, row)} = {values[row].tolist()} is '
                                f'outside the stats range [{lo.tolist()}, {hi.tolist()}]')
                continue
        mismatch = _stats_mismatch(stats, v64, tol)
        if mismatch:
            problems.append(f'{name}: {mismatch} (meta/stats.json)')
            continue
        per_episode = _episode_stats(reader, name)  # episode index -> stats, v3.0 only
        for ep in reader.episodes:
            rows = slice(ep.from_index, ep.from_index + ep.length)
            mismatch = per_episode.get(ep.index) and _stats_mismatch(per_episode[ep.index],
                                                                     v64[rows], tol)
            if mismatch:
                problems.append(f'{name}: episode {ep.index} (rows {rows.start}..'
                                f'{rows.stop - 1}): {mismatch} (meta/episodes)')
                break


def _stats_mismatch(stats: dict, values: np.ndarray, tol: np.ndarray) -> str:
    """'' when ``stats`` are what float64 [N, D] ``values`` give (within ``tol`` [D]), else why."""
    fresh = numeric_stats(values)
    count = np.asarray(stats.get('count', [-1])).reshape(-1)
    if count.size and int(count[0]) != values.shape[0]:
        return f'stats count {int(count[0])} != {values.shape[0]} rows'
    for key in ('min', 'max', 'mean', 'std'):
        stored = np.asarray(stats.get(key, np.nan), dtype=np.float64).reshape(-1)
        if stored.shape != fresh[key].shape or not (np.abs(stored - fresh[key]) <= tol).all():
            return f'stats {key} {stored.tolist()} is not what the data gives ' \
                   f'({fresh[key].tolist()})'
    return ''


def _episode_stats(reader: LeRobotDatasetReader, name: str) -> dict[int, dict]:
    """Per-episode stats of ``name`` from meta/episodes (v3.0 'stats/<name>/<key>' columns)."""
    files = sorted((reader.root / 'meta' / 'episodes').glob('chunk-*/file-*.parquet'))
    out: dict[int, dict] = {}
    keys = ('min', 'max', 'mean', 'std', 'count')
    for path in files:
        table = pq.read_table(path)
        columns = [f'stats/{name}/{k}' for k in keys]
        if 'episode_index' not in table.column_names or not all(
                c in table.column_names for c in columns):
            return {}
        for row in table.select(['episode_index', *columns]).to_pylist():
            out[int(row['episode_index'])] = {k: row[f'stats/{name}/{k}'] for k in keys}
    return out


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
            times = decoded_frame_times(reader.root / rel)  # constant memory per file
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


def _check_page_checksums(root: Path) -> list[str]:
    """Verify the parquet page CRCs where the files carry them (``lerobot_writer`` stores them):
    a flipped byte in a data page is found however small the change of value it makes, which
    the value checks cannot promise. Files written without CRCs (LeRobot's) pass unchecked."""
    problems = []
    for path in sorted(root.glob('data/**/*.parquet')) + sorted(root.glob('meta/**/*.parquet')):
        try:
            pq.read_table(path, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as exc:
            problems.append(f'{path.relative_to(root)}: {exc} (the file changed after it was '
                            'written: flipped bytes, a bad disk or copy?)')
    return problems


def check_dataset(root: str | os.PathLike[str], decode_videos: bool = True) -> dict:
    """Verify a dataset; returns a summary dict, raises DatasetCheckError listing every problem."""
    root = Path(root)
    problems: list[str] = _check_page_checksums(root) if root.is_dir() else []
    try:
        reader = LeRobotDatasetReader(root, decode_images=False)
    except (DatasetFormatError, OSError, KeyError, ValueError, pa.ArrowException) as exc:
        # ArrowException: pyarrow's own (ArrowNotImplementedError for some corrupted pages)
        raise DatasetCheckError(str(root), [*problems, f'cannot load: {exc}']) from exc
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
    _check_values(reader, problems)
    if decode_videos:
        _check_videos(reader, problems)
    if problems:
        raise DatasetCheckError(str(root), problems)
    return {'root': str(root), 'episodes': len(reader.episodes), 'frames': len(reader),
            'fps': reader.fps, 'tasks': len(reader.tasks), 'video_keys': list(reader.video_keys)}
