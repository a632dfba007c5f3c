"""Fixtures of the training tests."""
from __future__ import annotations

import pytest
from smolvla_training.convert.synthetic_bag import small_contract

from smolvla_ros.core.contract import RobotContract


@pytest.fixture
def contract() -> RobotContract:
    """The so101 contract with 64x48 compressed cameras."""
    return small_contract()
