"""The policy a run trains: a preset (random init) or a checkpoint, fitted to the datasets.

As `lerobot-train`: a preset takes its input/output features from the dataset (cameras in the
dataset's order, state and action dims); a checkpoint keeps its own image features, and dataset
cameras are renamed onto them (`rename_map`, LeRobot's `rename_map`), with an error naming both
sides when they do not match. State and action may have other dims than the checkpoint's
features (up to max_state_dim / max_action_dim): SmolVLA zero-pads both to those widths, so the
weights fit any smaller dim. Normalization stats always come from the training datasets (LeRobot
rebuilds the processors with the fine-tuning dataset's stats). Training settings given on the
command line are written into the policy config, so the saved config.json records the recipe.
"""
from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

import numpy as np
import torch

from smolvla_ros.policy import checkpoint as ckpt
from smolvla_ros.policy.configuration_smolvla import PolicyFeature, SmolVLAConfig
from smolvla_ros.policy.policy import SmolVLAPolicy
from smolvla_training.train.config import TrainConfig
from smolvla_training.train.data import ACTION_KEY, STATE_KEY, DataMismatchError

EMPTY_CAMERA_PREFIX = 'observation.images.empty_camera_'
PRESETS = ('tiny', 'sim_small', 'smolvla_base')


class InitError(ValueError):
    """A checkpoint or preset that cannot be trained on these datasets (names the keys)."""


def _visual(feature: Mapping[str, Any]) -> PolicyFeature:
    shape = list(feature['shape'])  # LeRobot's info.json: [H, W, C]
    names = feature.get('names') or ['height', 'width', 'channels']
    dims = dict(zip(names, shape, strict=False))
    return PolicyFeature('VISUAL', (3, int(dims.get('height', shape[0])),
                                    int(dims.get('width', shape[1]))))


def _overrides(config: SmolVLAConfig, train: TrainConfig) -> SmolVLAConfig:
    """Command-line training settings written into the policy config."""
    pairs = {
        'optimizer_lr': train.lr, 'optimizer_betas': train.betas, 'optimizer_eps': train.eps,
        'optimizer_weight_decay': train.weight_decay,
        'optimizer_grad_clip_norm': train.grad_clip,
        'scheduler_warmup_steps': train.warmup_steps, 'scheduler_decay_steps': train.decay_steps,
        'scheduler_decay_lr': train.decay_lr,
        'freeze_vision_encoder': train.freeze_vision_encoder,
        'train_expert_only': train.train_expert_only, 'train_state_proj': train.train_state_proj,
    }
    return dataclasses.replace(config, **{k: v for k, v in pairs.items() if v is not None},
                               device=train.device)


def _check_dims(config: SmolVLAConfig, features: Mapping[str, Mapping[str, Any]]) -> None:
    s, a = features[STATE_KEY]['shape'][0], features[ACTION_KEY]['shape'][0]
    if s > config.max_state_dim or a > config.max_action_dim:
        raise InitError(f'the dataset\'s state ({s}) / action ({a}) dims exceed the policy\'s '
                        f'max_state_dim {config.max_state_dim} / max_action_dim '
                        f'{config.max_action_dim}')


def preset_config(name: str, features: Mapping[str, Mapping[str, Any]]) -> SmolVLAConfig:
    """A preset's geometry with the dataset's features (cameras in dataset order)."""
    if name not in PRESETS:
        raise InitError(f'unknown preset {name!r}; choose one of {list(PRESETS)}')
    base = SmolVLAConfig.preset(name)
    cams = {k: _visual(f) for k, f in features.items() if k not in (STATE_KEY, ACTION_KEY)}
    config = dataclasses.replace(
        base, input_features={**cams, STATE_KEY: PolicyFeature(
            'STATE', (int(features[STATE_KEY]['shape'][0]),))},
        output_features={ACTION_KEY: PolicyFeature(
            'ACTION', (int(features[ACTION_KEY]['shape'][0]),))})
    _check_dims(config, features)
    return config


def fit_checkpoint_config(config: SmolVLAConfig,
                          features: Mapping[str, Mapping[str, Any]]) -> SmolVLAConfig:
    """The checkpoint's config with state/action dims set to the dataset's; cameras checked."""
    offered = sorted(k for k in features if k not in (STATE_KEY, ACTION_KEY))
    wanted = sorted(k for k in config.image_features if not k.startswith(EMPTY_CAMERA_PREFIX))
    missing = [k for k in wanted if k not in offered]
    extra = [k for k in offered if k not in config.image_features]
    if missing or extra:
        raise InitError(
            f'the checkpoint expects cameras {wanted}, the datasets give {offered} '
            f'(missing {missing}, unexpected {extra}); map dataset cameras onto the checkpoint\'s '
            "with --rename-map, e.g. 'observation.images.top=observation.images.camera1'")
    _check_dims(config, features)
    inputs = dict(config.input_features)
    inputs[STATE_KEY] = PolicyFeature('STATE', (int(features[STATE_KEY]['shape'][0]),))
    outputs = {ACTION_KEY: PolicyFeature('ACTION', (int(features[ACTION_KEY]['shape'][0]),))}
    return dataclasses.replace(config, input_features=inputs, output_features=outputs)


def _torch_stats(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {k: {n: torch.as_tensor(np.asarray(v, dtype=np.float32)) for n, v in s.items()
                if n in ('mean', 'std', 'min', 'max')} for k, s in stats.items()}


def build_policy(train: TrainConfig, features: Mapping[str, Mapping[str, Any]],
                 stats: Mapping[str, Mapping[str, np.ndarray]]) -> SmolVLAPolicy:
    """The policy to train, on CPU, in train mode (frozen parts stay in eval mode)."""
    if train.preset is not None:
        config = _overrides(preset_config(train.preset, features), train)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            policy = SmolVLAPolicy(config, _torch_stats(stats))
    else:
        try:
            contents = ckpt.read_checkpoint(train.init)
        except ckpt.CheckpointError as exc:
            raise InitError(f'--init {train.init}: {exc}') from None
        config = SmolVLAConfig.from_dict(contents.config)
        config = _overrides(fit_checkpoint_config(config, features), train)
        policy = SmolVLAPolicy(config, _torch_stats(stats), norm_map=contents.norm_map,
                               eps=contents.eps, tokenizer_name=contents.tokenizer_name)
        try:
            policy.load_weights(contents.weights, source=contents.directory / ckpt.MODEL_FILE)
        except ckpt.CheckpointError as exc:
            raise InitError(f'--init {train.init}: {exc}') from None
    missing = [k for k in (STATE_KEY, ACTION_KEY) if k not in stats]
    if missing:
        raise DataMismatchError(f'the datasets have no stats for {missing}')
    policy.train()
    return policy
