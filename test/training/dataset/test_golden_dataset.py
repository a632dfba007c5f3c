"""A dataset written by LeRobot 0.6.1 itself, read through our reader.

test/data/lerobot_golden/lerobot_dataset_v30: 3 episodes (20, 30, 40 frames) at 30 fps, 2 tasks,
two AV1 cameras (48x64) in one shared mp4 per camera, 6-dim state and action. Expected values come
from LeRobot's own files: info.json, the per-episode stats in meta/episodes (computed by LeRobot
from the frames it was given) and meta/stats.json, so a reader that mixed up episodes, tasks,
video offsets or colour channels fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from smolvla_training.dataset.reader import LeRobotDatasetReader
from smolvla_training.dataset.video import decode_all

ROOT = Path(__file__).resolve().parents[2] / 'data' / 'lerobot_golden' / 'lerobot_dataset_v30'
VECTORS = ('observation.state', 'action')
CAMERAS = ('observation.images.top', 'observation.images.wrist')
# LeRobot's image stats describe the frames before lossy AV1 encoding (crf 30); decoded frames
# differ from them by up to ~0.006 in a channel mean here. Red and blue means differ by >= 0.021
# in every episode, so this still tells RGB from BGR.
IMAGE_MEAN_ATOL = 0.01


@pytest.fixture(scope='module')
def reader():
    r = LeRobotDatasetReader(ROOT, action_horizon=10)
    yield r
    r.close()


@pytest.fixture(scope='module')
def lerobot_episodes() -> list[dict]:
    return pq.read_table(ROOT / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()


def test_layout_matches_lerobots_info(reader):
    info = json.loads((ROOT / 'meta/info.json').read_text())
    assert reader.version == 'v3.0'
    assert len(reader) == info['total_frames'] == 90
    assert reader.fps == info['fps'] == 30
    assert len(reader.episodes) == info['total_episodes'] == 3
    assert [e.length for e in reader.episodes] == [20, 30, 40]
    assert reader.video_keys == CAMERAS
    assert sorted(reader.tasks.values()) == ['pick up the red cube', 'place the cube in the bowl']


def test_frames_carry_their_episodes_tasks_and_times(reader, lerobot_episodes):
    for ep, row in zip(reader.episodes, lerobot_episodes, strict=True):
        for k in (0, ep.length - 1):
            item = reader[ep.from_index + k]
            assert item['episode_index'] == row['episode_index'] == ep.index
            assert item['frame_index'] == k
            assert item['task'] == row['tasks'][0]
            assert item['timestamp'] == pytest.approx(k / 30.0, abs=1e-6)


@pytest.mark.parametrize('key', VECTORS)
def test_per_episode_vectors_match_lerobots_stats(reader, lerobot_episodes, key):
    """Rows fall in the right episode: LeRobot's per-episode min/max exactly, mean and std."""
    column = reader.column(key)
    assert column.shape == (90, 6) and column.dtype == np.float32
    for ep, row in zip(reader.episodes, lerobot_episodes, strict=True):
        values = column[ep.from_index:ep.from_index + ep.length]
        np.testing.assert_array_equal(values.min(axis=0), row[f'stats/{key}/min'])
        np.testing.assert_array_equal(values.max(axis=0), row[f'stats/{key}/max'])
        np.testing.assert_allclose(values.mean(axis=0), row[f'stats/{key}/mean'], rtol=1e-6)
        np.testing.assert_allclose(values.std(axis=0), row[f'stats/{key}/std'], rtol=1e-4)
    stats = reader.stats[key]  # meta/stats.json, LeRobot's aggregate
    np.testing.assert_allclose(column.mean(axis=0), stats['mean'], rtol=1e-6)
    np.testing.assert_array_equal(column.min(axis=0), stats['min'])
    np.testing.assert_array_equal(column.max(axis=0), stats['max'])


def test_action_chunks_stop_at_episode_ends(reader):
    action = reader.column('action')
    first = reader.episodes[0]
    last_row = first.from_index + first.length - 1
    item = reader[last_row - 3]
    assert item['action'].shape == (10, 6)
    assert item['action_is_pad'].tolist() == [False] * 4 + [True] * 6
    np.testing.assert_array_equal(item['action'][:4], action[last_row - 3:last_row + 1])
    np.testing.assert_array_equal(item['action'][4:], np.repeat(action[last_row][None], 6, 0))


@pytest.mark.parametrize('key', CAMERAS)
def test_decoded_frames_match_lerobots_image_stats(reader, lerobot_episodes, key):
    """Every frame decodes from the shared mp4 at its episode's offset, 3x48x64 in [0, 1]."""
    for ep, row in zip(reader.episodes, lerobot_episodes, strict=True):
        frames = np.stack([reader[ep.from_index + k][key] for k in range(ep.length)])
        assert frames.shape == (ep.length, 3, 48, 64) and frames.dtype == np.float32
        assert frames.min() >= 0.0 and frames.max() <= 1.0
        mean = frames.mean(axis=(0, 2, 3))  # [3]
        np.testing.assert_allclose(mean, np.ravel(row[f'stats/{key}/mean']), rtol=0,
                                   atol=IMAGE_MEAN_ATOL)


@pytest.mark.parametrize('key', CAMERAS)
def test_each_row_reads_its_own_frame_of_the_shared_video(reader, key):
    """LeRobot v3.0 concatenates the episodes in one mp4; row i is the file's i-th frame, found
    through the episode's from_timestamp (episode 1 starts at 20/30 s)."""
    rel, offset = reader.episode(1).videos[key]
    assert offset == pytest.approx(20 / 30)
    times, frames = decode_all(ROOT / rel)
    assert len(frames) == len(reader) == 90
    np.testing.assert_allclose(times, np.arange(90) / 30.0, atol=1e-4)
    for i in (0, 19, 20, 49, 50, 89):
        expected = frames[i].transpose(2, 0, 1).astype(np.float32) / 255.0  # [3, H, W]
        np.testing.assert_array_equal(reader[i][key], expected)
