"""Fixtures of the trainer tests: LeRobot-made data from test/data/lerobot_golden (README there)."""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

GOLDEN = Path(__file__).resolve().parents[2] / 'data' / 'lerobot_golden'
DATASET = GOLDEN / 'lerobot_dataset_v30'  # 3 episodes, 90 frames, cameras top + wrist
PLACEHOLDER = '@FIXTURES@'


@pytest.fixture
def golden_checkpoint(tmp_path: Path) -> Path:
    """LeRobot 0.6.1's tiny SmolVLA checkpoint (chunk 10), its VLM path made absolute."""
    shutil.copytree(GOLDEN / 'tiny_vlm_061', tmp_path / 'tiny_vlm_061')
    ckpt = tmp_path / 'smolvla_tiny_lerobot061'
    shutil.copytree(GOLDEN / 'smolvla_tiny_lerobot061', ckpt)
    for path in ckpt.glob('*.json'):
        path.write_text(path.read_text().replace(PLACEHOLDER, str(tmp_path)))
    return ckpt


def run_train(*args: str, cwd: Path | None = None, timeout: float = 240,
              torchrun: int = 0) -> subprocess.CompletedProcess[str]:
    """`smolvla-train ARGS` in a fresh process (torchrun with N processes when torchrun=N)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    if torchrun:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={torchrun}', '-m', 'smolvla_training.train.cli']
    else:
        cmd = [sys.executable, '-m', 'smolvla_training.train.cli']
    extra = [] if args[:1] == ("plot",) else ["--no-progress"]
    return subprocess.run([*cmd, *args, *extra], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)
