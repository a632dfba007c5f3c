"""Scripted expert for the pick task, from privileged state (the cube pose), in joint space.

It is *reactive*: every call looks at the arm's joint angles and the cube pose and returns the
rest of the task as a joint trajectory, so it can be queried at any time by a chunking executor
(sync or async, with any latency) and it recovers from a missed grasp. Phases:

    approach (to a hover pose above the cube, jaws open) -> descend -> close -> settle -> lift
    [-> carry (above the bowl) -> release, when given a PlaceTarget: the ``bowl`` task]

Poses come from top-down IK (kinematics.py) with the jaws across the cube face that needs the
least wrist roll; they are computed once per resting cube position and cached. Which phase the
arm is in follows from the joint angles alone: on the hover->grasp segment means descending,
jaws closing or closed at the grasp pose means closing, and so on. Motions are straight lines in
joint space at a bounded joint speed (all joints arrive together).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np

from smolvla_ros.sim.errors import IKError, SimConfigError
from smolvla_ros.sim.kinematics import ARM, TopDownIK
from smolvla_ros.sim.world import HOME, CubePose


@dataclass(frozen=True)
class ExpertConfig:
    """Motion parameters of the scripted expert (m, rad, s)."""

    hover_height: float = 0.06  # grasp point above the cube centre before descending
    grasp_height: float = 0.0  # grasp point above the cube centre
    lift_height: float = 0.06  # grasp point raised by this much to lift
    joint_speed: float = 1.0  # rad/s, largest joint speed of a motion
    gripper_open: float = 0.9  # rad
    gripper_closed: float = -0.15  # rad: beyond contact, so the jaws squeeze
    close_time: float = 0.5  # s
    settle_time: float = 0.25  # s, jaws closed before lifting
    min_motion_time: float = 0.3  # s
    on_path_tolerance: float = 0.08  # rad: how far off a segment still counts as on it
    contact_grip: float = 0.35  # rad: jaws closed below this are on the cube (40 mm: ~0.13)
    empty_grip: float = 0.02  # rad: jaws closed below this hold nothing (cube dropped/missed)

    def __post_init__(self) -> None:
        positive = ('hover_height', 'lift_height', 'joint_speed', 'close_time',
                    'min_motion_time', 'on_path_tolerance')
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SimConfigError(f'{name} must be a finite number > 0, got {value!r}')
        if self.settle_time < 0:
            raise SimConfigError(f'settle_time must be >= 0, got {self.settle_time}')
        if not self.gripper_closed < self.empty_grip < self.contact_grip < self.gripper_open:
            raise SimConfigError(
                'need gripper_closed < empty_grip < contact_grip < gripper_open')


@dataclass(frozen=True)
class PlaceTarget:
    """Where the ``bowl`` task puts the cube: the bowl's centre (m, base frame) and size."""

    xy: tuple[float, float]
    radius: float  # inner radius, m
    height: float  # wall height, m
    clearance: float = 0.03  # cube bottom above the wall top while carried, m

    def contains(self, cube: np.ndarray, half_size: float) -> bool:
        """The cube centre [3] is inside the bowl, below its rim (resting or settling)."""
        return bool(np.linalg.norm(np.asarray(cube[:2]) - self.xy) < self.radius
                    and cube[2] < self.height + half_size)


@dataclass(frozen=True)
class GraspPlan:
    """Joint poses [6] of one grasp and the resting cube position [3] they were solved for;
    ``carry`` (jaws closed above the bowl) only with a PlaceTarget."""

    cube: np.ndarray
    hover: np.ndarray
    grasp: np.ndarray
    lift: np.ndarray
    carry: np.ndarray | None = None


@dataclass(frozen=True)
class Segment:
    """Move linearly to `target` [6] in `duration` s."""

    target: np.ndarray
    duration: float
    phase: str


class ScriptedExpert:
    """Reactive joint-space pick expert (see the module docstring)."""

    def __init__(self, model: mujoco.MjModel, config: ExpertConfig | None = None,
                 cube_half_size: float = 0.02, place: PlaceTarget | None = None) -> None:
        self.config = config or ExpertConfig()
        self.ik = TopDownIK(model)
        self.cube_half_size = cube_half_size
        self.place = place
        self._plan: GraspPlan | None = None

    # -- planning --------------------------------------------------------------------------------
    def plan(self, cube: CubePose) -> GraspPlan:
        """Grasp poses for a cube resting at `cube` (cached while the cube stays put)."""
        resting = cube.position[2] < self.cube_half_size + 0.005
        if self._plan is not None and (
                not resting or np.linalg.norm(cube.position[:2] - self._plan.cube[:2]) < 0.01):
            return self._plan
        c = self.config
        best = None
        for face in (0.0, math.pi / 2):  # jaws across one pair of faces or the other
            yaw = cube.yaw + face
            jaw = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
            grasp = self.ik.solve(cube.position + [0, 0, c.grasp_height], jaw, HOME)
            if best is None or abs(grasp.q[4]) < abs(best[1].q[4]):
                best = (jaw, grasp)
        jaw, grasp = best
        # Up high the wrist limit bends the approach; a few mm off matters only at the grasp.
        hover = self.ik.solve(cube.position + [0, 0, c.hover_height], jaw, grasp.q,
                              max_position_error=0.015, max_axis_error=0.3)
        lift = self.ik.solve(cube.position + [0, 0, c.grasp_height + c.lift_height], jaw, grasp.q,
                             max_position_error=0.04, max_axis_error=0.5)
        carry = None
        if self.place is not None:
            # The bowl is round: of the two jaw directions keep the one needing less wrist roll.
            over = np.array([*self.place.xy, self.place.height + self.place.clearance
                             + self.cube_half_size])
            options = []
            for turn in (0.0, math.pi / 2):
                r = np.array([[math.cos(turn), -math.sin(turn), 0.0],
                              [math.sin(turn), math.cos(turn), 0.0], [0.0, 0.0, 1.0]])
                try:
                    options.append(self.ik.solve(over, r @ jaw, lift.q, max_position_error=0.015,
                                                 max_axis_error=0.3))
                except IKError:
                    continue
            if not options:
                raise IKError(f'no top-down pose reaches above the bowl at {over.tolist()}')
            carry = np.append(min(options, key=lambda o: abs(o.q[4])).q, c.gripper_closed)
        self._plan = GraspPlan(cube.position.copy(), np.append(hover.q, c.gripper_open),
                               np.append(grasp.q, c.gripper_open),
                               np.append(lift.q, c.gripper_closed), carry)
        return self._plan

    def segments(self, state: np.ndarray, cube: CubePose) -> list[Segment]:
        """What is left to do from joint state [6] (rad), as motions from the state."""
        c = self.config
        arm, grip = state[:ARM], float(state[ARM])
        if self.place is not None and self.place.contains(cube.position, self.cube_half_size):
            # Placed: jaws open where the arm is (the cube in the bowl is not picked again).
            return [Segment(np.append(arm, c.gripper_open), c.close_time, 'release')]
        p = self.plan(cube)
        closed_grasp = np.append(p.grasp[:ARM], c.gripper_closed)
        lift = [self._move(closed_grasp, p.lift, 'lift')]
        travel = (grip - c.gripper_closed) / (c.gripper_open - c.gripper_closed)
        close = [Segment(closed_grasp, c.close_time * float(np.clip(travel, 0.2, 1.0)), 'close'),
                 Segment(closed_grasp, c.settle_time, 'settle')] + lift
        lifted = cube.position[2] > p.cube[2] + 0.02
        tol = c.on_path_tolerance
        if lifted or c.empty_grip < grip < c.contact_grip:  # the jaws hold the cube: lift it
            here = np.append(arm, c.gripper_closed)
            if p.carry is None:
                return [self._move(here, p.lift, 'lift')]
            release = Segment(np.append(p.carry[:ARM], c.gripper_open), c.close_time, 'release')
            if np.abs(arm - p.carry[:ARM]).max() < tol:
                return [release]
            if lifted:
                return [self._move(here, p.carry, 'carry'), release]
            return [self._move(here, p.lift, 'lift'), self._move(p.lift, p.carry, 'carry'),
                    release]
        if grip <= c.empty_grip:  # closed on nothing (missed or dropped): open, start over
            here = np.append(arm, c.gripper_open)
            return [Segment(here, c.close_time, 'open'), self._move(here, p.hover, 'approach'),
                    self._move(p.hover, p.grasp, 'descend')] + close
        if np.abs(arm - p.grasp[:ARM]).max() < tol:
            return close
        if _segment_distance(arm, p.hover[:ARM], p.grasp[:ARM]) < tol:
            return [self._move(state, p.grasp, 'descend')] + close
        return [self._move(state, p.hover, 'approach'),
                self._move(p.hover, p.grasp, 'descend')] + close

    def _move(self, start: np.ndarray, target: np.ndarray, phase: str) -> Segment:
        distance = float(np.abs(target[:ARM] - start[:ARM]).max())
        return Segment(target, max(self.config.min_motion_time,
                                   distance / self.config.joint_speed), phase)

    # -- trajectories ----------------------------------------------------------------------------
    def trajectory(self, state: np.ndarray, cube: CubePose, steps: int, dt: float) -> np.ndarray:
        """[steps, 6] joint targets at t = k*dt, k = 0..steps-1, starting from `state`.

        Action 0 is one step along the way (the state itself is where the arm already is).
        """
        state = np.asarray(state, dtype=np.float64)
        out = np.empty((steps, len(state)))
        t_start, q_start = 0.0, state.copy()
        segs = self.segments(state, cube)
        i = 0
        for k in range(steps):
            t = (k + 1) * dt
            while i < len(segs) and t > t_start + segs[i].duration:
                t_start += segs[i].duration
                q_start = segs[i].target
                i += 1
            if i == len(segs):
                out[k] = q_start
                continue
            seg = segs[i]
            a = (t - t_start) / seg.duration
            out[k] = q_start + a * (seg.target - q_start)
        return out

    def phase(self, state: np.ndarray, cube: CubePose) -> str:
        """Name of the phase the arm is in (for logs and tests)."""
        return self.segments(np.asarray(state, dtype=np.float64), cube)[0].phase


def _segment_distance(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance from x to the segment a-b (joint space)."""
    ab = b - a
    denom = float(ab @ ab)
    s = 0.0 if denom < 1e-12 else float(np.clip((x - a) @ ab / denom, 0.0, 1.0))
    return float(np.linalg.norm(x - (a + s * ab)))
