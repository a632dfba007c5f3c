"""The simulator CLIs' shared options: one declaration, the same meaning in every command."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from smolvla_ros.cli import demo, evaluate, sim_record
from smolvla_ros.cli.sim_options import SIM_TASKS


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_task_choices_are_the_worlds_tasks() -> None:
    from smolvla_ros.sim.success import TASKS
    assert SIM_TASKS == TASKS


@pytest.mark.parametrize(('module', 'required'), [
    (evaluate, []), (sim_record, ['--episodes', '1', '--out', 'x'])])
def test_task_and_contract_parse_alike(module, required: list[str]) -> None:
    default = _parse(module, required)
    assert (default.task, default.task_text, default.contract) == ('lift', '', None)
    args = _parse(module, [*required, '--task', 'bowl', '--task-text', 'put it away',
                           '--contract', 'c.yaml'])
    assert (args.task, args.task_text, args.contract) == ('bowl', 'put it away', Path('c.yaml'))
    with pytest.raises(SystemExit):
        _parse(module, [*required, '--task', 'stack'])


@pytest.mark.parametrize('module', [demo, evaluate])
def test_checkpoint_or_oracle(module) -> None:
    assert (_parse(module, []).checkpoint, _parse(module, []).oracle) == (None, False)
    assert _parse(module, ['--checkpoint', 'tiny']).checkpoint == 'tiny'
    assert _parse(module, ['--oracle']).oracle
    with pytest.raises(SystemExit):
        _parse(module, ['--oracle', '--checkpoint', 'tiny'])
