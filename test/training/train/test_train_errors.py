"""`smolvla-train` refuses bad settings, data and checkpoints with one clear line, exit 2/3."""
from __future__ import annotations

import json
from pathlib import Path
import shutil

from conftest import DATASET, run_train
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def test_help_is_instant_and_lists_the_recipe_options() -> None:
    res = run_train('--help')
    assert res.returncode == 0
    for flag in ('--dataset', '--preset', '--init', '--resume', '--grad-accum', '--val-episodes',
                 '--rename-map', '--freeze-vision-encoder', '--train-expert-only'):
        assert flag in res.stdout


def test_not_a_lerobot_dataset(tmp_path: Path) -> None:
    (tmp_path / 'd' / 'meta').mkdir(parents=True)
    (tmp_path / 'd' / 'meta' / 'info.json').write_text(json.dumps(
        {'codebase_version': 'v2.0', 'fps': 30, 'features': {}}))
    res = run_train('--dataset', str(tmp_path / 'd'), '--preset', 'tiny', '--out',
                    str(tmp_path / 'o'), '--steps', '1')
    assert res.returncode == 2
    assert "codebase_version 'v2.0' is not supported" in res.stderr
    assert 'Traceback' not in res.stderr


def test_cameras_that_do_not_fit_the_checkpoint_are_named(tmp_path: Path,
                                                          golden_checkpoint: Path) -> None:
    res = run_train('--dataset', str(DATASET), '--init', str(golden_checkpoint), '--out',
                    str(tmp_path / 'o'), '--steps', '1', '--cache-dir', str(tmp_path / 'c'),
                    '--rename-map', 'observation.images.top=observation.images.front')
    assert res.returncode == 2
    assert "observation.images.front" in res.stderr and "observation.images.top" in res.stderr
    assert '--rename-map' in res.stderr


def test_existing_run_needs_resume(tmp_path: Path, golden_checkpoint: Path) -> None:
    (tmp_path / 'o' / 'checkpoints').mkdir(parents=True)
    res = run_train('--dataset', str(DATASET), '--init', str(golden_checkpoint), '--out',
                    str(tmp_path / 'o'), '--steps', '1')
    assert res.returncode == 2 and '--resume' in res.stderr


@pytest.mark.slow
def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
        tmp_path: Path, golden_checkpoint: Path) -> None:
    data = tmp_path / 'nan_dataset'
    shutil.copytree(DATASET, data)
    path = next((data / 'data').rglob('*.parquet'))
    table = pq.read_table(path)
    actions = table.column('action').to_pylist()
    last_of_episode_1 = max(i for i, e in enumerate(table.column('episode_index').to_pylist())
                            if e == 1)
    actions[last_of_episode_1][0] = float('nan')  # every chunk that reaches the episode's end
    table = table.set_column(table.column_names.index('action'), 'action',
                             pa.array(actions, type=table.schema.field('action').type))
    pq.write_table(table, path)
    out = tmp_path / 'o'
    res = run_train('--dataset', str(data), '--init', str(golden_checkpoint), '--out', str(out),
                    '--steps', '200', '--batch-size', '1', '--save-every', '1',
                    '--episodes', '0,1',
                    '--cache-dir', str(tmp_path / 'c'))
    assert res.returncode == 3, res.stderr[-2000:]
    assert 'the loss is nan at step' in res.stderr and 'episode 1' in res.stderr
    last = (out / 'checkpoints' / 'last').resolve()
    failed_at = int(res.stderr.split('the loss is nan at step ')[1].split()[0])
    assert int(last.name) == failed_at - 1  # (deterministic: the sample order is seeded)
    from smolvla_ros.policy.policy import SmolVLAPolicy
    SmolVLAPolicy.from_pretrained(last / 'pretrained_model')  # the last good one loads


def test_plot_subcommand_redraws_the_curves(tmp_path: Path) -> None:
    rows = [{'step': s, 'loss': 1.0 / s, 'lr': 1e-4} for s in range(1, 6)]
    rows.append({'step': 5, 'val_loss': 0.3})
    (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    res = run_train('plot', str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / 'training.png').read_bytes()[:4] == b'\x89PNG'
    assert run_train('plot', str(tmp_path / 'nothing')).returncode == 2
