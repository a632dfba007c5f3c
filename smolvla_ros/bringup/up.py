"""``smolvla-ros up PROFILE [name:=value ...]``: a bringup without ``ros2 launch``.

On the pip-only install there is no ``launch`` package and no ``ros2`` command; this subcommand
reads the same config/profiles/<PROFILE>.yaml as ``ros2 launch smolvla_ros <PROFILE>.launch.py``,
resolves every executable before starting anything, then runs each node as its own process under
:class:`~smolvla_ros.bringup.supervisor.Supervisor`.

Exit status: 0 on success (a ``shutdown_on_exit`` node exited 0, or every process ended), 1 when
a required node died or a ``shutdown_on_exit`` node failed, 2 for a bad profile, argument or
missing executable (nothing was started), 128 + N when stopped by signal N (130 for Ctrl-C).
"""
from __future__ import annotations

import argparse
from collections.abc import Mapping
import logging
import os
from pathlib import Path
import shlex
import sys
import tempfile
from typing import IO

from smolvla_ros.bringup.errors import BringupError, ExecutableNotFoundError
from smolvla_ros.bringup.executables import Lookup, find_executable
from smolvla_ros.bringup.profile import DEFAULT_PACKAGE, available_profiles, load_profile
from smolvla_ros.bringup.resolve import (
    NodeLaunch,
    ResolvedProfile,
    describe_arguments,
    node_argv,
    parameter_files,
    parse_cli_arguments,
    resolve_profile,
)
from smolvla_ros.bringup.supervisor import (
    ProcessSpec,
    Supervisor,
    SupervisorConfig,
    parent_death_hook,
)

logger = logging.getLogger('smolvla_ros.bringup')
EXIT_CONFIG_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smolvla-ros up``."""
    parser.add_argument('profile', nargs='?', metavar='PROFILE',
                        help='a profile name (config/profiles/PROFILE.yaml) or a YAML file path')
    parser.add_argument('arguments', nargs='*', metavar='name:=value',
                        help='profile arguments, as for ros2 launch (see --show-args)')
    parser.add_argument('--list', action='store_true', help='list the shipped profiles and exit')
    parser.add_argument('--show-args', action='store_true',
                        help="print the profile's arguments and exit")
    parser.add_argument('--dry-run', action='store_true',
                        help='print the resolved command lines and exit without starting them')
    parser.add_argument('--sigint-timeout', type=float, default=5.0, metavar='S',
                        help='seconds to wait after SIGINT before SIGTERM (default 5)')
    parser.add_argument('--sigterm-timeout', type=float, default=5.0, metavar='S',
                        help='seconds to wait after SIGTERM before SIGKILL (default 5)')
    parser.add_argument('--color', choices=('auto', 'always', 'never'), default='auto',
                        help='colour the [node] prefixes (auto: only on a terminal)')
    parser.add_argument('--parent-pid', type=int, metavar='PID',
                        help='stop as on SIGTERM when PID, the process that started this one, '
                             'ends (Linux); for programs that start up as a child (tests, '
                             'benchmarks), so that killing them cannot leave a stack running')


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return the exit status (see the module docstring)."""
    _configure_logging()
    out = sys.stdout
    if args.list:
        out.write(list_profiles_text())
        return 0
    if not args.profile:
        logger.error('no PROFILE given. Shipped profiles:\n%s', list_profiles_text().rstrip())
        return EXIT_CONFIG_ERROR
    if args.parent_pid is not None and not _exit_with_parent(args.parent_pid):
        return EXIT_CONFIG_ERROR
    color = args.color == 'always' or (
        args.color == 'auto' and out.isatty() and 'NO_COLOR' not in os.environ)
    try:
        config = SupervisorConfig(args.sigint_timeout, args.sigterm_timeout, color)
        profile = load_profile(args.profile)
        if args.show_args:
            out.write(f'Arguments of profile {profile.name!r} ({profile.path}):\n'
                      f'{describe_arguments(profile)}\n')
            return 0
        resolved = resolve_profile(profile, parse_cli_arguments(args.arguments))
        with tempfile.TemporaryDirectory(prefix=f'smolvla-up-{profile.name}-') as tmp:
            specs = build_process_specs(resolved, Path(tmp), color=color)
            if args.dry_run:
                write_dry_run(resolved, specs, out)
                return 0
            logger.info('profile %s: starting %s', profile.name,
                        ', '.join(s.name for s in specs))
            outcome = Supervisor(specs, config, out).run()
    except (BringupError, ValueError) as exc:
        logger.error('%s', exc)
        return EXIT_CONFIG_ERROR
    if outcome.exit_code == 0:
        logger.info('done: %s', outcome.reason)
    elif outcome.exit_code > 128:
        logger.info('%s', outcome.reason)
    else:
        logger.error('bringup failed: %s', outcome.reason)
    return outcome.exit_code


def _exit_with_parent(parent_pid: int) -> bool:
    """Ask the kernel for SIGTERM when ``parent_pid`` ends (see :func:`parent_death_hook`).

    The signal is what Ctrl-C's sibling SIGTERM does to ``up``: the nodes are stopped in order.
    Without it, an ``up`` whose parent was SIGKILLed runs on, and so do its nodes. False (after
    logging why) when ``parent_pid`` is not this process's parent or the kernel cannot do it.
    """
    if os.getppid() != parent_pid:
        logger.error('--parent-pid %d: the parent of this process is %d (it ended already, or '
                     'the pid is wrong)', parent_pid, os.getppid())
        return False
    hook = parent_death_hook(parent_pid)
    try:
        if hook is None:
            raise OSError('prctl is not available on this system')
        hook()
    except OSError as exc:
        logger.error('--parent-pid: cannot ask to be stopped with the parent: %s', exc)
        return False
    return True


def list_profiles_text() -> str:
    """One line per shipped profile: name and the first line of its description."""
    lines = []
    for path in available_profiles():
        try:
            summary = load_profile(path).description.splitlines()[0]
        except BringupError as exc:
            summary = f'(invalid: {exc})'
        lines.append(f'  {path.stem:<24} {summary}')
    return '\n'.join(lines or ['  (no profiles found)']) + '\n'


def build_process_specs(resolved: ResolvedProfile, params_dir: Path, *,
                        lookup: Lookup | None = None, environ: Mapping[str, str] | None = None,
                        color: bool = False) -> list[ProcessSpec]:
    """Resolve every executable and write inline parameter files; nothing is started.

    Every missing executable is reported at once in one :class:`ExecutableNotFoundError`.
    """
    environ = dict(os.environ if environ is None else environ)
    lookup = Lookup.from_environment(environ) if lookup is None else lookup
    specs, missing = [], []
    for entry in resolved.enabled_entries():
        is_node = isinstance(entry, NodeLaunch)
        program = entry.executable if is_node else entry.cmd[0]
        try:
            # A process's program may be one of ours too (e.g. `smolvla-ros`), which a colcon
            # install puts in <prefix>/lib/smolvla_ros/, off PATH.
            path = find_executable(program, entry.package if is_node else DEFAULT_PACKAGE, lookup)
        except ExecutableNotFoundError as exc:
            missing.append(f'{"node" if is_node else "process"} {entry.name}: {exc}')
            continue
        if is_node:
            argv = (str(path), *node_argv(entry, parameter_files(entry, params_dir)))
        else:
            argv = (str(path), *entry.cmd[1:])
        env = {**environ, **entry.env}
        env.setdefault('PYTHONUNBUFFERED', '1')  # children write to a pipe: keep lines live
        if color:
            env.setdefault('RCUTILS_COLORIZED_OUTPUT', '1')
        specs.append(ProcessSpec(
            name=entry.name, argv=argv, env=env, cwd=None if is_node else entry.cwd,
            required=entry.required, shutdown_on_exit=entry.shutdown_on_exit))
    if missing:
        raise ExecutableNotFoundError(
            f'profile {resolved.profile.name!r}: nothing was started because '
            f'{len(missing)} executable{"s are" if len(missing) > 1 else " is"} missing:\n  '
            + '\n  '.join(missing))
    return specs


def write_dry_run(resolved: ResolvedProfile, specs: list[ProcessSpec], out: IO[str]) -> None:
    """Print what would run: arguments, each command line, extra env and inline parameters."""
    profile = resolved.profile
    out.write(f'# profile {profile.name} ({profile.path})\n')
    for name, value in resolved.arguments.items():
        out.write(f'#   {name}:={value}\n')
    by_name = {s.name: s for s in specs}
    for entry in resolved.entries():
        if not entry.enabled:
            cond = entry.condition
            out.write(f'# skipped {entry.name}: condition {cond.kind} {cond.expression!r}\n')
            continue
        spec = by_name[entry.name]
        env = ''.join(f'{k}={shlex.quote(v)} ' for k, v in entry.env.items())
        flags = ', '.join(f for f, on in (('required', spec.required),
                                          ('shutdown_on_exit', spec.shutdown_on_exit)) if on)
        out.write(f'[{entry.name}] ({flags or "optional"}) {env}{shlex.join(spec.argv)}\n')
        if isinstance(entry, NodeLaunch):
            for index, item in enumerate(entry.parameters):
                if isinstance(item, dict):
                    out.write(f'#   inline parameters [{index}] (temporary file): {item}\n')


class _UpFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = '' if record.levelno <= logging.INFO else f'{record.levelname}: '
        return f'[up] {level}{record.getMessage()}'


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (tests and embedding programs replace it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # always the current sys.stderr


def _configure_logging() -> None:
    """Our own messages go to stderr as '[up] ...'; child output goes to stdout, prefixed."""
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_UpFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
