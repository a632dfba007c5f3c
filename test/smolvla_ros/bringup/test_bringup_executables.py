"""Executable lookup: venv bin first, then PATH, then <prefix>/lib/<package>/; clear failure."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from smolvla_ros.bringup.errors import ExecutableNotFoundError
from smolvla_ros.bringup.executables import Lookup, find_executable


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\nexit 0\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {k: tmp_path / k for k in ('venv_bin', 'path_a', 'prefix1', 'prefix2')}


def _lookup(dirs: dict[str, Path]) -> Lookup:
    return Lookup(bin_dir=dirs['venv_bin'], path=str(dirs['path_a']),
                  ament_prefix_path=os.pathsep.join([str(dirs['prefix1']), str(dirs['prefix2'])]))


def test_search_order(dirs) -> None:
    lookup = _lookup(dirs)
    in_prefix2 = _exe(dirs['prefix2'] / 'lib' / 'pkg' / 'node')
    assert find_executable('node', 'pkg', lookup) == in_prefix2
    in_prefix1 = _exe(dirs['prefix1'] / 'lib' / 'pkg' / 'node')
    assert find_executable('node', 'pkg', lookup) == in_prefix1
    on_path = _exe(dirs['path_a'] / 'node')
    assert find_executable('node', 'pkg', lookup) == on_path
    in_venv = _exe(dirs['venv_bin'] / 'node')
    assert find_executable('node', 'pkg', lookup) == in_venv


def test_other_package_directory_and_non_executable_files_are_ignored(dirs) -> None:
    _exe(dirs['prefix1'] / 'lib' / 'other_pkg' / 'node')
    (dirs['path_a']).mkdir(parents=True)
    (dirs['path_a'] / 'node').write_text('not executable')
    with pytest.raises(ExecutableNotFoundError) as info:
        find_executable('node', 'pkg', _lookup(dirs))
    message = str(info.value)
    assert "executable 'node' not found" in message
    assert str(dirs['venv_bin']) in message and '<prefix>/lib/pkg/' in message
    assert str(dirs['prefix1']) in message


def test_explicit_path(tmp_path: Path, dirs) -> None:
    script = _exe(tmp_path / 'tools' / 'emu')
    assert find_executable(str(script), None, _lookup(dirs)) == script
    with pytest.raises(ExecutableNotFoundError, match='not an executable file'):
        find_executable(str(tmp_path / 'tools' / 'missing'), None, _lookup(dirs))
