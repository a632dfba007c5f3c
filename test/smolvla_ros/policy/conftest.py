"""Fixtures of the golden parity tests (test_golden_*.py): LeRobot 0.6.1's reference tensors and
our policy loaded from the LeRobot-written tiny checkpoint. A module that defines a fixture of
the same name (e.g. test_golden_rtc.py's own reference) uses its own."""
from __future__ import annotations

import pytest


@pytest.fixture(scope='module')
def ref():
    from golden_data import load_reference
    return load_reference('reference_061')


@pytest.fixture(scope='module')
def policy(tmp_path_factory):
    from golden_data import checkpoint_copy
    import torch

    from smolvla_ros.policy.policy import SmolVLAPolicy
    torch.set_num_threads(1)
    return SmolVLAPolicy.from_pretrained(checkpoint_copy(tmp_path_factory.mktemp('golden')))
