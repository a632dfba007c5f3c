"""When to ask the policy for the next chunk: a pure decision function.

User guide: docs/async_inference.md, "When to request: the threshold and the latency rule".

Async: request as soon as the plan's remaining time is at most ``chunk_threshold`` of a chunk's
duration (LeRobot's chunk_size_threshold, 0.5), and in any case no later than the estimated round
trip (p95) plus a margin before the plan runs out, so that a slow policy is asked early enough to
answer in time. Sync: request only once the plan has run out (the arm waits during inference).
Both: at most one request in flight, and after a failure wait ``retry_interval_s`` before asking
again, so a dead server is not hammered at the tick rate.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

MODES = ('async', 'sync')


class TriggerConfigError(ValueError):
    """An invalid trigger parameter (names it and its value)."""


@dataclass(frozen=True)
class TriggerConfig:
    mode: str = 'async'
    chunk_threshold: float = 0.5  # request when remaining / chunk duration <= this
    latency_margin_s: float = 0.05  # extra lead time on top of the p95 round trip
    retry_interval_s: float = 0.1  # after a failed or timed-out request

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise TriggerConfigError(f'mode must be one of {MODES}, got {self.mode!r}')
        if not 0.0 <= self.chunk_threshold <= 1.0:
            raise TriggerConfigError(
                f'chunk_threshold must be in [0, 1], got {self.chunk_threshold}')
        for name in ('latency_margin_s', 'retry_interval_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise TriggerConfigError(f'{name} must be finite and >= 0, got {value}')


@dataclass(frozen=True)
class TriggerDecision:
    request: bool
    reason: str  # why (or why not): first, threshold, latency, queue_empty, in_flight, ...


def decide(config: TriggerConfig, *, now_ns: int, in_flight: bool, remaining_ns: int,
           chunk_duration_ns: int | None, latency_ns: int, retry_at_ns: int | None = None
           ) -> TriggerDecision:
    """Whether to send a request now.

    ``chunk_duration_ns`` is the duration of the last accepted chunk (None before the first),
    ``latency_ns`` the round-trip estimate, ``retry_at_ns`` the earliest retry after a failure.
    """
    if in_flight:
        return TriggerDecision(False, 'in_flight')
    if retry_at_ns is not None and now_ns < retry_at_ns:
        return TriggerDecision(False, 'backoff')
    if chunk_duration_ns is None:
        return TriggerDecision(True, 'first')
    if config.mode == 'sync':
        if remaining_ns <= 0:
            return TriggerDecision(True, 'queue_empty')
        return TriggerDecision(False, 'waiting')
    if remaining_ns <= config.chunk_threshold * chunk_duration_ns:
        return TriggerDecision(True, 'threshold')
    if remaining_ns <= latency_ns + round(config.latency_margin_s * 1e9):
        return TriggerDecision(True, 'latency')
    return TriggerDecision(False, 'waiting')
