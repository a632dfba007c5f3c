"""``smolvla-ros``: the command-line entry point, one subcommand per tool.

Subcommands are imported lazily so that ``smolvla-ros up`` works on a robot computer without torch
and starts fast. Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Options and positionals may be mixed (``up probe --dry-run count:=4``); everything after a bare
``--`` is handed to the subcommand untouched as ``args.passthrough``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    'up': ('smolvla_ros.bringup.up', 'start the nodes of a bringup profile (pip-only path)'),
    'bench': ('smolvla_ros.cli.bench', 'run a benchmark from bench/ and write its JSON'),
    'calibrate': ('smolvla_ros.cli.calibrate', 'calibrate an SO-100/SO-101 arm, or --check a file'),
    'servo-emulator': ('smolvla_ros.hardware.emulator.cli',
                       'serve an emulated STS3215 servo bus on a pty (no hardware needed)'),
    'plot-chunks': ('smolvla_ros.cli.plot_chunks',
                    'plot predicted chunks vs executed actions (per joint and 3D) from a bag'),
    'demo': ('smolvla_ros.cli.demo',
             'run the async executor on the simulated SO-101 and write demo_out/'),
    'eval': ('smolvla_ros.cli.evaluate',
             'success rate of a policy (checkpoint, default or --oracle) on seeded sim episodes'),
    'sim-record': ('smolvla_ros.cli.sim_record',
                   'record scripted demonstrations in simulation as rosbag2 bags'),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='smolvla-ros', description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        sp.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the requested subcommand's parser when we can, so one broken optional
    # dependency does not break every other subcommand.
    if argv and argv[0] in SUBCOMMANDS:
        module_name, help_text = SUBCOMMANDS[argv[0]]
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f'smolvla-ros {argv[0]}', description=help_text)
        module.add_arguments(parser)
        own, passthrough = _split_passthrough(argv[1:])
        args = parser.parse_intermixed_args(own)
        args.passthrough = passthrough
        return int(module.run(args) or 0)
    args = build_parser().parse_args(argv)
    args.passthrough = []
    return int(importlib.import_module(args._module).run(args) or 0)


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    if '--' in argv:
        i = argv.index('--')
        return argv[:i], argv[i + 1:]
    return argv, []


if __name__ == '__main__':
    sys.exit(main())
