"""The stateless flow-matching helpers: Euler sampler, time sampling and the interpolant."""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')

from smolvla_ros.policy.flow_matching import (  # noqa: E402
    euler_integrate,
    interpolate,
    sample_noise,
    sample_time,
)


def test_euler_integrate_constant_velocity_is_exact():
    noise = torch.randn(3, 50, 32)
    velocity = torch.randn(50, 32)
    out = euler_integrate(lambda x, t: velocity.expand_as(x), noise, num_steps=10)
    # integrating dx/dt = c from t = 1 to t = 0 gives x(0) = x(1) - c
    torch.testing.assert_close(out, noise - velocity, rtol=0, atol=1e-5)


def test_euler_integrate_visits_times_from_one_towards_zero():
    seen = []

    def record(x, t):
        assert t.shape == (x.shape[0],) and t.dtype == torch.float32
        seen.append(float(t[0]))
        return torch.zeros_like(x)

    euler_integrate(record, torch.zeros(2, 4, 3), num_steps=10)
    assert seen == pytest.approx([1.0 - 0.1 * k for k in range(10)], abs=1e-6)
    seen.clear()
    euler_integrate(record, torch.zeros(2, 4, 3), num_steps=4)
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.25], abs=1e-7)


def test_euler_integrate_linear_velocity_matches_hand_computation():
    """v = x: each step multiplies x by (1 + dt), so x(0) = (1 - 1/n)^n x(1)."""
    noise = torch.randn(2, 5, 3, dtype=torch.float64)
    out = euler_integrate(lambda x, t: x, noise, num_steps=5)
    torch.testing.assert_close(out, noise * (1 - 1 / 5) ** 5)


def test_euler_integrate_rejects_zero_steps():
    with pytest.raises(ValueError, match='num_steps'):
        euler_integrate(lambda x, t: x, torch.zeros(1, 2, 2), num_steps=0)


def test_sample_time_follows_scaled_beta():
    torch.manual_seed(0)
    t = sample_time(20000, 'cpu')
    assert t.shape == (20000,) and t.dtype == torch.float32
    assert float(t.min()) >= 0.001 and float(t.max()) <= 1.0
    # Beta(1.5, 1) has mean 0.6 and P(X < 0.5) = 0.5^1.5 = 0.354; then t = 0.999 X + 0.001
    assert float(t.mean()) == pytest.approx(0.999 * 0.6 + 0.001, abs=0.01)
    below = float((t < 0.999 * 0.5 + 0.001).float().mean())
    assert below == pytest.approx(0.5 ** 1.5, abs=0.015)


def test_sample_time_is_reproducible_with_the_torch_seed():
    torch.manual_seed(5)
    a = sample_time(8, 'cpu')
    torch.manual_seed(5)
    b = sample_time(8, 'cpu')
    assert torch.equal(a, b)


def test_sample_noise_is_standard_normal_float32():
    gen = torch.Generator().manual_seed(1)
    noise = sample_noise((4, 50, 32), 'cpu', generator=gen)
    assert noise.dtype == torch.float32 and noise.shape == (4, 50, 32)
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(noise.std()) == pytest.approx(1.0, abs=0.05)


def test_interpolate_endpoints_and_target():
    noise, actions = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    x_t, u_t = interpolate(noise, actions, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(x_t[0], noise[0])  # t = 1 is pure noise
    torch.testing.assert_close(x_t[1], actions[1])  # t = 0 is data
    torch.testing.assert_close(u_t, noise - actions)
    x_half, _ = interpolate(noise, actions, torch.tensor([0.25, 0.25]))
    torch.testing.assert_close(x_half, 0.25 * noise + 0.75 * actions)
