"""core/visualization/chunk_log.py: the ROS-free containers that plot-chunks draws."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.core.visualization.chunk_log import ChunkLog, ChunkLogError, JointTrack

JOINTS = ('a', 'b')


def _chunk(stamp_ns: int, joints: tuple[str, ...] = JOINTS) -> ActionChunkData:
    return ActionChunkData(stamp_ns, 1, joints, 0.1, np.zeros((3, len(joints)), np.float32))


def test_track_from_rows_stacks_rows_and_keeps_names_when_empty() -> None:
    track = JointTrack.from_rows(JOINTS, [5, 7], [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert track.stamps_ns.dtype == np.int64 and track.stamps_ns.tolist() == [5, 7]
    assert track.positions.shape == (2, 2)
    empty = JointTrack.from_rows(JOINTS, [], [])
    assert empty.names == JOINTS and empty.stamps_ns.size == 0


def test_t0_is_the_earliest_of_chunks_and_tracks() -> None:
    executed = JointTrack.from_rows(JOINTS, [40], [np.zeros(2)])
    measured = JointTrack.from_rows(JOINTS, [30], [np.zeros(2)])
    assert ChunkLog([_chunk(50)], executed, measured).t0_ns() == 30
    assert ChunkLog([_chunk(20)], executed, measured).t0_ns() == 20
    with pytest.raises(ChunkLogError, match='nothing to plot'):
        ChunkLog([]).t0_ns()


def test_joint_order_prefers_the_chunks_then_the_tracks() -> None:
    executed = JointTrack.from_rows(('x',), [1], [np.zeros(1)])
    assert ChunkLog([_chunk(1, ('b', 'a'))], executed).joint_order() == ('b', 'a')
    assert ChunkLog([], executed).joint_order() == ('x',)
    assert ChunkLog([], measured=JointTrack(('m',))).joint_order() == ('m',)
    assert ChunkLog([]).joint_order() == ()
