"""End-to-end conversion: bag -> LeRobot v3.0 directory, contents checked against the bag."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert, plan_bag
from smolvla_training.convert.errors import DatasetCheckError, OutputExistsError
from smolvla_training.convert.synthetic_bag import (
    T0,
    jittery_spec,
    joint_positions,
    small_contract,
    write_bag,
)

from smolvla_ros.core.dataset_units import DatasetUnits

H264 = ConvertConfig(vcodec='h264', progress=False)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_two_bags_convert_to_a_checked_dataset(tmp_path, contract, storage) -> None:
    bags = [write_bag(tmp_path / 'a', jittery_spec(1.0), storage),
            write_bag(tmp_path / 'b', jittery_spec(1.5, tasks=[(T0, 'stack')]), storage)]
    out = tmp_path / 'ds'
    result = convert(bags, contract, out, H264)
    assert (result.episodes, result.frames) == (2, 30 + 45)
    info = json.loads((out / 'meta/info.json').read_text())
    assert info['codebase_version'] == 'v3.0' and info['fps'] == 30 and isinstance(info['fps'], int)
    assert (info['total_episodes'], info['total_frames'], info['total_tasks']) == (2, 75, 2)
    assert info['features']['observation.images.front']['info']['video.codec'] == 'h264'
    assert info['features']['action']['names'][0] == 'shoulder_pan.pos'
    data = pq.read_table(out / 'data/chunk-000/file-000.parquet')
    assert data.column_names == ['action', 'observation.state', 'timestamp', 'frame_index',
                                 'episode_index', 'index', 'task_index']
    # State = the as-of joint state in dataset units (degrees, gripper 0..100) at each grid time.
    units = DatasetUnits.from_contract(contract)
    _, plans, _ = plan_bag(bags[1], contract, H264)
    spec = jittery_spec(1.5)
    rad = np.stack([joint_positions(spec.state[i]) for i in plans[0].indices['state']])
    state = np.stack(data.column('observation.state').to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(state[30:], units.to_dataset(rad).astype(np.float32))
    ts = data.column('timestamp').to_numpy()
    np.testing.assert_allclose(ts[30:], np.arange(45) / 30.0, atol=1e-6)
    eps = pq.read_table(out / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()
    assert [e['dataset_from_index'] for e in eps] == [0, 30]
    assert eps[1]['videos/observation.images.front/from_timestamp'] == pytest.approx(1.0)
    assert eps[1]['tasks'] == ['stack']
    tasks = pq.read_table(out / 'meta/tasks.parquet')
    assert tasks.schema.pandas_metadata['index_columns'] == ['task']
    stats = json.loads((out / 'meta/stats.json').read_text())
    assert stats['action']['count'] == [75]
    np.testing.assert_allclose(stats['observation.state']['mean'], state.mean(axis=0), rtol=1e-5)
    assert np.asarray(stats['observation.images.front']['mean']).shape == (3, 1, 1)
    report = json.loads((out / 'meta/sync_report.json').read_text())
    assert report['episodes'][1]['episode_indices'] == [1]
    assert check_dataset(out)['frames'] == 75
    assert not [p for p in tmp_path.iterdir() if '.partial-' in p.name]


def test_raw_images_and_libsvtav1(tmp_path) -> None:
    contract = small_contract(compressed=False)
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5, compressed=False))
    result = convert([bag], contract, tmp_path / 'ds', ConvertConfig(progress=False))
    info = json.loads((tmp_path / 'ds/meta/info.json').read_text())
    assert info['features']['observation.images.wrist']['info']['video.codec'] == 'av1'
    _, plans, _ = plan_bag(bag, contract, ConvertConfig())
    assert result.frames == plans[0].length >= 14  # 0.5 s at 30 fps less jittered ends
    assert check_dataset(result.root)['frames'] == result.frames


def test_existing_output_is_never_touched(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    out = tmp_path / 'ds'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    with pytest.raises(OutputExistsError):
        convert([bag], contract, out, H264)
    assert [p.name for p in out.iterdir()] == ['keep.txt']


def test_check_finds_a_broken_dataset(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    out = convert([bag], contract, tmp_path / 'ds', H264).root
    info = json.loads((out / 'meta/info.json').read_text())
    info['total_frames'] += 1
    (out / 'meta/info.json').write_text(json.dumps(info))
    video = out / 'videos/observation.images.front/chunk-000/file-000.mp4'
    video.write_bytes(video.read_bytes()[:200])
    with pytest.raises(DatasetCheckError) as err:
        check_dataset(out)
    assert len(err.value.problems) == 2
    assert 'total_frames' in err.value.problems[0] and 'front' in err.value.problems[1]


def test_fps_option_resamples(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.0))
    cfg = ConvertConfig(vcodec='h264', progress=False, fps=15.0)
    result = convert([bag], contract, tmp_path / 'ds', cfg)
    assert result.frames == 15 and check_dataset(result.root)['fps'] == 15.0


def test_metadata_reads_as_lerobot_reads_it(tmp_path, contract) -> None:
    """LeRobot loads meta/tasks.parquet with pandas and expects the task string as the index."""
    pd = pytest.importorskip('pandas')
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5, tasks=[(T0, 'wave')]))
    out = convert([bag], contract, tmp_path / 'ds', H264).root
    tasks = pd.read_parquet(out / 'meta/tasks.parquet')
    assert tasks.index.name == 'task' and tasks.loc['wave', 'task_index'] == 0
    eps = pd.read_parquet(out / 'meta/episodes/chunk-000/file-000.parquet')
    assert eps.loc[0, 'length'] == eps.loc[0, 'dataset_to_index']
    assert list(eps.loc[0, 'tasks']) == ['wave']
