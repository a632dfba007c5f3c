"""``smolvla-convert --recover``: a killed recording's bag is refused with a pointer to the flag,
recovered beside the original, and converts to the very dataset the finished bag gives."""
from __future__ import annotations

import shutil

import pyarrow.parquet as pq
from smolvla_training.convert.cli import main
from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag


def test_recover_then_convert_equals_the_finished_bag(tmp_path, contract_file, capsys) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.5))
    killed = tmp_path / 'killed'
    shutil.copytree(bag, killed)
    (killed / 'metadata.yaml').unlink()  # what a SIGKILLed recorder leaves (test_recover.py
    # covers mcap files cut short as well)
    opts = ['--contract', str(contract_file), '--vcodec', 'h264', '--no-progress']
    assert main([str(bag), '--out', str(tmp_path / 'ds_ref'), *opts]) == 0
    capsys.readouterr()

    assert main([str(killed), '--out', str(tmp_path / 'ds'), *opts]) == 1
    err = capsys.readouterr().err
    assert 'never finalised' in err and f'smolvla-convert --recover {killed}' in err
    assert not (tmp_path / 'ds').exists()

    assert main([str(killed), '--out', str(tmp_path / 'ds'), '--recover', *opts]) == 0
    out = capsys.readouterr().out
    assert f'into {tmp_path / "killed.recovered"}' in out and 'check OK' in out
    assert not (killed / 'metadata.yaml').exists()  # the original stays as it was
    table = 'data/chunk-000/file-000.parquet'
    assert pq.read_table(tmp_path / 'ds' / table).equals(
        pq.read_table(tmp_path / 'ds_ref' / table))

    assert main(['--recover', str(killed)]) == 0  # the earlier recovery is reused
    assert 'using the bag recovered earlier' in capsys.readouterr().out
    assert main(['--recover', str(bag)]) == 0
    assert 'nothing to recover' in capsys.readouterr().out
    assert main(['--check', str(tmp_path / 'ds'), '--recover']) == 2


def test_recover_alone_reports_and_fails_on_an_empty_recording(tmp_path, capsys) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    (bag / 'metadata.yaml').unlink()
    assert main(['--recover', str(bag)]) == 0
    out = capsys.readouterr().out
    assert 'recovered' in out and '/joint_states: ' in out and 'end of the data section' in out
    assert (tmp_path / 'bag.recovered' / 'metadata.yaml').is_file()
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'empty.mcap').write_bytes(b'')
    assert main(['--recover', str(empty)]) == 1
    assert 'no complete message' in capsys.readouterr().err
    assert not (tmp_path / 'empty.recovered').exists()


def test_a_finalised_bag_cut_short_is_recovered(tmp_path, contract_file, capsys) -> None:
    """Issue 14 item 7: the bag keeps its metadata.yaml but its mcap was cut short. The
    refusal's advice (--recover) must work: --recover rebuilds it, and converting with
    --recover gives the frames of the surviving part."""
    bag = write_bag(tmp_path / 'bag', jittery_spec(3.0))
    mcap = next(bag.glob('*.mcap'))
    with mcap.open('r+b') as f:
        f.truncate(mcap.stat().st_size // 2)
    opts = ['--contract', str(contract_file), '--vcodec', 'h264', '--no-progress']
    assert main([str(bag), '--out', str(tmp_path / 'ds'), *opts]) == 1
    err = capsys.readouterr().err
    assert 'smolvla-convert --recover' in err and not (tmp_path / 'ds').exists()

    assert main(['--recover', str(bag)]) == 0
    out = capsys.readouterr().out
    assert 'nothing to recover' not in out  # what it said before, leaving the bag unreadable
    assert 'cut short' in out  # the reason, then the recovery report
    assert f'into {tmp_path / "bag.recovered"}' in out and '/joint_states: ' in out
    assert (tmp_path / 'bag.recovered' / 'metadata.yaml').is_file()

    assert main([str(bag), '--recover', '--out', str(tmp_path / 'ds'), *opts]) == 0
    out = capsys.readouterr().out
    assert 'using the bag recovered earlier' in out and 'check OK' in out
    frames = pq.read_table(tmp_path / 'ds' / 'data/chunk-000/file-000.parquet').num_rows
    assert 10 < frames < 3.0 * 30 * 0.75  # about half of the 3 s survived
