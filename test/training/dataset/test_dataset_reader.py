"""The reader returns what the converter wrote; action chunks pad at episode ends; v2.1 too."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from smolvla_training.convert.converter import ConvertConfig, convert, plan_bag
from smolvla_training.convert.synthetic_bag import camera_image, jittery_spec, write_bag
from smolvla_training.convert.video import VideoWriter
from smolvla_training.dataset.reader import DatasetFormatError, LeRobotDatasetReader
from smolvla_training.dataset.video import VideoDecodeError, VideoFile

CFG = ConvertConfig(vcodec='h264', progress=False)


@pytest.fixture
def dataset(tmp_path, contract) -> tuple[Path, list]:
    bags = [write_bag(tmp_path / 'a', jittery_spec(1.0)), write_bag(tmp_path / 'b',
                                                                    jittery_spec(0.5))]
    out = convert(bags, contract, tmp_path / 'ds', CFG).root
    plans = [plan_bag(b, contract, CFG)[1][0] for b in bags]
    return out, plans


def test_frames_match_the_written_data_and_source_images(dataset) -> None:
    root, plans = dataset
    reader = LeRobotDatasetReader(root, action_horizon=4)
    data = pq.read_table(root / 'data/chunk-000/file-000.parquet')
    assert len(reader) == data.num_rows == plans[0].length + plans[1].length
    action = np.stack(data.column('action').to_numpy(zero_copy_only=False))
    for i in (0, 7, plans[0].length - 1, plans[0].length, len(reader) - 1):
        item = reader[i]
        row = data.slice(i, 1).to_pylist()[0]
        assert item['index'] == row['index'] == i
        np.testing.assert_array_equal(item['observation.state'], row['observation.state'])
        assert item['task'] == 'pick the cube'
        ep = 0 if i < plans[0].length else 1
        k = i - (0 if ep == 0 else plans[0].length)
        for c, cam in enumerate(('front', 'wrist')):
            img = item[f'observation.images.{cam}']
            assert img.shape == (3, 48, 64) and img.dtype == np.float32
            source = camera_image(int(plans[ep].indices[cam][k]), c)  # [H, W, 3] as recorded
            err = np.abs(img.transpose(1, 2, 0) * 255.0 - source).mean()
            assert err < 6.0, (i, cam, err)  # JPEG + H.264 at crf 30 on a smooth image
        # The neighbouring source frame is clearly further away: the right frame was read.
        other = camera_image(int(plans[ep].indices['front'][k]) + 3, 0)
        assert np.abs(item['observation.images.front'].transpose(1, 2, 0) * 255 - other
                      ).mean() > err
        np.testing.assert_array_equal(item['action'][0], action[i])
    end = plans[0].length - 1
    item = reader[end - 1]
    assert item['action_is_pad'].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(item['action'][2], action[end])  # clamped to the last frame
    reader.close()


def test_stats_and_metadata(dataset) -> None:
    root, plans = dataset
    reader = LeRobotDatasetReader(root, decode_images=False)
    assert reader.version == 'v3.0' and reader.fps == 30.0
    assert [e.length for e in reader.episodes] == [p.length for p in plans]
    state = np.stack([reader[i]['observation.state'] for i in range(len(reader))])
    np.testing.assert_allclose(reader.stats['observation.state']['max'], state.max(axis=0))
    np.testing.assert_allclose(reader.stats['observation.state']['std'], state.std(axis=0),
                               rtol=1e-4)
    assert 'observation.images.front' not in reader[0]
    with pytest.raises(IndexError):
        reader[len(reader)]


def test_reads_a_v21_dataset(tmp_path) -> None:
    """A hand-made v2.1 directory: one parquet and one mp4 per episode, jsonl metadata."""
    root = tmp_path / 'v21'
    lengths = [5, 3]
    info = {'codebase_version': 'v2.1', 'fps': 10, 'chunks_size': 1000, 'features': {
        'action': {'dtype': 'float32', 'shape': [2], 'names': ['a', 'b']},
        'observation.state': {'dtype': 'float32', 'shape': [2], 'names': ['a', 'b']},
        'observation.images.cam': {'dtype': 'video', 'shape': [48, 64, 3],
                                   'names': ['height', 'width', 'channels']},
        'timestamp': {'dtype': 'float32', 'shape': [1]}}}
    (root / 'meta').mkdir(parents=True)
    (root / 'meta/info.json').write_text(json.dumps(info))
    (root / 'meta/tasks.jsonl').write_text('{"task_index": 0, "task": "wave"}\n')
    eps, stats, start = [], [], 0
    for e, n in enumerate(lengths):
        eps.append(json.dumps({'episode_index': e, 'tasks': ['wave'], 'length': n}))
        act = np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 100 * e  # [n, 2]
        stats.append(json.dumps({'episode_index': e, 'stats': {'action': {
            'min': act.min(0).tolist(), 'max': act.max(0).tolist(),
            'mean': act.mean(0).tolist(), 'std': act.std(0).tolist(), 'count': [n]}}}))
        table = pa.table({
            'action': pa.FixedSizeListArray.from_arrays(pa.array(act.reshape(-1)), 2),
            'observation.state': pa.FixedSizeListArray.from_arrays(pa.array(act.reshape(-1)), 2),
            'timestamp': pa.array(np.arange(n, dtype=np.float32) / 10),
            'frame_index': pa.array(np.arange(n)), 'episode_index': pa.array([e] * n),
            'index': pa.array(np.arange(start, start + n)), 'task_index': pa.array([0] * n)})
        path = root / f'data/chunk-000/episode_{e:06d}.parquet'
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        writer = VideoWriter(root / f'videos/chunk-000/observation.images.cam/episode_{e:06d}.mp4',
                             64, 48, 10, 'h264')
        for k in range(n):
            writer.write(camera_image(10 * e + k))
        writer.close()
        start += n
    (root / 'meta/episodes.jsonl').write_text('\n'.join(eps) + '\n')
    (root / 'meta/episodes_stats.jsonl').write_text('\n'.join(stats) + '\n')
    reader = LeRobotDatasetReader(root, action_horizon=2)
    assert len(reader) == 8 and reader.tasks == {0: 'wave'}
    item = reader[6]
    assert item['episode_index'] == 1 and item['frame_index'] == 1
    np.testing.assert_array_equal(item['action'][0], [102, 103])
    assert item['action_is_pad'].tolist() == [False, False]
    assert reader[7]['action_is_pad'].tolist() == [False, True]
    img = item['observation.images.cam'].transpose(1, 2, 0) * 255
    assert np.abs(img - camera_image(11)).mean() < 6.0
    all_act = np.concatenate([np.arange(10, dtype=np.float32).reshape(5, 2),
                              np.arange(6, dtype=np.float32).reshape(3, 2) + 100])
    np.testing.assert_allclose(reader.stats['action']['mean'], all_act.mean(0))
    np.testing.assert_allclose(reader.stats['action']['std'], all_act.std(0), rtol=1e-6)


def test_bad_datasets(tmp_path) -> None:
    with pytest.raises(DatasetFormatError, match='cannot read'):
        LeRobotDatasetReader(tmp_path)
    (tmp_path / 'meta').mkdir()
    (tmp_path / 'meta/info.json').write_text(json.dumps({'codebase_version': 'v1.6', 'fps': 30,
                                                          'features': {}}))
    with pytest.raises(DatasetFormatError, match='v1.6'):
        LeRobotDatasetReader(tmp_path)
    with pytest.raises(ValueError, match='action_horizon'):
        LeRobotDatasetReader(tmp_path, action_horizon=0)


def test_video_frame_outside_the_tolerance_is_an_error(tmp_path) -> None:
    writer = VideoWriter(tmp_path / 'v.mp4', 64, 48, 30, 'h264')
    for k in range(4):
        writer.write(camera_image(k))
    writer.close()
    video = VideoFile(tmp_path / 'v.mp4')
    assert video.frame_at(2 / 30).shape == (48, 64, 3)
    with pytest.raises(VideoDecodeError, match='no frame within'):
        video.frame_at(2.5 / 30)
    video.close()
