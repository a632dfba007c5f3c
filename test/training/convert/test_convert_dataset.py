"""End-to-end conversion: bag -> LeRobot v3.0 directory, contents checked against the bag."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
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

from smolvla_ros.core.robot.dataset_units import DatasetUnits

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


def _rewrite_data(out, column: str, row: int, value: float) -> None:
    """Put ``value`` into ``column``[row][0] of the data parquet, keeping everything else."""
    path = out / 'data/chunk-000/file-000.parquet'
    table = pq.read_table(path)
    cells = table.column(column).to_pylist()
    if isinstance(cells[row], list):
        cells[row][0] = value
    else:
        cells[row] = value
    i = table.column_names.index(column)
    table = table.set_column(i, table.field(i), pa.array(cells, type=table.field(i).type))
    pq.write_table(table, path)


@pytest.mark.parametrize(('column', 'value', 'expected'), [
    ('observation.state', float('nan'), 'observation.state: row 7 (episode 0, frame 7) is not '
                                        'finite'),
    ('action', 1e30, 'action: row 7 (episode 0, frame 7) = [1.00000001504'),
    ('action', None, 'action: stats mean'),  # inside the range, but the stats disagree
    ('timestamp', float('nan'), 'episode 0: timestamp of frame 7 is nan'),
    ('timestamp', 0.1, 'episode 0: timestamps not increasing at frame 7 (0.200000 then'),
])
def test_check_finds_corrupted_values_and_names_the_first_bad_row(tmp_path, contract, column,
                                                                  value, expected) -> None:
    """A NaN, a 1e30 or a flipped byte loads without complaint and poisons training: --check reads
    every value and names the first bad row."""
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    out = convert([bag], contract, tmp_path / 'ds', H264).root
    if value is None:  # the middle of the column's range: only the stats can tell
        stats = json.loads((out / 'meta/stats.json').read_text())[column]
        value = (stats['min'][0] + stats['max'][0]) / 2
    _rewrite_data(out, column, 7, value)
    with pytest.raises(DatasetCheckError) as err:
        check_dataset(out, decode_videos=False)
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_check_finds_flipped_bytes_in_the_data(tmp_path, contract) -> None:
    """Bit flips that still load and change a value by more than float32 rounding could hide
    (1e-4 of the column's scale) are found; smaller ones are below what stats can show."""
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    out = convert([bag], contract, tmp_path / 'ds', H264).root
    path = out / 'data/chunk-000/file-000.parquet'
    # Without the page CRCs the converter writes (the test below covers those), as LeRobot
    # writes it: only the value checks can find a flip here.
    pq.write_table(pq.read_table(path), path)
    original, reference = path.read_bytes(), pq.read_table(path)
    group = pq.ParquetFile(path).metadata.row_group(0)
    pages = [group.column(i) for i in range(group.num_columns)]  # every column's data pages
    positions = [c.data_page_offset + k for c in pages
                 for k in range(0, c.total_compressed_size, max(1, c.total_compressed_size // 8))]
    changed = caught = 0
    for pos in positions:
        flipped = bytearray(original)
        flipped[pos] ^= 0x40  # a high mantissa or exponent bit where it lands in a float
        path.write_bytes(bytes(flipped))
        try:
            loaded = pq.read_table(path)
        except (OSError, pa.ArrowException):
            continue  # unreadable: --check says 'cannot load' (not what this test is about)
        if _largest_change(reference, loaded) <= 1e-4:
            continue  # metadata the data does not depend on, or a change in the last bits
        changed += 1
        try:
            check_dataset(out, decode_videos=False)
        except DatasetCheckError:
            caught += 1
    path.write_bytes(original)
    assert changed >= 10 and caught == changed, (changed, caught)


def _largest_change(reference: pa.Table, loaded: pa.Table) -> float:
    """Largest change of any numeric cell, relative to its column's scale (>= 1)."""
    if loaded.column_names != reference.column_names or len(loaded) != len(reference):
        return np.inf
    worst = 0.0
    for name in reference.column_names:
        a = np.asarray(reference.column(name).to_pylist(), dtype=np.float64)
        b = np.asarray(loaded.column(name).to_pylist(), dtype=np.float64)
        with np.errstate(invalid='ignore'):
            diff = np.abs(a - b)
        if not np.isfinite(diff).all():
            return np.inf
        worst = max(worst, float(diff.max() / max(1.0, np.abs(a).max())))
    return worst


def test_page_checksums_find_every_flip_that_changes_the_data(tmp_path, contract) -> None:
    """The converter stores parquet page CRCs, so --check finds a flipped bit of any weight,
    also the low mantissa bits that the value checks cannot see."""
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    out = convert([bag], contract, tmp_path / 'ds', H264).root
    path = out / 'data/chunk-000/file-000.parquet'
    original, reference = path.read_bytes(), pq.read_table(path)
    group = pq.ParquetFile(path).metadata.row_group(0)
    assert check_dataset(out, decode_videos=False)['frames'] == len(reference)
    changed = 0
    for i in range(group.num_columns):
        col = group.column(i)
        start = col.dictionary_page_offset or col.data_page_offset
        for pos in range(start, start + col.total_compressed_size, 3):
            flipped = bytearray(original)
            flipped[pos] ^= 0x01  # the lowest bit: a float changes by one ulp at most
            path.write_bytes(bytes(flipped))
            try:
                if pq.read_table(path).equals(reference):
                    continue
            except (OSError, pa.ArrowException):
                pass  # unreadable without CRCs too: must be reported all the same
            changed += 1
            with pytest.raises(DatasetCheckError):
                check_dataset(out, decode_videos=False)
    path.write_bytes(original)
    assert changed >= 50
