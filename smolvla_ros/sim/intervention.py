"""Intervention recording: a learned policy drives, the scripted expert takes over (DAgger).

A policy trained only on expert demonstrations fails in states the expert never visits (after a
missed grasp the cube sits beside the fixed jaw and the policy closes the jaws again without
re-centring, docs/simulation.md) and has no example of getting out of them. Here a checkpoint
drives each episode until the "operator" takes over -- at a time drawn from the seed, or as soon
as the jaws have been closed on nothing for ``miss_s`` (a miss) -- and the reactive expert
(sim/expert.py) finishes the task from wherever the policy left the arm and the cube. Only what
follows the takeover is recorded (sim/record.py), so every new demonstration starts in a state
the policy itself reached: the data-aggregation step of DAgger (Ross, Gordon and Bagnell, 2011),
done the way an operator with a leader arm intervenes on a real robot. An episode the policy
finishes before the takeover holds no correction and is skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.expert import ExpertConfig
from smolvla_ros.sim.kinematics import ARM
from smolvla_ros.sim.world import SimWorld

_STREAM = 0x7A6E  # entropy word of the takeover draw: independent of the world's and variation's


@dataclass(frozen=True)
class InterventionConfig:
    """Which checkpoint drives and when the expert takes over (s)."""

    checkpoint: str  # LeRobot policy directory (pretrained_model), served as eval serves it
    takeover_s: tuple[float, float] = (1.0, 10.0)  # takeover time ~ U(lo, hi) per seed
    miss_s: float = 0.3  # jaws closed on nothing this long: take over now (0: only the time)
    threads: int = 1  # torch threads of the policy (one per recording worker)

    def __post_init__(self) -> None:
        lo, hi = self.takeover_s
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi <= 60):
            raise SimConfigError(f'takeover_s must be 0 <= lo <= hi <= 60 s, got '
                                 f'{self.takeover_s!r}')
        if not (math.isfinite(self.miss_s) and self.miss_s >= 0):
            raise SimConfigError(f'miss_s must be >= 0, got {self.miss_s!r}')


def draw_takeover_s(seed: int, config: InterventionConfig) -> float:
    """When the expert takes over in episode `seed` at the latest (deterministic)."""
    rng = np.random.default_rng([int(seed), _STREAM])
    return float(rng.uniform(*config.takeover_s))


class TakeoverRule:
    """``due(world, t)`` of a Handover (sim/episode_runner.py): the drawn time is reached, or
    the jaws have held nothing for ``miss_s`` while the cube rests (a missed grasp, judged like
    the expert's own "closed on nothing", ExpertConfig.empty_grip). ``reason`` says which."""

    def __init__(self, at_s: float, miss_s: float, cube_half_size: float,
                 expert: ExpertConfig | None = None) -> None:
        self.at_s, self.miss_s = at_s, miss_s
        self.empty_grip = (expert or ExpertConfig()).empty_grip
        self.lifted_z = cube_half_size + 0.02  # cube centre above this: off the table
        self.reason = ''
        self._miss_since: float | None = None

    def __call__(self, world: SimWorld, t: float) -> bool:
        if t >= self.at_s:
            self.reason = 'time'
            return True
        if self.miss_s <= 0:
            return False
        grip = float(world.joint_positions()[ARM])
        resting = float(world.cube_pose().position[2]) < self.lifted_z
        if grip <= self.empty_grip and resting:
            self._miss_since = t if self._miss_since is None else self._miss_since
            if t - self._miss_since >= self.miss_s:
                self.reason = 'miss'
                return True
        else:
            self._miss_since = None
        return False
