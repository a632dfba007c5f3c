"""Profile loading: a valid file gives the expected dataclasses; each mistake its own error."""
from __future__ import annotations

from pathlib import Path

import pytest

from smolvla_ros.bringup.errors import ProfileError, SubstitutionError
from smolvla_ros.bringup.profile import (
    Condition,
    NodeEntry,
    ProcessEntry,
    available_profiles,
    find_profile,
    load_profile,
)

VALID = '''
description: two nodes and a process
arguments:
  count: {default: 20, description: requests}
  sim: {default: true, description: simulation, choices: [true, false]}
  robot: {description: which robot}
namespace: arm
nodes:
  - name: server
    executable: null_policy_server
    parameters:
      - params/probe.yaml
      - {count: $(arg count), nested: {a: 1}}
    remappings: {predict_chunk: /gpu/predict_chunk}
    arguments: [--flag, 3]
    env: {FOO: bar}
    condition: {unless: $(arg sim)}
  - name: probe
    executable: predict_probe
    package: other_pkg
    required: false
    shutdown_on_exit: true
processes:
  - name: bus
    cmd: [python3, -m, emulator, $(arg robot)]
    cwd: $(dirname)
    condition: $(arg sim)
'''


def test_valid_profile_loads_into_dataclasses(write_profile) -> None:
    profile = load_profile(write_profile(VALID))
    assert profile.name == 'test_profile'
    assert profile.description == 'two nodes and a process'
    assert profile.argument_names() == ['count', 'sim', 'robot']
    count, sim, robot = profile.arguments
    assert (count.default, sim.default, sim.choices, robot.default) == (
        '20', 'true', ('true', 'false'), None)
    assert profile.namespace == 'arm'
    server, probe = profile.nodes
    assert server == NodeEntry(
        name='server', executable='null_policy_server', package='smolvla_ros',
        parameters=('params/probe.yaml', {'count': '$(arg count)', 'nested': {'a': 1}}),
        remappings=(('predict_chunk', '/gpu/predict_chunk'),), arguments=('--flag', '3'),
        env=(('FOO', 'bar'),), condition=Condition('unless', '$(arg sim)'))
    assert (probe.package, probe.required, probe.shutdown_on_exit) == ('other_pkg', False, True)
    assert profile.processes == (ProcessEntry(
        name='bus', cmd=('python3', '-m', 'emulator', '$(arg robot)'), cwd='$(dirname)',
        condition=Condition('if', '$(arg sim)')),)


NODE = '''
description: d
arguments:
  count: {default: 1, description: c}
nodes:
  - name: probe
    executable: predict_probe
'''

# (profile text, expected error type, fragments the message must contain)
INVALID = {
    'not a mapping': ('- a\n- b\n', ProfileError, ['must be a YAML mapping']),
    'bad yaml': ('description: [unclosed\n', ProfileError, ['invalid YAML']),
    'duplicate key': (NODE + '    executable: other\n', ProfileError,
                      ["duplicate key 'executable'", 'line 8']),
    'unknown top key': (NODE + 'nodez: []\n', ProfileError, ["unknown key 'nodez'"]),
    'no description': (NODE.replace('description: d\n', ''), ProfileError, ["'description'"]),
    'nothing to start': ('description: d\nnodes: []\n', ProfileError, ['starts nothing']),
    'argument without description': (
        NODE.replace('{default: 1, description: c}', '{default: 1}'), ProfileError,
        ["argument 'count'", "'description' is required"]),
    'argument unknown key': (
        NODE.replace('description: c}', 'description: c, type: int}'), ProfileError,
        ["argument 'count'", "unknown key 'type'"]),
    'argument bad name': (NODE.replace('  count:', '  1count:'), ProfileError,
                          ["argument '1count'", 'invalid argument name']),
    'default not in choices': (
        NODE.replace('description: c}', 'description: c, choices: [2, 3]}'), ProfileError,
        ["argument 'count'", "default '1' is not one of its choices"]),
    'node without name': (NODE.replace('- name: probe\n    ', '- '), ProfileError,
                          ['nodes[0]', "'name' is required"]),
    'node bad name': (NODE.replace('name: probe', 'name: my-probe'), ProfileError,
                      ['nodes[0]', "'my-probe'"]),
    'node unknown key': (NODE + '    params: []\n', ProfileError,
                         ["node 'probe'", "unknown key 'params'"]),
    'node without executable': (NODE.replace('    executable: predict_probe\n', ''),
                                ProfileError, ["node 'probe'", "'executable' is required"]),
    'executable with slash': (NODE.replace('predict_probe', 'bin/predict_probe'), ProfileError,
                              ["node 'probe'", "'executable'"]),
    'bad package': (NODE + '    package: My-Pkg\n', ProfileError, ["node 'probe'", "'package'"]),
    'required not bool': (NODE + '    required: yes please\n', ProfileError,
                          ["node 'probe'", "'required'", 'true or false']),
    'shutdown_on_exit not bool': (NODE + '    shutdown_on_exit: 1\n', ProfileError,
                                  ["node 'probe'", "'shutdown_on_exit'"]),
    'parameters not a list': (NODE + '    parameters: params/probe.yaml\n', ProfileError,
                              ["node 'probe'", "'parameters'", 'expected a list']),
    'parameter item bad type': (NODE + '    parameters: [3]\n', ProfileError,
                                ["node 'probe'", "'parameters[0]'"]),
    'parameter null value': (NODE + '    parameters: [{count: null}]\n', ProfileError,
                             ["node 'probe'", "'parameters[0]'[count]", 'bool, int, float']),
    'parameter mixed list': (NODE + '    parameters: [{x: [1, a]}]\n', ProfileError,
                             ["'parameters[0]'[x]", 'one type']),
    'parameter empty list': (NODE + '    parameters: [{x: []}]\n', ProfileError,
                             ["'parameters[0]'[x]", 'empty list']),
    'parameter bad name': (NODE + '    parameters: [{"a b": 1}]\n', ProfileError,
                           ["'parameters[0]'", "invalid parameter name 'a b'"]),
    'remappings as list': (NODE + '    remappings: [a, b]\n', ProfileError,
                           ["node 'probe'", "'remappings'"]),
    'env bad name': (NODE + '    env: {1X: a}\n', ProfileError,
                     ["node 'probe'", "'env'", "'1X'"]),
    'bad condition': (NODE + '    condition: {when: x}\n', ProfileError,
                      ["node 'probe'", "'condition'"]),
    'undeclared argument': (NODE + '    arguments: [$(arg cuont)]\n', SubstitutionError,
                            ["node 'probe'", "'arguments[0]'", "$(arg cuont)",
                             'declared arguments: count']),
    'unknown substitution': (NODE + '    namespace: $(var count)\n', SubstitutionError,
                             ["node 'probe'", "'namespace'", 'unknown substitution']),
    'unterminated substitution': (NODE + '    parameters: [{a: $(arg count}]\n',
                                  SubstitutionError, ["'parameters[0]'[a]", 'unterminated']),
    'duplicate names': (NODE + '  - name: probe\n    executable: x\n', ProfileError,
                        ["'probe' is used twice"]),
    'process without cmd': (NODE + 'processes:\n  - name: bus\n', ProfileError,
                            ["process 'bus'", "'cmd' is required"]),
    'process cmd bad item': (NODE + 'processes:\n  - name: bus\n    cmd: [a, [b]]\n',
                             ProfileError, ["process 'bus'", "'cmd[1]'"]),
    'process unknown key': (NODE + 'processes:\n  - name: bus\n    cmd: [a]\n    remappings: {}\n',
                            ProfileError, ["process 'bus'", "unknown key 'remappings'"]),
}


@pytest.mark.parametrize('case', sorted(INVALID))
def test_invalid_profile_error_names_file_entry_and_key(case: str, write_profile) -> None:
    text, error, fragments = INVALID[case]
    path = write_profile(text)
    with pytest.raises(error) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, f'{fragment!r} not in {message!r}'


def test_missing_profile_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match='profile file not found'):
        find_profile(str(tmp_path / 'nope.yaml'))


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match=r"no profile named 'nope' .*available: .*probe"):
        find_profile('nope')


def test_every_shipped_profile_is_valid_and_has_a_launch_file() -> None:
    profiles = available_profiles()
    assert 'probe' in [p.stem for p in profiles]
    launch_dir = profiles[0].parent.parent.parent / 'launch'
    for path in profiles:
        profile = load_profile(path.stem)
        assert profile.path == path
        assert (launch_dir / f'{path.stem}.launch.py').is_file(), f'no launch file for {path}'
    launch_files = {p.name.removesuffix('.launch.py') for p in launch_dir.glob('*.launch.py')}
    assert launch_files <= {p.stem for p in profiles}, 'a launch file without a profile'
