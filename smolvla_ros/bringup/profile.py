"""Read and validate a bringup profile (config/profiles/<name>.yaml) into frozen dataclasses.

This module is ROS-free (no rclpy, no launch): ``smolvla-ros up`` and the launch files both call
:func:`load_profile`, then :func:`smolvla_ros.bringup.resolve.resolve_profile`, so the two front
ends cannot drift. Validation is strict and happens before anything starts: every error names the
file, the entry (node or process) and the key. The format is documented in docs/bringup.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
import re
from typing import Any

from smolvla_ros.bringup import substitution
from smolvla_ros.bringup.errors import ProfileError
from smolvla_ros.bringup.yaml_loading import load_yaml_file
from smolvla_ros.paths import config_path

DEFAULT_PACKAGE = 'smolvla_ros'
PROFILE_KEYS = ('description', 'arguments', 'namespace', 'nodes', 'processes')
ARGUMENT_KEYS = ('default', 'description', 'choices')
COMMON_ENTRY_KEYS = ('name', 'env', 'required', 'shutdown_on_exit', 'condition')
NODE_KEYS = COMMON_ENTRY_KEYS + (
    'executable', 'package', 'namespace', 'parameters', 'remappings', 'arguments')
PROCESS_KEYS = COMMON_ENTRY_KEYS + ('cmd', 'cwd')

_IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_PACKAGE = re.compile(r'^[a-z][a-z0-9_]*$')
_PARAM_KEY = re.compile(r'^[A-Za-z_][A-Za-z0-9_.]*$')
_ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')

# Inline parameter values, after substitution: what a ROS parameter can hold.
ParamValue = bool | int | float | str | list


@dataclass(frozen=True)
class ArgumentSpec:
    """A profile argument (``DeclareLaunchArgument``): values are strings, as in launch."""

    name: str
    description: str
    default: str | None  # None: the argument must be given on the command line
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Condition:
    """Start the entry if (``kind='if'``) / unless the expression is true after substitution."""

    kind: str  # 'if' | 'unless'
    expression: str


@dataclass(frozen=True)
class NodeEntry:
    """A ROS node: ``ros2 run <package> <executable> --ros-args ...`` (a launch_ros ``Node``)."""

    name: str
    executable: str
    package: str = DEFAULT_PACKAGE
    namespace: str = ''
    # Each item: a parameter file path (relative to config/ or absolute) or an inline dict.
    parameters: tuple[str | Mapping[str, Any], ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    required: bool = True
    shutdown_on_exit: bool = False
    condition: Condition | None = None


@dataclass(frozen=True)
class ProcessEntry:
    """A plain process that is not a ROS node (a launch ``ExecuteProcess``)."""

    name: str
    cmd: tuple[str, ...]
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    required: bool = True
    shutdown_on_exit: bool = False
    condition: Condition | None = None


@dataclass(frozen=True)
class Profile:
    """A validated profile file; still unresolved (strings may hold ``$(...)``)."""

    path: Path
    description: str
    arguments: tuple[ArgumentSpec, ...] = ()
    namespace: str = ''
    nodes: tuple[NodeEntry, ...] = ()
    processes: tuple[ProcessEntry, ...] = ()

    @property
    def name(self) -> str:
        """The profile name: the file name without ``.yaml``."""
        return self.path.stem

    def argument_names(self) -> list[str]:
        """Declared argument names in file order."""
        return [a.name for a in self.arguments]


def profiles_dir() -> Path:
    """The directory of the shipped profiles (source checkout or ament share dir)."""
    return config_path('profiles')


def available_profiles() -> list[Path]:
    """Shipped profile files, sorted by name."""
    directory = profiles_dir()
    return sorted(directory.glob('*.yaml')) if directory.is_dir() else []


def find_profile(name_or_path: str) -> Path:
    """Return the file of a profile given by name (config/profiles/<name>.yaml) or by path.

    A value that ends in ``.yaml``/``.yml`` or contains a path separator is a path.
    """
    if name_or_path.endswith(('.yaml', '.yml')) or '/' in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ProfileError(f'{path}: profile file not found')
        return path.resolve()
    if not _IDENTIFIER.match(name_or_path):
        raise ProfileError(f'invalid profile name {name_or_path!r}')
    path = profiles_dir() / f'{name_or_path}.yaml'
    if not path.is_file():
        names = ', '.join(p.stem for p in available_profiles()) or '(none)'
        raise ProfileError(
            f'no profile named {name_or_path!r} in {profiles_dir()} (available: {names})')
    return path


def load_profile(name_or_path: str | Path) -> Profile:
    """Read and validate a profile; raise :class:`ProfileError` naming file, entry and key."""
    path = Path(name_or_path) if isinstance(name_or_path, Path) else find_profile(name_or_path)
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ProfileError(f'{path}: a profile must be a YAML mapping with keys '
                           f'{", ".join(PROFILE_KEYS)}; got {type(data).__name__}')
    _check_keys(data, PROFILE_KEYS, f'{path}')
    description = data.get('description')
    if not isinstance(description, str) or not description.strip():
        raise ProfileError(f"{path}: 'description' is required (a non-empty string)")
    arguments = _arguments(path, data.get('arguments', {}))
    declared = frozenset(a.name for a in arguments)
    namespace = _string(data.get('namespace', ''), f"{path}: 'namespace'", declared)
    nodes = tuple(_node(path, i, raw, declared)
                  for i, raw in enumerate(_list(data.get('nodes', []), f"{path}: 'nodes'")))
    processes = tuple(
        _process(path, i, raw, declared)
        for i, raw in enumerate(_list(data.get('processes', []), f"{path}: 'processes'")))
    if not nodes and not processes:
        raise ProfileError(f"{path}: the profile starts nothing (no 'nodes' and no 'processes')")
    seen: set[str] = set()
    for entry in (*nodes, *processes):
        if entry.name in seen:
            raise ProfileError(f"{path}: the name {entry.name!r} is used twice; node and process "
                               'names must be unique (they prefix the output)')
        seen.add(entry.name)
    return Profile(path=path, description=description.strip(), arguments=arguments,
                   namespace=namespace, nodes=nodes, processes=processes)


# --- helpers -----------------------------------------------------------------------------------

def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ProfileError(f'{where}: unknown key {key!r} (allowed: {", ".join(allowed)})')


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f'{where}: expected a list, got {type(value).__name__}')
    return value


def scalar_text(value: Any) -> str:
    """A YAML scalar as the string launch would see (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _string(value: Any, where: str, declared: frozenset[str], *, allow_number: bool = False) -> str:
    if allow_number and isinstance(value, (bool, int, float)):
        value = scalar_text(value)
    if not isinstance(value, str):
        raise ProfileError(f'{where}: expected a string, got {type(value).__name__} {value!r}')
    substitution.check(value, declared, where)
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f'{where}: expected true or false, got {value!r}')
    return value


def _arguments(path: Path, raw: Any) -> tuple[ArgumentSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: 'arguments' must map names to {{default, description}}")
    specs = []
    for name, body in raw.items():
        where = f'{path}: argument {name!r}'
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise ProfileError(f'{where}: invalid argument name (letters, digits, underscore)')
        if not isinstance(body, dict):
            raise ProfileError(f'{where}: expected a mapping with {", ".join(ARGUMENT_KEYS)}')
        _check_keys(body, ARGUMENT_KEYS, where)
        description = body.get('description')
        if not isinstance(description, str) or not description.strip():
            raise ProfileError(f"{where}: 'description' is required (a non-empty string)")
        default = body.get('default')
        if default is not None:
            if not isinstance(default, (str, bool, int, float)):
                raise ProfileError(f"{where}: 'default' must be a scalar, got {default!r}")
            default = scalar_text(default)
            if substitution.has_substitution(default):
                raise ProfileError(f"{where}: 'default' may not contain substitutions")
        choices = body.get('choices')
        if choices is not None:
            if (not isinstance(choices, list) or not choices
                    or not all(isinstance(c, (str, bool, int, float)) for c in choices)):
                raise ProfileError(f"{where}: 'choices' must be a non-empty list of scalars")
            choices = tuple(scalar_text(c) for c in choices)
            if default is not None and default not in choices:
                raise ProfileError(f"{where}: default {default!r} is not one of its choices "
                                   f'{list(choices)}')
        specs.append(ArgumentSpec(name, description.strip(), default, choices))
    return tuple(specs)


def _entry_common(path: Path, kind: str, index: int, raw: Any, allowed: tuple[str, ...],
                  declared: frozenset[str]) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ProfileError(f'{path}: {kind}s[{index}]: expected a mapping, got {raw!r}')
    name = raw.get('name')
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ProfileError(f"{path}: {kind}s[{index}]: 'name' is required and must be a valid ROS "
                           f'node name (letters, digits, underscore), got {name!r}')
    where = f'{path}: {kind} {name!r}'
    _check_keys(raw, allowed, where)
    common = {
        'env': _env(raw.get('env', {}), f"{where}: 'env'", declared),
        'required': _bool(raw.get('required', True), f"{where}: 'required'"),
        'shutdown_on_exit': _bool(raw.get('shutdown_on_exit', False),
                                  f"{where}: 'shutdown_on_exit'"),
        'condition': _condition(raw.get('condition'), f"{where}: 'condition'", declared),
    }
    return name, where, common


def _node(path: Path, index: int, raw: Any, declared: frozenset[str]) -> NodeEntry:
    name, where, common = _entry_common(path, 'node', index, raw, NODE_KEYS, declared)
    executable = raw.get('executable')
    if not isinstance(executable, str) or not executable or '/' in executable:
        raise ProfileError(f"{where}: 'executable' is required: the name of an executable of "
                           f'the package (as in `ros2 run PACKAGE EXECUTABLE`), got {executable!r}')
    package = raw.get('package', DEFAULT_PACKAGE)
    if not isinstance(package, str) or not _PACKAGE.match(package):
        raise ProfileError(f"{where}: 'package' must be a ROS package name, got {package!r}")
    namespace = _string(raw.get('namespace', ''), f"{where}: 'namespace'", declared)
    parameters = tuple(_parameter_item(item, f"{where}: 'parameters[{i}]'", declared)
                       for i, item in enumerate(_list(raw.get('parameters'),
                                                      f"{where}: 'parameters'")))
    remap_raw = raw.get('remappings', {})
    if not isinstance(remap_raw, dict):
        raise ProfileError(f"{where}: 'remappings' must map FROM names to TO names")
    remappings = tuple(
        (_string(k, f"{where}: 'remappings'", declared),
         _string(v, f"{where}: 'remappings[{k}]'", declared)) for k, v in remap_raw.items())
    arguments = tuple(
        _string(a, f"{where}: 'arguments[{i}]'", declared, allow_number=True)
        for i, a in enumerate(_list(raw.get('arguments'), f"{where}: 'arguments'")))
    return NodeEntry(name=name, executable=executable, package=package, namespace=namespace,
                     parameters=parameters, remappings=remappings, arguments=arguments, **common)


def _process(path: Path, index: int, raw: Any, declared: frozenset[str]) -> ProcessEntry:
    name, where, common = _entry_common(path, 'process', index, raw, PROCESS_KEYS, declared)
    cmd = _list(raw.get('cmd'), f"{where}: 'cmd'")
    if not cmd:
        raise ProfileError(f"{where}: 'cmd' is required: a non-empty list (program, args...)")
    cmd_t = tuple(_string(c, f"{where}: 'cmd[{i}]'", declared, allow_number=True)
                  for i, c in enumerate(cmd))
    cwd = raw.get('cwd')
    if cwd is not None:
        cwd = _string(cwd, f"{where}: 'cwd'", declared)
    return ProcessEntry(name=name, cmd=cmd_t, cwd=cwd, **common)


def _env(raw: Any, where: str, declared: frozenset[str]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ProfileError(f'{where}: expected a mapping NAME: value')
    items = []
    for key, value in raw.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ProfileError(f'{where}: invalid environment variable name {key!r}')
        items.append((key, _string(value, f'{where}[{key}]', declared, allow_number=True)))
    return tuple(items)


def _condition(raw: Any, where: str, declared: frozenset[str]) -> Condition | None:
    if raw is None:
        return None
    if isinstance(raw, (str, bool)):
        return Condition('if', _string(raw, where, declared, allow_number=True))
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ('if', 'unless'):
        kind, expression = next(iter(raw.items()))
        return Condition(kind, _string(expression, f'{where}[{kind}]', declared,
                                       allow_number=True))
    raise ProfileError(f"{where}: expected '$(arg NAME)' (start if true), or a mapping with one "
                       f"key 'if' or 'unless', got {raw!r}")


def _parameter_item(raw: Any, where: str, declared: frozenset[str]) -> str | dict[str, Any]:
    if isinstance(raw, str):
        return _string(raw, where, declared)
    if isinstance(raw, dict):
        _check_parameter_dict(raw, where, declared)
        return raw
    raise ProfileError(f'{where}: expected a parameter file path (relative to config/) or an '
                       f'inline mapping of parameters, got {raw!r}')


def _check_parameter_dict(raw: dict, where: str, declared: frozenset[str]) -> None:
    for key, value in raw.items():
        if not isinstance(key, str) or not _PARAM_KEY.match(key):
            raise ProfileError(f'{where}: invalid parameter name {key!r}')
        here = f'{where}[{key}]'
        if isinstance(value, dict):
            _check_parameter_dict(value, here, declared)
        elif isinstance(value, list):
            if not value:
                check_parameter_list(value, here)  # raises: an empty list has no type
            for item in value:
                if isinstance(item, str):
                    substitution.check(item, declared, here)
            # Items holding $(...) get their type at resolution, where the list is checked again.
            literal = [v for v in value
                       if not (isinstance(v, str) and substitution.has_substitution(v))]
            if literal:
                check_parameter_list(literal, here)
        elif isinstance(value, str):
            substitution.check(value, declared, here)
        elif not isinstance(value, (bool, int, float)):
            raise ProfileError(f'{here}: a ROS parameter must be a bool, int, float, string or a '
                               f'list of one of those, got {value!r}')


def check_parameter_list(value: list, where: str) -> None:
    """ROS parameter arrays are non-empty and hold one scalar type (ints may widen to floats)."""
    if not value:
        raise ProfileError(f'{where}: an empty list has no ROS parameter type; leave it out')
    kinds = {bool if isinstance(v, bool) else type(v) for v in value}
    if kinds == {int, float}:
        kinds = {float}
    if len(kinds) != 1 or next(iter(kinds)) not in (bool, int, float, str):
        raise ProfileError(f'{where}: a list parameter must hold values of one type '
                           f'(bool, int, float or string), got {value!r}')
