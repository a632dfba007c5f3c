"""What the chunk visualizer draws, as plain arrays: tip paths, colours, seams, the end-pose ghost.

The node only turns these into visualization_msgs/MarkerArray, and `plot-chunks` draws the same
paths with matplotlib, so both pictures agree and the geometry is tested without ROS. Positions
are metres in the URDF root frame (base_link); colours are RGBA in 0..1.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.core.visualization.kinematics import TIP_LINK, ForwardKinematics

# Time colours of a predicted path: soon (blue) -> middle (green) -> end of the chunk (orange).
TIME_GRADIENT = np.array([[0.10, 0.45, 1.00], [0.15, 0.80, 0.35], [1.00, 0.55, 0.05]])


class ChunkGeometryError(ValueError):
    """A chunk or joint vector that cannot be drawn (missing joints, wrong shape)."""


@dataclass(frozen=True)
class MarkerStyle:
    """Colours and sizes; validated because they come from node parameters."""

    line_width: float = 0.004  # m
    due_rgba: tuple[float, float, float, float] = (0.55, 0.55, 0.55, 0.6)  # already due part
    executed_rgba: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    seam_rgba: tuple[float, float, float, float] = (1.0, 0.1, 0.1, 1.0)
    ghost_rgba: tuple[float, float, float, float] = (0.3, 0.9, 1.0, 0.35)
    history: int = 3  # predicted chunks kept on screen (older ones fade)
    executed_points: int = 600  # executed path length (20 s at 30 Hz)
    seams: int = 20  # seams kept on screen

    def __post_init__(self) -> None:
        if not (0 < self.line_width < 0.1):
            raise ValueError(f'line_width must be in (0, 0.1) m, got {self.line_width}')
        for name in ('due_rgba', 'executed_rgba', 'seam_rgba', 'ghost_rgba'):
            value = getattr(self, name)
            if len(value) != 4 or not all(0.0 <= c <= 1.0 for c in value):
                raise ValueError(f'{name} must be 4 numbers in [0, 1], got {value}')
        for name in ('history', 'executed_points', 'seams'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')


@dataclass(frozen=True)
class ChunkPath:
    """The gripper-tip path of one predicted chunk."""

    request_id: int
    points: np.ndarray  # [T, 3] tip positions, in the chunk's step order
    colors: np.ndarray  # [T, 4] RGBA: due_rgba for steps already due, TIME_GRADIENT after
    due_ns: np.ndarray  # [T] int64 ROS time each step is due
    num_due: int  # leading steps whose due time has passed


@dataclass(frozen=True)
class Seam:
    """Where a new chunk took over: the executed tip and the new plan's tip at that moment."""

    stamp_ns: int
    executed: np.ndarray  # [3]
    planned: np.ndarray  # [3]

    @property
    def jump_m(self) -> float:
        return float(np.linalg.norm(self.planned - self.executed))


def time_colors(fraction: np.ndarray) -> np.ndarray:
    """RGB along TIME_GRADIENT for fractions in [0, 1] (clipped): [N] -> [N, 3]."""
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0) * (len(TIME_GRADIENT) - 1)
    lo = np.minimum(f.astype(np.int64), len(TIME_GRADIENT) - 2)  # [N] segment index
    w = (f - lo)[:, None]  # [N, 1]
    return (1.0 - w) * TIME_GRADIENT[lo] + w * TIME_GRADIENT[lo + 1]


def joint_columns(names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Column index in `names` of each of `wanted`; ChunkGeometryError names the missing ones."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ChunkGeometryError(f'joints {missing} are needed for forward kinematics but the '
                                 f'message only has {list(names)}')
    return np.array([index[n] for n in wanted], dtype=np.int64)


def chunk_path(fk: ForwardKinematics, chunk: ActionChunkData, now_ns: int,
               style: MarkerStyle, alpha: float = 1.0) -> ChunkPath:
    """Tip path of `chunk`, steps due at or before `now_ns` in style.due_rgba, the rest by time."""
    q = chunk.positions[:, joint_columns(chunk.joint_names, fk.joint_names)]  # [T, J_fk]
    points = fk.tip_positions(q, TIP_LINK)  # [T, 3]
    steps = np.arange(chunk.num_steps)
    due_ns = chunk.stamp_ns + np.round(steps * chunk.dt * 1e9).astype(np.int64)  # [T]
    num_due = int(np.count_nonzero(due_ns <= now_ns))
    colors = np.empty((chunk.num_steps, 4))
    colors[:, :3] = time_colors(steps / max(chunk.num_steps - 1, 1))
    colors[:, 3] = alpha
    colors[:num_due] = style.due_rgba
    return ChunkPath(chunk.request_id, points, colors, due_ns, num_due)


def planned_at(chunk: ActionChunkData, t_ns: int) -> np.ndarray:
    """The chunk's joint vector at time t (linear between steps, held at the ends): [J]."""
    t = (t_ns - chunk.stamp_ns) / 1e9 / chunk.dt  # fractional step index
    steps = np.arange(chunk.num_steps, dtype=np.float64)
    return np.array([np.interp(t, steps, chunk.positions[:, j])
                     for j in range(chunk.positions.shape[1])])


def ghost_segments(fk: ForwardKinematics, q: np.ndarray) -> np.ndarray:
    """Stick figure of the arm at q [J]: one segment per URDF joint, parent -> child link origin.

    Returns [S, 2, 3]. Segments of zero length (coincident frames) are dropped.
    """
    poses = fk.link_poses(np.asarray(q, dtype=np.float64))
    segs = [(poses[j.parent][:3, 3], poses[j.child][:3, 3]) for j in fk.model.joints]
    out = np.array([s for s in segs if np.linalg.norm(s[1] - s[0]) > 1e-6])  # [S, 2, 3]
    return out.reshape(-1, 2, 3)


@dataclass
class ChunkScene:
    """Everything on screen at one moment."""

    chunks: list[ChunkPath]  # oldest first; the last one is the newest chunk
    executed: np.ndarray  # [N, 3] executed tip path, oldest first
    seams: list[Seam]
    ghost: np.ndarray  # [S, 2, 3] the arm at the newest chunk's last step ([0, 2, 3] if none)


@dataclass
class ChunkVisualizerState:
    """Accumulates chunks, executed actions and seams; `scene(now)` gives what to draw.

    Not thread-safe: the node calls it from one callback group.
    """

    fk: ForwardKinematics
    style: MarkerStyle = field(default_factory=MarkerStyle)

    def __post_init__(self) -> None:
        self._chunks: deque[ActionChunkData] = deque(maxlen=self.style.history)
        self._executed: deque[np.ndarray] = deque(maxlen=self.style.executed_points)
        self._seams: deque[Seam] = deque(maxlen=self.style.seams)
        self._last_executed: tuple[int, np.ndarray] | None = None  # (stamp, tip [3])

    def add_chunk(self, chunk: ActionChunkData, now_ns: int) -> Seam | None:
        """Record a newly accepted chunk; returns the seam when an executed path exists."""
        q_now = planned_at(chunk, now_ns)[joint_columns(chunk.joint_names, self.fk.joint_names)]
        self._chunks.append(chunk)
        if self._last_executed is None:
            return None
        seam = Seam(now_ns, self._last_executed[1].copy(), self.fk.tip_positions(q_now))
        self._seams.append(seam)
        return seam

    def add_executed(self, names: Sequence[str], positions: np.ndarray, stamp_ns: int) -> None:
        """Record one executed action (joint names and positions as in the JointState)."""
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (len(names),):
            raise ChunkGeometryError(f'{len(names)} joint names but positions of shape {q.shape}')
        tip = self.fk.tip_positions(q[joint_columns(names, self.fk.joint_names)])
        self._executed.append(tip)
        self._last_executed = (stamp_ns, tip)

    def scene(self, now_ns: int) -> ChunkScene:
        n = len(self._chunks)
        # Older chunks fade: the newest is opaque, the oldest kept one at 1 / history.
        paths = [chunk_path(self.fk, c, now_ns, self.style, alpha=(i + 1) / n)
                 for i, c in enumerate(self._chunks)]
        if self._chunks:
            last = self._chunks[-1]
            ghost = ghost_segments(
                self.fk, last.positions[-1, joint_columns(last.joint_names, self.fk.joint_names)])
        else:
            ghost = np.zeros((0, 2, 3))
        executed = np.array(self._executed).reshape(-1, 3)
        return ChunkScene(paths, executed, list(self._seams), ghost)
