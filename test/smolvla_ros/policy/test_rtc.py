"""Real-time chunking: schedules, guidance weight, the guided step, and RTC on the tiny model."""
from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy.configuration_smolvla import RTCConfig, SmolVLAConfig  # noqa: E402
from smolvla_ros.policy.modeling_smolvla import VLAFlowMatching  # noqa: E402
from smolvla_ros.policy.rtc import (  # noqa: E402
    RTCInputError,
    guidance_weight,
    make_guided_denoise_fn,
    pad_left_over,
    prefix_weights,
)


def test_prefix_weight_schedules():
    assert prefix_weights('ZEROS', 3, 6, 8).tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert prefix_weights('ONES', 3, 6, 8).tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    # LINEAR: ones for the delay, then a ramp 1 -> 0 with both ends excluded over 3 steps
    torch.testing.assert_close(prefix_weights('linear', 3, 6, 8),
                               torch.tensor([1, 1, 1, 0.75, 0.5, 0.25, 0, 0]))
    ramp = torch.tensor([0.75, 0.5, 0.25])
    exp = ramp * torch.expm1(ramp) / (math.e - 1)
    torch.testing.assert_close(prefix_weights('EXP', 3, 6, 8),
                               torch.cat([torch.ones(3), exp, torch.zeros(2)]))
    # the delay is clipped to the horizon, the horizon to the chunk
    assert prefix_weights('LINEAR', 9, 4, 6).tolist() == [1, 1, 1, 1, 0, 0]
    assert prefix_weights('ONES', 0, 20, 5).tolist() == [1, 1, 1, 1, 1]
    with pytest.raises(RTCInputError, match='schedule'):
        prefix_weights('COSINE', 1, 2, 3)


def test_guidance_weight_formula_and_clamp():
    t = torch.tensor([1.0, 0.5, 0.9, 0.1])
    g = guidance_weight(t, max_guidance_weight=10.0)
    # tau = 1 - t; c = (1 - tau) / tau; r^-2 = ((1 - tau)^2 + tau^2) / (1 - tau)^2
    def formula(tau):
        return (1 - tau) / tau * ((1 - tau) ** 2 + tau ** 2) / (1 - tau) ** 2
    assert float(g[0]) == 10.0  # t = 1: infinite, replaced by the maximum
    assert float(g[1]) == pytest.approx(formula(0.5))  # = 2
    assert float(g[2]) == pytest.approx(min(formula(0.1), 10.0))
    assert float(g[3]) == pytest.approx(formula(0.9))
    assert torch.all(guidance_weight(t, 0.0) == 0)


def test_pad_left_over_shapes_and_errors():
    left = torch.arange(12.0).view(1, 4, 3)
    out = pad_left_over(left, chunk_size=6, action_dim=5)
    assert out.shape == (1, 6, 5)
    torch.testing.assert_close(out[:, :4, :3], left)
    assert out[:, 4:].abs().sum() == 0 and out[:, :, 3:].abs().sum() == 0
    assert pad_left_over(torch.ones(1, 9, 2), 6, 2).shape == (1, 6, 2)
    with pytest.raises(RTCInputError, match='action dims'):
        pad_left_over(torch.ones(1, 4, 7), 6, 5)
    with pytest.raises(RTCInputError, match='empty'):
        pad_left_over(torch.ones(1, 0, 2), 6, 5)


def test_guided_step_with_state_independent_velocity_is_v_minus_g_err():
    """For v(x, t) = c, x0_hat = x - t c has Jacobian I, so the correction is the weighted error."""
    c = torch.randn(2, 6, 4)
    x = torch.randn(2, 6, 4)
    left = torch.randn(2, 5, 3)
    rtc = RTCConfig(prefix_attention_schedule='LINEAR', max_guidance_weight=5.0,
                    execution_horizon=4)
    guided = make_guided_denoise_fn(lambda x_t, t: c.clone(), left, inference_delay=1, rtc=rtc)
    t = torch.full((2,), 0.5)
    out = guided(x, t)
    target = pad_left_over(left, 6, 4)
    w = prefix_weights('LINEAR', 1, 4, 6)[None, :, None]
    err = (target - (x - 0.5 * c)) * w
    torch.testing.assert_close(out, c - 2.0 * err)


def test_guided_step_ignores_the_velocity_jacobian_like_lerobot():
    """LeRobot's RTCProcessor.denoise_step takes the velocity as a constant when it forms the
    correction (docs/lerobot_compat.md), so with v = A x the result is still v - g * w * err, not
    the paper's v - g * (I - t A)^T (w * err)."""
    a = 0.7 * torch.randn(4, 4)
    x = torch.randn(1, 6, 4)
    left = torch.randn(1, 6, 4)
    rtc = RTCConfig(prefix_attention_schedule='ONES', max_guidance_weight=10.0,
                    execution_horizon=6)
    guided = make_guided_denoise_fn(lambda x_t, t: x_t @ a, left, inference_delay=2, rtc=rtc)
    t = torch.full((1,), 0.75)
    v = x @ a
    err = left - (x - 0.75 * v)  # w = 1 everywhere with ONES and the full horizon
    g = guidance_weight(t, 10.0)
    torch.testing.assert_close(guided(x, t), v - g * err)
    vjp = err - 0.75 * err @ a.T  # what a Jacobian through v would add: (I - t A)^T err
    assert not torch.allclose(guided(x, t), v - g * vjp, atol=1e-3)


def test_guided_step_needs_a_delay():
    with pytest.raises(RTCInputError, match='inference_delay'):
        make_guided_denoise_fn(lambda x, t: x, torch.zeros(1, 3, 2), None, RTCConfig())


# --- on the tiny model ----------------------------------------------------------------------
B = 2


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    model = VLAFlowMatching(SmolVLAConfig.preset('tiny')).eval()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith('norm.weight'):
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    return model


def _inputs(cfg):
    gen = torch.Generator().manual_seed(1)
    size = cfg.resize_imgs_with_padding[0]
    return {
        'images': [torch.rand(B, 3, size, size, generator=gen) * 2 - 1 for _ in range(2)],
        'img_masks': [torch.ones(B, dtype=torch.bool)] * 2,
        'lang_tokens': torch.randint(0, 250, (B, cfg.tokenizer_max_length), generator=gen),
        'lang_masks': torch.ones(B, cfg.tokenizer_max_length, dtype=torch.bool),
        'state': torch.randn(B, cfg.max_state_dim, generator=gen),
    }


def _with_rtc(model, **kwargs):
    model.config = dataclasses.replace(model.config, rtc_config=RTCConfig(**kwargs))
    return model


def test_zero_guidance_weight_reduces_to_plain_sampling(tiny):
    cfg = tiny.config
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim)
    left = torch.randn(B, 30, 6)
    try:
        _with_rtc(tiny, max_guidance_weight=0.0)
        with torch.no_grad():
            plain = tiny.sample_actions(**inputs, noise=noise)
            guided = tiny.sample_actions(**inputs, noise=noise, prev_chunk_left_over=left,
                                         inference_delay=4)
    finally:
        tiny.config = dataclasses.replace(cfg, rtc_config=None)
    torch.testing.assert_close(guided, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('schedule', ['LINEAR', 'EXP', 'ONES'])
def test_guidance_pulls_the_prefix_toward_the_left_over(tiny, schedule):
    cfg = tiny.config
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim,
                        generator=torch.Generator().manual_seed(9))
    delay, horizon = 3, 10
    left = torch.full((B, 20, 6), 1.5)  # a target far from what the model samples on its own
    try:
        _with_rtc(tiny, prefix_attention_schedule=schedule, execution_horizon=horizon)
        with torch.no_grad():
            plain = tiny.sample_actions(**inputs, noise=noise)
            guided = tiny.sample_actions(**inputs, noise=noise, prev_chunk_left_over=left,
                                         inference_delay=delay)
    finally:
        tiny.config = dataclasses.replace(cfg, rtc_config=None)
    head = slice(0, delay)
    err_plain = (plain[:, head, :6] - 1.5).abs().mean()
    err_guided = (guided[:, head, :6] - 1.5).abs().mean()
    assert err_guided < 0.5 * err_plain
    # far beyond the horizon guidance has little direct weight: the tail moves much less
    tail = slice(horizon + 10, cfg.chunk_size)
    head_shift = (guided[:, head] - plain[:, head]).abs().mean()
    tail_shift = (guided[:, tail] - plain[:, tail]).abs().mean()
    assert tail_shift < head_shift


def test_rtc_defaults_apply_without_rtc_config_and_disabled_config_ignores(tiny):
    cfg = tiny.config
    assert cfg.rtc_config is None
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim)
    left = torch.full((B, 20, 6), 1.5)
    with torch.no_grad():
        plain = tiny.sample_actions(**inputs, noise=noise, num_steps=3)
        default = tiny.sample_actions(**inputs, noise=noise, num_steps=3,
                                      prev_chunk_left_over=left, inference_delay=2)
        try:
            _with_rtc(tiny, enabled=False)
            disabled = tiny.sample_actions(**inputs, noise=noise, num_steps=3,
                                           prev_chunk_left_over=left, inference_delay=2)
        finally:
            tiny.config = dataclasses.replace(cfg, rtc_config=None)
    assert not torch.allclose(default, plain)
    torch.testing.assert_close(disabled, plain)


def test_rtc_runs_under_inference_mode_with_the_same_result(tiny):
    """The guidance is a closed form (no autograd), so inference_mode gives the no_grad chunk."""
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    left = torch.full((B, 5, 6), 0.5)
    kwargs = dict(noise=noise, prev_chunk_left_over=left, inference_delay=1, num_steps=2)
    with torch.no_grad():
        expected = tiny.sample_actions(**inputs, **kwargs)
    with torch.inference_mode():
        got = tiny.sample_actions(**inputs, **kwargs)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
