"""The smolvla-ros command dispatches to its subcommands and fails clearly on unknown ones."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path
import subprocess
import sys

from smolvla_ros.cli import main as dispatcher


def test_every_subcommand_module_builds_its_parser() -> None:
    parser = dispatcher.build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    assert sorted(sub.choices) == sorted(dispatcher.SUBCOMMANDS)


def test_unknown_subcommand_exits_nonzero() -> None:
    proc = subprocess.run([sys.executable, '-m', 'smolvla_ros.cli', 'no-such-command'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'invalid choice' in proc.stderr


def test_bench_unknown_name_lists_available(capsys) -> None:
    assert dispatcher.main(['bench', 'no-such-benchmark']) == 2
    assert 'unknown benchmark' in capsys.readouterr().err


def test_the_console_script_of_setup_py_is_the_dispatcher() -> None:
    setup_py = Path(__file__).resolve().parents[3] / 'setup.py'
    clis = next(ast.literal_eval(node.value) for node in ast.walk(ast.parse(setup_py.read_text()))
                if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'CLIS')
    module, _, attr = clis['smolvla-ros'].partition(':')
    assert getattr(importlib.import_module(module), attr) is dispatcher.main
