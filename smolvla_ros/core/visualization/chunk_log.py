"""What ``smolvla-ros plot-chunks`` draws: predicted chunks, the executed command, measured angles.

ROS-free containers filled from a bag (cli/plot_chunks.py), from a live recording
(nodes/chunk_visualizer.record_live) or from the demo's simulated episodes (cli/demo.py), and
drawn by one renderer (cli/plot_chunks.render_chunk_plot).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smolvla_ros.core.types import ActionChunkData


class ChunkLogError(ValueError):
    """A bag or recording that holds no plottable chunks (missing topics, wrong types, bad data)."""


@dataclass
class JointTrack:
    """A joint-position stream: stamps [N] int64 ns and positions [N, J] rad."""

    names: tuple[str, ...] = ()
    stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @classmethod
    def from_rows(cls, names: tuple[str, ...], stamps: list[int],
                  rows: list[np.ndarray]) -> JointTrack:
        if not rows:
            return cls(names)
        return cls(names, np.asarray(stamps, np.int64), np.vstack(rows))  # [N, J]


@dataclass
class ChunkLog:
    """Accepted chunks, the executed command and the measured angles of one run."""

    chunks: list[ActionChunkData]
    executed: JointTrack = field(default_factory=JointTrack)
    measured: JointTrack = field(default_factory=JointTrack)
    markers_ns: list[int] = field(default_factory=list)  # vertical lines (e.g. episode starts)

    def t0_ns(self) -> int:
        stamps = [c.stamp_ns for c in self.chunks]
        for track in (self.executed, self.measured):
            if track.stamps_ns.size:
                stamps.append(int(track.stamps_ns[0]))
        if not stamps:
            raise ChunkLogError('nothing to plot: no chunks and no executed actions')
        return min(stamps)

    def joint_order(self) -> tuple[str, ...]:
        """The chunks' joint order, else the executed or measured stream's."""
        if self.chunks:
            return self.chunks[0].joint_names
        return self.executed.names or self.measured.names
