"""Apply argument values to a validated profile: plain process specs and the ROS argv of a node.

Both front ends go through here: ``smolvla-ros up`` turns :class:`NodeLaunch` into
``[executable, *node_argv(...)]``; the launch helper turns the very same objects into
``launch_ros.actions.Node(...)``, whose command line launch_ros builds in the same order
(``ARGS --ros-args -r __node:=NAME -r __ns:=NS --params-file F... -r FROM:=TO...``).

Inline parameter dicts are written to a parameter file of the ``/**: ros__parameters:`` form (the
form launch_ros itself writes for dicts) by :func:`parameter_files`, used by both front ends. A
file keeps YAML types exactly (``'20'`` stays a string, ``20`` an int), which ``-p name:=value``
would re-parse, and keeps the precedence of the list: later items override earlier ones.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
import copy
from dataclasses import KW_ONLY, dataclass, field
import os
from pathlib import Path
import re
from typing import Any

import yaml

from smolvla_ros.bringup import substitution
from smolvla_ros.bringup.errors import ArgumentError, ProfileError
from smolvla_ros.bringup.profile import (
    Condition,
    NodeEntry,
    ProcessEntry,
    Profile,
    check_parameter_list,
)
from smolvla_ros.bringup.yaml_loading import load_yaml_file
from smolvla_ros.paths import config_path

_TOKEN = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*):=(.*)$', re.DOTALL)
_NAMESPACE = re.compile(r'^(/[A-Za-z_][A-Za-z0-9_]*)+$')
_TRUE, _FALSE = ('true', '1'), ('false', '0')  # what launch's IfCondition accepts


@dataclass(frozen=True)
class ResolvedCondition:
    """A condition after substitution; ``value`` is what launch's If/UnlessCondition computes."""

    kind: str  # 'if' | 'unless'
    expression: str  # 'true', 'false', '1' or '0' (any case)
    value: bool  # start the entry?


@dataclass(frozen=True)
class LaunchEntry:
    """What every started entry has: a name, its environment and how the runner treats it."""

    name: str
    _: KW_ONLY
    env: dict[str, str] = field(default_factory=dict)
    required: bool = True
    shutdown_on_exit: bool = False
    condition: ResolvedCondition | None = None

    @property
    def enabled(self) -> bool:
        return self.condition is None or self.condition.value


@dataclass(frozen=True)
class NodeLaunch(LaunchEntry):
    """A node with every substitution applied: what both front ends start."""

    package: str
    executable: str
    namespace: str | None  # absolute ('/so101') or None for the root namespace
    parameters: tuple[Path | dict[str, Any], ...]  # absolute files and typed inline dicts
    remappings: tuple[tuple[str, str], ...]
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class ProcessLaunch(LaunchEntry):
    """A plain process with every substitution applied."""

    cmd: tuple[str, ...]
    cwd: str | None = None


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile bound to argument values. Processes start before nodes (emulators first)."""

    profile: Profile
    arguments: dict[str, str]
    processes: tuple[ProcessLaunch, ...]
    nodes: tuple[NodeLaunch, ...]

    def entries(self) -> list[ProcessLaunch | NodeLaunch]:
        """Every entry in start order, enabled or not."""
        return [*self.processes, *self.nodes]

    def enabled_entries(self) -> list[ProcessLaunch | NodeLaunch]:
        """The entries whose condition holds, in start order."""
        return [e for e in self.entries() if e.enabled]


def parse_cli_arguments(tokens: Sequence[str]) -> dict[str, str]:
    """Parse ``name:=value`` tokens (the ``ros2 launch`` syntax); each name at most once."""
    values: dict[str, str] = {}
    for token in tokens:
        match = _TOKEN.match(token)
        if match is None:
            raise ArgumentError(f'expected an argument of the form name:=value, got {token!r}')
        name, value = match.groups()
        if name in values:
            raise ArgumentError(f'argument {name!r} is given twice')
        values[name] = value
    return values


def describe_arguments(profile: Profile) -> str:
    """One line per declared argument: name, default or 'required', choices, description."""
    if not profile.arguments:
        return '  (this profile has no arguments)'
    lines = []
    for arg in profile.arguments:
        default = 'required' if arg.default is None else f'default {arg.default!r}'
        choices = f', one of {list(arg.choices)}' if arg.choices else ''
        lines.append(f'  {arg.name} ({default}{choices}): {arg.description}')
    return '\n'.join(lines)


def bind_arguments(profile: Profile, given: Mapping[str, str]) -> dict[str, str]:
    """Merge command-line values with defaults; unknown, missing or bad values are errors."""
    declared = {a.name: a for a in profile.arguments}
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise ArgumentError(
            f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f'for profile {profile.name!r} ({profile.path}). Its arguments:\n'
            f'{describe_arguments(profile)}')
    values: dict[str, str] = {}
    for name, arg in declared.items():
        value = given.get(name, arg.default)
        if value is None:
            raise ArgumentError(f'profile {profile.name!r} needs the argument {name!r} '
                                f'({arg.description}); give it as {name}:=VALUE')
        if arg.choices is not None and value not in arg.choices:
            raise ArgumentError(f'argument {name!r}: {value!r} is not one of {list(arg.choices)}')
        values[name] = value
    return values


def resolve_profile(profile: Profile, given: Mapping[str, str],
                    environ: Mapping[str, str] | None = None) -> ResolvedProfile:
    """Bind ``given`` arguments and apply every substitution; check files and names."""
    values = bind_arguments(profile, given)
    context = substitution.SubstitutionContext(
        arguments=values, dirname=str(profile.path.parent),
        environ=os.environ if environ is None else environ)
    root = f'{profile.path}'
    profile_ns = substitution.substitute(profile.namespace, context, f"{root}: 'namespace'")
    processes = tuple(_process(p, context, f'{root}: process {p.name!r}')
                      for p in profile.processes)
    nodes = tuple(_node(n, context, profile_ns, f'{root}: node {n.name!r}')
                  for n in profile.nodes)
    return ResolvedProfile(profile=profile, arguments=values, processes=processes, nodes=nodes)


def parameter_files(node: NodeLaunch, directory: Path) -> list[Path]:
    """The node's parameter files in order; inline dicts are written into ``directory``."""
    files = []
    for index, item in enumerate(node.parameters):
        if isinstance(item, Path):
            files.append(item)
            continue
        path = directory / f'{node.name}.inline{index}.yaml'
        with path.open('w', encoding='utf-8') as stream:
            yaml.safe_dump({'/**': {'ros__parameters': item}}, stream, sort_keys=False)
        files.append(path)
    return files


def node_argv(node: NodeLaunch, params: Sequence[Path]) -> list[str]:
    """Arguments after the executable, in the order launch_ros's ``Node`` builds them."""
    argv = [*node.arguments, '--ros-args', '-r', f'__node:={node.name}']
    if node.namespace is not None:
        argv += ['-r', f'__ns:={node.namespace}']
    for path in params:
        argv += ['--params-file', str(path)]
    for source, target in node.remappings:
        argv += ['-r', f'{source}:={target}']
    return argv


# --- helpers -----------------------------------------------------------------------------------

def _condition(condition: Condition | None, context: substitution.SubstitutionContext,
               where: str) -> ResolvedCondition | None:
    if condition is None:
        return None
    where = f"{where}: 'condition'"
    expression = substitution.substitute(condition.expression, context, where).strip()
    if expression.lower() in _TRUE:
        truth = True
    elif expression.lower() in _FALSE:
        truth = False
    else:
        raise ProfileError(f'{where}: {condition.expression!r} gave {expression!r}, which is '
                           "not a boolean ('true', 'false', '1' or '0')")
    return ResolvedCondition(condition.kind, expression, truth if condition.kind == 'if'
                             else not truth)


def _env(env: tuple[tuple[str, str], ...], context: substitution.SubstitutionContext,
         where: str) -> dict[str, str]:
    return {k: substitution.substitute(v, context, f"{where}: 'env[{k}]'") for k, v in env}


def _process(entry: ProcessEntry, context: substitution.SubstitutionContext,
             where: str) -> ProcessLaunch:
    cmd = tuple(substitution.substitute(c, context, f"{where}: 'cmd[{i}]'")
                for i, c in enumerate(entry.cmd))
    if not cmd[0]:
        raise ProfileError(f"{where}: 'cmd[0]' (the program) is empty after substitution")
    cwd = None if entry.cwd is None else substitution.substitute(entry.cwd, context,
                                                                   f"{where}: 'cwd'")
    return ProcessLaunch(name=entry.name, cmd=cmd, cwd=cwd, env=_env(entry.env, context, where),
                         required=entry.required, shutdown_on_exit=entry.shutdown_on_exit,
                         condition=_condition(entry.condition, context, where))


def _node(entry: NodeEntry, context: substitution.SubstitutionContext, profile_ns: str,
          where: str) -> NodeLaunch:
    namespace = _join_namespace(
        profile_ns, substitution.substitute(entry.namespace, context, f"{where}: 'namespace'"),
        where)
    parameters: list[Path | dict[str, Any]] = []
    for index, item in enumerate(entry.parameters):
        here = f"{where}: 'parameters[{index}]'"
        if isinstance(item, str):
            parameters.append(_parameter_file(substitution.substitute(item, context, here), here))
        else:
            parameters.append(_typed_parameters(item, context, here))
    remappings = tuple(
        (substitution.substitute(s, context, f"{where}: 'remappings'"),
         substitution.substitute(t, context, f"{where}: 'remappings[{s}]'"))
        for s, t in entry.remappings)
    for source, target in remappings:
        if not source or not target or any(c.isspace() for c in source + target):
            raise ProfileError(f"{where}: 'remappings': invalid remapping {source!r} -> "
                               f'{target!r} (names must be non-empty, without spaces)')
    arguments = tuple(substitution.substitute(a, context, f"{where}: 'arguments[{i}]'")
                      for i, a in enumerate(entry.arguments))
    return NodeLaunch(name=entry.name, package=entry.package, executable=entry.executable,
                      namespace=namespace, parameters=tuple(parameters), remappings=remappings,
                      arguments=arguments, env=_env(entry.env, context, where),
                      required=entry.required, shutdown_on_exit=entry.shutdown_on_exit,
                      condition=_condition(entry.condition, context, where))


def _join_namespace(profile_ns: str, node_ns: str, where: str) -> str | None:
    """launch's PushRosNamespace rule: an absolute node namespace wins, a relative one nests."""
    node_ns = node_ns.strip()
    if node_ns.startswith('/'):
        joined = node_ns
    else:
        joined = '/'.join(p for p in (profile_ns.strip().strip('/'), node_ns) if p)
    joined = '/' + joined.strip('/')
    if joined == '/':
        return None
    if not _NAMESPACE.match(joined):
        raise ProfileError(f"{where}: 'namespace': {joined!r} is not a valid ROS namespace")
    return joined


def _parameter_file(text: str, where: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = config_path(text)
    if not path.is_file():
        raise ProfileError(f'{where}: parameter file {text!r} not found (looked for {path}; '
                           'relative paths are relative to the config/ directory)')
    content = load_yaml_file(path, what='parameter')
    if not isinstance(content, dict):
        raise ProfileError(f'{where}: parameter file {path} must be a mapping of the form '
                           "'<node name or /**>: ros__parameters: {...}'")
    return path.resolve()


def _typed_parameters(raw: Mapping[str, Any], context: substitution.SubstitutionContext,
                      where: str) -> dict[str, Any]:
    """Substitute strings; a string that held a substitution is re-typed as YAML (like launch)."""
    result: dict[str, Any] = {}
    for key, value in raw.items():
        here = f'{where}[{key}]'
        if isinstance(value, Mapping):
            result[key] = _typed_parameters(value, context, here)
        elif isinstance(value, list):
            items = [_typed_scalar(v, context, here) for v in value]
            check_parameter_list(items, here)
            if any(isinstance(v, float) for v in items):
                items = [float(v) for v in items]  # rcl wants one type: [1, 2.5] -> doubles
            result[key] = items
        else:
            result[key] = _typed_scalar(value, context, here)
    return result


def _typed_scalar(value: Any, context: substitution.SubstitutionContext, where: str) -> Any:
    if not isinstance(value, str) or not substitution.has_substitution(value):
        return copy.copy(value)
    text = substitution.substitute(value, context, where)
    try:
        typed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return typed if isinstance(typed, (bool, int, float, str)) else text
