"""The import rules of DESIGN §4, checked two ways.

1. Statically: an AST scan of every module for rclpy / torch imports outside the places allowed.
2. Dynamically: every robot-side module is imported in a fresh interpreter in which torch cannot be
   imported, and every training module in one where rclpy cannot be imported. This catches indirect
   imports (a core module importing a policy helper that imports torch) that the scan cannot see.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / 'smolvla_ros'
TRAINING = ROOT / 'training' / 'smolvla_training'

RCLPY_ALLOWED = ('smolvla_ros/nodes/', 'smolvla_ros/bringup/')
TORCH_ALLOWED = ('smolvla_ros/policy/', 'training/')
TORCH_LIKE = {'torch', 'transformers', 'safetensors.torch'}


def _imported_roots(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file (lazy imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    roots = {name.split('.')[0] for name in names}
    roots.update(name for name in names if name in TORCH_LIKE)
    return roots


def _sources() -> list[Path]:
    return sorted([*PKG.rglob('*.py'), *TRAINING.rglob('*.py')])


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_rclpy_only_in_nodes_and_bringup() -> None:
    offenders = [_rel(p) for p in _sources()
                 if 'rclpy' in _imported_roots(p) and not _rel(p).startswith(RCLPY_ALLOWED)]
    assert offenders == [], f'rclpy imported outside nodes/ and bringup/: {offenders}'


def test_torch_only_in_policy_and_training() -> None:
    offenders = [_rel(p) for p in _sources()
                 if _imported_roots(p) & {'torch', 'transformers'}
                 and not _rel(p).startswith(TORCH_ALLOWED)]
    assert offenders == [], f'torch imported outside policy/ and training/: {offenders}'


def _modules(package_dir: Path, package: str, skip: tuple[str, ...] = ()) -> list[str]:
    mods = []
    for path in sorted(package_dir.rglob('*.py')):
        rel = path.relative_to(package_dir).with_suffix('')
        parts = [package, *rel.parts]
        if parts[-1] == '__init__':
            parts = parts[:-1]
        if parts[-1] == '__main__':
            continue
        name = '.'.join(parts)
        if not any(name == s or name.startswith(s + '.') for s in skip):
            mods.append(name)
    return mods


_BLOCKED_IMPORT_PROBE = r'''
import importlib, importlib.abc, json, sys
blocked = set(sys.argv[1].split(','))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in blocked:
            raise ImportError(f'{name} is not importable in this process (house rule test)')
        return None

sys.meta_path.insert(0, Blocker())
failures = {}
for mod in json.loads(sys.stdin.read()):
    try:
        importlib.import_module(mod)
    except Exception as exc:  # report every module, not just the first
        failures[mod] = f'{type(exc).__name__}: {exc}'
leaked = sorted(m for m in sys.modules if m.split('.')[0] in blocked)
print(json.dumps({'failures': failures, 'leaked': leaked}))
'''


def _import_all_without(modules: list[str], blocked: str) -> dict:
    proc = subprocess.run([sys.executable, '-c', _BLOCKED_IMPORT_PROBE, blocked],
                          input=json.dumps(modules), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_robot_side_modules_import_without_torch() -> None:
    modules = _modules(PKG, 'smolvla_ros', skip=('smolvla_ros.policy',))
    assert 'smolvla_ros.cli' in modules
    result = _import_all_without(modules, 'torch,transformers')
    assert result['failures'] == {}, result['failures']
    assert result['leaked'] == []


def test_training_modules_import_without_rclpy() -> None:
    pytest.importorskip('smolvla_training')
    modules = _modules(TRAINING, 'smolvla_training')
    result = _import_all_without(modules, 'rclpy')
    assert result['failures'] == {}, result['failures']
    assert result['leaked'] == []
