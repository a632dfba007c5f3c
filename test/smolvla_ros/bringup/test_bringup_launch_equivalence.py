"""The "never drift" test: a launch file and `smolvla-ros up` start the same command lines.

Twice. With stand-ins: small classes that record their constructor arguments are put into
sys.modules for `launch` and `launch_ros` (which a plain pip-only venv lacks); the launch file is
run as `ros2 launch` would (generate_launch_description, argument defaults + command-line values,
the OpaqueFunction), and each recorded Node/ExecuteProcess is turned into the command line
launch_ros builds from it: `EXE ARGS --ros-args -r __node:=NAME [-r __ns:=NS] --params-file F...
-r FROM:=TO...`. And with the real library (`make ros2-launch`; skipped without it): the real
`ros2 launch` starts stub programs in place of every node and process, each of which records its
argv, the parameter files it was given, its working directory and environment. Either way the
result must equal what `up` runs for the same profile and arguments, parameter file contents
included.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import runpy
import signal
import subprocess
import sys
import textwrap
import types

import pytest
from real_launch import launch_env, make_ament_prefix, require_real_launch, ros2_executable
from waiting import wait_until
import yaml

from smolvla_ros.bringup.executables import Lookup
from smolvla_ros.bringup.launch_support import profile_launch_description
from smolvla_ros.bringup.profile import load_profile
from smolvla_ros.bringup.resolve import NodeLaunch, resolve_profile
from smolvla_ros.bringup.up import build_process_specs
from smolvla_ros.paths import share_dir


class Recorded:
    """Stand-in for a launch class: remembers how it was constructed."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def _fake_class(name: str) -> type:
    return type(name, (Recorded,), {})


@pytest.fixture
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    classes = {name: _fake_class(name) for name in (
        'LaunchDescription', 'DeclareLaunchArgument', 'OpaqueFunction', 'ExecuteProcess',
        'Shutdown', 'LogInfo', 'IfCondition', 'UnlessCondition', 'Node')}
    layout = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'OpaqueFunction', 'ExecuteProcess',
                           'Shutdown', 'LogInfo'],
        'launch.conditions': ['IfCondition', 'UnlessCondition'],
        'launch_ros': [],
        'launch_ros.actions': ['Node'],
    }
    for module_name, names in layout.items():
        module = types.ModuleType(module_name)
        for name in names:
            setattr(module, name, classes[name])
        monkeypatch.setitem(sys.modules, module_name, module)
    return classes


class _Context:
    """The part of launch's LaunchContext our OpaqueFunction and on_exit handlers read."""

    def __init__(self, configurations: dict[str, str]) -> None:
        self.launch_configurations = configurations
        self.is_shutdown = False


def _run_launch(description: Recorded, given: dict[str, str], fake: dict[str, type]) -> list:
    """Do what `ros2 launch ... name:=value` does with our LaunchDescription."""
    (actions,) = description.args
    configurations = dict(given)
    for action in actions:
        if isinstance(action, fake['DeclareLaunchArgument']):
            name = action.args[0]
            if name not in configurations and 'default_value' in action.kwargs:
                configurations[name] = action.kwargs['default_value']
    opaque = actions[-1]
    assert isinstance(opaque, fake['OpaqueFunction'])
    produced = opaque.kwargs['function'](_Context(configurations), *opaque.kwargs['args'])
    return [a for a in produced if _enabled(a, fake)]


def _enabled(action: Recorded, fake: dict[str, type]) -> bool:
    """launch's If/UnlessCondition: 'true'/'1' and 'false'/'0', any case."""
    condition = action.kwargs.get('condition')
    if condition is None:
        return True
    value = {'true': True, '1': True, 'false': False, '0': False}[condition.args[0].lower()]
    return value if isinstance(condition, fake['IfCondition']) else not value


def _launch_ros_cmd(node: Recorded) -> list[str]:
    """The command line launch_ros.actions.Node builds from its arguments."""
    kw = node.kwargs
    cmd = [kw['executable'], *kw.get('arguments', []), '--ros-args', '-r',
           f"__node:={kw['name']}"]
    if kw.get('namespace'):
        cmd += ['-r', f"__ns:={kw['namespace']}"]
    for params in kw.get('parameters', []):
        cmd += ['--params-file', params]
    for source, target in kw.get('remappings', []):
        cmd += ['-r', f'{source}:={target}']
    return cmd


def _normalize(cmd: list[str] | tuple[str, ...]) -> list:
    """Program by name, and each parameter file by its content (the temp dirs differ)."""
    out: list = [Path(cmd[0]).name]
    items = iter(cmd[1:])
    for item in items:
        out.append(item)
        if item == '--params-file':
            out.append(yaml.safe_load(Path(next(items)).read_text()))
    return out


def _stub_lookup(tmp_path: Path, names: list[str]) -> Lookup:
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        path = bin_dir / name
        path.write_text('#!/bin/sh\n')
        path.chmod(0o755)
    return Lookup(bin_dir=bin_dir, path='', ament_prefix_path='')


def _assert_same(profile_ref: str | Path, given: dict[str, str], fake, tmp_path: Path) -> list:
    description = profile_launch_description(profile_ref)
    launched = _run_launch(description, given, fake)

    profile = load_profile(profile_ref)
    resolved = resolve_profile(profile, given)
    programs = [e.executable for e in resolved.nodes] + [e.cmd[0] for e in resolved.processes]
    params_dir = tmp_path / 'up-params'
    params_dir.mkdir(exist_ok=True)
    specs = build_process_specs(resolved, params_dir, lookup=_stub_lookup(tmp_path, programs),
                                environ={})
    assert [a.kwargs['name'] for a in launched] == [s.name for s in specs]
    packages = {n.name: n.package for n in resolved.nodes}
    for action, spec in zip(launched, specs, strict=True):
        if isinstance(action, fake['Node']):
            assert action.kwargs['package'] == packages[spec.name]
            assert _normalize(_launch_ros_cmd(action)) == _normalize(spec.argv)
        else:
            assert isinstance(action, fake['ExecuteProcess'])
            assert _normalize(action.kwargs['cmd']) == _normalize(spec.argv)
            assert action.kwargs.get('cwd') == spec.cwd
        extra = action.kwargs.get('additional_env', {})
        assert {k: spec.env[k] for k in extra} == extra
        assert action.kwargs['output'] == 'screen'
        assert ('on_exit' in action.kwargs) == (spec.required or spec.shutdown_on_exit)
    return launched


@pytest.mark.parametrize('given', [
    {}, {'count': '7', 'namespace': 'so101', 'image_size': '224'}, {'server': 'false'}])
def test_probe_launch_file_equals_up(given, fake_launch, tmp_path: Path) -> None:
    launch_file = share_dir() / 'launch' / 'probe.launch.py'
    description = runpy.run_path(str(launch_file))['generate_launch_description']()
    declared = {a.args[0]: a.kwargs for a in description.args[0]
                if isinstance(a, fake_launch['DeclareLaunchArgument'])}
    profile = load_profile('probe')
    assert list(declared) == profile.argument_names()
    for arg in profile.arguments:
        assert declared[arg.name]['description'] == arg.description
        assert declared[arg.name].get('default_value') == arg.default
    launched = _assert_same('probe', given, fake_launch, tmp_path)
    expected = ['predict_probe'] if given.get('server') == 'false' else [
        'null_policy_server', 'predict_probe']
    assert [a.kwargs['name'] for a in launched] == expected


RICH = '''
description: everything the format has
arguments:
  sim: {default: true, description: simulation, choices: [true, false]}
  rate: {default: 30, description: rate}
  robot: {description: which robot (required)}
namespace: $(arg robot)
processes:
  - name: bus
    cmd: [emulator, --rate, $(arg rate)]
    cwd: $(dirname)
    env: {EMU_MODE: fast}
    condition: $(arg sim)
    required: false
nodes:
  - name: driver
    executable: feetech_driver
    namespace: follower
    parameters:
      - {port: /dev/pts/$(arg rate), rate: $(arg rate), names: [a, b]}
    remappings: {joint_states: /$(arg robot)/joint_states}
    arguments: [--log-level, debug]
    env: {SMOLVLA_X: '1'}
  - name: real_camera
    executable: camera
    condition: {unless: $(arg sim)}
'''


@pytest.mark.parametrize('given', [{'robot': 'so101'}, {'robot': 'arm2', 'sim': 'false'}])
def test_rich_profile_launch_equals_up(given, write_profile, fake_launch, tmp_path) -> None:
    path = write_profile(RICH)
    launched = _assert_same(path, given, fake_launch, tmp_path)
    names = [a.kwargs['name'] for a in launched]
    assert names == (['bus', 'driver'] if given.get('sim') != 'false'
                     else ['driver', 'real_camera'])


def test_exit_handlers_shut_launch_down_with_the_supervisor_reasons(fake_launch) -> None:
    launched = _run_launch(profile_launch_description('probe'), {}, fake_launch)
    server, probe = launched

    def fire(action, code):
        event = types.SimpleNamespace(returncode=code)
        log, shutdown = action.kwargs['on_exit'](event, _Context({}))
        assert isinstance(log, fake_launch['LogInfo'])
        assert isinstance(shutdown, fake_launch['Shutdown'])
        return shutdown.kwargs['reason']

    assert fire(probe, 0) == 'predict_probe finished successfully (shutdown_on_exit)'
    assert fire(probe, 1) == 'predict_probe failed with exit code 1 (shutdown_on_exit)'
    assert fire(server, 0) == 'required process null_policy_server exited with exit code 0'
    assert fire(server, -9) == 'required process null_policy_server exited with killed by SIGKILL'


def test_exit_handlers_stay_silent_once_launch_is_shutting_down(fake_launch) -> None:
    """An exit during a shutdown was asked for: no log line, no second Shutdown."""
    launched = _run_launch(profile_launch_description('probe'), {}, fake_launch)
    context = _Context({})
    context.is_shutdown = True
    for action in launched:
        for code in (0, 1, -2):
            event = types.SimpleNamespace(returncode=code)
            assert action.kwargs['on_exit'](event, context) == []


# -- the same comparison with the real launch / launch_ros -------------------------------------

# Stands in for every node and process: records what it was started with, then waits to be
# stopped (launch's SIGINT at the end of the test).
STUB = f'''#!{sys.executable}
import json, os, signal, sys, time
from pathlib import Path
args = sys.argv[1:]
params = {{args[i + 1]: Path(args[i + 1]).read_text()
          for i, a in enumerate(args) if a == '--params-file'}}
record = {{'argv': sys.argv, 'params': params, 'cwd': os.getcwd(), 'env': dict(os.environ)}}
folder = Path(os.environ['STUB_RECORD_DIR'])
(folder / f'.{{os.getpid()}}').write_text(json.dumps(record))
os.rename(folder / f'.{{os.getpid()}}', folder / f'{{os.getpid()}}.json')
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(120)
'''
RECORD_S = 60.0  # wall bound: every stub started and recorded (failure only)


def _recorded_name(record: dict) -> str:
    """The node name (-r __node:=NAME) or, for a plain process, the program's name."""
    argv = record['argv']
    names = [a.split(':=', 1)[1] for a in argv if a.startswith('__node:=')]
    return names[0] if names else Path(argv[0]).name


def _normalize_recorded(record: dict) -> list:
    """_normalize for a stub's record: parameter files by the content the stub read."""
    out: list = [Path(record['argv'][0]).name]
    items = iter(record['argv'][1:])
    for item in items:
        out.append(item)
        if item == '--params-file':
            out.append(yaml.safe_load(record['params'][next(items)]))
    return out


def _real_launch_records(cmd: list[str], env: dict[str, str], expected: int,
                         records: Path) -> dict[str, dict]:
    """Run `ros2 launch`, wait for ``expected`` stub records, stop it with SIGINT."""
    records.mkdir()
    env = dict(env, STUB_RECORD_DIR=str(records))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        started = wait_until(lambda: len(list(records.glob('*.json'))) >= expected, RECORD_S)
        proc.send_signal(signal.SIGINT)  # non-interactive: launch forwards it to the stubs
        out, _ = proc.communicate(timeout=RECORD_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    found = [json.loads(p.read_text()) for p in sorted(records.glob('*.json'))]
    assert started and len(found) == expected, out
    return {_recorded_name(r): r for r in found}


def _stub(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUB)
    path.chmod(0o755)
    return path


def _assert_real_launch_equals_up(profile_ref: str | Path, launch_args: list[str],
                                  given: dict[str, str], ros_env: dict[str, str],
                                  tmp_path: Path) -> list[str]:
    """`ros2 launch LAUNCH_ARGS name:=value...` starts exactly what `up` would."""
    require_real_launch()
    profile = load_profile(profile_ref)
    resolved = resolve_profile(profile, given)
    nodes = {n.executable: _stub(tmp_path / 'nodes' / n.executable) for n in resolved.nodes}
    prefix = make_ament_prefix(tmp_path / 'prefix', executables=nodes)
    for entry in resolved.processes:  # plain programs are found on PATH, by both front ends
        _stub(tmp_path / 'launch-bin' / entry.cmd[0])
    env = launch_env(ros_env, prefix)
    env['PATH'] = os.pathsep.join([str(tmp_path / 'launch-bin'), env['PATH']])

    params_dir = tmp_path / 'up-params'
    params_dir.mkdir()
    programs = [e.executable for e in resolved.nodes] + [e.cmd[0] for e in resolved.processes]
    specs = build_process_specs(resolved, params_dir, lookup=_stub_lookup(tmp_path, programs),
                                environ={})
    cmd = [str(ros2_executable()), 'launch', *launch_args,
           *(f'{k}:={v}' for k, v in given.items())]
    launched = _real_launch_records(cmd, env, len(specs), tmp_path / 'records')
    entries = {e.name: e for e in resolved.entries()}

    def key(spec) -> str:  # how _recorded_name names the stub that stood in for it
        return spec.name if isinstance(entries[spec.name], NodeLaunch) else Path(spec.argv[0]).name

    assert sorted(launched) == sorted(key(s) for s in specs)
    for spec in specs:
        record = launched[key(spec)]
        assert _normalize_recorded(record) == _normalize(spec.argv), spec.name
        declared = dict(entries[spec.name].env)  # the profile's env for this entry
        assert {k: record['env'].get(k) for k in declared} == declared, spec.name
        if spec.cwd is not None:
            assert Path(record['cwd']) == Path(spec.cwd), spec.name
    return [s.name for s in specs]


@pytest.mark.ros
@pytest.mark.parametrize('given', [
    {}, {'count': '7', 'namespace': 'so101', 'image_size': '224'}, {'server': 'false'}])
def test_real_ros2_launch_of_probe_equals_up(given, ros_env, tmp_path: Path) -> None:
    names = _assert_real_launch_equals_up('probe', ['smolvla_ros', 'probe.launch.py'], given,
                                          ros_env, tmp_path)
    assert names == (['predict_probe'] if given.get('server') == 'false'
                     else ['null_policy_server', 'predict_probe'])


@pytest.mark.ros
@pytest.mark.parametrize('given', [{'robot': 'so101'}, {'robot': 'arm2', 'sim': 'false'}])
def test_real_ros2_launch_of_rich_profile_equals_up(given, write_profile, ros_env,
                                                    tmp_path: Path) -> None:
    path = write_profile(RICH)
    launch_file = tmp_path / 'rich.launch.py'
    launch_file.write_text(textwrap.dedent(f'''\
        from smolvla_ros.bringup.launch_support import profile_launch_description


        def generate_launch_description():
            return profile_launch_description({str(path)!r})
        '''))
    names = _assert_real_launch_equals_up(path, [str(launch_file)], given, ros_env, tmp_path)
    assert names == (['bus', 'driver'] if given.get('sim') != 'false'
                     else ['driver', 'real_camera'])

