"""smolvla_ros.paths: the shipped default policy resolves, by itself and by name, and fits the
contract (read from its JSON: no torch)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smolvla_ros import paths
from smolvla_ros.core.robot.contract import default_contract_path, load_contract


def test_the_default_policy_ships_in_lerobot_layout_under_the_share_dir() -> None:
    policy = paths.default_policy_dir()
    assert policy == paths.share_dir() / 'policies' / 'so101_sim_lift'
    for name in ('config.json', 'model.safetensors', 'policy_preprocessor.json',
                 'policy_postprocessor.json', 'tokenizer/tokenizer.json', 'README.md'):
        assert (policy / name).is_file(), name
    for processor in ('policy_preprocessor.json', 'policy_postprocessor.json'):
        for step in json.loads((policy / processor).read_text())['steps']:
            if 'state_file' in step:  # the normalizer statistics
                assert (policy / step['state_file']).is_file(), step['state_file']


def test_the_default_policy_needs_no_rename_map_on_the_contract() -> None:
    """Its cameras are the contract's names, its state/action the contract's joints."""
    config = json.loads((paths.default_policy_dir() / 'config.json').read_text())
    contract = load_contract(default_contract_path())
    images = {k for k, v in config['input_features'].items() if v['type'] == 'VISUAL'}
    assert images == {f'observation.images.{c}' for c in contract.camera_names}
    joints = len(contract.joint_names)
    assert config['input_features']['observation.state']['shape'] == [joints]
    assert config['output_features']['action']['shape'] == [joints]
    assert config['type'] == 'smolvla'


def test_shipped_names_resolve_and_everything_else_passes_through(tmp_path: Path) -> None:
    shipped = str(paths.default_policy_dir())
    assert paths.resolve_checkpoint(paths.DEFAULT_POLICY_NAME) == shipped
    assert paths.checkpoint_or_default(None) == shipped
    assert paths.checkpoint_or_default('') == shipped
    assert paths.checkpoint_or_default('so101_sim_lift') == shipped
    for other in ('tiny', 'smolvla_base', './so101_sim_lift', str(tmp_path), 'no_such_policy',
                  'policies/so101_sim_lift'):
        assert paths.resolve_checkpoint(other) == other
        assert paths.checkpoint_or_default(other) == other


def test_a_missing_default_policy_is_named(monkeypatch) -> None:
    monkeypatch.setattr(paths, 'DEFAULT_POLICY', 'policies/not_installed')
    with pytest.raises(paths.DefaultPolicyMissingError, match='missing or incomplete'):
        paths.resolve_checkpoint('so101_sim_lift')
    with pytest.raises(paths.DefaultPolicyMissingError, match='pass --checkpoint DIR'):
        paths.checkpoint_or_default(None)
    assert paths.resolve_checkpoint('tiny') == 'tiny'
