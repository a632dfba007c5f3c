"""ExecutorCore end to end in simulated time, with an analytic policy, plus its edge cases."""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import threading

import numpy as np
import pytest

from smolvla_ros.core.executor.executor_core import (
    ExecutorConfig,
    ExecutorConfigError,
    ExecutorCore,
    RequestInFlightError,
    TickResult,
    clears_plan,
)
from smolvla_ros.core.executor.trigger import TriggerDecision
from smolvla_ros.core.types import ActionChunkData, ObservationData

NAMES = ('a', 'b', 'c')
DT = 1.0 / 30.0
T0 = 10**9  # simulation start (ns)
AMP = np.array([0.5, 0.3, 0.2])
FREQ = np.array([0.5, 0.3, 0.7])  # Hz


def f(t_ns: int | np.ndarray) -> np.ndarray:
    """The analytic reference motion f(t) [J] (or [N, J] for an array of times)."""
    t = (np.asarray(t_ns, dtype=np.float64) - T0) / 1e9
    return AMP * np.sin(2 * np.pi * FREQ * t[..., None]) + 0.1


def lerp_error_bound(dt: float) -> float:
    """Max error of linear interpolation of f between samples dt apart: A w^2 dt^2 / 8."""
    return float(np.max(AMP * (2 * np.pi * FREQ) ** 2) * dt * dt / 8)


@dataclass
class Sim:
    """Drives a core at control_hz with a fake policy answering f(stamp + k dt) after `latency`."""

    core: ExecutorCore
    latency_s: float
    chunk_size: int = 50
    answering: bool = True
    ticks: list[tuple[int, TickResult]] = field(default_factory=list)
    pending: list[tuple[int, ActionChunkData, int]] = field(default_factory=list)
    request_times: list[tuple[int, int]] = field(default_factory=list)  # (t, remaining at t)

    def run(self, until_ns: int, start_ns: int = T0) -> None:
        period = round(1e9 / self.core.config.control_hz)
        t = start_ns if not self.ticks else self.ticks[-1][0] + period
        while t < until_ns:
            for item in sorted(self.pending, key=lambda p: p[0]):
                arrival, chunk, sent = item
                if arrival <= t:
                    self.pending.remove(item)
                    self.core.on_chunk(chunk, sent, arrival)
            self.ticks.append((t, self.core.tick(t)))
            if self.core.should_request(t):
                self.request_times.append((t, self.core.remaining_ns(t)))
                obs = ObservationData(stamp_ns=t, request_id=0, task='x', joint_names=NAMES,
                                      state=f(t))
                req = self.core.make_request(obs, t)
                if self.answering:
                    times = t + np.rint(np.arange(self.chunk_size) * DT * 1e9).astype(np.int64)
                    chunk = ActionChunkData(stamp_ns=t, request_id=req.request_id,
                                            joint_names=NAMES, dt=DT, positions=f(times))
                    self.pending.append((t + round(self.latency_s * 1e9), chunk, t))
            t += period


def make_core(**kw) -> ExecutorCore:
    return ExecutorCore(ExecutorConfig(joint_names=NAMES, **kw))


@pytest.mark.parametrize('control_hz', [30.0, 100.0])
@pytest.mark.parametrize('fusion', ['crossfade', 'weighted_average', 'rtc'])
@pytest.mark.parametrize('latency_s', [0.0, 0.1, 0.3, 0.6])
def test_async_commands_follow_f_without_starvation(control_hz, fusion, latency_s):
    sim = Sim(make_core(control_hz=control_hz, fusion=fusion), latency_s)
    sim.run(T0 + 6 * 10**9)
    plan = [(t, r) for t, r in sim.ticks if r.status == 'plan']
    first = plan[0][0]
    # Nothing but idle before the first answer, then a command at every tick: no starvation.
    assert all(r.status == 'idle' for t, r in sim.ticks if t < first)
    assert all(r.status == 'plan' for t, r in sim.ticks if t >= first)
    m = sim.core.metrics()
    assert m.starvation_ticks == 0
    assert m.chunks_accepted >= 5 and m.drops == 0
    # Every command is f at its due time, within the interpolation error of the 30 fps grid
    # (x2 at 100 Hz: the old plan is itself re-read between its samples at a seam).
    # The first crossfade ramps from the observed (held) start state onto the first chunk, so
    # the check starts once that ramp (crossfade_steps actions) is over.
    settle = first + round(10 * DT * 1e9) if fusion == 'crossfade' else first
    bound = lerp_error_bound(DT) * (2 if control_hz > 30 else 1) + 1e-5
    due = np.array([r.due_ns for t, r in plan if t >= settle])
    cmds = np.array([r.position for t, r in plan if t >= settle])
    err = np.abs(cmds - f(due)).max()
    assert err <= bound, (err, bound)
    # Chunks that agree give seams no larger than the ordinary steps of the motion.
    assert m.seams >= 5 and m.seam_jump_max <= m.step_max + bound
    if control_hz == 30.0:
        # Ticks sit on the chunk grid: the due time is the tick time up to ns rounding.
        assert all(abs(r.due_ns - t) < 1000 for t, r in plan)


def test_async_delay_compensation_counts_late_steps():
    sim = Sim(make_core(), latency_s=0.3)
    sim.run(T0 + 4 * 10**9)
    m = sim.core.metrics()
    # 0.3 s at 30 fps: actions 0..8 are due before arrival (t = stamp + 9 dt is due at arrival).
    assert m.late_steps_last == 9


def test_async_trigger_respects_threshold_and_one_in_flight():
    sim = Sim(make_core(chunk_threshold=0.5, initial_latency_s=0.0, latency_margin_s=0.0),
              latency_s=0.1)
    sim.run(T0 + 5 * 10**9)
    duration = round(50 * DT * 1e9)
    # After the first, every request happened at remaining <= 0.5 * chunk duration, and never
    # two at once: each request's answer arrived before the next request.
    for _t, remaining in sim.request_times[1:]:
        assert remaining <= 0.5 * duration
    assert sim.core.metrics().requests == sim.core.metrics().answers + len(sim.pending)
    assert len(sim.pending) <= 1


def test_latency_rule_requests_earlier_than_threshold():
    # Threshold 0.2 of a 1.67 s chunk = 0.33 s of lead, less than the 0.6 s round trip: only the
    # p95 + margin rule keeps the arm fed.
    sim = Sim(make_core(chunk_threshold=0.2, latency_margin_s=0.05), latency_s=0.6)
    sim.run(T0 + 8 * 10**9)
    m = sim.core.metrics()
    later = [rem for _, rem in sim.request_times[1:]]
    duration = round(50 * DT * 1e9)
    assert later and all(0.2 * duration < rem <= 0.65e9 for rem in later)
    assert m.starvation_ticks == 0 and m.chunks_accepted >= 5


def test_sync_waits_for_empty_queue_and_starts_chunks_at_arrival():
    # latest_only: no blend from the held position, so the start of each chunk is visible.
    sim = Sim(make_core(mode='sync', fusion='latest_only'), latency_s=0.3)
    sim.run(T0 + 8 * 10**9)
    m = sim.core.metrics()
    assert all(remaining == 0 for _, remaining in sim.request_times)
    # Each chunk after the first makes the arm hold for ~latency * 30 ticks.
    assert m.chunks_accepted >= 3
    assert m.starvation_ticks >= (m.chunks_accepted - 1) * 8
    assert m.late_steps_max == 0  # re-based at arrival: nothing is skipped
    # The first plan tick after every hold starts the new chunk from its beginning: f(stamp), up
    # to the one action the tick can fall behind the arrival.
    max_step = float(np.max(AMP * 2 * np.pi * FREQ)) * DT
    requests = iter(t for t, _ in sim.request_times)
    resumed = 0
    for (_, prev), (_, cur) in zip(sim.ticks, sim.ticks[1:], strict=False):
        if prev.status in ('hold', 'idle') and cur.status == 'plan':
            stamp = next(requests)
            assert np.abs(cur.position - f(stamp)).max() <= max_step + 1e-6
            resumed += 1
    assert resumed == m.chunks_accepted


def test_policy_stops_answering_then_resumes():
    core = make_core(request_timeout_s=0.5, retry_interval_s=0.1)
    sim = Sim(core, latency_s=0.1)
    sim.run(T0 + 2 * 10**9)
    sim.answering = False
    sim.run(T0 + 5 * 10**9)
    held = [r for t, r in sim.ticks if t > T0 + 4 * 10**9]
    assert held and all(r.held for r in held)
    last = held[0].position
    assert all(np.array_equal(r.position, last) for r in held)  # holds the last command
    m = core.metrics()
    assert m.timeouts >= 2 and m.starvation_ticks > 0
    sim.answering = True
    sim.run(T0 + 7 * 10**9)
    tail = [r for t, r in sim.ticks if t > T0 + 6 * 10**9]
    assert all(r.status == 'plan' for r in tail)
    # The crossfade resumes from the held position: the seam is a bounded blend, not a jump to f.
    assert core.metrics().seam_jump_max < np.max(np.abs(f(T0 + 5 * 10**9) - last)) + 1e-9


def test_expired_and_out_of_order_chunks_are_dropped():
    core = make_core()
    obs = ObservationData(stamp_ns=T0, request_id=0, task='', joint_names=NAMES, state=f(T0))
    req = core.make_request(obs)
    chunk = ActionChunkData(T0, req.request_id, NAMES, DT, np.zeros((10, 3)))
    late = T0 + round(11 * DT * 1e9)
    out = core.on_chunk(chunk, T0, late)
    assert not out.accepted and out.reason == 'expired'
    assert core.in_flight is None
    core.make_request(obs, late)
    ok = core.on_chunk(ActionChunkData(T0 + 5, 2, NAMES, DT, np.zeros((50, 3))), late, late + 1)
    assert ok.accepted and ok.late_steps == 11
    older = core.on_chunk(ActionChunkData(T0 + 4, 1, NAMES, DT, np.zeros((50, 3))), late, late)
    assert older.reason == 'out_of_order'
    m = core.metrics()
    assert m.chunks_dropped == {'expired': 1, 'out_of_order': 1}


def test_chunk_columns_are_reordered_and_foreign_joints_refused():
    core = make_core(fusion='latest_only')
    core.make_request(ObservationData(T0, 0, '', NAMES, np.zeros(3)))
    chunk = ActionChunkData(T0, 1, ('c', 'a', 'b'), DT, np.tile([3.0, 1.0, 2.0], (5, 1)))
    assert core.on_chunk(chunk, T0, T0).accepted
    np.testing.assert_allclose(core.tick(T0).position, [1.0, 2.0, 3.0])
    bad = ActionChunkData(T0 + 1, 2, ('a', 'b', 'x'), DT, np.zeros((5, 3)))
    assert core.on_chunk(bad, T0, T0 + 1).reason == 'joint_mismatch'


def test_safety_stage_limits_step_and_joint_range():
    core = make_core(fusion='latest_only', max_step_rad=0.1, lower_limits=(-1, -1, -1),
                     upper_limits=(1, 1, 0.5))
    core.make_request(ObservationData(T0, 0, '', NAMES, np.zeros(3)))
    target = np.tile([0.25, -0.05, 0.9], (50, 1))
    core.on_chunk(ActionChunkData(T0, 1, NAMES, DT, target), T0, T0)
    period = round(DT * 1e9)
    cmds = [core.tick(T0 + k * period) for k in range(6)]
    # Ramps from the observed state by <= 0.1 rad per tick, and never leaves [lower, upper].
    np.testing.assert_allclose(cmds[0].position, [0.1, -0.05, 0.1])
    assert cmds[0].step_clipped and not cmds[0].limit_clipped
    np.testing.assert_allclose(cmds[5].position, [0.25, -0.05, 0.5])
    assert cmds[5].limit_clipped
    prev = np.zeros(3)
    for r in cmds:
        assert np.max(np.abs(r.position - prev)) <= 0.1 + 1e-12
        prev = r.position
    m = core.metrics()
    assert m.step_clips >= 4 and m.limit_clips >= 1


def test_rtc_request_packs_delay_and_tail():
    core = make_core(fusion='rtc', initial_latency_s=0.1)
    sim = Sim(core, latency_s=0.1)
    sim.run(T0 + round(1.2 * 1e9))
    t = sim.ticks[-1][0]
    sim.pending.clear()  # drop the in-flight answer: we build the next request by hand
    core.on_request_failed(core.in_flight, t)
    t_req = t + 10**8
    obs = ObservationData(t_req, 0, '', NAMES, f(t_req))
    req = core.make_request(obs, t_req)
    # delay = ceil(p95 latency / dt) = ceil(0.1 * 30) = 3
    assert req.inference_delay_steps == math.ceil(0.1 / DT - 1e-9) == 3
    # tail row k = queued plan at t_req + k dt, up to the last queued action
    last = int(core.queue.times_ns[-1])
    n = (last - t_req + 1000) // round(DT * 1e9) + 1
    assert req.leftover.shape == (n, 3)
    times = t_req + np.arange(n) * round(DT * 1e9)
    np.testing.assert_allclose(req.leftover, f(times), atol=lerp_error_bound(DT) + 1e-5)
    with pytest.raises(RequestInFlightError):
        core.make_request(obs, t_req)


def test_non_rtc_requests_carry_no_hints():
    core = make_core(fusion='crossfade')
    sim = Sim(core, latency_s=0.1)
    sim.run(T0 + 10**9)
    assert sim.core.metrics().requests >= 1
    req = ObservationData(T0, 0, '', NAMES, np.zeros(3))
    core.on_request_failed(core.in_flight or 0, T0 + 10**9)
    out = core.make_request(req, T0 + 10**9)
    assert out.inference_delay_steps == 0 and out.leftover.shape == (0, 3)


def test_stale_observations_and_failures_are_counted():
    core = make_core(retry_interval_s=0.2)
    core.on_observation_stale(T0)
    req = core.make_request(ObservationData(T0, 0, '', NAMES, np.zeros(3)))
    core.on_request_failed(req.request_id, T0 + 10)
    assert core.trigger_decision(T0 + 100).reason == 'backoff'
    assert core.should_request(T0 + 10 + round(0.2e9))
    m = core.metrics()
    assert (m.stale_observations, m.failures, m.requests) == (1, 1, 1)


@pytest.mark.parametrize('kw', [
    {'mode': 'fast'}, {'fusion': 'ensemble'}, {'control_hz': 0.0}, {'chunk_threshold': 1.5},
    {'lower_limits': (0, 0, 0)}, {'lower_limits': (1, 0, 0), 'upper_limits': (0, 1, 1)},
    {'crossfade_steps': -1}, {'interpolation': 'cubic'},
])
def test_invalid_config_is_rejected(kw):
    with pytest.raises(ValueError):
        ExecutorConfig(joint_names=NAMES, **kw)
    assert issubclass(ExecutorConfigError, ValueError)


def test_config_from_contract():
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    contract = load_contract(default_contract_path())
    cfg = ExecutorConfig.from_contract(contract, control_hz=100.0, fusion='rtc')
    assert cfg.joint_names == contract.joint_names and cfg.fps == 30.0
    assert cfg.control_hz == 100.0 and cfg.fusion == 'rtc'
    assert ExecutorConfig.from_contract(contract).control_hz == 30.0


def _obs(t: int, state: np.ndarray) -> ObservationData:
    return ObservationData(stamp_ns=t, request_id=0, task='x', joint_names=NAMES, state=state)


def _answer(t: int, request_id: int, positions_at) -> ActionChunkData:
    times = t + np.rint(np.arange(50) * DT * 1e9).astype(np.int64)  # [50]
    return ActionChunkData(stamp_ns=t, request_id=request_id, joint_names=NAMES, dt=DT,
                           positions=positions_at(times))


@pytest.mark.parametrize('mode', ['async', 'sync'])
def test_clear_drops_plan_and_late_answer_then_the_new_plan_starts_from_the_observed_state(mode):
    """A new episode: the old plan and the answer still in flight must never reach the arm."""
    core = make_core(mode=mode, request_timeout_s=5.0)
    sim = Sim(core, latency_s=0.1)
    sim.run(T0 + 3 * 10**9)
    period = round(1e9 / core.config.control_hz)
    for _ in range(300):  # one tick at a time until a request is in flight (answer not yet in)
        if sim.pending:
            break
        sim.run(sim.ticks[-1][0] + period + 1)
    assert sim.pending and core.in_flight is not None
    now = sim.ticks[-1][0] + period
    arrival, stale, sent = sim.pending.pop()
    old_command = core.last_command
    assert core.remaining_ns(now) > 0 or mode == 'sync'

    assert core.clear(now) == stale.request_id
    assert core.clears == 1 and core.in_flight is None and core.remaining_ns(now) == 0
    assert not core.started and core.last_command is None
    idle = core.tick(now)
    assert idle.status == 'idle' and idle.position is None  # the driver holds its last goal
    decision = core.trigger_decision(now)
    assert decision.request, decision  # at the first opportunity, not after the old timing

    late = core.on_chunk(stale, sent, max(arrival, now + 1))  # the old answer, arriving late
    assert not late.accepted and late.reason == 'cleared'
    assert core.tick(now + 2).status == 'idle'  # nothing of it was queued

    # The new episode: the arm was moved (teleported home); the new policy plans g = f + 0.5.
    def g(t):
        return f(t) + 0.5

    request = core.make_request(_obs(now + 3, g(now + 3)), now + 3)
    assert request.request_id > stale.request_id
    accepted = core.on_chunk(_answer(now + 3, request.request_id, g), now + 3,
                             now + 3 + round(0.1e9))
    assert accepted.accepted, accepted
    after = [(t, core.tick(t)) for t in range(now + 3 + round(0.1e9), now + 10**9, period)]
    assert all(r.status == 'plan' for _, r in after)
    first = after[0][1].position
    # The crossfade starts from the state observed for the new request, not the old command:
    # the first command is one action step from g, while the old command is ~0.5 rad away.
    step = float(np.max(AMP * 2 * np.pi * FREQ)) * DT
    assert np.abs(first - g(after[0][0])).max() <= 4 * step
    assert np.abs(first - old_command).max() > 0.3
    m = core.metrics()
    assert m.chunks_dropped.get('cleared') == 1
    # The switch of episodes is not a seam of the fusion: seam jumps stay those of the motion.
    assert m.seam_jump_max <= 4 * step


def test_after_a_clear_the_arm_is_held_where_it_was_observed_until_the_new_plan():
    # A simulator's reset teleported the arm: the last command (and the driver's goal) belong to
    # the old plan; holding them would pull the arm back toward the old pose.
    core = make_core(lower_limits=[-1.0] * 3, upper_limits=[1.0] * 3, max_step_rad=0.05)
    request = core.make_request(_obs(T0, f(T0)), T0)
    assert core.on_chunk(_answer(T0, request.request_id, f), T0, T0 + 1).accepted
    assert core.tick(T0 + 2).status == 'plan'
    assert not core.wants_anchor  # never before a clear: at start-up the goal is the arm's
    core.clear(T0 + 3)
    assert core.wants_anchor
    assert core.tick(T0 + 4).status == 'idle'  # no state observed after the clear yet
    home = np.array([0.9, -0.2, 1.4])  # the last joint reads past its limit
    core.anchor(home)
    assert not core.wants_anchor
    core.anchor(home - 0.1)  # only the first state after the clear: no creeping with the sag
    for t in (T0 + 5, T0 + 10**8):
        held = core.tick(t)
        assert held.status == 'anchor'
        np.testing.assert_allclose(held.position, [0.9, -0.2, 1.0])  # joint limits apply
    # The new plan starts from the anchor: its first command is one safety step from it.
    def g(t):
        return f(t) + 0.5

    request = core.make_request(_obs(T0 + 10**8, g(T0 + 10**8)), T0 + 10**8)
    assert core.on_chunk(_answer(T0 + 10**8, request.request_id, g), T0 + 10**8,
                         T0 + 10**8 + 1).accepted
    first = core.tick(T0 + 10**8 + 2)
    assert first.status == 'plan'
    assert np.abs(first.position - [0.9, -0.2, 1.0]).max() <= 0.05 + 1e-9
    # A pause is no clear: nothing is commanded while paused, nor anchored after it.
    core.set_paused(True, T0 + 2 * 10**8)
    core.set_paused(False, T0 + 2 * 10**8 + 1)
    assert not core.wants_anchor and core.tick(T0 + 2 * 10**8 + 2).status == 'idle'
    with pytest.raises(ValueError, match='anchor state must have shape'):
        core.clear(T0 + 3 * 10**8)
        core.anchor(np.zeros(2))


def test_clear_lifts_the_failure_backoff_and_counts_each_clear():
    core = make_core(retry_interval_s=1.0)
    request = core.make_request(_obs(T0, f(T0)), T0)
    core.on_request_failed(request.request_id, T0 + 1)
    assert core.trigger_decision(T0 + 2).reason == 'backoff'
    assert core.clear(T0 + 3) is None  # nothing was in flight
    assert core.should_request(T0 + 4)
    core.clear(T0 + 5)
    assert core.clears == 2
    # Answers to requests made after the clear are accepted as usual.
    again = core.make_request(_obs(T0 + 6, f(T0 + 6)), T0 + 6)
    assert core.on_chunk(_answer(T0 + 6, again.request_id, f), T0 + 6, T0 + 7).accepted
    # A request already past its timeout when the clear comes is a timeout, not a dropped one.
    late = core.make_request(_obs(T0 + 8, f(T0 + 8)), T0 + 8)
    assert late.request_id == core.in_flight
    assert core.clear(T0 + 8 + round(core.config.request_timeout_s * 1e9) + 1) is None
    assert core.metrics().timeouts == 1



def test_pause_drops_the_plan_commands_and_requests_nothing_until_resumed():
    core = make_core()
    request = core.make_request(_obs(T0, f(T0)), T0)
    assert core.on_chunk(_answer(T0, request.request_id, f), T0, T0 + 1).accepted
    assert core.tick(T0 + 2).status == 'plan'
    pending = core.make_request(_obs(T0 + 3, f(T0 + 3)), T0 + 3)  # in flight when paused

    assert core.set_paused(True, T0 + 4) and core.paused
    assert not core.set_paused(True, T0 + 5)  # already paused: no change
    assert core.clears == 0  # a pause is not counted as an episode clear
    for t in (T0 + 6, T0 + 10**9):
        assert core.tick(t).status == 'paused' and core.tick(t).position is None
        assert core.trigger_decision(t) == TriggerDecision(False, 'paused')
    late = core.on_chunk(_answer(T0 + 3, pending.request_id, f), T0 + 3, T0 + 7)
    assert not late.accepted and late.reason == 'cleared'  # never executed after a pause

    assert core.set_paused(False, T0 + 8) and not core.paused
    assert core.tick(T0 + 9).status == 'idle'  # nothing planned until a new chunk arrives
    assert core.should_request(T0 + 9)
    again = core.make_request(_obs(T0 + 10, f(T0 + 10)), T0 + 10)
    assert core.on_chunk(_answer(T0 + 10, again.request_id, f), T0 + 10, T0 + 11).accepted
    assert core.tick(T0 + 12).status == 'plan'


@pytest.mark.parametrize(('text', 'event', 'expected'), [
    ('anything', '', True),
    ('{"event": "reset", "episode": 2}', 'reset', True),
    ('{"event": "success", "episode": 2}', 'reset', False),
    ('not json', 'reset', False),
    ('["reset"]', 'reset', False),
    ('{"episode": 2}', 'reset', False),
])
def test_reset_topic_messages_that_clear_the_plan(text, event, expected):
    assert clears_plan(text, event) is expected


def test_the_core_holds_no_lock_because_one_thread_drives_it():
    """docs/ARCHITECTURE.md "Threading": a node's core belongs to its executor thread, and the
    in-process runs drive it from one thread; a lock here would protect nothing."""
    lock_types = (type(threading.Lock()), type(threading.RLock()))
    core = ExecutorCore(ExecutorConfig(NAMES))
    held = [name for name, value in vars(core).items() if isinstance(value, lock_types)]
    assert held == []
