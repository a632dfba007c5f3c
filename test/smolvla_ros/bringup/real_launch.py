"""The real upstream `launch`, `launch_ros` and `ros2 launch` for tests (`make ros2-launch`).

They are not on PyPI, so a plain `make setup` venv lacks them and these tests skip, naming the
make target. CI installs them (.ci/run) and sets SMOLVLA_REQUIRE_ROS2_LAUNCH=1, which turns the
skip into a failure: there, a missing install must not pass silently.

`ros2 launch smolvla_ros NAME` finds the package through the ament index. Instead of a colcon
build (minutes), :func:`make_ament_prefix` lays out the part of an install prefix that
`ros2 launch` and launch_ros read: the package marker, share/smolvla_ros/launch/*.launch.py and
lib/smolvla_ros/<executable> (ExecutableInPackage), as links into this checkout and this venv,
so the real lookup code runs on the real files.
"""
from __future__ import annotations

from importlib import metadata
import importlib.util
import os
from pathlib import Path
import sys

import pytest

from smolvla_ros.paths import share_dir

PACKAGE = 'smolvla_ros'
REQUIRE_ENV = 'SMOLVLA_REQUIRE_ROS2_LAUNCH'
_MODULES = ('launch', 'launch_ros', 'ros2launch', 'composition_interfaces')


def ros2_executable() -> Path:
    """The `ros2` command of this interpreter's environment (where `make ros2-launch` puts it)."""
    return Path(sys.executable).parent / 'ros2'


def require_real_launch() -> None:
    """Skip (or, with SMOLVLA_REQUIRE_ROS2_LAUNCH=1, fail) unless the real tooling is installed."""
    missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    if not ros2_executable().is_file():
        missing.append(str(ros2_executable()))
    if not missing:
        return
    reason = (f'the real ROS 2 launch tooling is not installed ({", ".join(missing)} missing): '
              f'run `make ros2-launch` (upstream sources, see the Makefile)')
    if os.environ.get(REQUIRE_ENV) == '1':
        pytest.fail(f'{REQUIRE_ENV}=1 but {reason}')
    pytest.skip(reason)


def console_scripts() -> dict[str, Path]:
    """This package's console scripts (setup.py) as installed in this venv's bin/."""
    bin_dir = Path(sys.executable).parent
    scripts = {ep.name: bin_dir / ep.name
               for ep in metadata.distribution(PACKAGE).entry_points
               if ep.group == 'console_scripts'}
    return {name: path for name, path in scripts.items() if path.is_file()}


def make_ament_prefix(prefix: Path, executables: dict[str, Path] | None = None) -> Path:
    """An install prefix for smolvla_ros: index marker, launch files, lib/smolvla_ros/<exe>.

    ``executables`` maps an executable name to the program it links to (default: the venv's
    console scripts, i.e. the real nodes). Files are symbolic links, not directories, because
    `ros2 launch` walks the share directory without following directory links.
    """
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    share = prefix / 'share' / PACKAGE
    (share / 'launch').mkdir(parents=True, exist_ok=True)
    source = share_dir()
    (share / 'package.xml').symlink_to(source / 'package.xml')
    for launch_file in sorted((source / 'launch').glob('*.launch.py')):
        (share / 'launch' / launch_file.name).symlink_to(launch_file)
    lib = prefix / 'lib' / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    for name, target in (console_scripts() if executables is None else executables).items():
        (lib / name).symlink_to(target)
    return prefix


def launch_env(base: dict[str, str], prefix: Path) -> dict[str, str]:
    """``base`` (a ros_env) with the prefix first on AMENT_PREFIX_PATH, then the venv."""
    env = dict(base)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(prefix), sys.prefix])
    return env


def launch_files() -> list[Path]:
    """Every shipped launch file."""
    return sorted((share_dir() / 'launch').glob('*.launch.py'))
