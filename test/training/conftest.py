"""Fixtures of the training tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from smolvla_training.convert.synthetic_bag import H, W, small_contract
import yaml

from smolvla_ros.core.robot.contract import RobotContract, default_contract_path


@pytest.fixture
def contract() -> RobotContract:
    """The so101 contract with 64x48 compressed cameras."""
    return small_contract()


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    """The so101 contract file with the synthetic bags' camera size (for the CLI)."""
    path = default_contract_path()
    data = yaml.safe_load(path.read_text())
    for cam in data['cameras'].values():
        cam['width'], cam['height'] = W, H
    data['calibration_file'] = str((path.parent / data['calibration_file']).resolve())
    out = tmp_path / 'contract.yaml'
    out.write_text(yaml.safe_dump(data))
    return out
