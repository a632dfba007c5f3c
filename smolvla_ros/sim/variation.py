"""How one recorded demonstration differs from the next, drawn from its seed (no ROS, no clock).

Why: a policy trained on identical, flawless demonstrations never sees the states it drifts into
and never sees a retry (docs/simulation.md, "Recording demonstrations"). Besides what the world
already draws from the seed (cube position, yaw and colour, sim/world.py), each episode gets:

- **expert variation**: the scripted expert's joint speed and hover height are scaled a little;
- **execution noise**: smooth (Ornstein-Uhlenbeck) noise on the arm's executed joint targets;
- **recovery** (a fraction of episodes): one disturbance the reactive expert must recover from:
  ``push`` (the executed arm targets are shoved off course for a moment), ``bump`` (the cube is
  moved a few cm just before the jaws reach it, so they close on nothing and the expert re-grasps),
  ``nudge`` (the same by only 1-2 cm, so the jaws close on the cube's edge: it tips or sits
  off-centre, the learned policy's own typical miss), ``drop`` (the jaws open for a moment while
  lifting, the cube falls, the expert picks it again) or ``slip`` (while lifting, the cube leaves
  the closed jaws and lands beside them: the arm is up with empty closed jaws and must re-open).

All of it acts on what the *arm executes*; the commands the executor sends (and the recorder
writes on ``joint_commands``) stay the expert's own, so the dataset's actions are clean while its
states and images include the disturbances and the recovery from them (the DART recipe: noise in
execution, expert labels). The episode's variation is a pure function of (seed, config).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.expert import ExpertConfig
from smolvla_ros.sim.kinematics import ARM
from smolvla_ros.sim.world import SimWorld

PERTURBATIONS = ('push', 'bump', 'drop', 'nudge', 'slip')
_STREAM = 0x5EED  # second entropy word: the variation's stream differs from the world's cube draw


@dataclass(frozen=True)
class VariationConfig:
    """Amplitudes of the per-episode variation (rad, m, s); all zero gives the plain expert."""

    noise_rad: float = 0.01  # std of the execution noise per arm joint
    noise_tau_s: float = 0.3  # its correlation time
    speed_jitter: float = 0.15  # expert joint speed x U(1 - j, 1 + j)
    hover_jitter: float = 0.015  # expert hover height + U(-j, j/3) m
    recovery_fraction: float = 0.5  # share of episodes with one disturbance
    kinds: tuple[str, ...] = PERTURBATIONS  # disturbances to draw from
    push_rad: tuple[float, float] = (0.12, 0.25)  # largest joint offset of a push
    push_s: float = 0.4  # how long a push lasts
    bump_m: tuple[float, float] = (0.025, 0.045)  # how far the cube is moved
    drop_s: float = 0.3  # how long the jaws are held open
    nudge_m: tuple[float, float] = (0.01, 0.02)  # how far the cube is moved under the jaws
    slip_m: tuple[float, float] = (0.04, 0.055)  # where the slipping cube lands, from the jaws

    def __post_init__(self) -> None:
        for name in ('noise_rad', 'speed_jitter', 'hover_jitter', 'push_s', 'drop_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SimConfigError(f'{name} must be a finite number >= 0, got {value!r}')
        if not self.noise_tau_s > 0:
            raise SimConfigError(f'noise_tau_s must be > 0, got {self.noise_tau_s!r}')
        if not 0 <= self.speed_jitter < 0.5 or not 0 <= self.hover_jitter <= 0.03:
            raise SimConfigError('speed_jitter must be in [0, 0.5) and hover_jitter in [0, 0.03] m')
        if not 0 <= self.recovery_fraction <= 1:
            raise SimConfigError(
                f'recovery_fraction must be in [0, 1], got {self.recovery_fraction!r}')
        unknown = [k for k in self.kinds if k not in PERTURBATIONS]
        if unknown or (self.recovery_fraction > 0 and not self.kinds):
            raise SimConfigError(f'perturbation kinds must be a non-empty subset of '
                                 f'{PERTURBATIONS}, got {list(self.kinds)}')
        for name in ('push_rad', 'bump_m', 'nudge_m', 'slip_m'):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise SimConfigError(f'{name} must be (low, high) with 0 <= low <= high')


@dataclass(frozen=True)
class EpisodeVariation:
    """What one seed drew (the episode manifest records it)."""

    seed: int
    expert: ExpertConfig
    perturbation: str | None  # one of PERTURBATIONS, or None
    push_start_s: float = 0.0
    push_offset: np.ndarray = field(default_factory=lambda: np.zeros(ARM))  # [5] rad
    bump_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # [2] m
    nudge_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # [2] m
    slip_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # [2] m

    def summary(self) -> dict:
        out: dict = {'joint_speed': round(self.expert.joint_speed, 4),
                     'hover_height': round(self.expert.hover_height, 4),
                     'perturbation': self.perturbation}
        if self.perturbation == 'push':
            out['push_start_s'] = round(self.push_start_s, 3)
            out['push_offset_rad'] = [round(float(v), 4) for v in self.push_offset]
        elif self.perturbation in ('bump', 'nudge', 'slip'):
            offset = getattr(self, f'{self.perturbation}_offset')
            out[f'{self.perturbation}_offset_m'] = [round(float(v), 4) for v in offset]
        return out


def draw_variation(seed: int, config: VariationConfig,
                   base: ExpertConfig | None = None) -> EpisodeVariation:
    """The variation of episode `seed` (deterministic; independent of the world's cube draw)."""
    base = base or ExpertConfig()
    rng = np.random.default_rng([int(seed), _STREAM])
    speed = base.joint_speed * rng.uniform(1 - config.speed_jitter, 1 + config.speed_jitter)
    # Mostly lower: a higher hover is out of the top-down IK's reach at the far cube positions.
    hover = base.hover_height + rng.uniform(-config.hover_jitter, config.hover_jitter / 3)
    expert = ExpertConfig(**{**base.__dict__, 'joint_speed': speed, 'hover_height': hover})
    # Always draw every number, so changing one amplitude does not reshuffle the others.
    perturbed = rng.uniform() < config.recovery_fraction
    kind = config.kinds[int(rng.integers(len(config.kinds)))] if config.kinds else None
    push_start = rng.uniform(0.3, 1.8)
    direction = rng.normal(size=ARM - 1)  # shoulder_pan .. wrist_flex; the roll stays
    direction /= max(np.abs(direction).max(), 1e-9)
    push = np.append(direction * rng.uniform(*config.push_rad), 0.0)  # [5]
    angle = rng.uniform(0, 2 * math.pi)
    bump = rng.uniform(*config.bump_m) * np.array([math.cos(angle), math.sin(angle)])
    # Drawn after the older numbers, so adding them changed no other episode's draw.
    nudge = rng.uniform(*config.nudge_m) * np.array([math.cos(angle), math.sin(angle)])
    slip_angle = rng.uniform(0, 2 * math.pi)
    slip = rng.uniform(*config.slip_m) * np.array([math.cos(slip_angle), math.sin(slip_angle)])
    return EpisodeVariation(seed, expert, kind if perturbed else None, push_start, push, bump,
                            nudge, slip)


class Disturber:
    """Applies one episode's noise and disturbance to the world's executed targets, tick by tick.

    ``command(position)`` receives each command the executor sends; ``apply(world, t, dt)`` is
    called every control tick before the physics step and sets the world's targets to that
    command plus noise and any active disturbance (or moves the cube, for a bump). ``events``
    lists what happened (time, what) for the manifest.
    """

    def __init__(self, variation: EpisodeVariation, config: VariationConfig,
                 start: np.ndarray, cube_xy_range: tuple[tuple[float, float],
                                                     tuple[float, float]]) -> None:
        self.v, self.config = variation, config
        self.clean = np.asarray(start, dtype=np.float64).copy()  # [6] last command (rad)
        self._noise = np.zeros(ARM)
        self._rng = np.random.default_rng([variation.seed, _STREAM, 1])
        self._xy_range = cube_xy_range
        self._done = False  # the episode's one disturbance happened
        self._until = -1.0  # end of an active push / drop (s)
        self.events: list[tuple[float, str]] = []

    def command(self, position: np.ndarray) -> None:
        self.clean = np.asarray(position, dtype=np.float64).copy()

    def apply(self, world: SimWorld, t: float, dt: float) -> None:
        c = self.config
        if c.noise_rad > 0:  # Ornstein-Uhlenbeck with stationary std noise_rad
            a = dt / c.noise_tau_s
            self._noise += -a * self._noise + c.noise_rad * math.sqrt(2 * a) * \
                self._rng.normal(size=ARM)
        target = self.clean.copy()
        target[:ARM] += self._noise
        kind = self.v.perturbation
        if kind is not None:
            target = self._disturb(kind, world, t, target)
        world.set_targets(target)

    def _disturb(self, kind: str, world: SimWorld, t: float, target: np.ndarray) -> np.ndarray:
        if kind == 'push':
            if not self._done and t >= self.v.push_start_s:
                self._done, self._until = True, t + self.config.push_s
                self.events.append((t, 'push'))
            if t < self._until:
                target[:ARM] += self.v.push_offset
        elif kind in ('bump', 'nudge') and not self._done and self._about_to_grasp(world):
            x, y = world.cube_pose().position[:2] + getattr(self.v, f'{kind}_offset')
            self._move_cube(world, x, y)
            self._done = True
            self.events.append((t, kind))
        elif kind in ('drop', 'slip'):
            lift = world.cube_pose().position[2] - world.cube_start[2]
            if not self._done and 0.012 < lift < 0.03:
                self._done = True
                self.events.append((t, kind))
                if kind == 'drop':
                    self._until = t + self.config.drop_s
                else:  # out of the jaws, beside them: it falls the few mm it was lifted
                    x, y = world.grasp_site_position()[:2] + self.v.slip_offset
                    self._move_cube(world, x, y)
            if t < self._until:
                target[ARM] = world.upper[ARM]  # jaws wide open
        return target

    def _about_to_grasp(self, world: SimWorld) -> bool:
        """The jaws are descending onto the resting cube, below the hover pose (so the bump
        comes too late for the current plan: the jaws close on nothing), not yet touching."""
        cube = world.cube_pose().position
        site = world.grasp_site_position()
        resting = abs(cube[2] - world.cube_start[2]) < 0.003
        above = site[2] - cube[2]
        top = min(0.05, self.v.expert.hover_height - 0.01)
        return resting and 0.02 < above < top and np.linalg.norm(site[:2] - cube[:2]) < 0.03

    def _move_cube(self, world: SimWorld, x: float, y: float) -> None:
        """Move the cube to (x, y) m, kept inside the reachable area."""
        (x0, x1), (y0, y1) = self._xy_range
        world.move_cube(float(np.clip(x, x0, x1)), float(np.clip(y, y0, y1)))
