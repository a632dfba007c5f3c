"""smolvla_msgs/ActionChunk <-> ActionChunkData."""
from __future__ import annotations

import numpy as np
from smolvla_msgs.msg import ActionChunk

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.ros.buffers import to_array, view
from smolvla_ros.ros.errors import LengthMismatchError
from smolvla_ros.ros.time import ns_to_stamp, stamp_to_ns


def chunk_to_msg(chunk: ActionChunkData) -> ActionChunk:
    """The message for a validated chunk (positions row-major, one copy)."""
    msg = ActionChunk()
    msg.header.stamp = ns_to_stamp(chunk.stamp_ns)
    msg.request_id = chunk.request_id
    msg.joint_names = list(chunk.joint_names)
    msg.dt = chunk.dt
    msg.num_steps = chunk.num_steps
    msg.positions = to_array(chunk.positions, np.float32)  # [T*J], row-major
    msg.inference_ms = chunk.inference_ms
    msg.policy_id = chunk.policy_id
    return msg


def msg_to_chunk(msg: ActionChunk) -> ActionChunkData:
    """An ActionChunkData whose positions are a zero-copy [T, J] view of the message.

    Raises LengthMismatchError when len(positions) != num_steps x len(joint_names), and
    core.types.InvalidChunkError for the rest (dt <= 0, non-finite values, duplicate names).
    """
    names = tuple(msg.joint_names)
    flat = view(msg.positions, np.float32)  # [T*J]
    steps = int(msg.num_steps)
    if flat.size != steps * len(names) or not names:
        raise LengthMismatchError(
            f'ActionChunk has {flat.size} positions for num_steps {steps} x {len(names)} joints '
            f'{list(names)} = {steps * len(names)}')
    return ActionChunkData(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        request_id=int(msg.request_id),
        joint_names=names,
        dt=float(msg.dt),
        positions=flat.reshape(steps, len(names)),  # [T, J]
        inference_ms=float(msg.inference_ms),
        policy_id=msg.policy_id,
    )
