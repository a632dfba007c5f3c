"""What `save_pretrained` writes, compared with the files LeRobot 0.6.1 wrote for the same policy.

LeRobot's checkpoint (lerobot-train's `policy.save_pretrained` + the pre/post-processor
`save_pretrained`) is loaded, saved again by us, and compared file by file: the same weight keys,
shapes and dtypes, the same processor steps and state files, the same config.json keys. Our
checkpoint then reloads to LeRobot's actions.
"""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from golden_data import ACTION_ATOL, checkpoint_copy, load_reference, observation  # noqa: E402
from safetensors import safe_open  # noqa: E402

from smolvla_ros.policy.policy import SmolVLAPolicy  # noqa: E402

SAFETENSORS = ('model.safetensors', 'policy_preprocessor_step_5_normalizer_processor.safetensors',
               'policy_postprocessor_step_0_unnormalizer_processor.safetensors')
PROCESSORS = ('policy_preprocessor.json', 'policy_postprocessor.json')


@pytest.fixture(scope='module')
def dirs(tmp_path_factory):
    """(LeRobot's checkpoint directory, the directory our save_pretrained wrote from it)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('golden')
    lerobot = checkpoint_copy(root)
    ours = SmolVLAPolicy.from_pretrained(lerobot).save_pretrained(root / 'ours')
    return lerobot, ours


def _inventory(path):
    """{key: (shape, dtype)} of a safetensors file, from its header."""
    with safe_open(str(path), framework='pt') as f:
        return {key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype())
                for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)


def test_the_same_files_as_lerobot(dirs):
    lerobot, ours = dirs
    written = {p.name for p in ours.iterdir()}
    expected = {p.name for p in lerobot.iterdir()}
    assert expected <= written, f'missing next to LeRobot\'s files: {sorted(expected - written)}'
    assert written - expected <= {'tokenizer'}, sorted(written - expected)


@pytest.mark.parametrize('name', SAFETENSORS)
def test_saved_tensor_keys_shapes_dtypes_match_lerobot(dirs, name):
    lerobot, ours = dirs
    theirs, mine = _inventory(lerobot / name), _inventory(ours / name)
    assert sorted(set(theirs) - set(mine)) == [] and sorted(set(mine) - set(theirs)) == []
    assert mine == theirs
    if name == 'model.safetensors':
        assert len(mine) == 88  # LeRobot's count for this checkpoint (its README)


@pytest.mark.parametrize('name', PROCESSORS)
def test_processor_pipelines_match_lerobot(dirs, name):
    lerobot, ours = dirs
    theirs = json.loads((lerobot / name).read_text())
    mine = json.loads((ours / name).read_text())
    assert mine['name'] == theirs['name']
    assert [s['registry_name'] for s in mine['steps']] == \
        [s['registry_name'] for s in theirs['steps']]
    for a, b in zip(mine['steps'], theirs['steps'], strict=True):
        assert set(a) == set(b), a['registry_name']
        assert set(a.get('config', {})) == set(b.get('config', {})), a['registry_name']
        assert a.get('state_file') == b.get('state_file')


def test_config_json_has_lerobots_keys_and_values(dirs):
    lerobot, ours = dirs
    theirs = json.loads((lerobot / 'config.json').read_text())
    mine = json.loads((ours / 'config.json').read_text())
    assert sorted(mine) == sorted(theirs)
    assert {k: mine[k] for k in theirs if mine[k] != theirs[k]} == {}


def test_our_checkpoint_reloads_to_lerobots_actions(dirs):
    _, ours = dirs
    ref = load_reference('reference_061')
    actions = SmolVLAPolicy.from_pretrained(ours).predict_chunk(observation(ref),
                                                                noise=ref['noise'])
    torch.testing.assert_close(actions, ref['actions'], rtol=0, atol=ACTION_ATOL)
