"""As-of alignment: live buffers, staleness, observation assembly, and the batch (grid) form."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.observation.alignment import (
    StaleStreamError,
    StreamBuffer,
    UnsortedStampsError,
    align_batch,
    asof_indices,
    frame_grid,
)
from smolvla_ros.core.observation.assembly import JointMismatchError, ObservationAssembler
from smolvla_ros.core.robot.contract import default_contract_path, load_contract

MS = 1_000_000


def test_as_of_takes_latest_at_or_before_t():
    b = StreamBuffer('s', capacity=8)
    for t in (10, 20, 30):
        b.add(t * MS, t)
    assert b.as_of(5 * MS) is None
    assert b.as_of(20 * MS).value == 20  # equal stamp counts
    assert b.as_of(29 * MS).value == 20
    assert b.as_of(99 * MS).value == 30
    b.add(25 * MS, 25)  # a late sample is inserted in order
    assert b.as_of(27 * MS).value == 25
    b.add(25 * MS, 'again')  # same stamp replaces
    assert b.as_of(25 * MS).value == 'again' and len(b) == 4


def test_buffer_is_bounded():
    b = StreamBuffer('s', capacity=4)
    for t in range(100):
        b.add(t, t)
    assert len(b) <= 8
    assert b.latest().value == 99 and b.as_of(97).value == 97


def test_stale_and_missing_streams_are_reported_specifically():
    b = StreamBuffer('front', capacity=4, max_age_ns=100 * MS)
    with pytest.raises(StaleStreamError, match='no sample') as info:
        b.lookup(0)
    assert info.value.report.missing == ('front',)
    b.add(0, 'frame')
    assert b.lookup(100 * MS).value == 'frame'  # exactly max age: still fresh
    with pytest.raises(StaleStreamError, match=r'front is stale \(age 0.101 s > max 0.100 s\)'):
        b.lookup(101 * MS)


def _assembler(**kw) -> ObservationAssembler:
    contract = load_contract(default_contract_path())
    return ObservationAssembler(contract, **kw)


def test_assemble_observation_in_contract_order():
    a = _assembler()
    names = ('gripper', 'wrist_roll', 'wrist_flex', 'elbow_flex', 'shoulder_lift',
             'shoulder_pan', 'extra_joint')
    a.add_joint_state(1000 * MS, names, [6, 5, 4, 3, 2, 1, 99])
    a.add_joint_state(1010 * MS, names, [6.5, 5, 4, 3, 2, 1.5, 99])
    img = np.zeros((4, 6, 3), np.uint8)
    a.add_image('front', 990 * MS, img)
    a.add_image('wrist', 1005 * MS, img + 1)
    a.add_image('wrist', 1030 * MS, img + 2)  # after t: not used
    obs = a.assemble(1020 * MS, request_id=7, task='pick')
    assert obs.stamp_ns == 1020 * MS and obs.request_id == 7 and obs.task == 'pick'
    np.testing.assert_array_equal(obs.state, [1.5, 2, 3, 4, 5, 6.5])
    assert obs.camera_names == ('front', 'wrist')
    assert int(obs.images['wrist'][0, 0, 0]) == 1


def test_assemble_refuses_stale_camera_and_names_all_problems():
    a = _assembler()
    a.add_joint_state(0, ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                          'wrist_roll', 'gripper'), np.zeros(6))
    a.add_image('front', 0, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(StaleStreamError) as info:
        a.assemble(200 * MS)
    report = info.value.report
    assert report.missing == ('wrist',)
    assert set(report.stale) == {'state', 'front'}  # 200 ms > 100 ms (state), > 150 ms (front)
    # The executor's max_obs_age_s overrides every stream's contract value.
    b = _assembler(max_age_s=0.5)
    b.add_joint_state(0, a.contract.joint_names, np.zeros(6))
    for cam in ('front', 'wrist'):
        b.add_image(cam, 0, np.zeros((2, 2, 3), np.uint8))
    assert b.assemble(200 * MS).stamp_ns == 200 * MS


def test_nothing_observed_before_a_discard_makes_an_observation_after_it():
    # A simulator's reset at t=1000 ms: the frame of the old episode (990 ms) must not be sent
    # with the new one's state, nor may a joint state stamped before t that arrives after it.
    a = _assembler()
    img = np.zeros((2, 2, 3), np.uint8)
    a.add_joint_state(995 * MS, a.contract.joint_names, np.ones(6))
    for cam in ('front', 'wrist'):
        a.add_image(cam, 990 * MS, img)
    assert a.assemble(1000 * MS).stamp_ns == 1000 * MS
    a.discard_before(1000 * MS)
    assert a.latest_state() is None
    with pytest.raises(StaleStreamError) as info:
        a.assemble(1001 * MS)
    assert set(info.value.report.missing) == {'state', 'front', 'wrist'}
    a.add_joint_state(999 * MS, a.contract.joint_names, np.ones(6))  # in flight at the reset
    a.add_joint_state(1002 * MS, a.contract.joint_names, np.zeros(6))
    np.testing.assert_array_equal(a.latest_state(), np.zeros(6))
    for cam in ('front', 'wrist'):
        a.add_image(cam, 1003 * MS, img + 1)
    obs = a.assemble(1004 * MS)
    np.testing.assert_array_equal(obs.state, np.zeros(6))
    assert int(obs.images['front'][0, 0, 0]) == 1


def test_decode_runs_only_for_assembled_observations():
    calls = []

    def decode(cam, value):
        calls.append(cam)
        return np.full((2, 2, 3), value, np.uint8)

    a = _assembler(decode=decode)
    a.add_joint_state(0, a.contract.joint_names, np.zeros(6))
    for k in range(5):
        a.add_image('front', k, k)
        a.add_image('wrist', k, 10 + k)
    assert calls == []
    obs = a.assemble(10)
    assert calls == ['front', 'wrist'] and int(obs.images['wrist'][0, 0, 0]) == 14


def test_joint_state_must_cover_the_contract():
    a = _assembler()
    with pytest.raises(JointMismatchError, match='gripper'):
        a.add_joint_state(0, a.contract.joint_names[:5], np.zeros(5))
    with pytest.raises(JointMismatchError):
        a.add_joint_state(0, a.contract.joint_names, np.zeros(5))
    with pytest.raises(KeyError, match='top'):
        a.add_image('top', 0, None)


def test_frame_grid_is_exact():
    g = frame_grid(10**9, 2 * 10**9, 30.0)
    assert len(g) == 31 and g[0] == 10**9 and g[-1] == 2 * 10**9
    assert g[3] == 10**9 + 100_000_000
    assert frame_grid(5, 4, 30.0).size == 0


def test_batch_asof_indices_and_validity():
    stamps = np.array([0, 30, 60, 200]) * MS
    grid = np.array([-10, 0, 45, 100, 199, 200, 300]) * MS
    idx, valid = asof_indices(stamps, grid, max_age_ns=50 * MS)
    np.testing.assert_array_equal(idx, [-1, 0, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(valid, [False, True, True, True, False, True, False])
    with pytest.raises(UnsortedStampsError, match='index 2'):
        asof_indices(np.array([0, 5, 3]), grid)


def test_batch_matches_live_lookup():
    rng = np.random.default_rng(1)
    stamps = np.sort(rng.integers(0, 2 * 10**9, size=80))
    grid = frame_grid(0, 2 * 10**9, 30)
    max_age = 60 * MS
    b = StreamBuffer('cam', capacity=200, max_age_ns=max_age)
    for i, s in enumerate(stamps):
        b.add(int(s), i)
    al = align_batch({'cam': stamps, 'state': stamps[::2]}, grid,
                     {'cam': max_age, 'state': None})
    for t, i, ok in zip(grid, al.indices['cam'], al.valid['cam'], strict=True):
        status = b.status(int(t))
        assert ok == status.ok
        if ok:
            assert b.as_of(int(t)).value == i
    assert al.all_valid.sum() == np.logical_and(al.valid['cam'], al.valid['state']).sum()
    assert al.invalid_counts()['cam'] == int((~al.valid['cam']).sum())
