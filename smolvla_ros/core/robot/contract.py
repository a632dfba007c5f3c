"""The robot contract: one YAML file that maps ROS streams onto LeRobot features.

One contract per robot and one unit conversion (docs/ARCHITECTURE.md, "House rules").

The live executor, the policy server and the bag converter read the same file, so a topic name, a
joint order or a unit can only be wrong in one place. Loading validates everything at once and
every error names the file and the key (``so101.yaml: cameras.front.max_age_s: ...``), because a
contract is edited by hand and read at node start, where a vague error costs the most.

Units: ``joint_units`` per joint are LeRobot's ``NormMode`` values (``degrees``,
``range_m100_100``, ``range_0_100``); the rad <-> dataset-unit conversion itself lives in
``smolvla_ros.core.robot.dataset_units`` on top of the Feetech unit module.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import re
from types import MappingProxyType
from typing import Any

import yaml

from smolvla_ros.core.robot.units import NormMode

STATE_FEATURE = 'observation.state'
ACTION_FEATURE = 'action'
IMAGE_FEATURE_PREFIX = 'observation.images.'
_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_TOPIC = re.compile(r'^/?[A-Za-z_~{][A-Za-z0-9_/{}~]*$')
_UNITS = tuple(m.value for m in NormMode)
_set = object.__setattr__


class ContractError(ValueError):
    """A contract file or dict that breaks the schema; the message names the source and key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f'{source}: {key}: {problem}' if key else f'{source}: {problem}')


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f'{what} must be an identifier (letters, digits, _), got {value!r}')
    return value


def _check_topic(value: object) -> str:
    if not isinstance(value, str) or not _TOPIC.match(value) or value.endswith('/') or (
            '//' in value):
        raise ValueError(f'must be a valid ROS topic name, got {value!r}')
    return value


def _positive(value: object, what: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{what} must be a number, got {value!r}')
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or (v == 0.0 and not allow_zero):
        raise ValueError(f'{what} must be a finite number {">=" if allow_zero else ">"} 0, '
                         f'got {value!r}')
    return v


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{what} must be an int >= 1, got {value!r}')
    return value


@dataclass(frozen=True)
class JointSpec:
    """One joint: its ROS name (= LeRobot motor name) and its unit on the dataset side."""

    name: str
    unit: NormMode

    def __post_init__(self) -> None:
        _check_name(self.name, 'name')
        try:
            _set(self, 'unit', NormMode(self.unit))
        except ValueError:
            raise ValueError(f'unit must be one of {list(_UNITS)}, got {self.unit!r}') from None

    @property
    def feature_name(self) -> str:
        """LeRobot's per-motor feature name, e.g. ``shoulder_pan.pos``."""
        return f'{self.name}.pos'


@dataclass(frozen=True)
class CameraSpec:
    """One camera stream: where it is published and the frame size datasets record."""

    name: str
    topic: str
    width: int
    height: int
    max_age_s: float
    compressed: bool = True  # sensor_msgs/CompressedImage, else sensor_msgs/Image
    fps: float = 30.0

    def __post_init__(self) -> None:
        _check_name(self.name, 'camera name')
        _check_topic(self.topic)
        _positive_int(self.width, 'width')
        _positive_int(self.height, 'height')
        _set(self, 'max_age_s', _positive(self.max_age_s, 'max_age_s'))
        _set(self, 'fps', _positive(self.fps, 'fps'))
        if not isinstance(self.compressed, bool):
            raise ValueError(f'compressed must be true or false, got {self.compressed!r}')

    @property
    def feature(self) -> str:
        """Dataset / checkpoint feature key, ``observation.images.<name>``."""
        return IMAGE_FEATURE_PREFIX + self.name

    @property
    def max_age_ns(self) -> int:
        return round(self.max_age_s * 1e9)


@dataclass(frozen=True)
class StreamSpec:
    """The joint state (input) or joint command (output) stream and its dataset feature."""

    topic: str
    feature: str
    max_age_s: float = math.inf  # inputs only: older samples make an observation stale
    fps: float | None = None  # inputs only: expected publish rate (None: the contract fps)

    def __post_init__(self) -> None:
        _check_topic(self.topic)
        if not isinstance(self.feature, str) or not self.feature:
            raise ValueError(f'feature must be a non-empty string, got {self.feature!r}')
        if self.max_age_s != math.inf:  # unbounded is the default, e.g. for the action stream
            _set(self, 'max_age_s', _positive(self.max_age_s, 'max_age_s'))
        if self.fps is not None:
            _set(self, 'fps', _positive(self.fps, 'fps'))

    @property
    def max_age_ns(self) -> int | None:
        """Max age in ns, None when unbounded (the action stream)."""
        return None if math.isinf(self.max_age_s) else round(self.max_age_s * 1e9)


@dataclass(frozen=True)
class TaskSource:
    """Where the language instruction comes from: a topic, else a node parameter, else default."""

    topic: str = 'task'
    parameter: str = 'task'
    default: str = ''

    def __post_init__(self) -> None:
        _check_topic(self.topic)
        _check_name(self.parameter, 'parameter')
        if not isinstance(self.default, str):
            raise ValueError(f'default must be a string, got {self.default!r}')


@dataclass(frozen=True)
class RobotContract:
    """A validated robot contract (see config/contracts/so101.yaml for the annotated schema)."""

    fps: float
    joints: tuple[JointSpec, ...]
    cameras: Mapping[str, CameraSpec]
    state: StreamSpec
    action: StreamSpec
    task: TaskSource = field(default_factory=TaskSource)
    policy_image_size: tuple[int, int] | None = None  # (width, height); None = camera size
    calibration_file: Path | None = None  # LeRobot calibration JSON (needed by range units)
    robot_type: str = 'so101_follower'
    source: str = '<dict>'  # file the contract came from, for error messages

    def __post_init__(self) -> None:
        _set(self, 'fps', _positive(self.fps, 'fps'))
        joints = tuple(self.joints)
        if not joints:
            raise ValueError('joints must not be empty')
        names = [j.name for j in joints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f'joints are listed twice: {dupes}')
        _set(self, 'joints', joints)
        for key, cam in self.cameras.items():
            if key != cam.name:
                raise ValueError(f'camera key {key!r} != its name {cam.name!r}')
        _set(self, 'cameras', MappingProxyType(dict(self.cameras)))
        if self.policy_image_size is not None:
            w, h = self.policy_image_size
            _set(self, 'policy_image_size',
                 (_positive_int(w, 'policy_image_size.width'),
                  _positive_int(h, 'policy_image_size.height')))

    # -- names -----------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        """ROS joint names in contract (= dataset column) order."""
        return tuple(j.name for j in self.joints)

    @property
    def joint_units(self) -> tuple[NormMode, ...]:
        return tuple(j.unit for j in self.joints)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """``<joint>.pos`` names of ``observation.state`` and ``action`` columns."""
        return tuple(j.feature_name for j in self.joints)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.cameras)

    @property
    def image_features(self) -> tuple[str, ...]:
        """``observation.images.<cam>`` keys, in camera order."""
        return tuple(c.feature for c in self.cameras.values())

    @property
    def dt(self) -> float:
        """Seconds between frames (1 / fps)."""
        return 1.0 / self.fps

    @property
    def dt_ns(self) -> int:
        return round(1e9 / self.fps)

    @property
    def needs_calibration(self) -> bool:
        """True when some joint's dataset unit depends on the calibrated range."""
        return any(j.unit is not NormMode.DEGREES for j in self.joints)

    def policy_image_shape(self, camera: str) -> tuple[int, int]:
        """(height, width) of the frames of ``camera`` as sent to the policy."""
        cam = self.cameras[camera]
        if self.policy_image_size is None:
            return cam.height, cam.width
        return self.policy_image_size[1], self.policy_image_size[0]

    def max_frame_size(self, camera: str) -> tuple[int, int]:
        """(width, height) of the largest frame of ``camera`` a node accepts before decoding.

        Frames come at the camera's size (topics, bags) or at the policy size (requests): the
        larger of the two per dimension. Anything larger is refused unread (a decompression bomb
        is a few hundred bytes claiming 20000x20000 pixels).
        """
        cam = self.cameras[camera]
        policy_h, policy_w = self.policy_image_shape(camera)
        return max(cam.width, policy_w), max(cam.height, policy_h)

    def dataset_features(self) -> dict[str, dict[str, Any]]:
        """The robot features of a LeRobot dataset's meta/info.json (docs/lerobot_compat.md,
        "Datasets").

        Images are declared as ``video`` at the camera's recorded size.
        """
        vector = {'dtype': 'float32', 'shape': [len(self.joints)],
                  'names': list(self.feature_names)}
        features: dict[str, dict[str, Any]] = {
            self.action.feature: dict(vector), self.state.feature: dict(vector)}
        for cam in self.cameras.values():
            features[cam.feature] = {
                'dtype': 'video', 'shape': [cam.height, cam.width, 3],
                'names': ['height', 'width', 'channels']}
        return features


# -- loading -------------------------------------------------------------------------------------

_TOP_KEYS = {'version', 'robot_type', 'fps', 'calibration_file', 'joints', 'state', 'action',
             'task', 'policy_image_size', 'cameras'}


def _section(data: Mapping[str, Any], key: str, source: str, required: bool = True) -> dict:
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ContractError(source, key, f'must be a mapping, got {value!r}')
    return value


def _build(cls: type, values: dict, source: str, key: str, allowed: set[str]) -> Any:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ContractError(source, key, f'unknown keys {unknown}; allowed {sorted(allowed)}')
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ContractError(source, key, f'missing keys ({exc})') from None
    except ValueError as exc:
        raise ContractError(source, key, str(exc)) from None


def _resolve_path(value: object, base: Path | None, source: str) -> Path | None:
    if value in (None, ''):
        return None
    if not isinstance(value, str):
        raise ContractError(source, 'calibration_file', f'must be a path string, got {value!r}')
    path = Path(os.path.expanduser(os.path.expandvars(value)))
    if not path.is_absolute() and base is not None:
        path = base / path
    return Path(os.path.normpath(path))


def contract_from_dict(data: object, source: str = '<dict>',
                       base_dir: Path | None = None) -> RobotContract:
    """Validate a parsed contract; ``base_dir`` resolves a relative calibration_file."""
    if not isinstance(data, dict):
        raise ContractError(source, '', f'must be a mapping, got {type(data).__name__}')
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ContractError(source, '', f'unknown keys {unknown}; allowed {sorted(_TOP_KEYS)}')
    if data.get('version', 1) != 1:
        raise ContractError(source, 'version', f'unsupported version {data["version"]!r}')
    joints_raw = data.get('joints')
    if not isinstance(joints_raw, list) or not joints_raw:
        raise ContractError(source, 'joints', f'must be a non-empty list, got {joints_raw!r}')
    joints = []
    for i, entry in enumerate(joints_raw):
        if not isinstance(entry, dict):
            raise ContractError(source, f'joints[{i}]', f'must be {{name, unit}}, got {entry!r}')
        joints.append(_build(JointSpec, entry, source, f'joints[{i}]', {'name', 'unit'}))
    cameras = {}
    for name, entry in _section(data, 'cameras', source, required=False).items():
        key = f'cameras.{name}'
        if not isinstance(entry, dict):
            raise ContractError(source, key, f'must be a mapping, got {entry!r}')
        allowed = {'topic', 'width', 'height', 'max_age_s', 'compressed', 'fps'}
        cameras[name] = _build(CameraSpec, {'name': name, **entry}, source, key, allowed | {'name'})
    stream_keys = {'topic', 'feature', 'max_age_s', 'fps'}
    state = _build(StreamSpec, {'feature': STATE_FEATURE, **_section(data, 'state', source)},
                   source, 'state', stream_keys)
    action_raw = _section(data, 'action', source)
    action = _build(StreamSpec, {'feature': ACTION_FEATURE, **action_raw}, source, 'action',
                    {'topic', 'feature'})
    task = _build(TaskSource, _section(data, 'task', source, required=False), source, 'task',
                  {'topic', 'parameter', 'default'})
    size = data.get('policy_image_size')
    if size is not None:
        if not isinstance(size, dict) or set(size) != {'width', 'height'}:
            raise ContractError(source, 'policy_image_size',
                                f'must be {{width, height}} or null, got {size!r}')
        size = (size['width'], size['height'])
    robot_type = data.get('robot_type', 'so101_follower')
    try:
        return RobotContract(
            fps=data.get('fps'), joints=tuple(joints), cameras=cameras, state=state,
            action=action, task=task, policy_image_size=size,
            calibration_file=_resolve_path(data.get('calibration_file'), base_dir, source),
            robot_type=robot_type, source=source)
    except (TypeError, ValueError) as exc:
        # Messages start with the offending field (e.g. 'policy_image_size.width must be ...').
        first = str(exc).split(' ', 1)[0]
        key = first if first.split('.')[0] in _TOP_KEYS else ''
        raise ContractError(source, key, str(exc)) from None


def load_contract(path: str | os.PathLike[str]) -> RobotContract:
    """Read and validate a contract YAML file (errors name the file and the key)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ContractError(str(path), '', f'cannot read the contract: {exc}') from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(str(path), '', f'not valid YAML: {exc}') from exc
    return contract_from_dict(data, source=str(path), base_dir=path.resolve().parent)


def default_contract_path(robot: str = 'so101') -> Path:
    """``config/contracts/<robot>.yaml`` of the installed package."""
    from smolvla_ros.paths import config_path
    return config_path('contracts', f'{robot}.yaml')
