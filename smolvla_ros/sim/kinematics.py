"""Top-down inverse kinematics of the SO-101 on a scratch copy of the model (damped least squares).

A top-down grasp fixes the grasp point (between the fingertip pads), the approach axis (the grasp
site's x axis, pointing down) and the jaw axis (site z, across the cube, horizontal): 6
constraints for 5 arm joints, but the arm is planar after the pan joint, so the sideways tilt of
the approach axis is zero at every solution and the system is consistent.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from smolvla_ros.sim.errors import IKError
from smolvla_ros.sim.scene import GRASP_SITE, JAW_PADS, JOINT_NAMES, joint_qpos_indices

ARM = 5  # the first five joints move the grasp point; the sixth is the jaw
GRASP_JAW_ANGLE = 0.46  # rad: the pads are parallel (40 mm apart) at this jaw angle


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # [5] arm joints (rad)
    position_error: float  # m
    axis_error: float  # sin of the jaw axis error


class TopDownIK:
    """Solves arm joints for a grasp point with the jaws pointing down and a given jaw direction."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qpos = joint_qpos_indices(model)
        self._dof = np.array([model.joint(n).dofadr[0] for n in JOINT_NAMES[:ARM]])
        self._site = model.site(GRASP_SITE).id
        self._body = model.site_bodyid[self._site]
        ranges = model.jnt_range[[model.joint(n).id for n in JOINT_NAMES[:ARM]]]
        self.lower, self.upper = ranges[:, 0], ranges[:, 1]
        self.grasp_offset = self._grasp_offset()  # [3] in the site frame

    def _grasp_offset(self) -> np.ndarray:
        d = self.data
        d.qpos[:] = 0
        d.qpos[self._qpos[-1]] = GRASP_JAW_ANGLE
        mujoco.mj_kinematics(self.model, d)
        pads = [d.geom_xpos[self.model.geom(p).id] for p in JAW_PADS]
        mid = np.mean(pads, axis=0)
        rot = d.site_xmat[self._site].reshape(3, 3)
        return rot.T @ (mid - d.site_xpos[self._site])

    def grasp_point(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(grasp point [3], site rotation [3, 3]) for arm joints q [5] (jaw at its grasp angle)."""
        d = self.data
        d.qpos[self._qpos[:ARM]] = q
        d.qpos[self._qpos[-1]] = GRASP_JAW_ANGLE
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)
        rot = d.site_xmat[self._site].reshape(3, 3).copy()
        return d.site_xpos[self._site] + rot @ self.grasp_offset, rot

    def solve(self, target: np.ndarray, jaw_direction: np.ndarray, seed: np.ndarray,
              iterations: int = 300, tolerance: float = 1e-3,
              max_position_error: float = 0.008, max_axis_error: float = 0.1) -> IKResult:
        """Arm joints [5] putting the grasp point at `target` (m) with the jaws along
        `jaw_direction` (horizontal unit vector, either sign) and the approach as close to
        straight down as the joint limits allow. Raises IKError when out of reach."""
        jaw = np.asarray(jaw_direction, dtype=np.float64)
        jaw = jaw / np.linalg.norm(jaw)
        down = np.array([0.0, 0.0, -1.0])
        q = np.clip(np.asarray(seed, dtype=np.float64)[:ARM], self.lower, self.upper)
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        # Priorities by weight: position, then the jaw axis (1 rad weighs as 10 cm), then a soft
        # pull of the approach towards vertical (which the wrist limit may forbid high up).
        w_jaw, w_down, damping = 0.1, 0.01, 1e-5
        pos_err = axis_err = np.inf
        for _ in range(iterations):
            point, rot = self.grasp_point(q)
            approach, jaw_now = rot[:, 0], rot[:, 2]
            if jaw_now @ jaw < 0:
                jaw = -jaw  # either jaw direction grips the same two faces
            e_pos = target - point  # [3]
            e_jaw = np.cross(jaw_now, jaw)  # [3] rotation vector
            e_down = np.cross(approach, down)  # [3]
            pos_err, axis_err = float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_jaw))
            mujoco.mj_jac(self.model, self.data, jacp, jacr, point, self._body)
            jr = jacr[:, self._dof]  # [3, 5]
            jac = np.vstack([jacp[:, self._dof], w_jaw * jr, w_down * jr])  # [9, 5]
            err = np.concatenate([e_pos, w_jaw * e_jaw, w_down * e_down])  # [9]
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(9), err)  # [5]
            if np.abs(dq).max() < tolerance * 1e-2:
                break
            q = np.clip(q + np.clip(dq, -0.2, 0.2), self.lower, self.upper)
        if pos_err > max_position_error or axis_err > max_axis_error:
            raise IKError(f'no top-down pose reaches {np.round(target, 3).tolist()} '
                          f'(position error {pos_err * 1e3:.1f} mm, jaw axis error '
                          f'{axis_err:.3f})')
        return IKResult(q, pos_err, axis_err)
