"""Read LeRobot v3.0 (and v2.1) dataset directories: frames by index, action chunks, stats.

What the trainer uses. ``reader[i]`` returns one frame as numpy: state/action vectors, decoded
images as float32 CHW in [0, 1] (LeRobot's loading convention), the task string, and, with
``action_horizon`` H, the future actions [H, D] from frame i with ``action_is_pad`` [H] marking
steps past the episode end (their indices are clamped to the last frame, as LeRobot does with
``delta_timestamps``). numpy only: the trainer converts to tensors where it needs them.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla_training import lerobot_format as fmt
from smolvla_training.convert import stats as st
from smolvla_training.dataset.video import VideoFile


class DatasetFormatError(ValueError):
    """A directory that is not a readable LeRobot v2.1/v3.0 dataset (names the file and key)."""


@dataclass(frozen=True)
class EpisodeInfo:
    """Where one episode lives: its global row range and, per video key, file and time offset."""

    index: int
    length: int
    from_index: int
    tasks: tuple[str, ...]
    videos: dict[str, tuple[str, float]]  # key -> (relative mp4 path, from_timestamp)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f'{path}: cannot read ({exc})') from exc


def _jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f'{path}: cannot read ({exc})') from exc


def _stats_from_json(data: dict) -> dict[str, dict[str, np.ndarray]]:
    return {k: {n: np.asarray(v) for n, v in s.items()} for k, s in data.items()}


class LeRobotDatasetReader:
    """Random access to a local LeRobot dataset directory (v3.0 or v2.1)."""

    def __init__(self, root: str | os.PathLike[str], action_horizon: int = 1,
                 decode_images: bool = True) -> None:
        if isinstance(action_horizon, bool) or not isinstance(action_horizon, int) or (
                action_horizon < 1):
            raise ValueError(f'action_horizon must be an int >= 1, got {action_horizon!r}')
        self.root = Path(root)
        self.action_horizon = action_horizon
        self.decode_images = decode_images
        self.info = _read_json(self.root / fmt.INFO_PATH)
        self.version = self.info.get('codebase_version')
        try:
            self.fps = float(self.info['fps'])
            self.features: dict = self.info['features']
        except KeyError as exc:
            raise DatasetFormatError(f'{self.root / fmt.INFO_PATH}: missing key {exc}') from None
        self.video_keys = tuple(k for k, f in self.features.items() if f.get('dtype') == 'video')
        if self.version == 'v3.0':
            self.episodes, self.tasks = self._episodes_v30()
            self.stats = _stats_from_json(_read_json(self.root / fmt.STATS_PATH))
        elif self.version == 'v2.1':
            self.episodes, self.tasks = self._episodes_v21()
        else:
            raise DatasetFormatError(f'{self.root}: codebase_version {self.version!r} is not '
                                     'supported (v3.0, v2.1)')
        self.table = self._load_data()
        self._columns = {name: self.table.column(name).to_numpy()
                         for name in ('episode_index', 'frame_index', 'index', 'task_index',
                                      'timestamp')}
        self._vectors = {  # name -> float32 [N, D]
            name: np.stack(self.table.column(name).to_numpy(zero_copy_only=False))
            .astype(np.float32)
            for name, f in self.features.items()
            if f.get('dtype') == 'float32' and name not in fmt.DEFAULT_FEATURES
            and name in self.table.column_names}
        self._by_index = {e.index: e for e in self.episodes}
        self._videos: dict[str, VideoFile] = {}

    # -- metadata ------------------------------------------------------------------------------
    def _episodes_v30(self) -> tuple[list[EpisodeInfo], dict[int, str]]:
        files = sorted((self.root / 'meta' / 'episodes').glob('chunk-*/file-*.parquet'))
        if not files:
            raise DatasetFormatError(f'{self.root}: no meta/episodes/*/*.parquet')
        rows = [r for f in files for r in pq.read_table(f).to_pylist()]
        episodes = []
        for r in rows:
            videos = {}
            for key in self.video_keys:
                rel = fmt.VIDEO_PATH.format(video_key=key,
                                            chunk_index=r[f'videos/{key}/chunk_index'],
                                            file_index=r[f'videos/{key}/file_index'])
                videos[key] = (rel, float(r[f'videos/{key}/from_timestamp']))
            episodes.append(EpisodeInfo(int(r['episode_index']), int(r['length']),
                                        int(r['dataset_from_index']), tuple(r['tasks']),
                                        videos))
        table = pq.read_table(self.root / fmt.TASKS_PATH)
        tasks = dict(zip(table.column('task_index').to_pylist(), table.column('task').to_pylist(),
                         strict=True))
        return sorted(episodes, key=lambda e: e.index), tasks

    def _episodes_v21(self) -> tuple[list[EpisodeInfo], dict[int, str]]:
        rows = sorted(_jsonl(self.root / 'meta' / 'episodes.jsonl'),
                      key=lambda r: r['episode_index'])
        chunks = int(self.info.get('chunks_size', fmt.CHUNKS_SIZE))
        episodes, start = [], 0
        for r in rows:
            i = int(r['episode_index'])
            videos = {key: (fmt.V21_VIDEO_PATH.format(episode_chunk=i // chunks, video_key=key,
                                                      episode_index=i), 0.0)
                      for key in self.video_keys}
            episodes.append(EpisodeInfo(i, int(r['length']), start, tuple(r['tasks']), videos))
            start += int(r['length'])
        tasks = {int(r['task_index']): r['task']
                 for r in _jsonl(self.root / 'meta' / 'tasks.jsonl')}
        stats_path = self.root / 'meta' / 'episodes_stats.jsonl'
        if stats_path.exists():
            per = [_stats_from_json(r['stats']) for r in _jsonl(stats_path)]
            self.stats = {k: st.aggregate([p[k] for p in per]) for k in per[0]} if per else {}
        else:
            self.stats = _stats_from_json(_read_json(self.root / fmt.STATS_PATH))
        return episodes, tasks

    def _load_data(self) -> pa.Table:
        if self.version == 'v3.0':
            files = sorted((self.root / 'data').glob('chunk-*/file-*.parquet'))
        else:
            files = sorted((self.root / 'data').glob('chunk-*/episode_*.parquet'))
        if not files:
            raise DatasetFormatError(f'{self.root}: no data parquet files')
        table = pa.concat_tables([pq.read_table(f) for f in files])
        table = table.sort_by('index')
        expected = sum(e.length for e in self.episodes)
        if table.num_rows != expected:
            raise DatasetFormatError(f'{self.root}: data has {table.num_rows} rows, the episode '
                                     f'metadata {expected}')
        return table

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> np.ndarray:
        """A whole numeric column in row order: index columns [N], float32 features [N, D]."""
        if name in self._columns:
            return self._columns[name]
        if name in self._vectors:
            return self._vectors[name]
        raise KeyError(f'{self.root}: no column {name!r} (have '
                       f'{sorted([*self._columns, *self._vectors])})')

    def episode(self, index: int) -> EpisodeInfo:
        return self._by_index[index]

    def _video(self, rel: str) -> VideoFile:
        if rel not in self._videos:
            self._videos[rel] = VideoFile(self.root / rel)
        return self._videos[rel]

    def __getitem__(self, i: int) -> dict[str, object]:
        if not -len(self) <= i < len(self):
            raise IndexError(f'frame {i} out of range for {len(self)} frames')
        i %= len(self)
        ep = self._by_index[int(self._columns['episode_index'][i])]
        item: dict[str, object] = {name: self._columns[name][i]
                                   for name in ('episode_index', 'frame_index', 'index',
                                                'task_index', 'timestamp')}
        for name, values in self._vectors.items():
            item[name] = values[i]
        item['task'] = self.tasks[int(item['task_index'])]
        if 'action' in self._vectors:
            last = ep.from_index + ep.length - 1
            want = np.arange(i, i + self.action_horizon)  # [H] global rows
            item['action'] = self._vectors['action'][np.minimum(want, last)]  # [H, D]
            item['action_is_pad'] = want > last  # [H]
        if self.decode_images:
            for key in self.video_keys:
                rgb = self.frame(key, i)  # [H, W, 3] uint8
                item[key] = rgb.transpose(2, 0, 1).astype(np.float32) / 255.0  # [3, H, W]
        return item

    def frame(self, key: str, i: int) -> np.ndarray:
        """The RGB uint8 [H, W, 3] frame of video feature `key` at row `i`."""
        ep = self._by_index[int(self._columns['episode_index'][i])]
        rel, offset = ep.videos[key]
        return self._video(rel).frame_at(offset + float(self._columns['timestamp'][i]))

    def close(self) -> None:
        for v in self._videos.values():
            v.close()
        self._videos.clear()
