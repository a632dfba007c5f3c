"""The same resolved profile as ``launch`` / ``launch_ros`` actions, for launch/*.launch.py.

A launch file is one call: ``return profile_launch_description('probe')``. Profile arguments
become ``DeclareLaunchArgument`` (with description, default and choices). Their values are only
known at launch time, so an ``OpaqueFunction`` reads them from the launch context and resolves the
profile through the same loader as ``smolvla-ros up`` (:mod:`smolvla_ros.bringup.resolve`); each
node becomes a ``launch_ros.actions.Node`` and each plain process an ``ExecuteProcess``, with
``IfCondition``/``UnlessCondition`` for conditions. Inline parameters are written by
:func:`~smolvla_ros.bringup.resolve.parameter_files` and passed as files, exactly as ``up`` does,
so launch_ros's own typing of dict values never comes into play.

``launch`` and ``launch_ros`` are imported inside the functions: this module imports (and the
resolution is tested) without them, as on the pip-only path.
"""
from __future__ import annotations

import atexit
from collections.abc import Callable
from pathlib import Path
import shutil
import tempfile
from typing import Any

from smolvla_ros.bringup.errors import ExecutableNotFoundError
from smolvla_ros.bringup.executables import find_executable
from smolvla_ros.bringup.profile import DEFAULT_PACKAGE, Profile, load_profile
from smolvla_ros.bringup.resolve import (
    NodeLaunch,
    ProcessLaunch,
    ResolvedCondition,
    ResolvedProfile,
    parameter_files,
    resolve_profile,
)
from smolvla_ros.bringup.supervisor import describe_returncode


def profile_launch_description(profile: str | Path) -> Any:
    """A ``LaunchDescription`` for a profile name (config/profiles) or a profile file path.

    The profile is validated here, so a broken file fails when the launch file is loaded.
    """
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    loaded = load_profile(profile)
    actions: list[Any] = []
    for arg in loaded.arguments:
        kwargs: dict[str, Any] = {'description': arg.description}
        if arg.default is not None:
            kwargs['default_value'] = arg.default
        if arg.choices is not None:
            kwargs['choices'] = list(arg.choices)
        actions.append(DeclareLaunchArgument(arg.name, **kwargs))
    actions.append(OpaqueFunction(function=_launch_setup, args=[str(loaded.path)]))
    return LaunchDescription(actions)


def _launch_setup(context: Any, profile_path: str) -> list[Any]:
    """OpaqueFunction body: resolve with the launch-time argument values, return the actions."""
    profile = load_profile(Path(profile_path))
    resolved = resolve_profile(profile, launch_argument_values(profile, context))
    params_dir = Path(tempfile.mkdtemp(prefix=f'smolvla-launch-{profile.name}-'))
    atexit.register(shutil.rmtree, params_dir, ignore_errors=True)
    return launch_actions(resolved, params_dir)


def launch_argument_values(profile: Profile, context: Any) -> dict[str, str]:
    """The profile's arguments as launch configurations (set by the command line or defaults)."""
    configurations = context.launch_configurations
    return {a.name: configurations[a.name] for a in profile.arguments if a.name in configurations}


def launch_actions(resolved: ResolvedProfile, params_dir: Path) -> list[Any]:
    """One ``Node``/``ExecuteProcess`` per entry in start order (disabled ones get a condition)."""
    from launch.actions import ExecuteProcess
    from launch_ros.actions import Node

    actions: list[Any] = []
    for entry in resolved.entries():
        common: dict[str, Any] = {'output': 'screen'}
        if entry.env:
            common['additional_env'] = dict(entry.env)
        if entry.condition is not None:
            common['condition'] = _condition(entry.condition)
        on_exit = exit_handler(entry)
        if on_exit is not None:
            common['on_exit'] = on_exit
        if isinstance(entry, NodeLaunch):
            actions.append(Node(
                package=entry.package, executable=entry.executable, name=entry.name,
                namespace=entry.namespace,
                parameters=[str(p) for p in parameter_files(entry, params_dir)],
                remappings=list(entry.remappings), arguments=list(entry.arguments), **common))
        else:
            if entry.cwd is not None:
                common['cwd'] = entry.cwd
            actions.append(ExecuteProcess(cmd=process_cmd(entry), name=entry.name, **common))
    return actions


def process_cmd(entry: ProcessLaunch) -> list[str]:
    """The process's command with its program found as ``up`` finds it.

    That is the venv's bin/, PATH, then <prefix>/lib/smolvla_ros/ (where colcon puts our console
    scripts, off PATH). A program found nowhere is left as written; launch reports it when it
    tries to start it.
    """
    try:
        program = str(find_executable(entry.cmd[0], DEFAULT_PACKAGE))
    except ExecutableNotFoundError:
        program = entry.cmd[0]
    return [program, *entry.cmd[1:]]


def _condition(condition: ResolvedCondition) -> Any:
    from launch.conditions import IfCondition, UnlessCondition

    kind = IfCondition if condition.kind == 'if' else UnlessCondition
    return kind(condition.expression)


def exit_handler(entry: NodeLaunch | ProcessLaunch) -> Callable[[Any, Any], list[Any]] | None:
    """``on_exit`` for launch: the supervisor's rules (see supervisor.py) as log + Shutdown.

    Only for an exit on the process's own account. Once launch is shutting down (Ctrl-C, another
    process's Shutdown, the end of a probe) every process exits because it was told to, and
    launch's own "process has finished cleanly" line says all there is: the handler then returns
    nothing, rather than a "required process ... exited" line and a further Shutdown for each.
    ``context.is_shutdown`` is launch's flag for that; it is set when the shutdown begins, before
    any process has been signalled by launch. The wording is the supervisor's
    (:func:`~smolvla_ros.bringup.supervisor.describe_returncode`), so both front ends say the same.
    """
    if not (entry.required or entry.shutdown_on_exit):
        return None

    def on_exit(event: Any, context: Any) -> list[Any]:
        if context.is_shutdown:
            return []
        from launch.actions import LogInfo, Shutdown

        code = event.returncode
        what = describe_returncode(code)
        if entry.shutdown_on_exit and code == 0:
            reason = f'{entry.name} finished successfully (shutdown_on_exit)'
        elif entry.shutdown_on_exit:
            reason = f'{entry.name} failed with {what} (shutdown_on_exit)'
        else:
            reason = f'required process {entry.name} exited with {what}'
        return [LogInfo(msg=f'[bringup] {reason}'), Shutdown(reason=reason)]

    return on_exit
