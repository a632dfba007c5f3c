"""Fixtures of the training tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from smolvla_training.convert.synthetic_bag import small_contract, write_small_contract

from smolvla_ros.core.robot.contract import RobotContract


@pytest.fixture
def contract() -> RobotContract:
    """The so101 contract with 64x48 compressed cameras."""
    return small_contract()


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    """The so101 contract file with the synthetic bags' camera size (for the CLI)."""
    return write_small_contract(tmp_path / 'contract.yaml')
