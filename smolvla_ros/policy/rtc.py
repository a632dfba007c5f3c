"""Real-time chunking (RTC), guided mode: steer the sampler so a new chunk agrees with the old one.

While a chunk is being computed the robot keeps executing the previous chunk, so the first
`inference_delay` actions of the new chunk are already in the past and the next ones should continue
what the robot is doing. RTC (Black et al., "Real-Time Execution of Action Chunking Flow Policies")
adds a guidance term to each Euler step that pulls the clean estimate of the chunk towards the
left-over actions of the previous chunk, weighted per timestep by a prefix-attention schedule, with
a guidance weight clamped to `max_guidance_weight`.

We follow LeRobot's `RTCProcessor.denoise_step` (lerobot/policies/rtc/modeling_rtc.py) as it
computes, which is not the paper's full vector-Jacobian product: LeRobot evaluates the velocity
before it marks x_t as requiring a gradient, so its correction term is the weighted error itself
(docs/lerobot_compat.md, "Real-time chunking"). That makes the guided step a closed form here, with
no autograd and no backward pass, and checked against LeRobot-made chunks by
test/smolvla_ros/policy/test_golden_rtc.py.

All tensors are in the model's normalized, padded action space; t = 1 is noise (flow_matching.py).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from smolvla_ros.policy.configuration_smolvla import RTC_SCHEDULES, RTCConfig
from smolvla_ros.policy.flow_matching import DenoiseFn


class RTCInputError(ValueError):
    """The left-over chunk or the delay given for real-time chunking is unusable."""


def prefix_weights(schedule: str, delay: int, horizon: int, chunk_size: int) -> Tensor:
    """Per-timestep guidance weights w [chunk_size] (float32) for a prefix-attention schedule.

    ZEROS: 1 for i < delay. ONES: 1 for i < horizon. LINEAR: 1 for i < delay, then a ramp from 1
    down to 0 (both ends excluded) over delay <= i < horizon, 0 after. EXP: the LINEAR ramp r scaled
    by (e^r - 1) / (e - 1). The delay is first clipped to the horizon, the horizon to the chunk
    (LeRobot's `RTCProcessor.get_prefix_weights`).
    """
    schedule = schedule.upper()
    if schedule not in RTC_SCHEDULES:
        raise RTCInputError(f'unknown prefix attention schedule {schedule!r}; use {RTC_SCHEDULES}')
    if delay < 0 or horizon < 0:
        raise RTCInputError(f'delay and horizon must be >= 0, got {delay} and {horizon}')
    horizon = min(horizon, chunk_size)
    delay = min(delay, horizon)
    idx = torch.arange(chunk_size)
    if schedule == 'ZEROS':
        return (idx < delay).float()
    if schedule == 'ONES':
        return (idx < horizon).float()
    ramp_len = horizon - delay
    ramp = torch.linspace(1.0, 0.0, ramp_len + 2, dtype=torch.float32)[1:-1]  # [ramp_len]
    if schedule == 'EXP':
        ramp = ramp * torch.expm1(ramp) / (math.e - 1.0)
    return torch.cat([torch.ones(delay), ramp, torch.zeros(chunk_size - horizon)])


def guidance_weight(time: Tensor, max_guidance_weight: float) -> Tensor:
    """The guidance weight g [B] for times t [B].

    g = min(c * r^-2, max) with tau = 1 - t, c = (1 - tau) / tau and
    r^-2 = ((1 - tau)^2 + tau^2) / (1 - tau)^2. Non-finite values are replaced as LeRobot's
    `RTCProcessor.denoise_step` does (torch.nan_to_num): +inf (t = 1, the first step) becomes the
    maximum, NaN (0 * inf at t = 0, never reached by the sampler) becomes 0.
    """
    tau = 1.0 - time.to(torch.float32)
    one_minus_tau_sq = (1.0 - tau) ** 2
    inv_r2 = (one_minus_tau_sq + tau ** 2) / one_minus_tau_sq
    c = torch.nan_to_num((1.0 - tau) / tau, posinf=max_guidance_weight)
    g = torch.nan_to_num(c * inv_r2, posinf=max_guidance_weight)
    return g.clamp(max=max_guidance_weight)


def pad_left_over(prev_chunk_left_over: Tensor, chunk_size: int, action_dim: int) -> Tensor:
    """Zero-pad (or crop) the left-over actions [B, n, d] to [B, chunk_size, action_dim].

    Zeros in the padded action dims pull those dims of the new chunk towards 0, as in LeRobot, and
    those dims feed the network at the next step, so a 6-dim and a 32-dim left-over differ.
    """
    if prev_chunk_left_over.dim() != 3:
        raise RTCInputError(f'prev_chunk_left_over must be [B, n, action_dim], got shape '
                            f'{tuple(prev_chunk_left_over.shape)}')
    b, n, d = prev_chunk_left_over.shape
    if d > action_dim:
        raise RTCInputError(f'prev_chunk_left_over has {d} action dims, more than {action_dim}')
    if n == 0:
        raise RTCInputError('prev_chunk_left_over is empty (0 actions)')
    out = prev_chunk_left_over.new_zeros((b, chunk_size, action_dim))
    m = min(n, chunk_size)
    out[:, :m, :d] = prev_chunk_left_over[:, :m]
    return out


def guided_velocity(v_t: Tensor, x_t: Tensor, time: Tensor, target: Tensor, weights: Tensor,
                    max_guidance_weight: float) -> Tensor:
    """LeRobot's guided velocity v - g * w * (target - x0_hat), x0_hat = x_t - t * v.

    v_t, x_t, target: [B, T, D]; time: [B]; weights: [T] (prefix_weights). x0_hat is the clean
    chunk the plain velocity points at; the result pulls it towards `target` where w > 0.
    """
    t = time.to(x_t.dtype)[:, None, None]  # [B, 1, 1]
    x0_hat = x_t - t * v_t  # [B, T, D]
    err = (target - x0_hat) * weights.to(x_t)[None, :, None]  # [B, T, D]
    g = guidance_weight(time, max_guidance_weight).to(v_t.dtype)[:, None, None]  # [B, 1, 1]
    return v_t - g * err


def make_guided_denoise_fn(denoise_fn: DenoiseFn, prev_chunk_left_over: Tensor,
                           inference_delay: int, rtc: RTCConfig) -> DenoiseFn:
    """Wrap `denoise_fn(x_t, t) -> v` into the RTC-guided velocity (`guided_velocity`).

    prev_chunk_left_over: [B, n, d] normalized actions not yet executed when the observation was
    taken (d <= the model's padded action dim; missing dims are pulled towards 0 like LeRobot).
    inference_delay: how many of them will have been executed when the new chunk arrives.
    The execution horizon is clipped to n, as LeRobot does: with a short left-over there is
    nothing to merge beyond it.
    """
    if inference_delay is None or int(inference_delay) < 0:
        raise RTCInputError(f'inference_delay must be an int >= 0 with prev_chunk_left_over, '
                            f'got {inference_delay!r}')
    horizon = min(rtc.execution_horizon, prev_chunk_left_over.shape[1])
    state: dict[str, Tensor] = {}

    def guided(x_t: Tensor, time: Tensor) -> Tensor:
        if 'target' not in state:
            chunk_size, action_dim = x_t.shape[1], x_t.shape[2]
            state['weights'] = prefix_weights(rtc.prefix_attention_schedule, int(inference_delay),
                                              horizon, chunk_size).to(x_t.device)  # [T]
            state['target'] = pad_left_over(prev_chunk_left_over.to(x_t), chunk_size, action_dim)
        v_t = denoise_fn(x_t, time)  # [B, T, D]
        return guided_velocity(v_t, x_t, time, state['target'], state['weights'],
                               rtc.max_guidance_weight)

    return guided
