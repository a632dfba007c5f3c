"""smolvla_msgs/ActionChunk <-> ActionChunkData."""
from __future__ import annotations

import array

import numpy as np
import pytest
from smolvla_msgs.msg import ActionChunk

from smolvla_ros.core.types import ActionChunkData, InvalidChunkError
from smolvla_ros.ros.chunk import chunk_to_msg, msg_to_chunk
from smolvla_ros.ros.errors import LengthMismatchError

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


def _chunk() -> ActionChunkData:
    positions = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    return ActionChunkData(stamp_ns=1_700_000_000_123_456_789, request_id=2**64 - 1,
                           joint_names=JOINTS, dt=1 / 30, positions=positions,
                           inference_ms=12.5, policy_id='smolvla_base')


def test_round_trip_is_exact() -> None:
    chunk = _chunk()
    msg = chunk_to_msg(chunk)
    assert msg.num_steps == 50 and len(msg.positions) == 300
    assert isinstance(msg.positions, array.array) and msg.positions.typecode == 'f'
    back = msg_to_chunk(msg)
    assert back.stamp_ns == chunk.stamp_ns and back.request_id == chunk.request_id
    assert back.joint_names == JOINTS and back.dt == chunk.dt
    assert back.policy_id == 'smolvla_base' and back.inference_ms == 12.5
    np.testing.assert_array_equal(back.positions, chunk.positions)


def test_row_major_layout() -> None:
    positions = np.arange(6, dtype=np.float32).reshape(3, 2)  # [T=3, J=2]
    msg = chunk_to_msg(ActionChunkData(0, 1, ('a', 'b'), 0.1, positions))
    assert list(msg.positions) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_read_is_a_view_on_the_message() -> None:
    msg = chunk_to_msg(_chunk())
    back = msg_to_chunk(msg)
    assert np.shares_memory(back.positions, np.frombuffer(msg.positions, np.float32))


def test_length_mismatch_names_the_counts() -> None:
    msg = chunk_to_msg(_chunk())
    msg.num_steps = 49
    with pytest.raises(LengthMismatchError, match=r'300 positions for num_steps 49 x 6 joints'):
        msg_to_chunk(msg)


def test_empty_chunk_is_rejected() -> None:
    with pytest.raises(LengthMismatchError):
        msg_to_chunk(ActionChunk())


def test_invalid_content_raises_the_core_error() -> None:
    msg = chunk_to_msg(_chunk())
    msg.dt = 0.0
    with pytest.raises(InvalidChunkError, match='dt must be'):
        msg_to_chunk(msg)
    msg = chunk_to_msg(_chunk())
    msg.positions[7] = float('nan')
    with pytest.raises(InvalidChunkError, match=r'non-finite value at index \[1, 1\]'):
        msg_to_chunk(msg)
