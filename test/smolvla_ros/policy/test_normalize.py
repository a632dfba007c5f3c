"""Normalization modes, their inverses and the eps rules.

docs/lerobot_compat.md, "Normalization".
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')

from smolvla_ros.policy.normalize import (  # noqa: E402
    FeatureSpec,
    NormalizationError,
    Normalizer,
    NormMode,
    join_flat_stats,
    normalize_tensor,
    parse_mode,
    split_flat_stats,
    unnormalize_tensor,
)

NORM_MAP = {'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD', 'ACTION': 'MIN_MAX'}
FEATURES = {
    'observation.images.top': {'type': 'VISUAL', 'shape': [3, 4, 4]},
    'observation.state': {'type': 'STATE', 'shape': [3]},
    'action': {'type': 'ACTION', 'shape': [3]},
}


def test_mean_std_values_and_inverse_without_eps():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    stats = {'mean': torch.tensor([1.0, 0.0, -1.0]), 'std': torch.tensor([2.0, 0.5, 4.0])}
    y = normalize_tensor(x, 'MEAN_STD', stats)
    torch.testing.assert_close(y, torch.tensor([[0.0, 2.0 / (0.5 + 1e-8), 4.0 / (4.0 + 1e-8)]]))
    # The inverse is x * std + mean exactly (no eps), as in LeRobot.
    z = torch.tensor([[0.5, -1.0, 2.0]])
    torch.testing.assert_close(unnormalize_tensor(z, 'MEAN_STD', stats),
                               torch.tensor([[2.0, -0.5, 7.0]]))


def test_mean_std_zero_std_uses_eps():
    stats = {'mean': torch.tensor([1.0]), 'std': torch.tensor([0.0])}
    y = normalize_tensor(torch.tensor([1.5], dtype=torch.float64), 'MEAN_STD', stats, eps=1e-3)
    torch.testing.assert_close(y, torch.tensor([500.0], dtype=torch.float64))


def test_min_max_maps_to_minus_one_one_and_back():
    stats = {'min': torch.tensor([0.0, -10.0]), 'max': torch.tensor([4.0, 10.0])}
    x = torch.tensor([[0.0, -10.0], [4.0, 10.0], [1.0, 5.0]])
    y = normalize_tensor(x, NormMode.MIN_MAX, stats)
    torch.testing.assert_close(y, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5]]))
    torch.testing.assert_close(unnormalize_tensor(y, NormMode.MIN_MAX, stats), x)


def test_min_max_equal_bounds_replace_denominator_by_eps():
    stats = {'min': torch.tensor([2.0, 0.0]), 'max': torch.tensor([2.0, 1.0])}
    x = torch.tensor([2.0, 0.5], dtype=torch.float64)
    y = normalize_tensor(x, 'MIN_MAX', stats, eps=0.5)
    # dim 0: max == min -> 2 * (2 - 2) / 0.5 - 1 = -1; dim 1 unchanged rule.
    torch.testing.assert_close(y, torch.tensor([-1.0, 0.0], dtype=torch.float64))
    y2 = normalize_tensor(torch.tensor([2.25, 0.5], dtype=torch.float64), 'MIN_MAX', stats, eps=0.5)
    assert y2[0].item() == pytest.approx(2 * 0.25 / 0.5 - 1)


@pytest.mark.parametrize(('mode', 'lo', 'hi'), [('QUANTILES', 'q01', 'q99'),
                                                ('QUANTILE10', 'q10', 'q90')])
def test_quantile_modes_use_their_stats(mode, lo, hi):
    stats = {lo: torch.tensor([1.0]), hi: torch.tensor([3.0]),
             'min': torch.tensor([-100.0]), 'max': torch.tensor([100.0])}
    y = normalize_tensor(torch.tensor([2.0]), mode, stats)
    torch.testing.assert_close(y, torch.tensor([0.0]))
    torch.testing.assert_close(unnormalize_tensor(torch.tensor([1.0]), mode, stats),
                               torch.tensor([3.0]))


def test_missing_stat_for_mode_is_named():
    with pytest.raises(NormalizationError, match="'std'"):
        normalize_tensor(torch.zeros(2), 'MEAN_STD', {'mean': torch.zeros(2)})
    with pytest.raises(NormalizationError, match='unknown normalization mode'):
        parse_mode('ZSCORE')


def test_normalizer_applies_per_type_and_round_trips():
    stats = {
        'observation.state': {'mean': [1.0, 2.0, 3.0], 'std': [1.0, 2.0, 3.0]},
        'action': {'min': [0.0, 0.0, 0.0], 'max': [2.0, 4.0, 8.0]},
        'observation.images.top': {'mean': [0.5, 0.5, 0.5], 'std': [0.1, 0.1, 0.1]},
        'timestamp': {'mean': [0.0], 'std': [1.0]},  # not a feature: kept, never applied
    }
    norm = Normalizer(FEATURES, NORM_MAP, stats)
    image = torch.rand(2, 3, 4, 4)
    batch = {'observation.state': torch.tensor([[1.0, 4.0, 0.0]]),
             'action': torch.tensor([[[1.0, 1.0, 8.0]]]),
             'observation.images.top': image, 'task': ['x']}
    out = norm.normalize(batch)
    torch.testing.assert_close(out['observation.state'], torch.tensor([[0.0, 1.0, -1.0]]))
    torch.testing.assert_close(out['action'], torch.tensor([[[0.0, -0.5, 1.0]]]))
    assert out['observation.images.top'] is image  # VISUAL -> IDENTITY
    assert out['task'] == ['x']
    back = norm.unnormalize({k: v for k, v in out.items() if k != 'observation.images.top'})
    torch.testing.assert_close(back['observation.state'], batch['observation.state'])
    torch.testing.assert_close(back['action'], batch['action'])
    # Visual stats are reshaped to (C,1,1); all stats survive the flat round trip.
    assert norm.stats['observation.images.top']['mean'].shape == (3, 1, 1)
    flat = norm.flat_stats()
    assert 'timestamp.mean' in flat and 'observation.state.std' in flat
    again = split_flat_stats(flat)
    torch.testing.assert_close(again['action']['max'], torch.tensor([2.0, 4.0, 8.0]))


def test_visual_mean_std_uses_channel_stats():
    features = {'observation.images.top': {'type': 'VISUAL', 'shape': [3, 2, 2]}}
    stats = {'observation.images.top': {'mean': [[[0.0]], [[1.0]], [[2.0]]],
                                        'std': [1.0, 2.0, 4.0]}}
    norm = Normalizer(features, {'VISUAL': 'MEAN_STD'}, stats, eps=1e-12)
    out = norm.normalize_key('observation.images.top', torch.ones(1, 3, 2, 2))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.0, 0.0, -0.25]))


def test_feature_without_stats_passes_through_and_is_reported():
    norm = Normalizer(FEATURES, NORM_MAP, {'action': {'min': [0, 0, 0], 'max': [1, 1, 1]}})
    assert norm.missing_stats() == ['observation.state']
    x = torch.randn(2, 3)
    assert norm.normalize_key('observation.state', x) is x
    assert not norm.has_stats('observation.state') and norm.has_stats('action')


def test_bad_stats_give_specific_errors():
    with pytest.raises(NormalizationError, match=r'observation\.state\.mean.*shape \(4,\)'):
        Normalizer(FEATURES, NORM_MAP, {'observation.state': {'mean': [0.0] * 4, 'std': [1.0] * 4}})
    with pytest.raises(NormalizationError, match="lack 'std'"):
        Normalizer(FEATURES, NORM_MAP, {'observation.state': {'mean': [0.0] * 3}})
    with pytest.raises(NormalizationError, match='inf/nan'):
        Normalizer(FEATURES, NORM_MAP,
                   {'observation.state': {'mean': [float('inf')] * 3, 'std': [1.0] * 3}})
    with pytest.raises(NormalizationError, match='not "<feature>.<stat>"'):
        split_flat_stats({'mean': torch.zeros(1)})
    with pytest.raises(NormalizationError, match='eps'):
        Normalizer(FEATURES, NORM_MAP, eps=0.0)


def test_feature_spec_accepts_objects_and_enums():
    class Kind:  # an enum-like object with a string value, as a PolicyFeature type may be
        value = 'STATE'

    class Feature:
        type = Kind()
        shape = (6,)

    assert FeatureSpec.from_any(Feature()) == FeatureSpec('STATE', (6,))
    assert join_flat_stats({'a.b': {'mean': [1.0]}}) == {'a.b.mean': torch.tensor([1.0])}
