"""Real-time chunking parity with LeRobot 0.6.1 (EXP and LINEAR schedules, both left-over widths).

LeRobot's call: `RTCConfig(enabled=True, prefix_attention_schedule=EXP|LINEAR,
max_guidance_weight=10, execution_horizon=5)`, then `predict_action_chunk(pre(batch), noise=noise,
inference_delay=3, prev_chunk_left_over=prev, execution_horizon=5)` on the golden batch.
- reference_rtc_061: `prev` is a normalized left-over over all 32 padded action dims, given here
  to the model's sampler.
- reference_rtc6_061: `prev` holds the 6 real dims only (LeRobot pads the rest with 0); given
  here in dataset units through `SmolVLAPolicy.predict_chunk`, the path the policy server uses.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from golden_data import (  # noqa: E402
    ACTION_ATOL,
    NORMALIZED_ATOL,
    checkpoint_copy,
    load_reference,
    observation,
)

from smolvla_ros.policy.policy import SmolVLAPolicy  # noqa: E402
from smolvla_ros.policy.rtc import prefix_weights  # noqa: E402

SCHEDULES = ('EXP', 'LINEAR')
DELAY, HORIZON, MAX_GUIDANCE = 3, 5, 10.0


@pytest.fixture(scope='module')
def ref():
    return load_reference('reference_061')


@pytest.fixture(scope='module')
def rtc():
    return load_reference('reference_rtc_061')


@pytest.fixture(scope='module')
def rtc6():
    return load_reference('reference_rtc6_061')


@pytest.fixture(scope='module', params=SCHEDULES)
def schedule_policy(request, tmp_path_factory):
    """(schedule, policy) with LeRobot's RTC settings in the checkpoint's config.json."""
    torch.set_num_threads(1)
    rtc_config = {'enabled': True, 'prefix_attention_schedule': request.param,
                  'max_guidance_weight': MAX_GUIDANCE, 'execution_horizon': HORIZON,
                  'debug': False, 'debug_maxlen': 100}
    path = checkpoint_copy(tmp_path_factory.mktemp(f'golden_{request.param}'), rtc_config)
    return request.param, SmolVLAPolicy.from_pretrained(path)


def test_reference_settings_and_inputs(rtc, rtc6, ref):
    assert int(rtc['inference_delay']) == DELAY and int(rtc['execution_horizon']) == HORIZON
    torch.testing.assert_close(rtc['noise'], ref['noise'], rtol=0, atol=0)
    torch.testing.assert_close(rtc6['noise'], ref['noise'], rtol=0, atol=0)
    # RTC moves LeRobot's chunk far beyond the tolerance, so matching it proves RTC ran
    for schedule in SCHEDULES:
        assert float((rtc[f'{schedule}.actions'] - ref['actions']).abs().max()) > 1.0
        assert float((rtc6[f'{schedule}.actions'] - ref['actions']).abs().max()) > 1.0


@pytest.mark.parametrize('schedule', SCHEDULES)
def test_prefix_weights_match_lerobot(rtc, schedule):
    weights = prefix_weights(schedule, DELAY, HORIZON, 10)
    torch.testing.assert_close(weights, rtc[f'{schedule}.prefix_weights'], rtol=0, atol=1e-7)


def test_padded_left_over_matches_lerobot(schedule_policy, ref, rtc):
    """A 32-dim normalized left-over given to the sampler, as LeRobot's model gets it."""
    schedule, policy = schedule_policy
    inputs = policy.prepare_inputs(observation(ref))
    with torch.no_grad():
        x0 = policy.model.sample_actions(**inputs, noise=rtc['noise'],
                                         prev_chunk_left_over=rtc['prev_chunk_left_over'],
                                         inference_delay=DELAY)
    torch.testing.assert_close(x0, rtc[f'{schedule}.x0_full'], rtol=0, atol=NORMALIZED_ATOL)
    torch.testing.assert_close(x0[..., :6], rtc[f'{schedule}.actions_normalized'], rtol=0,
                               atol=NORMALIZED_ATOL)
    actions = policy.unnormalizer.unnormalize_key('action', x0[..., :6])
    torch.testing.assert_close(actions, rtc[f'{schedule}.actions'], rtol=0, atol=ACTION_ATOL)


def test_six_dim_left_over_in_dataset_units_matches_lerobot(schedule_policy, ref, rtc6):
    """The policy API: the left-over in dataset units, normalized and zero-padded by the policy."""
    schedule, policy = schedule_policy
    normalized = policy.normalizer.normalize_key('action', rtc6['prev_left_over_dataset_units'])
    torch.testing.assert_close(normalized, rtc6['prev_left_over_normalized'], rtol=0,
                               atol=NORMALIZED_ATOL)
    actions = policy.predict_chunk(observation(ref), noise=rtc6['noise'],
                                   prev_chunk_left_over=rtc6['prev_left_over_dataset_units'],
                                   inference_delay=DELAY)
    torch.testing.assert_close(actions, rtc6[f'{schedule}.actions'], rtol=0, atol=ACTION_ATOL)
