"""ruff over the whole tree (config in ruff.toml), so style drift fails CI like any other bug."""
from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    ruff = Path(sys.executable).with_name('ruff')
    if not ruff.exists():
        ruff = shutil.which('ruff')
    if ruff is None:
        pytest.skip('ruff is not installed (requirements/dev.txt)')
    proc = subprocess.run([str(ruff), 'check', 'smolvla_ros', 'training', 'test', 'bench', 'launch',
                           'setup.py'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]
