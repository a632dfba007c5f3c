"""LeRobot dataset layout constants, shared by the writer, ``--check`` and the reader.

The layout: docs/lerobot_compat.md, "Datasets".

One place for path templates, default columns and tolerances, so the converter can never write a
layout that its own checker or reader does not expect.
"""
from __future__ import annotations

CODEBASE_VERSION = 'v3.0'
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
TOLERANCE_S = 1e-4  # LeRobot's timestamp tolerance

DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
INFO_PATH = 'meta/info.json'
STATS_PATH = 'meta/stats.json'
TASKS_PATH = 'meta/tasks.parquet'
SYNC_REPORT_PATH = 'meta/sync_report.json'  # ours; LeRobot ignores unknown files

# v2.1 (read only)
V21_DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet'
V21_VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4'

# Columns LeRobot adds to every dataset, in its order.
DEFAULT_FEATURES: dict[str, dict] = {
    'timestamp': {'dtype': 'float32', 'shape': [1], 'names': None},
    'frame_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'episode_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'task_index': {'dtype': 'int64', 'shape': [1], 'names': None},
}

STAT_NAMES = ('min', 'max', 'mean', 'std', 'count')


def chunk_and_file(file_number: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the n-th file of a kind (chunk rolls over every 1000)."""
    return divmod(file_number, CHUNKS_SIZE)
