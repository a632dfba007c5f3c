"""``smolvla-convert`` end to end through main() and once through the installed console script."""
from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

from smolvla_training.convert.cli import main
from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag


def test_convert_then_check(tmp_path, contract_file, capsys) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.0, tasks=[]))
    args = [str(bag), '--contract', str(contract_file), '--out', str(tmp_path / 'ds'),
            '--vcodec', 'h264', '--no-progress']
    assert main(args) == 1  # no task anywhere
    assert '--task' in capsys.readouterr().err
    assert main([*args, '--task', 'pick it']) == 0
    out = capsys.readouterr().out
    assert 'wrote' in out and 'check OK' in out and 'front' in out
    assert main(['--check', str(tmp_path / 'ds')]) == 0
    assert main([*args, '--task', 'again']) == 1  # the output exists now
    assert 'exists' in capsys.readouterr().err
    (tmp_path / 'ds/meta/stats.json').write_text('{}')
    assert main(['--check', str(tmp_path / 'ds')]) == 1
    assert 'stats.json lacks' in capsys.readouterr().err
    assert main(['--out', str(tmp_path / 'x')]) == 2


def test_console_script_is_installed(tmp_path) -> None:
    exe = shutil.which('smolvla-convert', path=str(Path(sys.executable).parent))
    assert exe is not None, 'pip install -e training installs smolvla-convert beside python'
    proc = subprocess.run([exe, '--help'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and '--check' in proc.stdout
