"""Feature normalization and its inverse, as LeRobot's normalizer/unnormalizer steps do it.

A checkpoint's stats decide what the model sees: SmolVLA is trained on MEAN_STD-normalized state and
actions, so the same stats must be applied at inference and inverted on the predicted chunk. The
math follows LeRobot >= 0.4 (`normalize_processor.py`, eps = 1e-8):

* MEAN_STD:   (x - mean) / (std + eps);             inverse x * std + mean (no eps).
* MIN_MAX:    2 (x - min) / (max - min) - 1, with the denominator replaced by eps where max == min;
              inverse (x + 1) / 2 * (max - min) + min.
* QUANTILES:  MIN_MAX with q01/q99; QUANTILE10: MIN_MAX with q10/q90.
* IDENTITY:   passthrough. A feature without stats also passes through (LeRobot does the same;
              this is how lerobot/smolvla_base, whose stats are mis-keyed, runs unnormalized).

Stats are kept as plain tensors (not module buffers) so that the policy's state dict holds only the
`model.` weights, as in LeRobot >= 0.4 checkpoints. They are cast to the input's device and dtype on
the fly.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor

DEFAULT_EPS = 1e-8


class NormalizationError(ValueError):
    """Stats that cannot be used for a feature (missing stat, wrong shape, non-finite values)."""


class NormMode(str, Enum):
    """Normalization modes, spelled as in LeRobot's `normalization_mapping` / `norm_map`."""

    IDENTITY = 'IDENTITY'
    MEAN_STD = 'MEAN_STD'
    MIN_MAX = 'MIN_MAX'
    QUANTILES = 'QUANTILES'
    QUANTILE10 = 'QUANTILE10'


# The two stats each mode reads (the first is the location / lower bound).
MODE_STATS: dict[NormMode, tuple[str, str]] = {
    NormMode.MEAN_STD: ('mean', 'std'),
    NormMode.MIN_MAX: ('min', 'max'),
    NormMode.QUANTILES: ('q01', 'q99'),
    NormMode.QUANTILE10: ('q10', 'q90'),
}


def enum_name(value: Any) -> str:
    """'VISUAL' for 'VISUAL', FeatureType.VISUAL or NormMode.VISUAL-like enums (value or name)."""
    if isinstance(value, str) and not isinstance(value, Enum):
        return value
    inner = getattr(value, 'value', None)
    if isinstance(inner, str):
        return inner
    name = getattr(value, 'name', None)
    if isinstance(name, str):
        return name
    raise NormalizationError(f'cannot read a type/mode name from {value!r}')


def parse_mode(value: Any) -> NormMode:
    """NormMode from a string or enum; unknown modes raise NormalizationError naming the value."""
    name = enum_name(value)
    try:
        return NormMode(name)
    except ValueError:
        known = ', '.join(m.value for m in NormMode)
        raise NormalizationError(f'unknown normalization mode {name!r} (known: {known})') from None


@dataclass(frozen=True)
class FeatureSpec:
    """Type ('VISUAL', 'STATE', 'ACTION', ...) and shape of one feature, as in config.json."""

    type: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.type:
            raise NormalizationError('feature type must be a non-empty string')
        if any(int(s) <= 0 for s in self.shape):
            raise NormalizationError(f'feature shape must be positive, got {self.shape}')

    @classmethod
    def from_any(cls, feature: Any) -> FeatureSpec:
        """Accept a FeatureSpec, a PolicyFeature-like object or a {'type', 'shape'} mapping."""
        if isinstance(feature, FeatureSpec):
            return feature
        if isinstance(feature, Mapping):
            ftype, shape = feature.get('type'), feature.get('shape')
        else:
            ftype, shape = getattr(feature, 'type', None), getattr(feature, 'shape', None)
        if ftype is None or shape is None:
            raise NormalizationError(f'feature {feature!r} has no type/shape')
        return cls(type=enum_name(ftype), shape=tuple(int(s) for s in shape))


def to_stat_tensor(value: Any) -> Tensor:
    """A float32 CPU tensor from a tensor, numpy array, list or number."""
    if isinstance(value, Tensor):
        return value.detach().to('cpu', torch.float32)
    return torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32)


def _pair(stats: Mapping[str, Tensor], mode: NormMode, x: Tensor) -> tuple[Tensor, Tensor]:
    lo_name, hi_name = MODE_STATS[mode]
    missing = [n for n in (lo_name, hi_name) if n not in stats]
    if missing:
        raise NormalizationError(
            f'{mode.value} needs stats {lo_name!r} and {hi_name!r}; missing {missing}')
    lo = stats[lo_name].to(device=x.device, dtype=x.dtype)
    hi = stats[hi_name].to(device=x.device, dtype=x.dtype)
    return lo, hi


def normalize_tensor(x: Tensor, mode: NormMode | str, stats: Mapping[str, Tensor],
                     eps: float = DEFAULT_EPS) -> Tensor:
    """Normalize x (any leading dims, stats broadcast on the trailing ones)."""
    mode = parse_mode(mode)
    if mode is NormMode.IDENTITY:
        return x
    a, b = _pair(stats, mode, x)
    if mode is NormMode.MEAN_STD:
        return (x - a) / (b + eps)
    span = b - a
    span = torch.where(span == 0, torch.full_like(span, eps), span)
    return 2.0 * (x - a) / span - 1.0


def unnormalize_tensor(x: Tensor, mode: NormMode | str, stats: Mapping[str, Tensor]) -> Tensor:
    """Inverse of normalize_tensor (no eps in the inverse, as in LeRobot)."""
    mode = parse_mode(mode)
    if mode is NormMode.IDENTITY:
        return x
    a, b = _pair(stats, mode, x)
    if mode is NormMode.MEAN_STD:
        return x * b + a
    return (x + 1.0) / 2.0 * (b - a) + a


def split_flat_stats(flat: Mapping[str, Any]) -> dict[str, dict[str, Tensor]]:
    """{'observation.state.mean': t} -> {'observation.state': {'mean': t}} (split at last dot)."""
    nested: dict[str, dict[str, Tensor]] = {}
    for name, value in flat.items():
        feature, dot, stat = name.rpartition('.')
        if not dot or not feature or not stat:
            raise NormalizationError(f'stats key {name!r} is not "<feature>.<stat>"')
        nested.setdefault(feature, {})[stat] = to_stat_tensor(value)
    return nested


def join_flat_stats(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, Tensor]:
    """Inverse of split_flat_stats: the flat '<feature>.<stat>' layout of the step safetensors."""
    return {f'{key}.{stat}': to_stat_tensor(v)
            for key, per in stats.items() for stat, v in per.items()}


class Normalizer:
    """Normalizes / unnormalizes the features of a batch with per-feature stats.

    `features` maps keys to FeatureSpec-like objects, `norm_map` maps feature types to modes and
    `stats` maps keys to {stat: tensor}. Stats of keys that are not features are kept (and saved
    again) but never applied, as in LeRobot where the whole dataset stats are stored.
    """

    def __init__(self, features: Mapping[str, Any], norm_map: Mapping[Any, Any],
                 stats: Mapping[str, Mapping[str, Any]] | None = None,
                 eps: float = DEFAULT_EPS) -> None:
        if not eps > 0:
            raise NormalizationError(f'eps must be > 0, got {eps}')
        self.eps = float(eps)
        self.features = {k: FeatureSpec.from_any(v) for k, v in features.items()}
        self.norm_map = {enum_name(k): parse_mode(v) for k, v in norm_map.items()}
        self.stats: dict[str, dict[str, Tensor]] = {}
        for key, per in (stats or {}).items():
            self.stats[key] = {name: self._shape_stat(key, name, to_stat_tensor(v))
                               for name, v in per.items()}
        for key in self.features:
            self._check_feature(key)

    def _shape_stat(self, key: str, name: str, value: Tensor) -> Tensor:
        spec = self.features.get(key)
        if spec is not None and spec.type == 'VISUAL' and value.numel() == spec.shape[0]:
            return value.reshape(spec.shape[0], 1, 1)  # (C,) or (C,1,1) -> (C,1,1)
        return value

    def mode_for(self, key: str) -> NormMode:
        """The mode applied to `key` (IDENTITY for unknown keys and unmapped types)."""
        spec = self.features.get(key)
        if spec is None:
            return NormMode.IDENTITY
        return self.norm_map.get(spec.type, NormMode.IDENTITY)

    def _check_feature(self, key: str) -> None:
        mode = self.mode_for(key)
        per = self.stats.get(key)
        if mode is NormMode.IDENTITY or per is None:
            return
        spec = self.features[key]
        for name in MODE_STATS[mode]:
            if name not in per:
                raise NormalizationError(
                    f'stats for {key!r} lack {name!r} needed by {mode.value} (have {sorted(per)})')
            value = per[name]
            if not torch.isfinite(value).all():
                raise NormalizationError(f'stats {key}.{name} contain inf/nan')
            try:
                torch.broadcast_shapes(value.shape, spec.shape)
            except RuntimeError:
                raise NormalizationError(
                    f'stats {key}.{name} have shape {tuple(value.shape)}, which does not fit '
                    f'feature shape {spec.shape}') from None
            if value.numel() > int(np.prod(spec.shape)):
                raise NormalizationError(
                    f'stats {key}.{name} have shape {tuple(value.shape)}, larger than feature '
                    f'shape {spec.shape}')

    def missing_stats(self) -> list[str]:
        """Features whose mode needs stats that were not given (they pass through unchanged)."""
        return [k for k in self.features
                if self.mode_for(k) is not NormMode.IDENTITY and k not in self.stats]

    def has_stats(self, key: str) -> bool:
        """True when `key` is normalized with real stats (not passed through)."""
        return self.mode_for(key) is not NormMode.IDENTITY and key in self.stats

    def normalize_key(self, key: str, x: Tensor) -> Tensor:
        """Normalize one feature's tensor."""
        if not self.has_stats(key):
            return x
        return normalize_tensor(x, self.mode_for(key), self.stats[key], self.eps)

    def unnormalize_key(self, key: str, x: Tensor) -> Tensor:
        """Unnormalize one feature's tensor."""
        if not self.has_stats(key):
            return x
        return unnormalize_tensor(x, self.mode_for(key), self.stats[key])

    def normalize(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict with every tensor feature of `batch` normalized; other entries unchanged."""
        return {k: self.normalize_key(k, v) if isinstance(v, Tensor) else v
                for k, v in batch.items()}

    def unnormalize(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict with every tensor feature of `batch` unnormalized."""
        return {k: self.unnormalize_key(k, v) if isinstance(v, Tensor) else v
                for k, v in batch.items()}

    def flat_stats(self) -> dict[str, Tensor]:
        """All stats in the flat '<feature>.<stat>' layout (for the step safetensors file)."""
        return join_flat_stats(self.stats)
