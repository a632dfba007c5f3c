"""SmolVLAConfig: LeRobot fields and defaults, config.json round trips, validation, VLM geometry."""
from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from smolvla_ros.policy.configuration_smolvla import (
    PolicyFeature,
    RTCConfig,
    SmolVLAConfig,
    SmolVLAConfigError,
)

# lerobot/smolvla_base's config.json (docs/lerobot_compat.md, "Configuration"), with LeRobot's
# PreTrainedConfig fields and an RTC block as LeRobot >= 0.4.2 writes it.
LEROBOT_CONFIG = {
    'type': 'smolvla', 'n_obs_steps': 1,
    'normalization_mapping': {'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD', 'ACTION': 'MEAN_STD'},
    'input_features': {
        'observation.state': {'type': 'STATE', 'shape': [6]},
        'observation.images.camera1': {'type': 'VISUAL', 'shape': [3, 256, 256]},
        'observation.images.camera2': {'type': 'VISUAL', 'shape': [3, 256, 256]},
        'observation.images.camera3': {'type': 'VISUAL', 'shape': [3, 256, 256]},
    },
    'output_features': {'action': {'type': 'ACTION', 'shape': [6]}},
    'device': 'cuda', 'use_amp': False, 'push_to_hub': True, 'repo_id': None, 'private': None,
    'tags': None, 'license': None, 'chunk_size': 50, 'n_action_steps': 50, 'max_state_dim': 32,
    'max_action_dim': 32, 'resize_imgs_with_padding': [512, 512], 'empty_cameras': 0,
    'adapt_to_pi_aloha': False, 'use_delta_joint_actions_aloha': False,
    'tokenizer_max_length': 48, 'num_steps': 10, 'use_cache': True,
    'freeze_vision_encoder': True, 'train_expert_only': True, 'train_state_proj': True,
    'optimizer_lr': 0.0001, 'optimizer_betas': [0.9, 0.95], 'optimizer_eps': 1e-08,
    'optimizer_weight_decay': 1e-10, 'optimizer_grad_clip_norm': 10,
    'scheduler_warmup_steps': 1000, 'scheduler_decay_steps': 30000, 'scheduler_decay_lr': 2.5e-06,
    'vlm_model_name': 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct', 'load_vlm_weights': True,
    'add_image_special_tokens': False, 'attention_mode': 'cross_attn', 'prefix_length': 0,
    'pad_language_to': 'max_length', 'num_expert_layers': 0, 'num_vlm_layers': 16,
    'self_attn_every_n_layers': 2, 'expert_width_multiplier': 0.75, 'min_period': 0.004,
    'max_period': 4.0,
    'rtc_config': {'enabled': True, 'mode': 'guided', 'prefix_attention_schedule': 'EXP',
                   'max_guidance_weight': 10.0, 'execution_horizon': 8, 'debug': False,
                   'debug_maxlen': 100},
    'compile_model': False, 'compile_mode': 'max-autotune',
}


def test_defaults_are_lerobots():
    cfg = SmolVLAConfig()
    assert (cfg.chunk_size, cfg.n_action_steps, cfg.max_state_dim, cfg.max_action_dim) == (
        50, 50, 32, 32)
    assert cfg.resize_imgs_with_padding == (512, 512)
    assert cfg.tokenizer_max_length == 48 and cfg.num_steps == 10 and cfg.use_cache
    assert cfg.vlm_model_name == 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct'
    assert (cfg.load_vlm_weights, cfg.pad_language_to, cfg.prefix_length) == (False, 'longest', -1)
    assert (cfg.num_vlm_layers, cfg.num_expert_layers, cfg.self_attn_every_n_layers) == (16, -1, 2)
    assert (cfg.min_period, cfg.max_period, cfg.expert_width_multiplier) == (4e-3, 4.0, 0.75)
    assert cfg.optimizer_betas == (0.9, 0.95) and cfg.scheduler_decay_lr == 2.5e-6
    assert cfg.normalization_mapping == {'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD',
                                         'ACTION': 'MEAN_STD'}
    assert cfg.rtc_config is None and cfg.compile_mode == 'max-autotune'
    assert RTCConfig() == RTCConfig(enabled=True, mode='guided', prefix_attention_schedule='LINEAR',
                                    max_guidance_weight=10.0, execution_horizon=10)


def test_lerobot_config_json_reads_and_round_trips(tmp_path):
    cfg = SmolVLAConfig.from_dict(json.loads(json.dumps(LEROBOT_CONFIG)))
    assert cfg.image_features == tuple(f'observation.images.camera{i}' for i in (1, 2, 3))
    assert cfg.state_feature == 'observation.state' and cfg.state_dim == 6
    assert cfg.action_feature == 'action' and cfg.action_dim == 6
    assert cfg.input_features['observation.images.camera2'] == PolicyFeature('VISUAL',
                                                                             (3, 256, 256))
    assert cfg.rtc_config.prefix_attention_schedule == 'EXP'
    assert cfg.rtc_config.execution_horizon == 8
    path = tmp_path / 'config.json'
    cfg.save_json(path)
    written = json.loads(path.read_text())
    assert written['type'] == 'smolvla'
    assert written['input_features'] == LEROBOT_CONFIG['input_features']
    assert written['resize_imgs_with_padding'] == [512, 512]
    for key, value in LEROBOT_CONFIG.items():
        assert written[key] == value, key
    assert SmolVLAConfig.from_json(path) == cfg


@pytest.mark.parametrize('name', ['tiny', 'smolvla_base'])
def test_presets_round_trip(tmp_path, name):
    cfg = SmolVLAConfig.preset(name)
    cfg.save_json(tmp_path / 'config.json')
    assert SmolVLAConfig.from_json(tmp_path / 'config.json') == cfg


def test_unknown_keys_are_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = SmolVLAConfig.from_dict({'type': 'smolvla', 'chunk_size': 20, 'n_action_steps': 20,
                                       'some_future_field': 3})
    assert cfg.chunk_size == 20
    assert 'some_future_field' in caplog.text


@pytest.mark.parametrize('key,value', [
    ('chunk_size', '50'), ('chunk_size', 50.0), ('use_cache', 1), ('optimizer_betas', [0.9]),
    ('vlm_model_name', 5), ('resize_imgs_with_padding', [512, 'x']), ('tags', 'a'),
    ('rtc_config', 3), ('input_features', []),
])
def test_wrong_types_name_the_key(key, value):
    with pytest.raises(SmolVLAConfigError, match=key):
        SmolVLAConfig.from_dict({key: value})


def test_wrong_type_inside_rtc_config_names_the_nested_key():
    with pytest.raises(SmolVLAConfigError, match='rtc_config.execution_horizon'):
        SmolVLAConfig.from_dict({'rtc_config': {'execution_horizon': 'ten'}})


@pytest.mark.parametrize('changes,match', [
    ({'n_action_steps': 60}, 'n_action_steps'),
    ({'chunk_size': 0}, 'chunk_size'),
    ({'num_steps': 0}, 'num_steps'),
    ({'attention_mode': 'flash'}, 'attention_mode'),
    ({'pad_language_to': 'left'}, 'pad_language_to'),
    ({'num_expert_layers': 5}, 'num_expert_layers'),
    ({'min_period': 5.0}, 'min_period'),
    ({'resize_imgs_with_padding': (512,)}, 'resize_imgs_with_padding'),
    ({'empty_cameras': -1}, 'empty_cameras'),
    ({'optimizer_betas': (0.9, 1.5)}, 'optimizer_betas'),
    ({'normalization_mapping': {'STATE': 'ZSCORE'}}, 'normalization_mapping'),
    ({'output_features': {'action': {'type': 'ACTION', 'shape': [40]}}}, 'action'),
    ({'input_features': {'observation.images.a': {'type': 'VISUAL', 'shape': [3, 4]}}}, 'VISUAL'),
    ({'input_features': {'observation.state': {'type': 'POSE', 'shape': [6]}}}, 'POSE'),
])
def test_invalid_values_raise(changes, match):
    with pytest.raises(SmolVLAConfigError, match=match):
        SmolVLAConfig.from_dict(changes)


def test_invalid_rtc_values_raise():
    with pytest.raises(SmolVLAConfigError, match='prefix_attention_schedule'):
        RTCConfig(prefix_attention_schedule='COSINE')
    with pytest.raises(SmolVLAConfigError, match='guided'):
        RTCConfig(mode='trained')
    with pytest.raises(SmolVLAConfigError, match='execution_horizon'):
        RTCConfig(execution_horizon=0)
    with pytest.raises(SmolVLAConfigError, match='max_guidance_weight'):
        RTCConfig(max_guidance_weight=-1.0)


def test_delta_joint_actions_are_not_implemented():
    with pytest.raises(NotImplementedError):
        SmolVLAConfig(use_delta_joint_actions_aloha=True)


def test_config_is_frozen_and_replace_revalidates():
    cfg = SmolVLAConfig.preset('tiny')
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.chunk_size = 3
    with pytest.raises(SmolVLAConfigError, match='n_action_steps'):
        dataclasses.replace(cfg, chunk_size=10)


def test_empty_cameras_add_placeholder_features_once():
    cfg = SmolVLAConfig.from_dict({'empty_cameras': 2, 'input_features': {
        'observation.images.top': {'type': 'VISUAL', 'shape': [3, 64, 64]}}})
    assert cfg.image_features == ('observation.images.top', 'observation.images.empty_camera_0',
                                  'observation.images.empty_camera_1')
    again = SmolVLAConfig.from_dict(cfg.to_dict())
    assert again.image_features == cfg.image_features


def test_unknown_preset_and_wrong_type_tag():
    with pytest.raises(SmolVLAConfigError, match='preset'):
        SmolVLAConfig.preset('smolvla_large')
    with pytest.raises(SmolVLAConfigError, match='pi0'):
        SmolVLAConfig.from_dict({'type': 'pi0'})


def test_from_json_rejects_broken_json(tmp_path):
    path = tmp_path / 'config.json'
    path.write_text('{"type": "smolvla", "chunk_size": ')
    with pytest.raises(SmolVLAConfigError, match='not valid JSON'):
        SmolVLAConfig.from_json(path)


# --- VLM geometry ---------------------------------------------------------------------------
def test_vlm_config_builtin_smolvlm2_500m_geometry():
    pytest.importorskip('transformers')
    vlm = SmolVLAConfig().vlm_config()
    assert vlm.model_type == 'smolvlm' and vlm.scale_factor == 4
    v, t = vlm.vision_config, vlm.text_config
    assert (v.hidden_size, v.num_hidden_layers, v.image_size, v.patch_size) == (768, 12, 512, 16)
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads,
            t.num_key_value_heads, t.head_dim, t.vocab_size) == (960, 32, 15, 5, 64, 49280)
    assert not vlm.tie_word_embeddings


def test_vlm_config_from_a_local_directory(tmp_path):
    pytest.importorskip('transformers')
    tiny = SmolVLAConfig.preset('tiny').vlm_config()
    tiny.text_config.hidden_size = 96
    tiny.save_pretrained(tmp_path)
    cfg = dataclasses.replace(SmolVLAConfig.preset('tiny'), vlm_model_name=str(tmp_path))
    assert cfg.vlm_config().text_config.hidden_size == 96


def test_vlm_config_rejects_other_model_types_and_unknown_ids(tmp_path):
    transformers = pytest.importorskip('transformers')
    transformers.LlamaConfig(hidden_size=64, num_attention_heads=4).save_pretrained(tmp_path)
    with pytest.raises(SmolVLAConfigError, match='smolvlm'):
        SmolVLAConfig(vlm_model_name=str(tmp_path)).vlm_config()
    with pytest.raises(SmolVLAConfigError, match='nothing is downloaded'):
        SmolVLAConfig(vlm_model_name='nobody/no-such-model-xyz').vlm_config()
