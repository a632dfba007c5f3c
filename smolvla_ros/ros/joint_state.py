"""sensor_msgs/JointState <-> numpy, and picking joints by name in a required order.

Drivers publish joints in whatever order they like; the contract fixes the order the policy
expects. ``pick_joints`` is the one place where that reordering happens, and it fails loudly
(naming every missing joint) instead of feeding the policy a misaligned vector.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import JointState

from smolvla_ros.ros.buffers import to_array, view
from smolvla_ros.ros.errors import DuplicateJointError, LengthMismatchError, MissingJointError
from smolvla_ros.ros.time import ns_to_stamp, stamp_to_ns


@dataclass(frozen=True, eq=False)
class JointStateArrays:
    """A JointState as arrays; absent velocity/effort are empty (ROS allows omitting them)."""

    stamp_ns: int
    names: tuple[str, ...]
    position: np.ndarray  # float64 [J] or [0]
    velocity: np.ndarray  # float64 [J] or [0]
    effort: np.ndarray  # float64 [J] or [0]

    def positions_in_order(self, order: Sequence[str]) -> np.ndarray:
        """Positions of the joints in ``order`` (float64 [len(order)]); see ``pick_joints``."""
        if self.position.size == 0:
            raise LengthMismatchError(
                f'the joint state has no positions (names {list(self.names)})')
        return pick_joints(self.names, self.position, order)


def _check_unique(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if list(names).count(n) > 1})
        raise DuplicateJointError(f'joint names contain duplicates: {dupes}')


def joint_state_to_numpy(msg: JointState) -> JointStateArrays:
    """Read a JointState; each of position/velocity/effort must be empty or one value per name."""
    names = tuple(msg.name)
    _check_unique(names)
    fields = {}
    for field in ('position', 'velocity', 'effort'):
        values = view(getattr(msg, field), np.float64)  # [J] or [0], zero-copy
        if values.size not in (0, len(names)):
            raise LengthMismatchError(
                f'JointState.{field} has {values.size} values for {len(names)} names {list(names)}')
        fields[field] = values
    return JointStateArrays(stamp_to_ns(msg.header.stamp), names, **fields)


def numpy_to_joint_state(
    names: Sequence[str],
    position: np.ndarray | Sequence[float],
    velocity: np.ndarray | Sequence[float] | None = None,
    effort: np.ndarray | Sequence[float] | None = None,
    *,
    stamp_ns: int = 0,
    frame_id: str = '',
) -> JointState:
    """Build a JointState; velocity/effort are left empty when None."""
    names = list(names)
    _check_unique(names)
    msg = JointState()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.name = names
    for field, values in (('position', position), ('velocity', velocity), ('effort', effort)):
        if values is None:
            continue
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (len(names),):
            raise LengthMismatchError(
                f'{field} has shape {arr.shape}, expected [{len(names)}] for joints {names}')
        setattr(msg, field, to_array(arr, np.float64))
    return msg


def pick_joints(
    names: Sequence[str], values: np.ndarray | Sequence[float], order: Sequence[str]
) -> np.ndarray:
    """``values`` (parallel to ``names``) reordered to ``order``; extra joints are ignored.

    Raises MissingJointError naming every joint of ``order`` absent from ``names``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(names),):
        raise LengthMismatchError(
            f'values of shape {values.shape} for {len(names)} names {list(names)}')
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        _check_unique(names)
    missing = [n for n in order if n not in index]
    if missing:
        raise MissingJointError(missing, list(names))
    if list(order) == list(names):
        return values
    return values[[index[n] for n in order]]  # [len(order)], a copy
