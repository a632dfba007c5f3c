"""Forward kinematics of a URDF joint tree in numpy, batched over poses.

The chunk visualizer turns every predicted chunk (50 steps x 6 joints) into a gripper-tip path
and the arm's link poses, at chunk rate, on the robot computer: plain numpy over a batch of joint
vectors is fast enough and needs neither KDL nor torch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smolvla_ros.core.visualization.urdf_model import UrdfError, UrdfModel, load_urdf

TIP_LINK = 'gripper_frame_link'  # the SO-101's gripper tip (x axis = approach direction)


def axis_angle_matrices(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotations about a unit axis [3] by angles [N] (Rodrigues) -> [N, 3, 3]."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])  # [3, 3] cross-product matrix
    s = np.sin(angles)[:, None, None]  # [N, 1, 1]
    c = np.cos(angles)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)  # [N, 3, 3]


class ForwardKinematics:
    """Link poses in the root frame for joint vectors ordered as `joint_names`.

    Joints of the URDF that are not in `joint_names` (e.g. a gripper the caller does not track)
    stay at zero; names that are not movable joints of the URDF raise UrdfError at construction.
    """

    def __init__(self, model: UrdfModel, joint_names: Sequence[str]) -> None:
        movable = {j.name for j in model.movable_joints}
        unknown = [n for n in joint_names if n not in movable]
        if unknown:
            raise UrdfError(f'joints {unknown} are not movable joints of URDF {model.name!r}; '
                            f'it has {sorted(movable)}')
        if len(set(joint_names)) != len(joint_names):
            raise UrdfError(f'duplicate joint names in {list(joint_names)}')
        self.model = model
        self.joint_names = tuple(joint_names)
        self._column = {n: i for i, n in enumerate(self.joint_names)}

    @classmethod
    def from_urdf(cls, path: str | None = None,
                  joint_names: Sequence[str] | None = None) -> ForwardKinematics:
        """Load a URDF (default urdf/so101.urdf); joint order defaults to the URDF's tree order."""
        model = load_urdf(path)
        names = [j.name for j in model.movable_joints] if joint_names is None else joint_names
        return cls(model, names)

    def link_poses(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """Transforms root -> link for q [N, J] (or [J]): {link: [N, 4, 4]} (or [4, 4])."""
        q = np.asarray(q, dtype=np.float64)
        single = q.ndim == 1
        q2 = q[None, :] if single else q  # [N, J]
        if q2.ndim != 2 or q2.shape[1] != len(self.joint_names):
            raise ValueError(f'q must be [N, {len(self.joint_names)}] (joints '
                             f'{list(self.joint_names)}), got shape {q.shape}')
        n = q2.shape[0]
        poses = {self.model.root: np.broadcast_to(np.eye(4), (n, 4, 4))}
        for j in self.model.joints:  # tree order: parents first
            t = poses[j.parent] @ j.origin  # [N, 4, 4]
            col = self._column.get(j.name)
            if j.type != 'fixed' and col is not None:
                motion = np.zeros((n, 4, 4))
                motion[:, :3, :3] = axis_angle_matrices(j.axis, q2[:, col])
                motion[:, 3, 3] = 1.0
                t = t @ motion
            poses[j.child] = t
        if single:
            return {k: v[0].copy() for k, v in poses.items()}
        return {k: np.ascontiguousarray(v) for k, v in poses.items()}

    def link_pose(self, q: np.ndarray, link: str = TIP_LINK) -> np.ndarray:
        """Transform root -> `link` for q [N, J] -> [N, 4, 4] (or [J] -> [4, 4])."""
        if link not in self.model.links:
            raise UrdfError(f'no link {link!r} in URDF {self.model.name!r}')
        return self.link_poses(q)[link]

    def tip_positions(self, q: np.ndarray, link: str = TIP_LINK) -> np.ndarray:
        """Positions (m, root frame) of `link` for q [N, J] -> [N, 3] (or [J] -> [3])."""
        pose = self.link_pose(q, link)
        return pose[..., :3, 3].copy()

    def joint_transforms(self, q: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """(parent link, child link, [4, 4] parent -> child) of every joint at q [J]: the TF tree.

        Fixed joints are included (robot_state_publisher sends those on /tf_static).
        """
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (len(self.joint_names),):
            raise ValueError(f'q must be [{len(self.joint_names)}], got shape {q.shape}')
        out = []
        for j in self.model.joints:
            t = j.origin.copy()
            col = self._column.get(j.name)
            if j.type != 'fixed' and col is not None:
                motion = np.eye(4)
                motion[:3, :3] = axis_angle_matrices(j.axis, q[col:col + 1])[0]
                t = t @ motion
            out.append((j.parent, j.child, t))
        return out


def matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a rotation matrix [3, 3] (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s,
                      (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = np.zeros(4)
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q[3] = (m[k, j] - m[j, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q
