"""Leader -> follower mapping: offsets, inversion, range mapping, and bad parameters."""
from __future__ import annotations

import math

import pytest

from smolvla_ros.hardware.arm.teleop_mapping import (
    JointMap,
    TeleopMapping,
    TeleopMappingError,
    build_mapping,
)


def test_identity_offsets_and_inversion() -> None:
    m = build_mapping(['a', 'b', 'c'], offsets=[0.0, 0.1, 0.0], inverted=[False, False, True])
    out = m.apply({'a': 0.5, 'b': 0.5, 'c': 0.5})
    assert out == pytest.approx({'a': 0.5, 'b': 0.6, 'c': -0.5})
    assert m.follower_joints == ['a', 'b', 'c']


def test_missing_leader_joint_gives_partial_command() -> None:
    m = build_mapping(['a', 'b'])
    assert m.apply({'b': 1.0, 'other': 3.0}) == {'b': 1.0}


def test_renamed_leader_joints() -> None:
    m = build_mapping(['f1'], leader_joints=['l1'])
    assert m.apply({'l1': 0.25}) == {'f1': 0.25}


def test_range_mapping_stretches_leader_range_onto_follower() -> None:
    m = build_mapping(['gripper'], range_mapped=['gripper'],
                      leader_ranges={'gripper': (-0.5, 0.5)},
                      follower_ranges={'gripper': (-0.2, 1.8)})
    assert m.apply({'gripper': -0.5})['gripper'] == pytest.approx(-0.2)
    assert m.apply({'gripper': 0.5})['gripper'] == pytest.approx(1.8)
    assert m.apply({'gripper': 0.0})['gripper'] == pytest.approx(0.8)


def test_range_mapping_inverted() -> None:
    m = build_mapping(['g'], inverted=[True], range_mapped=['g'],
                      leader_ranges={'g': (0.0, 1.0)}, follower_ranges={'g': (0.0, 2.0)})
    # Leader at its max goes to the follower's min, and vice versa.
    assert m.apply({'g': 1.0})['g'] == pytest.approx(0.0)
    assert m.apply({'g': 0.0})['g'] == pytest.approx(2.0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(joints=['a', 'b'], offsets=[0.0]), 'offsets has 1'),
    (dict(joints=['a'], inverted=[True, False]), 'inverted has 2'),
    (dict(joints=['a'], range_mapped=['b']), 'not in joints'),
    (dict(joints=['a'], range_mapped=['a']), 'need both'),
    (dict(joints=[]), 'at least one'),
    (dict(joints=['a', 'a']), 'mapped twice'),
    (dict(joints=['g'], range_mapped=['g'], leader_ranges={'g': (1.0, 1.0)},
          follower_ranges={'g': (0.0, 1.0)}), 'leader range'),
])
def test_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(TeleopMappingError, match=match):
        build_mapping(**kwargs)


def test_non_finite_leader_value_raises() -> None:
    m = TeleopMapping((JointMap('a', 'a'),))
    with pytest.raises(TeleopMappingError, match='reads nan'):
        m.apply({'a': math.nan})
    with pytest.raises(TeleopMappingError):
        JointMap('a', 'a', scale=0.0)
