"""Where the package's data files (config/, launch/, urdf/) live.

In a source checkout or an editable install they sit next to the Python package; after
``colcon build`` or a regular install they are in the ament share directory. Both are supported so
that ``smolvla-ros up`` and ``ros2 launch`` read the very same profile files.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'smolvla_ros'


def share_dir() -> Path:
    """Return the directory that holds ``config/``, ``launch/`` and ``urdf/``."""
    source_root = Path(__file__).resolve().parent.parent
    if (source_root / 'config').is_dir() and (source_root / 'package.xml').is_file():
        return source_root
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError as exc:  # pragma: no cover - only without ROS and without a checkout
        raise FileNotFoundError(
            f'cannot locate the {PACKAGE} share directory: no source checkout next to '
            f'{source_root} and ament_index_python is not importable') from exc
    return Path(get_package_share_directory(PACKAGE))


def config_path(*parts: str) -> Path:
    """Return ``share_dir()/config/<parts...>``."""
    return share_dir().joinpath('config', *parts)


# The shipped SmolVLA checkpoint that `smolvla-ros eval` (and later `make demo`) runs by default,
# relative to share_dir(); None until a trained checkpoint is committed (issue 12).
DEFAULT_POLICY: str | None = None


class DefaultPolicyMissingError(FileNotFoundError):
    """No default policy ships with this installation (or its directory is incomplete)."""


def default_policy_dir() -> Path:
    """The directory of the shipped default SmolVLA checkpoint (LeRobot layout).

    The one place that names it: commands that run "the default policy" resolve it here.
    Raises DefaultPolicyMissingError, saying what to pass instead, when none ships yet or the
    directory lacks its config.json.
    """
    if DEFAULT_POLICY is None:
        raise DefaultPolicyMissingError(
            'no default SmolVLA policy ships with smolvla_ros yet: pass a checkpoint directory '
            '(--checkpoint DIR, e.g. the output of smolvla-train) or use the scripted expert '
            '(--oracle)')
    path = share_dir() / DEFAULT_POLICY
    if not (path / 'config.json').is_file():
        raise DefaultPolicyMissingError(
            f'the default policy {path} is missing or incomplete (no config.json): reinstall '
            'the package or pass --checkpoint DIR')
    return path
