"""Leader -> follower joint mapping for teleoperation (ROS-free).

Each follower joint is an affine function of one leader joint: ``follower = scale * leader +
offset`` (rad). Inversion is ``scale = -1``; a fixed mechanical difference between the arms is an
offset. A joint can instead be *range-mapped*: the leader's calibrated range is stretched onto the
follower's, which is what LeRobot does for the gripper (RANGE_0_100 on both sides), where the
leader's handle and the follower's jaw do not span the same angle.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import math


class TeleopMappingError(ValueError):
    """The mapping parameters are inconsistent (lengths, unknown joints, degenerate ranges)."""


@dataclass(frozen=True)
class JointMap:
    """``follower_joint = scale * leader[leader_joint] + offset``."""

    leader_joint: str
    follower_joint: str
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not self.leader_joint or not self.follower_joint:
            raise TeleopMappingError('joint names must not be empty')
        if not (math.isfinite(self.scale) and self.scale != 0.0):
            raise TeleopMappingError(f'scale of {self.follower_joint} must be finite and non-zero')
        if not math.isfinite(self.offset):
            raise TeleopMappingError(f'offset of {self.follower_joint} must be finite')


@dataclass(frozen=True)
class TeleopMapping:
    """An ordered set of joint maps; :meth:`apply` turns a leader reading into a command."""

    joints: tuple[JointMap, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.joints:
            raise TeleopMappingError('a teleop mapping needs at least one joint')
        followers = [j.follower_joint for j in self.joints]
        if len(set(followers)) != len(followers):
            raise TeleopMappingError(f'follower joints mapped twice: {followers}')

    @property
    def follower_joints(self) -> list[str]:
        return [j.follower_joint for j in self.joints]

    def apply(self, leader: Mapping[str, float]) -> dict[str, float]:
        """Map a leader reading (name -> rad) to follower targets (name -> rad).

        Joints whose leader value is missing are left out (the follower driver accepts partial
        commands); non-finite leader values raise, since they mean a broken leader driver.
        """
        out: dict[str, float] = {}
        for j in self.joints:
            if j.leader_joint not in leader:
                continue
            v = float(leader[j.leader_joint])
            if not math.isfinite(v):
                raise TeleopMappingError(f'leader joint {j.leader_joint} reads {v}')
            out[j.follower_joint] = j.scale * v + j.offset
        return out


def range_map(
    leader_range: tuple[float, float], follower_range: tuple[float, float]
) -> tuple[float, float]:
    """Scale and offset that send the leader's [lo, hi] onto the follower's [lo, hi] (rad)."""
    l_lo, l_hi = leader_range
    f_lo, f_hi = follower_range
    if not l_hi > l_lo:
        raise TeleopMappingError(f'leader range {leader_range} is empty')
    if not f_hi > f_lo:
        raise TeleopMappingError(f'follower range {follower_range} is empty')
    scale = (f_hi - f_lo) / (l_hi - l_lo)
    return scale, f_lo - scale * l_lo


def build_mapping(
    joints: Sequence[str],
    offsets: Sequence[float] = (),
    inverted: Sequence[bool] = (),
    leader_joints: Sequence[str] = (),
    range_mapped: Sequence[str] = (),
    leader_ranges: Mapping[str, tuple[float, float]] | None = None,
    follower_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> TeleopMapping:
    """Build a mapping from flat per-joint lists, as ROS parameters deliver them.

    ``offsets``, ``inverted`` and ``leader_joints`` are either empty (defaults: 0, False, same
    name) or exactly as long as ``joints``. Joints named in ``range_mapped`` take their scale from
    the two calibrated ranges (rad); inversion then flips the leader range, and the offset adds.
    """
    n = len(joints)
    lists = (('offsets', offsets), ('inverted', inverted), ('leader_joints', leader_joints))
    for name, seq in lists:
        if len(seq) not in (0, n):
            raise TeleopMappingError(f'{name} has {len(seq)} entries; expected 0 or {n} (joints)')
    unknown = sorted(set(range_mapped) - set(joints))
    if unknown:
        raise TeleopMappingError(f'range_mapped names joints not in joints: {unknown}')
    if range_mapped and (leader_ranges is None or follower_ranges is None):
        raise TeleopMappingError('range_mapped joints need both leader and follower ranges')
    maps = []
    for i, follower in enumerate(joints):
        leader = leader_joints[i] if leader_joints else follower
        sign = -1.0 if (inverted and inverted[i]) else 1.0
        offset = float(offsets[i]) if offsets else 0.0
        if follower in range_mapped:
            assert leader_ranges is not None and follower_ranges is not None
            if leader not in leader_ranges or follower not in follower_ranges:
                raise TeleopMappingError(f'no calibrated range for {leader} -> {follower}')
            lo, hi = leader_ranges[leader]
            src = (lo, hi) if sign > 0 else (-hi, -lo)
            scale, base = range_map(src, follower_ranges[follower])
            maps.append(JointMap(leader, follower, sign * scale, base + offset))
        else:
            maps.append(JointMap(leader, follower, sign, offset))
    return TeleopMapping(tuple(maps))
