"""``smolvla-convert`` end to end through main() and once through the installed console script."""
from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

from smolvla_training.convert.cli import main
from smolvla_training.convert.synthetic_bag import H, W, jittery_spec, write_bag
import yaml

from smolvla_ros.core.contract import default_contract_path


def _contract_file(tmp_path):
    path = default_contract_path()
    data = yaml.safe_load(path.read_text())
    for cam in data['cameras'].values():
        cam['width'], cam['height'] = W, H
    data['calibration_file'] = str((path.parent / data['calibration_file']).resolve())
    out = tmp_path / 'contract.yaml'
    out.write_text(yaml.safe_dump(data))
    return out


def test_convert_then_check(tmp_path, capsys) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.0, tasks=[]))
    contract = _contract_file(tmp_path)
    args = [str(bag), '--contract', str(contract), '--out', str(tmp_path / 'ds'),
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
