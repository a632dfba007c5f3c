"""The smolvla-ros command dispatches to its subcommands and fails clearly on unknown ones."""
from __future__ import annotations

import subprocess
import sys

from smolvla_ros import cli


def test_every_subcommand_module_builds_its_parser() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    assert sorted(sub.choices) == sorted(cli.SUBCOMMANDS)


def test_unknown_subcommand_exits_nonzero() -> None:
    proc = subprocess.run([sys.executable, '-m', 'smolvla_ros.cli', 'no-such-command'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'invalid choice' in proc.stderr


def test_bench_unknown_name_lists_available(capsys) -> None:
    assert cli.main(['bench', 'no-such-benchmark']) == 2
    assert 'unknown benchmark' in capsys.readouterr().err
