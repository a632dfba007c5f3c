"""Write the parquet and JSON parts of a LeRobot v3.0 dataset: data files, episode metadata, tasks,
info.json and stats.json (docs/lerobot_compat.md, "Datasets"). Videos are written by
``video.VideoWriter``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla_ros.core.robot.contract import RobotContract
from smolvla_training import lerobot_format as fmt
from smolvla_training.convert import stats as st


@dataclass
class EpisodeRecord:
    """Everything the metadata needs about one written episode."""

    index: int
    task: str
    state: np.ndarray  # float32 [N, J] dataset units
    action: np.ndarray  # float32 [N, J] dataset units
    videos: dict[str, dict] = field(default_factory=dict)  # key -> chunk/file/from/to
    image_stats: dict[str, st.Stats] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.state.shape[0])


def _vector(values: np.ndarray) -> pa.Array:
    n, d = values.shape
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))  # [N*D]
    return pa.FixedSizeListArray.from_arrays(flat, d)


def _frame_columns(ep: EpisodeRecord, start_index: int, task_index: int,
                   fps: float) -> dict[str, np.ndarray]:
    n = ep.length
    frame_index = np.arange(n, dtype=np.int64)  # [N]
    return {
        'timestamp': (frame_index / fps).astype(np.float32),
        'frame_index': frame_index,
        'episode_index': np.full(n, ep.index, dtype=np.int64),
        'index': np.arange(start_index, start_index + n, dtype=np.int64),
        'task_index': np.full(n, task_index, dtype=np.int64),
    }


def _write_table(root: Path, rel: str, table: pa.Table) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    # Page CRCs (part of the parquet format; readers ignore them unless asked) let --check find
    # any flipped byte in a data page (convert/check.py).
    pq.write_table(table, path, write_page_checksum=True)


def _episode_stats(ep: EpisodeRecord, cols: dict[str, np.ndarray],
                   contract: RobotContract) -> dict[str, st.Stats]:
    out = {contract.action.feature: st.numeric_stats(ep.action),
           contract.state.feature: st.numeric_stats(ep.state)}
    for key, s in ep.image_stats.items():
        out[key] = s
    for name, values in cols.items():
        out[name] = st.numeric_stats(values)
    return out


def write_tables(root: Path, contract: RobotContract, episodes: Sequence[EpisodeRecord],
                 fps: float, features: dict) -> dict[str, st.Stats]:
    """Data parquet files (rolled over at ~100 MB), episode metadata, tasks; returns the
    aggregated stats for stats.json."""
    tasks: dict[str, int] = {}
    for ep in episodes:
        tasks.setdefault(ep.task, len(tasks))
    row_bytes = 4 * 2 * len(contract.joints) + 4 + 8 * 4
    rows_per_file = max(1, int(fmt.DATA_FILES_SIZE_IN_MB * 1e6 // row_bytes))
    file_number, rows_in_file, start = 0, 0, 0
    pending: list[pa.Table] = []
    ep_rows: list[dict] = []
    per_episode_stats: list[dict[str, st.Stats]] = []

    def flush() -> None:
        if pending:
            chunk, file = fmt.chunk_and_file(file_number)
            _write_table(root, fmt.DATA_PATH.format(chunk_index=chunk, file_index=file),
                         pa.concat_tables(pending))
            pending.clear()

    for ep in episodes:
        if rows_in_file and rows_in_file + ep.length > rows_per_file:
            flush()
            file_number, rows_in_file = file_number + 1, 0
        cols = _frame_columns(ep, start, tasks[ep.task], fps)
        pending.append(pa.table({contract.action.feature: _vector(ep.action),
                                 contract.state.feature: _vector(ep.state),
                                 **{k: pa.array(v) for k, v in cols.items()}}))
        chunk, file = fmt.chunk_and_file(file_number)
        ep_stats = _episode_stats(ep, cols, contract)
        per_episode_stats.append(ep_stats)
        row = {'episode_index': ep.index, 'tasks': [ep.task], 'length': ep.length,
               'data/chunk_index': chunk, 'data/file_index': file,
               'dataset_from_index': start, 'dataset_to_index': start + ep.length}
        for key, loc in ep.videos.items():
            for name, value in loc.items():
                row[f'videos/{key}/{name}'] = value
        row['meta/episodes/chunk_index'] = 0
        row['meta/episodes/file_index'] = 0
        for feat, s in ep_stats.items():
            for name, value in s.items():
                row[f'stats/{feat}/{name}'] = np.asarray(value).tolist()
        ep_rows.append(row)
        rows_in_file += ep.length
        start += ep.length
    flush()
    _write_table(root, fmt.EPISODES_PATH.format(chunk_index=0, file_index=0),
                 pa.Table.from_pylist(ep_rows))
    _write_tasks(root, tasks)
    return {feat: st.aggregate([s[feat] for s in per_episode_stats])
            for feat in per_episode_stats[0]}


def _write_tasks(root: Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet as pandas writes a DataFrame indexed by ``task`` (what LeRobot reads)."""
    table = pa.table({'task_index': pa.array(list(tasks.values()), type=pa.int64()),
                      'task': pa.array(list(tasks), type=pa.string())})
    pandas_meta = {
        'index_columns': ['task'],
        'column_indexes': [{'name': None, 'field_name': None, 'pandas_type': 'unicode',
                            'numpy_type': 'object', 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [
            {'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
             'numpy_type': 'int64', 'metadata': None},
            {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode',
             'numpy_type': 'object', 'metadata': None}],
        'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': '2.2.3'}
    table = table.replace_schema_metadata({b'pandas': json.dumps(pandas_meta).encode()})
    _write_table(root, fmt.TASKS_PATH, table)


def json_fps(fps: float) -> int | float:
    """30.0 -> 30: LeRobot writes an integral fps as an int."""
    return int(fps) if float(fps).is_integer() else float(fps)


def build_features(contract: RobotContract, fps: float, codec: str) -> dict:
    """info.json ``features``: the contract's robot features with video info, then defaults."""
    features = contract.dataset_features()
    for cam in contract.cameras.values():
        features[cam.feature]['info'] = {
            'video.height': cam.height, 'video.width': cam.width, 'video.codec': codec,
            'video.pix_fmt': 'yuv420p', 'video.is_depth_map': False, 'video.fps': json_fps(fps),
            'video.channels': 3, 'video.g': 2, 'video.crf': 30, 'has_audio': False}
    features.update(json.loads(json.dumps(fmt.DEFAULT_FEATURES)))
    return features


def write_info(root: Path, contract: RobotContract, fps: float, features: dict,
               total_episodes: int, total_frames: int, total_tasks: int) -> dict:
    info = {
        'codebase_version': fmt.CODEBASE_VERSION, 'robot_type': contract.robot_type,
        'total_episodes': total_episodes, 'total_frames': total_frames,
        'total_tasks': total_tasks, 'chunks_size': fmt.CHUNKS_SIZE,
        'data_files_size_in_mb': fmt.DATA_FILES_SIZE_IN_MB,
        'video_files_size_in_mb': fmt.VIDEO_FILES_SIZE_IN_MB, 'fps': json_fps(fps),
        'splits': {'train': f'0:{total_episodes}'}, 'data_path': fmt.DATA_PATH,
        'video_path': fmt.VIDEO_PATH if contract.cameras else None, 'features': features}
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    (root / fmt.INFO_PATH).write_text(json.dumps(info, indent=4))
    return info


def write_json(root: Path, rel: str, data: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
