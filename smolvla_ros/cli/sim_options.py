"""Command-line options that several simulator CLIs share with the same meaning.

``eval``, ``demo`` and ``sim-record`` declare these through one function each, so a help text, a
default or a choice cannot drift between them. Options that only look alike stay with their
command: ``demo --seed`` and ``sim-record --seed-start`` have other defaults and ranges than
``eval --seed-start``, and ``demo --width`` sizes a video where ``sim-record --image-width`` sizes
the recorded camera frames.
"""
from __future__ import annotations

import argparse
from pathlib import Path

# sim/success.TASKS, repeated because building a parser must not import MuJoCo
# (smolvla-ros --help lists every subcommand); test_sim_options holds the two equal.
SIM_TASKS = ('lift', 'bowl')


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint DIR`` or ``--oracle``; neither: the shipped default policy.

    The command resolves them with ``None if args.oracle else
    paths.checkpoint_or_default(args.checkpoint)``.
    """
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--checkpoint', metavar='DIR',
                       help='SmolVLA checkpoint directory (LeRobot layout) or the name of a '
                       'shipped policy; default: the shipped default policy')
    which.add_argument('--oracle', action='store_true',
                       help='run the scripted expert (privileged cube pose) instead of a policy')


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """``--task`` (the world's success detector) and ``--task-text`` (its instruction)."""
    parser.add_argument('--task', choices=SIM_TASKS, default='lift',
                        help='lift the cube, or put it in the bowl')
    parser.add_argument('--task-text', default='',
                        help='language instruction (default: the task\'s TASK_PROMPTS entry in '
                        'sim/success.py, what sim-record records and eval sends)')


def add_contract_argument(parser: argparse.ArgumentParser) -> None:
    """``--contract PATH``; None: the default contract (core.robot.contract)."""
    parser.add_argument('--contract', type=Path, default=None,
                        help='robot contract YAML (default: config/contracts/so101.yaml)')
