"""Find the program behind a node's ``executable`` the way both install paths lay it out.

Search order, first match wins:

1. a console script next to ``sys.executable`` (the venv's ``bin/``: the pip-only path, where
   ``pip install -e .`` puts ``null_policy_server`` and friends);
2. ``PATH``;
3. ``<prefix>/lib/<package>/<executable>`` for each entry of ``AMENT_PREFIX_PATH`` (where colcon
   and apt installs put ``ros2 run`` executables).

Everything is resolved before anything starts, so a typo never leaves half a bringup running.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import sys

from smolvla_ros.bringup.errors import ExecutableNotFoundError


@dataclass(frozen=True)
class Lookup:
    """Where to look; defaults to this interpreter's bin dir and the current environment."""

    bin_dir: Path
    path: str
    ament_prefix_path: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Lookup:
        environ = os.environ if environ is None else environ
        # Not resolved: a venv's python is a symlink and its bin/ is what we want.
        return cls(bin_dir=Path(sys.executable).parent, path=environ.get('PATH', ''),
                   ament_prefix_path=environ.get('AMENT_PREFIX_PATH', ''))


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def candidates(executable: str, package: str | None, lookup: Lookup) -> list[Path]:
    """Every place :func:`find_executable` looks, in order (for error messages and tests)."""
    places = [lookup.bin_dir / executable]
    places += [Path(d) / executable for d in lookup.path.split(os.pathsep) if d]
    if package is not None:
        places += [Path(p) / 'lib' / package / executable
                   for p in lookup.ament_prefix_path.split(os.pathsep) if p]
    return places


def find_executable(executable: str, package: str | None, lookup: Lookup | None = None) -> Path:
    """Return the program for ``executable`` (of ``package``); raise if it is nowhere.

    A value containing a path separator is taken as a path (used by plain ``processes``).
    """
    lookup = Lookup.from_environment() if lookup is None else lookup
    if os.sep in executable:
        path = Path(executable).expanduser()
        if _runnable(path):
            return path.absolute()
        raise ExecutableNotFoundError(f'{executable}: not an executable file')
    for place in candidates(executable, package, lookup):
        if _runnable(place):
            return place
    # shutil.which handles PATHEXT-like corner cases we do not model; use it as a last word.
    found = shutil.which(executable, path=lookup.path) if lookup.path else None
    if found:
        return Path(found)
    where = [str(lookup.bin_dir), 'PATH']
    if package is not None:
        prefixes = lookup.ament_prefix_path or '(AMENT_PREFIX_PATH is empty)'
        where.append(f'<prefix>/lib/{package}/ for AMENT_PREFIX_PATH={prefixes}')
    hint = (f' Is the {package} package installed (`pip install -e .` on the pip path, '
            '`colcon build` and `source install/setup.bash` on a ROS install)?'
            if package is not None else '')
    raise ExecutableNotFoundError(
        f'executable {executable!r} not found (looked in {"; ".join(where)}).{hint}')
