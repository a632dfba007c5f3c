"""Where the package's data files (config/, launch/, urdf/, policies/) live.

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


# The SmolVLA checkpoints that ship with the package (LeRobot layout), one folder each under
# share_dir()/policies; a checkpoint parameter or option may name one instead of giving a path.
POLICIES_DIR = 'policies'
# The shipped checkpoint that `make demo`, `smolvla-ros eval` and the simulated bringup profiles
# run by default (policies/so101_sim_lift/README.md says what it is and how it was trained).
DEFAULT_POLICY_NAME = 'so101_sim_lift'
# Relative to share_dir(); None would mean that no default policy ships.
DEFAULT_POLICY: str | None = f'{POLICIES_DIR}/{DEFAULT_POLICY_NAME}'


class DefaultPolicyMissingError(FileNotFoundError):
    """No default policy ships with this installation (or its directory is incomplete)."""


def default_policy_dir() -> Path:
    """The directory of the shipped default SmolVLA checkpoint (LeRobot layout).

    The one place that names it: commands that run "the default policy" resolve it here.
    Raises DefaultPolicyMissingError, saying what to pass instead, when none ships or the
    directory lacks its config.json (a partial install, or a checkout without the file).
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


def resolve_checkpoint(checkpoint: str) -> str:
    """``checkpoint`` with the name of a shipped policy (e.g. ``so101_sim_lift``) replaced by its
    directory; anything else (a path, a preset name such as ``tiny``) is returned unchanged.

    Bringup profiles cannot put a path computed at run time into an argument default (defaults
    take no substitutions, docs/bringup.md), so the simulated profiles name the shipped policy and
    the policy_server resolves the name here, the same under ``smolvla-ros up`` and ``ros2
    launch``, in a checkout and in an install. A bare name that is not shipped is left alone
    (a relative directory of that name, or a preset); write ``./NAME`` for a local folder that
    shadows a shipped name.
    """
    name = checkpoint.strip()
    if not name or '/' in name or '\\' in name or name in ('.', '..'):
        return checkpoint
    shipped = share_dir() / POLICIES_DIR / name
    if name == DEFAULT_POLICY_NAME:
        return str(default_policy_dir())  # names the problem when the files are missing
    return str(shipped) if (shipped / 'config.json').is_file() else checkpoint


def checkpoint_or_default(checkpoint: str | None) -> str:
    """What a ``--checkpoint`` option means: the given checkpoint (a shipped name resolved), or
    the shipped default policy's directory when none is given."""
    return resolve_checkpoint(checkpoint) if checkpoint else str(default_policy_dir())
