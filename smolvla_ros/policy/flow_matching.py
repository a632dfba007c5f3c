"""Flow-matching helpers, stateless: the Euler sampler, noise, training time and the interpolant.

Convention (LeRobot/openpi; docs/lerobot_compat.md, "Training loss" and "Sampler"): t = 1 is pure
noise and t = 0 is data, x_t = t * noise + (1 - t) * actions, the model predicts the velocity u_t =
noise - actions, and sampling integrates dx/dt = v from t = 1 to t = 0 with `num_steps` Euler steps
of dt = -1/num_steps. The sampler receives the model as a callable, so it is tested without any
network.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

DenoiseFn = Callable[[Tensor, Tensor], Tensor]

BETA_ALPHA = 1.5  # Beta(alpha, beta) training-time distribution, skewed towards t = 1 (noise)
BETA_BETA = 1.0
TIME_SCALE = 0.999  # t = 0.999 * Beta + 0.001 keeps t away from exactly 0
TIME_OFFSET = 0.001


def euler_integrate(denoise_fn: DenoiseFn, noise: Tensor, num_steps: int) -> Tensor:
    """Integrate from t = 1 (noise) to t = 0 (data) with `num_steps` Euler steps.

    `denoise_fn(x_t, t)` gets x_t [B, ...] and t [B] (float32, the same value for every sample)
    and returns the velocity [B, ...]. Time is accumulated in float32 as LeRobot does
    (t = 1.0, 1.0 + dt, ...), so the t values match its sampler to the last bit.
    """
    if num_steps < 1:
        raise ValueError(f'num_steps must be >= 1, got {num_steps}')
    dt = -1.0 / num_steps
    x = noise
    for step in range(num_steps):
        # LeRobot 0.6.1 forms each time as 1 + step * dt in float64, then float32 (accumulating
        # dt in float32, as 0.3.x did, drifts by ~1e-7 per step and moves actions by ~1e-3 at
        # 10 steps; docs/lerobot_compat.md).
        time = torch.tensor(1.0 + step * dt, dtype=torch.float32, device=noise.device)
        t = time.expand(noise.shape[0])  # [B]
        v = denoise_fn(x, t)
        x = x + dt * v
    return x


def sample_noise(shape: tuple[int, ...], device: torch.device | str,
                 generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise in float32 (the sampler's x at t = 1)."""
    return torch.randn(shape, dtype=torch.float32, device=device, generator=generator)


def sample_time(batch_size: int, device: torch.device | str) -> Tensor:
    """Training times t = 0.999 * Beta(1.5, 1) + 0.001, one per sample, float32 [B].

    Sampled on the CPU with torch.distributions (as LeRobot >= 0.3.2), then moved to `device`,
    so a fixed torch seed gives the same times as LeRobot.
    """
    beta = torch.distributions.Beta(
        torch.tensor(BETA_ALPHA, dtype=torch.float32), torch.tensor(BETA_BETA, dtype=torch.float32))
    t = beta.sample((batch_size,)) * TIME_SCALE + TIME_OFFSET  # [B]
    return t.to(device=device, dtype=torch.float32)


def sample_time_with(generator: torch.Generator, batch_size: int) -> Tensor:
    """The same time distribution from a given generator (the trainer's, for exact resume and
    identical draws on every data-parallel process): Beta(alpha, 1) by its inverse CDF u^(1/alpha),
    which is exact for beta = 1. float32 [B] on the CPU."""
    if BETA_BETA != 1.0:
        raise NotImplementedError('the inverse-CDF draw needs Beta(alpha, 1)')
    u = torch.rand(batch_size, generator=generator, dtype=torch.float32)  # [B]
    return u.pow(1.0 / BETA_ALPHA) * TIME_SCALE + TIME_OFFSET


def interpolate(noise: Tensor, actions: Tensor, time: Tensor) -> tuple[Tensor, Tensor]:
    """Noisy actions x_t = t * noise + (1 - t) * actions and the target velocity noise - actions.

    noise, actions: [B, T, D]; time: [B]. Returns (x_t, u_t), both [B, T, D].
    """
    t = time[:, None, None].to(noise.dtype)  # [B, 1, 1]
    x_t = t * noise + (1.0 - t) * actions
    return x_t, noise - actions
