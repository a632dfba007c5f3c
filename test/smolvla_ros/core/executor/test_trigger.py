"""The request trigger: threshold, p95 rule, one in flight, sync, backoff."""
from __future__ import annotations

import pytest

from smolvla_ros.core.executor.trigger import TriggerConfig, TriggerConfigError, decide

S = 10**9
DUR = 50 * S // 30  # 50 actions at 30 fps


def d(cfg=None, **kw):
    args = dict(now_ns=10 * S, in_flight=False, remaining_ns=DUR, chunk_duration_ns=DUR,
                latency_ns=S // 10)
    args.update(kw)
    return decide(cfg or TriggerConfig(), **args)


def test_first_request_goes_out_immediately():
    assert d(chunk_duration_ns=None, remaining_ns=0).reason == 'first'


def test_threshold_boundary():
    assert not d(remaining_ns=DUR // 2 + 1).request
    assert d(remaining_ns=DUR // 2).reason == 'threshold'
    assert d(TriggerConfig(chunk_threshold=0.7), remaining_ns=int(0.7 * DUR)).request


def test_latency_rule_fires_before_threshold():
    # p95 1.0 s + margin 0.05 s > threshold horizon 0.83 s
    assert d(remaining_ns=S, latency_ns=S).reason == 'latency'
    assert not d(remaining_ns=1_050_000_001, latency_ns=S).request
    assert d(remaining_ns=1_050_000_000, latency_ns=S).request


def test_one_in_flight_and_backoff():
    assert d(in_flight=True, remaining_ns=0).reason == 'in_flight'
    assert d(remaining_ns=0, retry_at_ns=10 * S + 1).reason == 'backoff'
    assert d(remaining_ns=0, retry_at_ns=10 * S).request


def test_sync_waits_for_the_queue_to_empty():
    sync = TriggerConfig(mode='sync')
    assert not d(sync, remaining_ns=1).request
    assert d(sync, remaining_ns=0).reason == 'queue_empty'


@pytest.mark.parametrize('kw', [{'mode': 'batch'}, {'chunk_threshold': -0.1},
                                {'latency_margin_s': float('nan')}, {'retry_interval_s': -1}])
def test_invalid_config(kw):
    with pytest.raises(TriggerConfigError):
        TriggerConfig(**kw)
