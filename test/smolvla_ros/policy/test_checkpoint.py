"""Policy directories: both LeRobot layouts, safetensors checks and clear errors.

The layouts: docs/lerobot_compat.md, "Checkpoint files and keys".
"""
from __future__ import annotations

import json
import struct

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('safetensors')

from smolvla_ros.policy import checkpoint as ckpt  # noqa: E402

CONFIG = {
    'type': 'smolvla',
    'input_features': {
        'observation.images.top': {'type': 'VISUAL', 'shape': [3, 8, 8]},
        'observation.state': {'type': 'STATE', 'shape': [2]},
    },
    'output_features': {'action': {'type': 'ACTION', 'shape': [2]}},
}
WEIGHTS = {'model.state_proj.weight': torch.arange(6.0).reshape(3, 2),
           'model.state_proj.bias': torch.zeros(3, dtype=torch.bfloat16)}


def _write_config(directory, config=CONFIG):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'config.json').write_text(json.dumps(config))


def _legacy_dir(tmp_path):
    """A pre-0.4 directory: config.json + model.safetensors with normalization buffers inside."""
    d = tmp_path / 'legacy'
    _write_config(d)
    tensors = dict(WEIGHTS)
    tensors.update({
        'normalize_inputs.buffer_observation_state.mean': torch.tensor([1.0, 2.0]),
        'normalize_inputs.buffer_observation_state.std': torch.tensor([3.0, 4.0]),
        'normalize_inputs.buffer_observation_images_top.mean': torch.full((3, 1, 1), torch.inf),
        'normalize_targets.buffer_action.mean': torch.tensor([5.0, 6.0]),
        'normalize_targets.buffer_action.std': torch.tensor([7.0, 8.0]),
        'unnormalize_outputs.buffer_action.mean': torch.tensor([5.0, 6.0]),
        'unnormalize_outputs.buffer_action.std': torch.tensor([7.0, 8.0]),
        'normalize_inputs.so100-blue_buffer_observation_state.mean': torch.zeros(2),
    })
    ckpt.save_safetensors(tensors, d / 'model.safetensors')
    return d


def test_pre_04_layout_takes_stats_from_model_buffers(tmp_path):
    contents = ckpt.read_checkpoint(_legacy_dir(tmp_path))
    assert contents.layout == 'pre-0.4'
    assert set(contents.weights) == set(WEIGHTS)  # buffers removed from the weights
    torch.testing.assert_close(contents.pre_stats['observation.state']['std'],
                               torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(contents.pre_stats['action']['mean'], torch.tensor([5.0, 6.0]))
    torch.testing.assert_close(contents.post_stats['action']['std'], torch.tensor([7.0, 8.0]))
    # Never-set (+inf) buffers and variant-prefixed names are ignored, not applied.
    assert 'observation.images.top' not in contents.pre_stats
    assert 'normalize_inputs.so100-blue_buffer_observation_state.mean' in contents.ignored_keys
    assert contents.norm_map is None and contents.tokenizer_name is None


def test_compiled_prefix_is_renamed(tmp_path):
    d = tmp_path / 'compiled'
    _write_config(d)
    ckpt.save_safetensors({'model._orig_mod.state_proj.weight': torch.ones(3, 2)},
                          d / 'model.safetensors')
    assert list(ckpt.read_checkpoint(d).weights) == ['model.state_proj.weight']


def test_04_layout_round_trip_with_flat_stats(tmp_path):
    d = tmp_path / 'new'
    pre_json, post_json = ckpt.processor_jsons(
        input_features=CONFIG['input_features'], output_features=CONFIG['output_features'],
        norm_map={'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD', 'ACTION': 'MIN_MAX'}, eps=1e-8,
        tokenizer_name='tokenizer', max_length=48, padding='max_length')
    pre = {'observation.state.mean': torch.tensor([1.0, 2.0]),
           'observation.state.std': torch.tensor([1.0, 1.0]),
           'action.min': torch.tensor([-1.0, 0.0]), 'action.max': torch.tensor([1.0, 2.0]),
           'observation.images.top.mean': torch.zeros(3, 1, 1), 'timestamp.count': torch.ones(1)}
    post = {'action.min': torch.tensor([-1.0, 0.0]), 'action.max': torch.tensor([1.0, 2.0])}

    def write_config(path):
        path.write_text(json.dumps(CONFIG))

    ckpt.write_checkpoint(d, config_writer=write_config, state_dict=WEIGHTS, pre_stats_flat=pre,
                          post_stats_flat=post, preprocessor=pre_json, postprocessor=post_json)
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted(['config.json', 'model.safetensors', 'policy_preprocessor.json',
                            'policy_postprocessor.json',
                            'policy_preprocessor_step_5_normalizer_processor.safetensors',
                            'policy_postprocessor_step_0_unnormalizer_processor.safetensors'])
    # The JSON follows LeRobot's serialized step order and names.
    saved = json.loads((d / 'policy_preprocessor.json').read_text())
    assert [s['registry_name'] for s in saved['steps']] == [
        'rename_observations_processor', 'to_batch_processor', 'smolvla_new_line_processor',
        'tokenizer_processor', 'device_processor', 'normalizer_processor']
    assert saved['steps'][3]['config']['padding_side'] == 'right'
    assert saved['steps'][5]['config']['features']['observation.state'] == {
        'type': 'STATE', 'shape': [2]}
    # Flat '<feature>.<stat>' keys on disk.
    flat = ckpt.load_safetensors(d / ckpt.PREPROCESSOR_STATS_FILE)
    assert set(flat) == set(pre)

    contents = ckpt.read_checkpoint(d)
    assert contents.layout == '>=0.4'
    assert contents.norm_map['ACTION'] == 'MIN_MAX' and contents.eps == 1e-8
    torch.testing.assert_close(contents.pre_stats['observation.state']['mean'],
                               torch.tensor([1.0, 2.0]))
    assert contents.pre_stats['observation.images.top']['mean'].shape == (3, 1, 1)
    assert set(contents.post_stats) == {'action'}
    assert contents.weights['model.state_proj.bias'].dtype == torch.bfloat16
    # 'tokenizer' is not a sub-folder here, so the name is kept as written.
    assert contents.tokenizer_name == 'tokenizer'
    assert not list(d.glob('.staging-*')) and not list(d.glob('.*.tmp*'))


def test_truncated_safetensors_is_reported(tmp_path):
    d = _legacy_dir(tmp_path)
    path = d / 'model.safetensors'
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(ckpt.CorruptCheckpointError, match='truncated'):
        ckpt.read_checkpoint(d)
    path.write_bytes(data[:20])
    with pytest.raises(ckpt.CorruptCheckpointError, match='truncated or not a safetensors'):
        ckpt.read_checkpoint(d)
    path.write_bytes(b'abc')
    with pytest.raises(ckpt.CorruptCheckpointError, match='too short'):
        ckpt.read_checkpoint(d)


def test_corrupt_safetensors_is_reported(tmp_path):
    d = _legacy_dir(tmp_path)
    path = d / 'model.safetensors'
    header = b'{not json}'
    path.write_bytes(struct.pack('<Q', len(header)) + header)
    with pytest.raises(ckpt.CorruptCheckpointError, match='header is not valid JSON'):
        ckpt.read_checkpoint(d)
    bad = json.dumps({'w': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 8]}}).encode()
    path.write_bytes(struct.pack('<Q', len(bad)) + bad + bytes(8))
    with pytest.raises(ckpt.CorruptCheckpointError, match="'w' F32\\[4\\] does not match"):
        ckpt.read_checkpoint(d)
    bad = json.dumps({'w': {'dtype': 'F99', 'shape': [1], 'data_offsets': [0, 4]}}).encode()
    path.write_bytes(struct.pack('<Q', len(bad)) + bad + bytes(4))
    with pytest.raises(ckpt.CorruptCheckpointError, match='malformed header'):
        ckpt.read_checkpoint(d)


def test_missing_and_broken_files_give_clear_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointNotFoundError, match='not a directory'):
        ckpt.read_checkpoint(tmp_path / 'nowhere')
    d = _legacy_dir(tmp_path)
    (d / 'config.json').unlink()
    with pytest.raises(ckpt.CheckpointNotFoundError, match='config.json does not exist'):
        ckpt.read_checkpoint(d)
    (d / 'config.json').write_text('{"type": "smolvla", ')
    with pytest.raises(ckpt.CorruptCheckpointError, match='config.json is not valid JSON'):
        ckpt.read_checkpoint(d)
    _write_config(d, {**CONFIG, 'type': 'act'})
    with pytest.raises(ckpt.CheckpointError, match="'act' policy"):
        ckpt.read_checkpoint(d)
    _write_config(d)
    (d / 'model.safetensors').unlink()
    with pytest.raises(ckpt.CheckpointNotFoundError, match='model.safetensors does not exist'):
        ckpt.read_checkpoint(d)
    # A processor JSON naming a stats file that is not there.
    d2 = _legacy_dir(tmp_path / 'two')
    pre_json, post_json = ckpt.processor_jsons(
        input_features=CONFIG['input_features'], output_features=CONFIG['output_features'],
        norm_map={'STATE': 'MEAN_STD'}, eps=1e-8, tokenizer_name='x', max_length=4,
        padding='longest')
    ckpt.write_json(pre_json, d2 / 'policy_preprocessor.json')
    ckpt.write_json(post_json, d2 / 'policy_postprocessor.json')
    with pytest.raises(ckpt.CheckpointNotFoundError, match='named by the processor JSON'):
        ckpt.read_checkpoint(d2)
    pre_json['steps'][5]['state_file'] = '../model.safetensors'  # no escaping the directory
    ckpt.write_json(pre_json, d2 / 'policy_preprocessor.json')
    with pytest.raises(ckpt.CorruptCheckpointError, match='must be a file name inside'):
        ckpt.read_checkpoint(d2)
    assert issubclass(ckpt.CheckpointError, ValueError)


def test_shared_tensors_are_saved_apart(tmp_path):
    base = torch.arange(4.0)
    path = tmp_path / 'x.safetensors'
    ckpt.save_safetensors({'a': base, 'b': base, 'c': base.view(2, 2).t()}, path)
    loaded = ckpt.load_safetensors(path)
    torch.testing.assert_close(loaded['b'], base)
    torch.testing.assert_close(loaded['c'], base.view(2, 2).t())


# --------------------------------------------------------------------------------------------
# Through the policy: save_pretrained / from_pretrained with the tiny preset.

POLICY_STATS = {
    'observation.state': {'mean': [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 'std': [1, 2, 3, 4, 5, 6]},
    'action': {'mean': [10.0, 20, 30, 40, 50, 60], 'std': [2.0, 2, 2, 3, 3, 3]},
}


@pytest.fixture(scope='module')
def tiny_policy():
    pytest.importorskip('transformers')
    from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy

    torch.manual_seed(1)
    return SmolVLAPolicy(SmolVLAConfig.preset('tiny'), POLICY_STATS).eval()


def _obs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {'observation.images.camera1': torch.rand(1, 3, 64, 64, generator=g),
            'observation.images.camera2': torch.rand(1, 3, 40, 64, generator=g),
            'observation.state': torch.randn(1, 6, generator=g), 'task': ['stack the blocks']}


def _noise(policy):
    return torch.randn(1, policy.config.chunk_size, policy.config.max_action_dim,
                       generator=torch.Generator().manual_seed(5))


def test_policy_round_trip_04_layout(tmp_path, tiny_policy):
    from smolvla_ros.policy import SmolVLAPolicy

    out = tiny_policy.save_pretrained(tmp_path / 'ckpt')
    assert (out / 'tokenizer').is_dir()  # self-contained: the tiny tokenizer is saved too
    loaded = SmolVLAPolicy.from_pretrained(out)
    assert loaded.tokenizer_name == str(out / 'tokenizer')
    own, other = tiny_policy.state_dict(), loaded.state_dict()
    assert list(own) == list(other) and all(k.startswith('model.') for k in own)
    for key in own:
        torch.testing.assert_close(other[key], own[key], rtol=0, atol=0)
    torch.testing.assert_close(loaded.normalizer.stats['action']['std'],
                               torch.tensor(POLICY_STATS['action']['std']))
    noise = _noise(tiny_policy)
    torch.testing.assert_close(loaded.predict_chunk(_obs(), noise=noise),
                               tiny_policy.predict_chunk(_obs(), noise=noise), rtol=0, atol=0)
    # Config round-trips through config.json; the stats file has flat keys.
    assert loaded.config == tiny_policy.config
    flat = ckpt.load_safetensors(out / ckpt.POSTPROCESSOR_STATS_FILE)
    assert {'action.mean', 'action.std'} <= set(flat)  # LeRobot stores all stats given


def test_policy_loads_pre_04_layout_with_stats_from_buffers(tmp_path, tiny_policy):
    """A LeRobot <= 0.3 directory written by hand: stats only inside model.safetensors."""
    from smolvla_ros.policy import SmolVLAPolicy

    d = tmp_path / 'v03'
    d.mkdir()
    tiny_policy.config.save_json(d / 'config.json')
    tensors = dict(tiny_policy.state_dict())
    for module in ('normalize_inputs', 'normalize_targets', 'unnormalize_outputs'):
        keys = ['observation.state', 'action'] if module == 'normalize_inputs' else ['action']
        for key in keys:
            for stat, values in POLICY_STATS[key].items():
                name = f'{module}.buffer_{key.replace(".", "_")}.{stat}'
                tensors[name] = torch.tensor(values, dtype=torch.float32)
    ckpt.save_safetensors(tensors, d / 'model.safetensors')
    assert sorted(p.name for p in d.iterdir()) == ['config.json', 'model.safetensors']

    loaded = SmolVLAPolicy.from_pretrained(d)
    torch.testing.assert_close(loaded.normalizer.stats['observation.state']['std'],
                               torch.tensor(POLICY_STATS['observation.state']['std'],
                                            dtype=torch.float32))
    torch.testing.assert_close(loaded.unnormalizer.stats['action']['mean'],
                               torch.tensor(POLICY_STATS['action']['mean']))
    noise = _noise(tiny_policy)
    torch.testing.assert_close(loaded.predict_chunk(_obs(), noise=noise),
                               tiny_policy.predict_chunk(_obs(), noise=noise), rtol=0, atol=0)
    # Without the buffers the same weights give different (unnormalized) actions.
    for name in [k for k in tensors if not k.startswith('model.')]:
        del tensors[name]
    ckpt.save_safetensors(tensors, d / 'model.safetensors')
    bare = SmolVLAPolicy.from_pretrained(d)
    assert not bare.normalizer.has_stats('observation.state')
    assert not torch.allclose(bare.predict_chunk(_obs(), noise=noise),
                              loaded.predict_chunk(_obs(), noise=noise))


def test_policy_load_errors_are_specific(tmp_path, tiny_policy):
    from smolvla_ros.policy import SmolVLAPolicy

    with pytest.raises(ckpt.CheckpointNotFoundError, match='neither a policy directory'):
        SmolVLAPolicy.from_pretrained(tmp_path / 'nope')
    d = tiny_policy.save_pretrained(tmp_path / 'c')
    (d / 'config.json').unlink()
    with pytest.raises(ckpt.CheckpointNotFoundError, match='config.json does not exist'):
        SmolVLAPolicy.from_pretrained(d)
    tiny_policy.config.save_json(d / 'config.json')
    model = d / 'model.safetensors'
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CorruptCheckpointError, match='model.safetensors is truncated'):
        SmolVLAPolicy.from_pretrained(d)
    weights = dict(tiny_policy.state_dict())
    weights.pop('model.action_in_proj.bias')
    weights['model.state_proj.weight'] = torch.zeros(3, 3)
    ckpt.save_safetensors(weights, model)
    with pytest.raises(ckpt.CheckpointError, match=r"lacks 1 weights.*model\.action_in_proj\.bias"):
        SmolVLAPolicy.from_pretrained(d)
    weights['model.action_in_proj.bias'] = tiny_policy.state_dict()['model.action_in_proj.bias']
    ckpt.save_safetensors(weights, model)
    with pytest.raises(ckpt.CheckpointError, match=r'model\.state_proj\.weight: file \(3, 3\)'):
        SmolVLAPolicy.from_pretrained(d)
    stats = d / ckpt.PREPROCESSOR_STATS_FILE
    stats.write_bytes(b'\x00' * 4)
    ckpt.save_safetensors(tiny_policy.state_dict(), model)
    with pytest.raises(ckpt.CorruptCheckpointError, match='normalizer_processor.safetensors'):
        SmolVLAPolicy.from_pretrained(d)


def test_mis_keyed_stats_pass_through_like_smolvla_base(tmp_path):
    """smolvla_base's migrated stats are keyed 'so100-blue.buffer.action.*': they match nothing."""
    from smolvla_ros.policy.normalize import Normalizer

    d = tmp_path / 'base_like'
    pre_json, post_json = ckpt.processor_jsons(
        input_features=CONFIG['input_features'], output_features=CONFIG['output_features'],
        norm_map={'VISUAL': 'IDENTITY', 'STATE': 'MEAN_STD', 'ACTION': 'MEAN_STD'}, eps=1e-8,
        tokenizer_name='HuggingFaceTB/SmolVLM2-500M-Video-Instruct', max_length=48,
        padding='max_length')
    quirky = {'so100-blue.buffer.action.mean': torch.ones(2),
              'so100-blue.buffer.action.std': torch.ones(2)}
    ckpt.write_checkpoint(d, config_writer=lambda p: p.write_text(json.dumps(CONFIG)),
                          state_dict=WEIGHTS, pre_stats_flat=quirky, post_stats_flat=quirky,
                          preprocessor=pre_json, postprocessor=post_json)
    contents = ckpt.read_checkpoint(d)
    assert set(contents.pre_stats) == {'so100-blue.buffer.action'}
    assert contents.tokenizer_name == 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct'
    norm = Normalizer({**CONFIG['input_features'], **CONFIG['output_features']},
                      contents.norm_map, contents.pre_stats)
    assert norm.missing_stats() == ['observation.state', 'action']
    x = torch.randn(1, 2)
    assert norm.normalize_key('action', x) is x


def test_unused_lm_head_may_be_absent(tmp_path, tiny_policy):
    from smolvla_ros.policy import SmolVLAPolicy

    d = tiny_policy.save_pretrained(tmp_path / 'no_head')
    weights = dict(tiny_policy.state_dict())
    head = 'model.vlm_with_expert.vlm.lm_head.weight'
    assert head in weights
    del weights[head]
    weights['model.something_else'] = torch.zeros(1)  # unexpected: logged, ignored
    ckpt.save_safetensors(weights, d / 'model.safetensors')
    loaded = SmolVLAPolicy.from_pretrained(d)
    assert torch.all(loaded.state_dict()[head] == 0)
    noise = _noise(tiny_policy)
    torch.testing.assert_close(loaded.predict_chunk(_obs(), noise=noise),
                               tiny_policy.predict_chunk(_obs(), noise=noise), rtol=0, atol=0)


def test_policy_without_stats_round_trips_and_files_are_not_private(tmp_path):
    """Presets have no stats: the (empty) stats files must still be valid safetensors."""
    from smolvla_ros.policy import SmolVLAPolicy

    policy = SmolVLAPolicy.from_pretrained('tiny')
    d = policy.save_pretrained(tmp_path / 'preset')
    assert ckpt.load_safetensors(d / ckpt.PREPROCESSOR_STATS_FILE) == {}
    loaded = SmolVLAPolicy.from_pretrained(d)
    assert loaded.normalizer.missing_stats() == ['observation.state', 'action']
    noise = _noise(policy)
    torch.testing.assert_close(loaded.predict_chunk(_obs(), noise=noise),
                               policy.predict_chunk(_obs(), noise=noise), rtol=0, atol=0)
    reference = tmp_path / 'plain.txt'
    reference.write_text('x')  # created with this process's umask, like any file it writes
    for path in d.iterdir():
        if path.is_file():
            assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777, path.name
