"""SmolVLA configuration: every field of LeRobot's `SmolVLAConfig`, validated, in config.json form.

The field names, defaults and JSON encoding follow LeRobot (docs/lerobot_compat.md, "Configuration")
so that a LeRobot policy directory's config.json reads unchanged and ours reads in LeRobot. The VLM
geometry is not stored in config.json: like LeRobot we derive it from `vlm_model_name`
(`vlm_config()`), here without network access (a built-in table for SmolVLM2-500M, a local
directory, or the tiny test geometry).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import json
import logging
import math
import os
from pathlib import Path
import types
import typing
from typing import Any

from smolvla_ros.policy.tokenizer import TINY_VOCAB_SIZE, is_tiny_name

logger = logging.getLogger(__name__)

POLICY_TYPE = 'smolvla'
SMOLVLM2_500M = 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct'
TINY_VLM_NAME = 'tiny'
SIM_SMALL_VLM_NAME = 'smolvla_ros/sim_small'
FEATURE_TYPES = ('STATE', 'VISUAL', 'ENV', 'ACTION', 'REWARD', 'LANGUAGE')
NORMALIZATION_MODES = ('MIN_MAX', 'MEAN_STD', 'IDENTITY', 'QUANTILES', 'QUANTILE10')
RTC_SCHEDULES = ('ZEROS', 'ONES', 'LINEAR', 'EXP')
STATE_KEY = 'observation.state'
ACTION_KEY = 'action'
IMAGE_PREFIX = 'observation.images.'


class SmolVLAConfigError(ValueError):
    """A SmolVLA or RTC configuration value is invalid (the message names the field)."""


@dataclass(frozen=True)
class PolicyFeature:
    """One policy input or output, as in LeRobot's config.json: {"type": ..., "shape": [...]}."""

    type: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise SmolVLAConfigError(f'feature type {self.type!r} is not one of {FEATURE_TYPES}')
        shape = tuple(self.shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                for d in shape):
            raise SmolVLAConfigError(f'feature shape must be positive ints, got {self.shape!r}')
        object.__setattr__(self, 'shape', shape)
        if self.type == 'VISUAL' and len(shape) != 3:
            raise SmolVLAConfigError(f'a VISUAL feature has shape (C, H, W), got {shape}')

    def to_dict(self) -> dict[str, Any]:
        return {'type': self.type, 'shape': list(self.shape)}


@dataclass(frozen=True)
class RTCConfig:
    """Real-time chunking settings (LeRobot's `RTCConfig`); SmolVLA: `guided` only.

    docs/lerobot_compat.md, "Real-time chunking".
    """

    enabled: bool = True
    mode: str = 'guided'
    prefix_attention_schedule: str = 'LINEAR'
    max_guidance_weight: float = 10.0
    execution_horizon: int = 10
    debug: bool = False
    debug_maxlen: int = 100

    def __post_init__(self) -> None:
        schedule = str(self.prefix_attention_schedule).upper()
        if schedule not in RTC_SCHEDULES:
            raise SmolVLAConfigError(
                f'rtc_config.prefix_attention_schedule must be one of {RTC_SCHEDULES}, '
                f'got {self.prefix_attention_schedule!r}')
        object.__setattr__(self, 'prefix_attention_schedule', schedule)
        if self.mode != 'guided':
            raise SmolVLAConfigError(
                f'rtc_config.mode {self.mode!r}: SmolVLA supports only "guided" real-time chunking '
                '("trained" needs a pi0.5 checkpoint trained with delays)')
        if not self.max_guidance_weight >= 0.0 or math.isinf(self.max_guidance_weight):
            raise SmolVLAConfigError(
                'rtc_config.max_guidance_weight must be finite and >= 0, '
                f'got {self.max_guidance_weight}')
        if self.execution_horizon < 1:
            raise SmolVLAConfigError(
                f'rtc_config.execution_horizon must be >= 1, got {self.execution_horizon}')
        if self.debug_maxlen < 1:
            raise SmolVLAConfigError(
                f'rtc_config.debug_maxlen must be >= 1, got {self.debug_maxlen}')

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RTCConfig:
        if not isinstance(data, dict):
            raise SmolVLAConfigError(
                f'rtc_config must be an object or null, got {type(data).__name__}')
        return cls(**_typed_kwargs(cls, data, prefix='rtc_config.'))


def _default_input_features() -> dict[str, PolicyFeature]:
    return {}


def _default_normalization() -> dict[str, str]:
    return {'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD', 'ACTION': 'MEAN_STD'}


@dataclass(frozen=True)
class SmolVLAConfig:
    """LeRobot's `SmolVLAConfig`: same names and defaults, validated.

    docs/lerobot_compat.md, "Configuration".

    Build variants with `dataclasses.replace(cfg, field=value)`; the presets are `preset('tiny')`
    (seconds on a CPU, for tests and the demo) and `preset('smolvla_base')` (the 450M geometry).
    """

    # --- inherited from LeRobot's PreTrainedConfig (they appear in config.json) ---
    n_obs_steps: int = 1
    input_features: dict[str, PolicyFeature] = field(default_factory=_default_input_features)
    output_features: dict[str, PolicyFeature] = field(default_factory=_default_input_features)
    device: str | None = None
    use_amp: bool = False
    use_peft: bool = False
    push_to_hub: bool = True
    repo_id: str | None = None
    private: bool | None = None
    tags: tuple[str, ...] | None = None
    license: str | None = None
    pretrained_path: str | None = None
    pretrained_revision: str | None = None
    # --- SmolVLA ---
    chunk_size: int = 50
    n_action_steps: int = 50  # size of LeRobot's select_action queue; <= chunk_size
    normalization_mapping: dict[str, str] = field(default_factory=_default_normalization)
    max_state_dim: int = 32  # state is zero-padded to this length
    max_action_dim: int = 32  # actions are zero-padded to this length
    # LeRobot comments this as (width, height) but passes [1] as height and [0] as width.
    resize_imgs_with_padding: tuple[int, int] | None = (512, 512)
    empty_cameras: int = 0  # placeholder cameras `observation.images.empty_camera_{i}`
    adapt_to_pi_aloha: bool = False
    use_delta_joint_actions_aloha: bool = False
    tokenizer_max_length: int = 48
    num_steps: int = 10  # Euler denoising steps
    use_cache: bool = True  # prefix KV cache at inference
    freeze_vision_encoder: bool = True
    train_expert_only: bool = True
    train_state_proj: bool = True
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.9, 0.95)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-10
    optimizer_grad_clip_norm: float = 10.0
    scheduler_warmup_steps: int = 1000
    scheduler_decay_steps: int = 30000
    scheduler_decay_lr: float = 2.5e-6
    vlm_model_name: str = SMOLVLM2_500M  # also the tokenizer name
    load_vlm_weights: bool = False  # smolvla_base's config.json has true
    add_image_special_tokens: bool = False
    attention_mode: str = 'cross_attn'
    prefix_length: int = -1  # pad the prefix to this length if longer than it; <= 0: never
    pad_language_to: str = 'longest'  # smolvla_base uses 'max_length'
    num_expert_layers: int = -1  # <= 0: as many as the (truncated) VLM
    num_vlm_layers: int = 16  # keep the first 16 of SmolLM2's 32 text layers
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    min_period: float = 4e-3  # sinusoidal time-embedding periods
    max_period: float = 4.0
    rtc_config: RTCConfig | None = None
    compile_model: bool = False
    compile_mode: str = 'max-autotune'

    def __post_init__(self) -> None:
        self._freeze_containers()
        _check(self.n_obs_steps >= 1, 'n_obs_steps', self.n_obs_steps, '>= 1')
        _check(self.chunk_size >= 1, 'chunk_size', self.chunk_size, '>= 1')
        _check(1 <= self.n_action_steps <= self.chunk_size, 'n_action_steps', self.n_action_steps,
               f'in 1..chunk_size ({self.chunk_size})')
        _check(self.max_state_dim >= 1, 'max_state_dim', self.max_state_dim, '>= 1')
        _check(self.max_action_dim >= 1, 'max_action_dim', self.max_action_dim, '>= 1')
        if self.resize_imgs_with_padding is not None:
            _check(len(self.resize_imgs_with_padding) == 2
                   and all(v >= 1 for v in self.resize_imgs_with_padding),
                   'resize_imgs_with_padding', self.resize_imgs_with_padding,
                   'two positive ints or null')
        _check(self.empty_cameras >= 0, 'empty_cameras', self.empty_cameras, '>= 0')
        if self.use_delta_joint_actions_aloha:
            raise NotImplementedError(
                'use_delta_joint_actions_aloha is not implemented in SmolVLA (nor in LeRobot)')
        _check(self.tokenizer_max_length >= 1, 'tokenizer_max_length', self.tokenizer_max_length,
               '>= 1')
        _check(self.num_steps >= 1, 'num_steps', self.num_steps, '>= 1')
        _check(self.optimizer_lr > 0, 'optimizer_lr', self.optimizer_lr, '> 0')
        _check(len(self.optimizer_betas) == 2 and all(0 <= b < 1 for b in self.optimizer_betas),
               'optimizer_betas', self.optimizer_betas, 'two values in [0, 1)')
        _check(self.optimizer_eps > 0, 'optimizer_eps', self.optimizer_eps, '> 0')
        _check(self.optimizer_weight_decay >= 0, 'optimizer_weight_decay',
               self.optimizer_weight_decay, '>= 0')
        _check(self.optimizer_grad_clip_norm > 0, 'optimizer_grad_clip_norm',
               self.optimizer_grad_clip_norm, '> 0')
        _check(self.scheduler_warmup_steps >= 0, 'scheduler_warmup_steps',
               self.scheduler_warmup_steps, '>= 0')
        _check(self.scheduler_decay_steps >= 1, 'scheduler_decay_steps',
               self.scheduler_decay_steps, '>= 1')
        _check(self.scheduler_decay_lr >= 0, 'scheduler_decay_lr', self.scheduler_decay_lr, '>= 0')
        _check(bool(self.vlm_model_name), 'vlm_model_name', self.vlm_model_name, 'non-empty')
        _check(self.attention_mode in ('cross_attn', 'self_attn'), 'attention_mode',
               self.attention_mode, "'cross_attn' or 'self_attn'")
        _check(self.pad_language_to in ('longest', 'max_length'), 'pad_language_to',
               self.pad_language_to, "'longest' or 'max_length'")
        _check(self.self_attn_every_n_layers >= 1, 'self_attn_every_n_layers',
               self.self_attn_every_n_layers, '>= 1')
        if self.num_vlm_layers > 0 and self.num_expert_layers > 0:
            _check(self.num_vlm_layers % self.num_expert_layers == 0, 'num_expert_layers',
                   self.num_expert_layers, f'a divisor of num_vlm_layers ({self.num_vlm_layers})')
        _check(self.expert_width_multiplier > 0, 'expert_width_multiplier',
               self.expert_width_multiplier, '> 0')
        _check(0 < self.min_period < self.max_period, 'min_period', self.min_period,
               f'in (0, max_period={self.max_period})')
        _check(bool(self.compile_mode), 'compile_mode', self.compile_mode, 'non-empty')
        self._check_features()

    def _freeze_containers(self) -> None:
        """Normalise JSON-ish inputs (lists, plain dicts) to the canonical field types."""
        def features(raw: Any, name: str) -> dict[str, PolicyFeature]:
            if not isinstance(raw, dict):
                raise SmolVLAConfigError(f'{name} must be an object, got {type(raw).__name__}')
            out = {}
            for key, feat in raw.items():
                if isinstance(feat, dict):
                    feat = _feature_from_dict(feat, f'{name}.{key}')
                if not isinstance(feat, PolicyFeature):
                    raise SmolVLAConfigError(f'{name}.{key} must be a feature, got {feat!r}')
                out[str(key)] = feat
            return out

        set_ = object.__setattr__
        set_(self, 'input_features', features(self.input_features, 'input_features'))
        set_(self, 'output_features', features(self.output_features, 'output_features'))
        if self.empty_cameras > 0:
            shape = (3, 480, 640)
            for i in range(self.empty_cameras):
                key = f'{IMAGE_PREFIX}empty_camera_{i}'
                self.input_features.setdefault(key, PolicyFeature('VISUAL', shape))
        mapping = {}
        for ftype, mode in dict(self.normalization_mapping).items():
            ftype, mode = str(ftype).upper(), str(mode).upper()
            if ftype not in FEATURE_TYPES:
                raise SmolVLAConfigError(f'normalization_mapping key {ftype!r} is not one of '
                                         f'{FEATURE_TYPES}')
            if mode not in NORMALIZATION_MODES:
                raise SmolVLAConfigError(f'normalization_mapping[{ftype}] = {mode!r} is not one of '
                                         f'{NORMALIZATION_MODES}')
            mapping[ftype] = mode
        set_(self, 'normalization_mapping', mapping)
        for name in ('resize_imgs_with_padding', 'optimizer_betas', 'tags'):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, tuple(value))
        if isinstance(self.rtc_config, dict):
            set_(self, 'rtc_config', RTCConfig.from_dict(self.rtc_config))
        if self.rtc_config is not None and not isinstance(self.rtc_config, RTCConfig):
            raise SmolVLAConfigError(f'rtc_config must be an RTCConfig or null, got '
                                     f'{self.rtc_config!r}')

    def _check_features(self) -> None:
        state = self.input_features.get(STATE_KEY)
        if state is not None:
            _check(len(state.shape) == 1 and state.shape[0] <= self.max_state_dim,
                   f'input_features.{STATE_KEY}', state.shape,
                   f'one dim <= max_state_dim ({self.max_state_dim})')
        action = self.output_features.get(ACTION_KEY)
        if action is not None:
            _check(len(action.shape) == 1 and action.shape[0] <= self.max_action_dim,
                   f'output_features.{ACTION_KEY}', action.shape,
                   f'one dim <= max_action_dim ({self.max_action_dim})')

    # --- feature views (docs/lerobot_compat.md, "Configuration") ---
    @property
    def image_features(self) -> tuple[str, ...]:
        """Keys of the VISUAL inputs in config order (= the image order in the prefix)."""
        return tuple(k for k, f in self.input_features.items() if f.type == 'VISUAL')

    @property
    def state_feature(self) -> str | None:
        """The robot-state input key (`observation.state`) or None if the config has none."""
        return STATE_KEY if STATE_KEY in self.input_features else None

    @property
    def action_feature(self) -> str | None:
        """The action output key (`action`) or None if the config has none."""
        return ACTION_KEY if ACTION_KEY in self.output_features else None

    @property
    def action_dim(self) -> int:
        """The real (unpadded) action dimension, `output_features['action'].shape[0]`."""
        if self.action_feature is None:
            raise SmolVLAConfigError('the config has no "action" output feature')
        return self.output_features[ACTION_KEY].shape[0]

    @property
    def state_dim(self) -> int:
        """The real (unpadded) state dimension, `input_features['observation.state'].shape[0]`."""
        if self.state_feature is None:
            raise SmolVLAConfigError('the config has no "observation.state" input feature')
        return self.input_features[STATE_KEY].shape[0]

    # --- presets ---
    @classmethod
    def preset(cls, name: str) -> SmolVLAConfig:
        """'smolvla_base' (lerobot/smolvla_base's config, random weights), 'tiny' (CPU tests)
        or 'sim_small' (learns the simulated pick on 2 CPU cores; docs/training.md)."""
        if name == 'smolvla_base':
            cams = {f'{IMAGE_PREFIX}camera{i}': PolicyFeature('VISUAL', (3, 256, 256))
                    for i in (1, 2, 3)}
            return cls(
                input_features={**cams, STATE_KEY: PolicyFeature('STATE', (6,))},
                output_features={ACTION_KEY: PolicyFeature('ACTION', (6,))},
                num_expert_layers=0, prefix_length=0, pad_language_to='max_length',
                vlm_model_name=SMOLVLM2_500M, load_vlm_weights=False)
        if name == 'tiny':
            cams = {f'{IMAGE_PREFIX}camera{i}': PolicyFeature('VISUAL', (3, 64, 64))
                    for i in (1, 2)}
            return cls(
                input_features={**cams, STATE_KEY: PolicyFeature('STATE', (6,))},
                output_features={ACTION_KEY: PolicyFeature('ACTION', (6,))},
                resize_imgs_with_padding=(64, 64), tokenizer_max_length=16,
                num_expert_layers=0, num_vlm_layers=4, prefix_length=0,
                pad_language_to='max_length', vlm_model_name=TINY_VLM_NAME)
        if name == 'sim_small':
            cams = {f'{IMAGE_PREFIX}{c}': PolicyFeature('VISUAL', (3, 96, 96))
                    for c in ('front', 'wrist')}
            return cls(
                input_features={**cams, STATE_KEY: PolicyFeature('STATE', (6,))},
                output_features={ACTION_KEY: PolicyFeature('ACTION', (6,))},
                resize_imgs_with_padding=(96, 96), tokenizer_max_length=48,
                num_expert_layers=0, num_vlm_layers=4, prefix_length=0,
                pad_language_to='longest', vlm_model_name=SIM_SMALL_VLM_NAME)
        raise SmolVLAConfigError(
            f'unknown SmolVLA preset {name!r}; use "smolvla_base", "sim_small" or "tiny"')

    # --- VLM geometry ---
    def vlm_config(self) -> Any:
        """The transformers `SmolVLMConfig` for `vlm_model_name`, never downloading.

        The SmolVLM2-500M hub id maps to its built-in geometry; a local directory is read from
        its config.json; the tiny name gives the tiny test geometry; any other hub id is looked
        up in the local Hugging Face cache only.
        """
        from transformers import AutoConfig, SmolVLMConfig

        name = self.vlm_model_name
        if name in _BUILTIN_GEOMETRIES:
            return SmolVLMConfig(**_BUILTIN_GEOMETRIES[name])
        if is_tiny_name(name):
            return SmolVLMConfig(**_TINY_GEOMETRY)
        path = Path(name).expanduser()
        try:
            if path.is_dir():
                cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
            else:
                cfg = AutoConfig.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise SmolVLAConfigError(
                f'vlm_model_name {name!r}: no SmolVLM config found locally (a directory with '
                f'config.json, or a hub id already in the Hugging Face cache); nothing is '
                f'downloaded at run time: {exc}') from exc
        if getattr(cfg, 'model_type', None) != 'smolvlm':
            raise SmolVLAConfigError(
                f'vlm_model_name {name!r} is a {getattr(cfg, "model_type", "?")!r} model, '
                'SmolVLA needs a SmolVLM (model_type "smolvlm")')
        return cfg

    # --- config.json ---
    def to_dict(self) -> dict[str, Any]:
        """LeRobot's config.json encoding (draccus): `type` first, tuples as lists, enum names."""
        out: dict[str, Any] = {'type': POLICY_TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ('input_features', 'output_features'):
                value = {k: v.to_dict() for k, v in value.items()}
            elif isinstance(value, RTCConfig):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmolVLAConfig:
        """Read a config.json dict: unknown keys are logged and ignored, wrong types raise."""
        if not isinstance(data, dict):
            raise SmolVLAConfigError(
                f'a SmolVLA config is a JSON object, got {type(data).__name__}')
        data = dict(data)
        ptype = data.pop('type', POLICY_TYPE)
        if ptype != POLICY_TYPE:
            raise SmolVLAConfigError(f'config "type" is {ptype!r}, expected {POLICY_TYPE!r}')
        return cls(**_typed_kwargs(cls, data))

    def save_json(self, path: str | os.PathLike[str]) -> None:
        """Write config.json (atomically: a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(json.dumps(self.to_dict(), indent=4) + '\n')
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> SmolVLAConfig:
        """Read config.json; a file that is not valid JSON raises SmolVLAConfigError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SmolVLAConfigError(f'{path} is not valid JSON: {exc}') from exc
        return cls.from_dict(data)


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise SmolVLAConfigError(f'{name} must be {expected}, got {value!r}')


def _feature_from_dict(data: dict[str, Any], name: str) -> PolicyFeature:
    if set(data) - {'type', 'shape'} or 'type' not in data or 'shape' not in data:
        raise SmolVLAConfigError(f'{name} must be {{"type": ..., "shape": [...]}}, got {data!r}')
    ftype, shape = data['type'], data['shape']
    if not isinstance(ftype, str):
        raise SmolVLAConfigError(f'{name}.type must be a string, got {ftype!r}')
    if not isinstance(shape, (list, tuple)):
        raise SmolVLAConfigError(f'{name}.shape must be a list, got {shape!r}')
    try:
        return PolicyFeature(ftype.upper(), tuple(shape))
    except SmolVLAConfigError as exc:
        raise SmolVLAConfigError(f'{name}: {exc}') from exc


def _typed_kwargs(cls: type, data: dict[str, Any], prefix: str = '') -> dict[str, Any]:
    """Keyword arguments for `cls` from JSON values, type-checked against the field annotations."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            logger.warning('ignoring unknown config key %r (value %r)', prefix + key, value)
            continue
        if not _matches(value, hints[key]):
            raise SmolVLAConfigError(
                f'config key {prefix + key!r} has the wrong type: expected {hints[key]}, '
                f'got {type(value).__name__} {value!r}')
        kwargs[key] = value
    return kwargs


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field annotation (lists stand for tuples, ints for floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args,
                                                                              strict=True))
    if origin is dict:
        return isinstance(value, dict)
    if hint is RTCConfig:
        return isinstance(value, (dict, RTCConfig))
    return isinstance(value, hint) if isinstance(hint, type) else True


# SmolVLM2-500M-Video-Instruct (docs/lerobot_compat.md, "The SmolVLM2-500M backbone"): SigLIP
# 512/16 (768 wide, 12 layers) + pixel shuffle 4 + SmolLM2-style Llama (960 wide, 32 layers, 15/5
# heads of 64, vocab 49280). rope_theta is the native value; SmolVLA uses its own RoPE with base
# 10000 and never reads it.
_SMOLVLM2_500M_GEOMETRY: dict[str, Any] = {
    'image_token_id': 49190,
    'scale_factor': 4,
    'tie_word_embeddings': False,
    'vision_config': {
        'hidden_size': 768, 'intermediate_size': 3072, 'num_hidden_layers': 12,
        'num_attention_heads': 12, 'num_channels': 3, 'image_size': 512, 'patch_size': 16,
        'hidden_act': 'gelu_pytorch_tanh', 'layer_norm_eps': 1e-6,
    },
    'text_config': {
        'model_type': 'llama', 'hidden_size': 960, 'intermediate_size': 2560,
        'num_hidden_layers': 32, 'num_attention_heads': 15, 'num_key_value_heads': 5,
        'head_dim': 64, 'vocab_size': 49280, 'rms_norm_eps': 1e-5, 'rope_theta': 100000.0,
        'max_position_embeddings': 8192, 'hidden_act': 'silu', 'attention_bias': False,
        'mlp_bias': False, 'pad_token_id': 2, 'bos_token_id': 1, 'eos_token_id': 2,
        'tie_word_embeddings': False,
    },
}
def _small_geometry(*, vision_hidden: int, vision_layers: int, vision_heads: int, image: int,
                    patch: int, text_hidden: int, text_layers: int,
                    head_dim: int) -> dict[str, Any]:
    """A SmolVLM config for the built-in small geometries: byte-level vocabulary, pixel shuffle 2,
    4 query / 2 key-value heads in the text model, MLPs twice the width."""
    return {
        'image_token_id': TINY_VOCAB_SIZE - 2,
        'scale_factor': 2,
        'tie_word_embeddings': False,
        'vision_config': {
            'hidden_size': vision_hidden, 'intermediate_size': 2 * vision_hidden,
            'num_hidden_layers': vision_layers, 'num_attention_heads': vision_heads,
            'num_channels': 3, 'image_size': image, 'patch_size': patch,
            'hidden_act': 'gelu_pytorch_tanh', 'layer_norm_eps': 1e-6,
        },
        'text_config': {
            'model_type': 'llama', 'hidden_size': text_hidden,
            'intermediate_size': 2 * text_hidden, 'num_hidden_layers': text_layers,
            'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': head_dim,
            'vocab_size': TINY_VOCAB_SIZE, 'rms_norm_eps': 1e-5, 'rope_theta': 100000.0,
            'max_position_embeddings': 512, 'hidden_act': 'silu', 'attention_bias': False,
            'mlp_bias': False, 'pad_token_id': 2, 'bos_token_id': 1, 'eos_token_id': 0,
            'tie_word_embeddings': False,
        },
    }


# The small learned geometry ('sim_small' preset): 96x96 images, patch 12 (64 patches), pixel
# shuffle 2 (16 tokens/image); a 96-wide text model of 4 layers with 4/2 heads of 24; the expert at
# SmolVLA's 0.75 width. ~1.0 M parameters: it trains in about an hour on 2 CPU cores
# (docs/training.md, "The simulated pick").
_SIM_SMALL_GEOMETRY = _small_geometry(vision_hidden=96, vision_layers=3, vision_heads=4, image=96,
                                      patch=12, text_hidden=96, text_layers=4, head_dim=24)

_BUILTIN_GEOMETRIES = {SMOLVLM2_500M: _SMOLVLM2_500M_GEOMETRY,
                       SIM_SMALL_VLM_NAME: _SIM_SMALL_GEOMETRY}

# The tiny test geometry: 64x64 images, patch 8 (64 patches), pixel shuffle 2 (16 tokens/image),
# a 64-wide text model of 8 layers (4 kept) with 4/2 heads of 16; vocabulary = the tiny tokenizer.
_TINY_GEOMETRY = _small_geometry(vision_hidden=32, vision_layers=2, vision_heads=2, image=64,
                                 patch=8, text_hidden=64, text_layers=8, head_dim=16)
