"""Training-loss parity with LeRobot 0.6.1 (`SmolVLAPolicy.forward` with fixed noise and time).

LeRobot 0.6.1 crops the per-element losses to the real action dims before the mean and, with
`action_is_pad`, averages over the valid steps only; `reduction="none"` gives one loss per sample.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from golden_data import NORMALIZED_ATOL, observation  # noqa: E402

LOSS_ATOL = 1e-5


# `ref` and `policy`: conftest.py (LeRobot's reference_061 and the golden checkpoint).


def _training_batch(ref, with_pad=False):
    batch = observation(ref)
    batch['action'] = ref['train.action']
    if with_pad:
        batch['action_is_pad'] = ref['train.action_is_pad']
    return batch


def _loss(policy, ref, **kwargs):
    with torch.no_grad():
        return policy.compute_loss(_training_batch(ref, kwargs.pop('with_pad', False)),
                                   noise=ref['train.noise'], time=ref['train.time'], **kwargs)


def test_mean_loss_matches_lerobot(policy, ref):
    loss = _loss(policy, ref)
    assert loss.shape == ()
    torch.testing.assert_close(loss, ref['train.loss'], rtol=0, atol=LOSS_ATOL)


def test_per_sample_loss_matches_lerobot(policy, ref):
    loss = _loss(policy, ref, reduction='none')
    torch.testing.assert_close(loss, ref['train.loss_per_sample'], rtol=0, atol=LOSS_ATOL)


def test_loss_with_padded_steps_matches_lerobot(policy, ref):
    assert ref['train.action_is_pad'].any()  # sample 1 ends 3 steps early
    loss = _loss(policy, ref, with_pad=True)
    torch.testing.assert_close(loss, ref['train.loss_with_action_is_pad'], rtol=0,
                               atol=LOSS_ATOL)
    assert abs(float(ref['train.loss_with_action_is_pad'] - ref['train.loss'])) > 100 * LOSS_ATOL


def test_normalized_targets_and_elementwise_losses_match_lerobot(policy, ref):
    """The model-level loss (u_t - v_t)^2 over all 32 padded dims, from LeRobot's own inputs."""
    targets = policy.normalizer.normalize_key('action', ref['train.action'])
    torch.testing.assert_close(targets, ref['train.pre.action'], rtol=0, atol=NORMALIZED_ATOL)
    inputs = policy.prepare_inputs(observation(ref))
    actions32 = torch.nn.functional.pad(ref['train.pre.action'], (0, 32 - 6))
    with torch.no_grad():
        losses = policy.model(inputs['images'], inputs['img_masks'], inputs['lang_tokens'],
                              inputs['lang_masks'], inputs['state'], actions32,
                              noise=ref['train.noise'], time=ref['train.time'])
    assert losses.shape == ref['train.losses_elementwise'].shape == (2, 10, 32)
    torch.testing.assert_close(losses, ref['train.losses_elementwise'], rtol=1e-5,
                               atol=LOSS_ATOL)
