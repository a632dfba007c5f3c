"""LeRobot's cosine-decay-with-warmup schedule (docs/training.md)."""
from __future__ import annotations

import math

import pytest
from smolvla_training.train.schedule import CosineWarmupSchedule


def test_warmup_is_linear_from_one_over_w_plus_one_to_peak() -> None:
    s = CosineWarmupSchedule(peak_lr=1e-4, decay_lr=2.5e-6, warmup_steps=1000, decay_steps=30000)
    assert s.factor(0) == pytest.approx(1 / 1001)
    assert s.factor(500) == pytest.approx(501 / 1001)
    assert s.factor(999) == pytest.approx(1000 / 1001)


def test_cosine_measured_from_step_zero_and_floored_at_decay_lr() -> None:
    s = CosineWarmupSchedule(peak_lr=1e-4, decay_lr=2.5e-6, warmup_steps=1000, decay_steps=30000)
    alpha = 2.5e-6 / 1e-4
    at = 1000
    expected = alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * at / 30000))
    assert s.factor(at) == pytest.approx(expected)
    assert s.lr(30000) == pytest.approx(2.5e-6)
    assert s.lr(50000) == pytest.approx(2.5e-6)


def test_short_run_rescales_warmup_and_decay_like_lerobot() -> None:
    s = CosineWarmupSchedule.for_run(1e-4, 2.5e-6, 1000, 30000, total_steps=3000)
    assert (s.warmup_steps, s.decay_steps) == (100, 3000)
    assert s.lr(3000) == pytest.approx(2.5e-6)
    long = CosineWarmupSchedule.for_run(1e-4, 2.5e-6, 1000, 30000, total_steps=60000)
    assert (long.warmup_steps, long.decay_steps) == (1000, 30000)
