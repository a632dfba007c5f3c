"""Arrival-rate windows of the executor's input streams, on synthetic timestamps (no clock)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smolvla_ros.core.observation.stream_rates import MIN_PERIODS, ArrivalWindow, StreamRates

S = 1_000_000_000  # ns per second
T0 = 100 * S  # an arbitrary monotonic origin


def _arrivals(hz: float, start_s: float, end_s: float, jitter_s: float = 0.0,
              seed: int = 0) -> np.ndarray:
    """Arrival times (ns) of a stream at ``hz`` in [start, end), each moved by up to +-jitter."""
    times = np.arange(start_s, end_s, 1.0 / hz)  # [N] s
    noise = np.random.default_rng(seed).uniform(-jitter_s, jitter_s, times.shape)  # [N]
    return T0 + np.rint((times + noise) * S).astype(np.int64)


def _sample(window: ArrivalWindow, arrivals: np.ndarray,
            start_s: float, end_s: float) -> list[tuple[int, float, float]]:
    """(now, rate, max gap) at instants spread over the 33 ms period, feeding arrivals as a
    receiving node would have seen them; the remaining arrivals are fed at the end."""
    out, fed = [], 0
    for now in T0 + np.rint(np.arange(start_s, end_s, 0.0137) * S).astype(np.int64):
        new = arrivals[arrivals <= now][fed:]
        for t in new:
            window.add(int(t))
        fed += len(new)
        out.append((int(now), window.rate_hz(int(now)), window.max_gap_s(int(now))))
    for t in arrivals[fed:]:
        window.add(int(t))
    return out


def test_periodic_stream_reads_its_exact_rate_wherever_the_window_cuts() -> None:
    window = ArrivalWindow(2.0)
    for now, rate, gap in _sample(window, _arrivals(30.0, 0.0, 6.0), 2.5, 5.9):
        assert rate == pytest.approx(30.0, rel=1e-6), now
        assert gap == pytest.approx(1 / 30, abs=2e-9), now


def test_jittered_30_hz_stays_within_one_arrival_per_window() -> None:
    window = ArrivalWindow(2.0)
    arrivals = _arrivals(30.0, 0.0, 6.0, jitter_s=0.003, seed=1)
    rates = np.array([rate for _, rate, _ in _sample(window, arrivals, 2.5, 5.9)])
    tolerance = 1.0 / window.window_s  # one arrival more or less in the window: 0.5 Hz
    assert np.all(np.abs(rates - 30.0) <= tolerance), (rates.min(), rates.max())
    # The largest gap is one period stretched by at most both neighbours' jitter.
    assert window.max_gap_s(int(arrivals[-1])) <= 1 / 30 + 2 * 0.003 + 1e-9


def test_stopped_stream_decays_to_zero_and_its_gap_keeps_growing() -> None:
    window = ArrivalWindow(2.0)
    arrivals = _arrivals(30.0, 0.0, 3.0)
    for t in arrivals:
        window.add(int(t))
    last = int(arrivals[-1])
    assert window.rate_hz(last) == pytest.approx(30.0)
    samples = [last + round(k * 0.05 * S) for k in range(1, 50)]  # 50 ms .. 2.45 s later
    rates = [window.rate_hz(t) for t in samples]
    assert all(b <= a + 1e-9 for a, b in zip(rates, rates[1:], strict=False)), rates
    assert rates[0] < 30.0  # already below once the silence outlasts one period
    # 1 s of silence in a 2 s window: about half (one arrival per window of rounding).
    assert rates[19] <= 15.0 + 1.0 / window.window_s
    assert window.rate_hz(last + round(2.1 * S)) == 0.0  # every arrival left the window
    assert window.count(last + round(2.1 * S)) == 0
    for t in samples:
        assert window.max_gap_s(t) == pytest.approx((t - last) / S)


def test_a_hole_is_the_largest_gap_until_its_closing_arrival_leaves_the_window() -> None:
    window = ArrivalWindow(2.0)
    before = _arrivals(30.0, 0.0, 2.0)
    after = _arrivals(30.0, 2.5, 6.0)  # no message for ~0.5 s
    hole_s = (after[0] - before[-1]) / S
    for t in before:
        window.add(int(t))
    for t in after[after <= after[0] + S]:
        window.add(int(t))
    now = int(after[0] + S)  # the hole's closing arrival is 1 s old
    assert window.max_gap_s(now) == pytest.approx(hole_s)
    assert window.rate_hz(now) < 30.0 - 1.0 / window.window_s  # the hole shows in the rate
    for t in after[after > now]:
        window.add(int(t))
    end = int(after[-1])  # the hole left the window 1.5 s ago
    assert window.max_gap_s(end) == pytest.approx(1 / 30, abs=2e-9)
    assert window.rate_hz(end) == pytest.approx(30.0)


def test_window_fills_one_window_after_the_first_arrival() -> None:
    window = ArrivalWindow(2.0)
    assert not window.filled(T0)
    assert window.rate_hz(T0) == 0.0 and math.isnan(window.max_gap_s(T0))
    window.add(T0)
    assert window.rate_hz(T0 + S) == 0.0  # one arrival is no rate
    assert not window.filled(T0 + 2 * S - 1)
    assert window.filled(T0 + 2 * S)


def test_out_of_order_times_count_as_the_last_arrival() -> None:
    window = ArrivalWindow(2.0)
    window.add(T0)
    window.add(T0 + S // 10)
    window.add(T0 + S // 20)  # a racing thread's earlier timestamp
    assert window.count(T0 + S // 10) == 3
    assert window.max_gap_s(T0 + S // 10) == pytest.approx(0.1)
    assert window.max_gap_s(T0) == pytest.approx(0.1)  # a "now" before the last arrival


@pytest.mark.parametrize('window_s', [0.0, -1.0, math.inf, math.nan])
def test_invalid_window_is_rejected(window_s: float) -> None:
    with pytest.raises(ValueError, match='window_s'):
        ArrivalWindow(window_s)


def _feed_rates(rates: StreamRates, stream: str, arrivals: np.ndarray) -> None:
    for t in arrivals:
        rates.add(stream, int(t))


def test_slow_stream_is_low_only_after_its_window_filled() -> None:
    rates = StreamRates({'joint_states': 30.0, 'front': 30.0}, warn_fraction=0.8)
    _feed_rates(rates, 'joint_states', _arrivals(100.0, 0.0, 4.0))
    _feed_rates(rates, 'front', _arrivals(10.0, 0.0, 4.0))
    early = {r.name: r for r in rates.measure(T0 + S)}  # 1 s in: start-up
    assert early['front'].rate_hz == pytest.approx(10.0) and not early['front'].low
    late = {r.name: r for r in rates.measure(int(_arrivals(10.0, 0.0, 4.0)[-1]))}
    front, state = late['front'], late['joint_states']
    assert front.filled and front.low and front.threshold_hz == pytest.approx(24.0)
    assert front.rate_hz == pytest.approx(10.0) and front.max_gap_s == pytest.approx(0.1)
    assert not state.low and state.rate_hz == pytest.approx(100.0, rel=1e-3)
    text = front.describe()
    assert text.startswith('front at 10.0 Hz < 24 Hz') and '0.8 x 30 Hz' in text, text
    assert [r.name for r in rates.measure(T0)] == ['joint_states', 'front']  # stable order


def test_stream_that_never_arrived_is_not_low() -> None:
    rates = StreamRates({'front': 30.0})
    (front,) = rates.measure(T0 + 10 * S)
    assert front.count == 0 and front.rate_hz == 0.0 and not front.low
    assert math.isnan(front.max_gap_s)


def test_stopped_stream_becomes_low() -> None:
    rates = StreamRates({'front': 30.0})
    _feed_rates(rates, 'front', _arrivals(30.0, 0.0, 3.0))
    (front,) = rates.measure(T0 + round(3.0 * S))
    assert not front.low
    (front,) = rates.measure(T0 + round(5.5 * S))
    assert front.low and front.rate_hz == 0.0 and front.max_gap_s > 2.4


def test_zero_fraction_never_warns() -> None:
    rates = StreamRates({'front': 30.0}, warn_fraction=0.0)
    _feed_rates(rates, 'front', _arrivals(1.0, 0.0, 20.0))
    (front,) = rates.measure(T0 + 20 * S)
    assert front.filled and front.rate_hz > 0.0 and not front.low


def test_window_stretches_to_several_periods_of_a_slow_stream() -> None:
    rates = StreamRates({'fast': 30.0, 'slow': 1.0}, window_s=2.0)
    windows = {r.name: r.window_s for r in rates.measure(T0)}
    assert windows == {'fast': 2.0, 'slow': pytest.approx(MIN_PERIODS / 1.0)}


@pytest.mark.parametrize('fraction', [-0.1, 1.5, math.nan])
def test_invalid_warn_fraction_is_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match='rate_warn_fraction'):
        StreamRates({'front': 30.0}, warn_fraction=fraction)


def test_invalid_expected_rate_and_unknown_stream_are_rejected() -> None:
    with pytest.raises(ValueError, match="'front'"):
        StreamRates({'front': 0.0})
    rates = StreamRates({'front': 30.0})
    with pytest.raises(KeyError):
        rates.add('wrist', T0)
