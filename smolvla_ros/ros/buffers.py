"""Fast numpy <-> ``array.array`` transfers for the sequence fields of ROS messages.

rclpy stores unbounded numeric sequences (``uint8[]``, ``float32[]``, ``float64[]``) as
``array.array``. Its setters accept an ``array.array`` of the right typecode as is, but anything
else (a numpy array, ``bytes``) is checked and converted element by element in Python: ~100 ms for
one 512x512 RGB image. These helpers build the ``array.array`` with one memcpy, and read it back
as a zero-copy numpy view (``array.array`` exposes the buffer protocol).
"""
from __future__ import annotations

import array

import numpy as np

# array.array typecode for each numpy dtype we put into messages.
_TYPECODES = {np.dtype(np.uint8): 'B', np.dtype(np.float32): 'f', np.dtype(np.float64): 'd'}


def to_array(values: np.ndarray | bytes, dtype: np.dtype | type) -> array.array:
    """An ``array.array`` holding ``values`` cast to ``dtype`` (one copy, C order, flattened)."""
    dtype = np.dtype(dtype)
    out = array.array(_TYPECODES[dtype])
    if isinstance(values, (bytes, bytearray, memoryview)):
        if dtype != np.uint8:
            raise TypeError(f'raw bytes can only fill a uint8 sequence, not {dtype}')
        out.frombytes(values)
        return out
    flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)  # [N], no copy if already so
    out.frombytes(memoryview(flat).cast('B'))
    return out


def view(buffer: object, dtype: np.dtype | type) -> np.ndarray:
    """1-D numpy array of a message sequence field, zero-copy whenever the layout allows.

    An ``array.array`` of the matching typecode (what rclpy stores and deserializes) and bytes are
    viewed in place; a list, or an ``array.array`` of another typecode, is converted (one copy).
    """
    if isinstance(buffer, (bytes, bytearray, memoryview)):
        return np.frombuffer(buffer, dtype=dtype)
    return np.asarray(buffer, dtype=dtype)  # uses the buffer protocol: a view when types match
