"""Episode planning: grid frames chosen by as-of alignment, gaps, events, tasks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from smolvla_training.convert.bag_source import make_typestore, read_bag
from smolvla_training.convert.episodes import plan_episodes, spans_from_events
from smolvla_training.convert.synthetic_bag import (
    SEC,
    T0,
    BagSpec,
    jittery_spec,
    joint_positions,
    regular,
    write_bag,
)


def _brute_asof(stamps: list[int], t: int, max_age: int) -> int:
    """Plain-loop reference: index of the latest stamp <= t if fresh, else -1."""
    best = -1
    for i, s in enumerate(stamps):
        if s <= t:
            best = i
    if best >= 0 and t - stamps[best] > max_age:
        return -1
    return best


def _plan(tmp_path: Path, spec: BagSpec, contract, **kw):
    bag = write_bag(tmp_path / 'bag', spec)
    streams = read_bag(bag, contract, make_typestore())
    return streams, plan_episodes(streams, contract, contract.fps, contract.state.max_age_s, **kw)


def test_jitter_and_drops_give_the_expected_grid_frames(tmp_path, contract) -> None:
    end = T0 + 2 * SEC
    spec = BagSpec(state=regular(T0, end, 100, 2_000_000, 1, drop=range(50, 58)),
                   action=regular(T0, end, 30, 1_000_000, 2),
                   cameras={'front': regular(T0, end, 30, 3_000_000, 3, drop=[10, 11]),
                            'wrist': regular(T0, end, 30, 3_000_000, 4)})
    streams, (plans, reports) = _plan(tmp_path, spec, contract)
    assert len(plans) == 1
    plan = plans[0]
    ages = {'state': contract.state.max_age_ns, 'action': contract.state.max_age_ns,
            'front': contract.cameras['front'].max_age_ns,
            'wrist': contract.cameras['wrist'].max_age_ns}
    stamps = {'state': spec.state, 'action': spec.action, **spec.cameras}
    # Reference: every grid point of the bag where all streams are fresh, by plain loops.
    first = min(min(s) for s in stamps.values())
    grid = [first + round(i * SEC / 30) for i in range(61)]
    expected = [t for t in grid if all(_brute_asof(stamps[n], t, ages[n]) >= 0 for n in stamps)]
    assert plan.grid.tolist() == expected
    for name in stamps:
        assert plan.indices[name].tolist() == [_brute_asof(stamps[name], t, ages[name])
                                               for t in expected]
    # Two dropped camera frames (~67 ms) stay within max age 0.15 s: no frame lost to them.
    assert reports[0]['streams']['front']['max_gap_s'] > 0.09
    assert np.all(np.diff(plan.grid) >= 33_333_333)


def test_stalled_camera_splits_the_episode(tmp_path, contract) -> None:
    end = T0 + 3 * SEC
    front = [t for t in regular(T0, end, 30, 0, 3) if not T0 + SEC <= t < T0 + 2 * SEC]
    spec = BagSpec(state=regular(T0, end, 100), action=regular(T0, end, 30),
                   cameras={'front': front, 'wrist': regular(T0, end, 30)})
    _, (plans, reports) = _plan(tmp_path, spec, contract)
    assert len(plans) == 2
    stall_end = T0 + 2 * SEC
    last_front = max(t for t in front if t < stall_end)
    # First piece ends where the front camera gets older than its max age, second restarts
    # with the first fresh frame.
    assert plans[0].grid[-1] - last_front <= contract.cameras['front'].max_age_ns
    assert plans[0].grid[-1] + round(SEC / 30) - last_front > contract.cameras['front'].max_age_ns
    assert plans[1].grid[0] >= stall_end
    assert reports[0]['streams']['front']['unusable_grid_points'] > 20
    # min_frames drops short pieces and says so.
    lengths = [p.length for p in plans]
    _, (plans, reports) = _plan(tmp_path / 'again', spec, contract, min_frames=max(lengths))
    assert [p.length for p in plans] == [max(lengths)]
    assert reports[0]['dropped_short_pieces']


def test_events_make_episodes_and_discard_drops_one(tmp_path, contract) -> None:
    events = [(T0 + SEC // 2, 'start'), (T0 + SEC, 'stop'),
              (T0 + int(1.2 * SEC), 'start'), (T0 + int(1.5 * SEC), 'stop'),
              (T0 + int(1.6 * SEC), 'discard'),
              (T0 + int(2.0 * SEC), '{"event": "start"}'), (T0 + int(2.5 * SEC), 'stop')]
    tasks = [(T0, 'first task'), (T0 + int(1.9 * SEC), 'second task')]
    _, (plans, _) = _plan(tmp_path, jittery_spec(3.0, events=events, tasks=tasks), contract)
    assert len(plans) == 2
    assert plans[0].grid[0] == T0 + SEC // 2 and plans[1].grid[0] == T0 + 2 * SEC
    assert plans[0].length == 16 and plans[1].length == 16  # 0.5 s at 30 fps, both ends in
    assert [p.task for p in plans] == ['first task', 'second task']


def test_spans_without_events_cover_the_bag(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.0))
    streams = read_bag(bag, contract, make_typestore())
    spans, notes = spans_from_events(streams)
    assert len(spans) == 1 and 'one episode per bag' in notes[0]


def test_task_override_and_missing_task(tmp_path, contract) -> None:
    _, (plans, _) = _plan(tmp_path, jittery_spec(1.0, tasks=[]), contract, task='override')
    assert plans[0].task == 'override'
    _, (plans, _) = _plan(tmp_path / 'b', jittery_spec(1.0, tasks=[]), contract)
    assert plans[0].task == ''


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_read_bag_reorders_joints_to_the_contract(tmp_path, contract, storage) -> None:
    spec = jittery_spec(0.5)
    bag = write_bag(tmp_path / 'bag', spec, storage)
    streams = read_bag(bag, contract, make_typestore())
    assert streams.state.stamps.tolist() == spec.state
    np.testing.assert_array_equal(streams.action.values[3],
                                  joint_positions(spec.action[3], 0.05))
    assert streams.tasks == [(T0, 'pick the cube')]
