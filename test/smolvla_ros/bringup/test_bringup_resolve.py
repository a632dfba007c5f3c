"""Binding arguments and resolving a profile into node specs and ROS argv."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smolvla_ros.bringup.errors import ArgumentError, ProfileError
from smolvla_ros.bringup.profile import load_profile
from smolvla_ros.bringup.resolve import (
    bind_arguments,
    node_argv,
    parameter_files,
    parse_cli_arguments,
    resolve_profile,
)
from smolvla_ros.paths import config_path

PROFILE = '''
description: resolution test
arguments:
  count: {default: 20, description: requests}
  sim: {default: true, description: simulation}
  ns: {default: '', description: namespace}
  mode: {default: fast, choices: [fast, slow], description: speed}
namespace: $(arg ns)
nodes:
  - name: server
    executable: null_policy_server
    namespace: gpu
    parameters:
      - params/probe.yaml
      - {count: $(arg count), label: 'run $(arg count)', quoted: '0042', ratio: [1, 2.5],
         flag: $(arg sim), group: {inner: $(arg count)}}
    remappings: {predict_chunk: $(arg mode)/predict_chunk}
    arguments: [--verbose]
    env: {MODE: $(arg mode)}
  - name: probe
    executable: predict_probe
    namespace: /abs
    condition: {unless: $(arg sim)}
processes:
  - name: bus
    cmd: [python3, $(dirname)/bus.py, --count, $(arg count)]
    condition: $(arg sim)
'''


@pytest.fixture
def profile(write_profile):
    return load_profile(write_profile(PROFILE))


def test_parse_cli_arguments() -> None:
    assert parse_cli_arguments(['count:=5', 'ns:=', 'x:=a:=b']) == {
        'count': '5', 'ns': '', 'x': 'a:=b'}
    with pytest.raises(ArgumentError, match="name:=value, got 'count=5'"):
        parse_cli_arguments(['count=5'])
    with pytest.raises(ArgumentError, match="'count' is given twice"):
        parse_cli_arguments(['count:=1', 'count:=2'])


def test_bind_arguments_defaults_and_overrides(profile) -> None:
    assert bind_arguments(profile, {'count': '7'}) == {
        'count': '7', 'sim': 'true', 'ns': '', 'mode': 'fast'}


def test_unknown_argument_is_an_error_listing_the_profile_arguments(profile) -> None:
    with pytest.raises(ArgumentError) as info:
        bind_arguments(profile, {'cuont': '3'})
    message = str(info.value)
    assert "unknown argument 'cuont' for profile 'test_profile'" in message
    for line in ("count (default '20'): requests", "mode (default 'fast', one of ['fast', "
                                                     "'slow']): speed"):
        assert line in message


def test_choices_and_required_arguments(write_profile, profile) -> None:
    with pytest.raises(ArgumentError, match=r"'mode': 'medium' is not one of \['fast', 'slow'\]"):
        bind_arguments(profile, {'mode': 'medium'})
    required = load_profile(write_profile(
        'description: d\narguments:\n  robot: {description: which arm}\n'
        'nodes: [{name: a, executable: b}]\n', name='required'))
    with pytest.raises(ArgumentError, match="needs the argument 'robot' .*robot:=VALUE"):
        bind_arguments(required, {})


def test_resolve_applies_substitutions_types_and_namespaces(profile, tmp_path: Path) -> None:
    resolved = resolve_profile(profile, {'count': '5', 'ns': 'arm', 'mode': 'slow'})
    server, probe = resolved.nodes
    assert server.namespace == '/arm/gpu'  # relative node namespace nests in the profile's
    assert probe.namespace == '/abs'  # an absolute one wins
    assert server.parameters[0] == config_path('params', 'probe.yaml').resolve()
    assert server.parameters[1] == {
        'count': 5, 'label': 'run 5', 'quoted': '0042', 'ratio': [1.0, 2.5], 'flag': True,
        'group': {'inner': 5}}
    assert server.remappings == (('predict_chunk', 'slow/predict_chunk'),)
    assert server.env == {'MODE': 'slow'}
    (bus,) = resolved.processes
    assert bus.cmd == ('python3', f'{tmp_path}/bus.py', '--count', '5')
    assert [e.name for e in resolved.enabled_entries()] == ['bus', 'server']
    flipped = resolve_profile(profile, {'sim': 'False'})
    assert [e.name for e in flipped.enabled_entries()] == ['server', 'probe']
    assert flipped.nodes[0].namespace == '/gpu'


def test_node_argv_and_inline_parameter_file(profile, tmp_path: Path) -> None:
    server = resolve_profile(profile, {'count': '5'}).nodes[0]
    files = parameter_files(server, tmp_path)
    assert files[0] == config_path('params', 'probe.yaml').resolve()
    inline = yaml.safe_load(files[1].read_text())
    assert inline == {'/**': {'ros__parameters': server.parameters[1]}}
    assert node_argv(server, files) == [
        '--verbose', '--ros-args', '-r', '__node:=server', '-r', '__ns:=/gpu',
        '--params-file', str(files[0]), '--params-file', str(files[1]),
        '-r', 'predict_chunk:=fast/predict_chunk']


def test_root_namespace_adds_no_ns_remap(write_profile, tmp_path: Path) -> None:
    profile = load_profile(write_profile('description: d\nnodes: [{name: a, executable: b}]\n'))
    (node,) = resolve_profile(profile, {}).nodes
    assert node.namespace is None
    assert node_argv(node, []) == ['--ros-args', '-r', '__node:=a']


@pytest.mark.parametrize(('given', 'fragment'), [
    ({'sim': 'maybe'}, "process 'bus': 'condition': '$(arg sim)' gave 'maybe', which is not a "
                       'boolean'),
    ({'ns': 'bad-ns'}, "node 'server': 'namespace': '/bad-ns/gpu' is not a valid ROS namespace"),
])
def test_resolution_errors_name_the_node_and_key(profile, given, fragment) -> None:
    with pytest.raises(ProfileError) as info:
        resolve_profile(profile, given)
    assert str(info.value).startswith(str(profile.path))
    assert fragment in str(info.value)


def test_missing_parameter_file_names_node_key_and_place(write_profile) -> None:
    profile = load_profile(write_profile(
        'description: d\nnodes:\n  - {name: a, executable: b, parameters: [params/nope.yaml]}\n'))
    with pytest.raises(ProfileError) as info:
        resolve_profile(profile, {})
    message = str(info.value)
    assert "node 'a': 'parameters[0]': parameter file 'params/nope.yaml' not found" in message
    assert str(config_path('params', 'nope.yaml')) in message


def test_parameter_file_must_be_a_mapping(write_profile, tmp_path: Path) -> None:
    bad = tmp_path / 'bad_params.yaml'
    bad.write_text('- 1\n')
    profile = load_profile(write_profile(
        f'description: d\nnodes:\n  - {{name: a, executable: b, parameters: [{bad}]}}\n'))
    with pytest.raises(ProfileError, match="'parameters\\[0\\]': parameter file .* mapping"):
        resolve_profile(profile, {})


def test_substituted_list_must_stay_one_type(write_profile) -> None:
    profile = load_profile(write_profile(
        'description: d\narguments: {x: {default: a, description: d}}\n'
        'nodes:\n  - {name: a, executable: b, parameters: [{v: [1, $(arg x)]}]}\n'))
    with pytest.raises(ProfileError, match=r"'parameters\[0\]'\[v\]: .*one type"):
        resolve_profile(profile, {})
    assert resolve_profile(profile, {'x': '2'}).nodes[0].parameters[0] == {'v': [1, 2]}
