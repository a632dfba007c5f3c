"""ActionChunkData / ObservationData: validation at construction, with the offending values."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.types import (
    ActionChunkData,
    InvalidChunkError,
    InvalidObservationError,
    ObservationData,
)

JOINTS = ('a', 'b', 'c')


def _chunk(**overrides) -> ActionChunkData:
    fields = dict(stamp_ns=1_000_000_000, request_id=7, joint_names=JOINTS, dt=0.1,
                  positions=np.arange(12, dtype=np.float64).reshape(4, 3))
    fields.update(overrides)
    return ActionChunkData(**fields)


def _obs(**overrides) -> ObservationData:
    fields = dict(stamp_ns=5, request_id=1, task='t', joint_names=JOINTS, state=[0.1, 0.2, 0.3],
                  camera_names=('front',), images={'front': np.zeros((4, 6, 3), np.uint8)})
    fields.update(overrides)
    return ObservationData(**fields)


def test_chunk_normalises_dtypes_and_times() -> None:
    chunk = _chunk()
    assert chunk.positions.dtype == np.float32
    assert (chunk.num_steps, chunk.num_joints) == (4, 3)
    assert chunk.joint_names == JOINTS
    assert chunk.action_time_ns(0) == 1_000_000_000
    assert chunk.action_time_ns(3) == 1_300_000_000
    assert chunk.end_ns == 1_400_000_000
    assert chunk.dt_ns == 100_000_000


def test_chunk_keeps_float32_array_without_copy() -> None:
    positions = np.ones((2, 3), np.float32)
    assert _chunk(positions=positions).positions is positions


@pytest.mark.parametrize('overrides, match', [
    ({'positions': np.zeros((4, 2))}, r'shape \[T >= 1, 3\].*got \(4, 2\)'),
    ({'positions': np.zeros((0, 3))}, r'got \(0, 3\)'),
    ({'positions': np.zeros(3)}, r'got \(3,\)'),
    ({'positions': np.array([[0, np.nan, 0]])}, r'non-finite value at index \[0, 1\]'),
    ({'dt': 0.0}, 'dt must be'),
    ({'dt': float('inf')}, 'dt must be'),
    ({'stamp_ns': -1}, 'stamp_ns must be in'),
    ({'stamp_ns': 1.5}, 'stamp_ns must be an int'),
    ({'request_id': 2**64}, 'request_id must be in'),
    ({'joint_names': ('a', 'a', 'b')}, r"duplicates: \['a'\]"),
    ({'joint_names': 'abc'}, 'sequence of names'),
    ({'joint_names': (), 'positions': np.zeros((1, 0))}, 'joint_names is empty'),
    ({'inference_ms': -1.0}, 'inference_ms'),
])
def test_chunk_rejects_bad_fields(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidChunkError, match=match):
        _chunk(**overrides)


def test_chunk_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        _chunk(dt=-1.0)


def test_observation_defaults_and_image_order() -> None:
    images = {'wrist': np.ones((2, 2, 3), np.uint8), 'front': np.zeros((2, 2, 3), np.uint8)}
    obs = _obs(camera_names=('front', 'wrist'), images=images)
    assert obs.state.dtype == np.float64
    assert list(obs.images) == ['front', 'wrist']  # ordered as camera_names
    assert obs.images['wrist'] is images['wrist']
    assert obs.leftover.shape == (0, 3) and obs.leftover.dtype == np.float32
    assert obs.inference_delay_steps == 0
    with pytest.raises(TypeError):
        obs.images['front'] = images['front']  # read-only mapping


def test_observation_without_cameras() -> None:
    obs = _obs(camera_names=(), images={})
    assert obs.images == {} and obs.num_joints == 3


@pytest.mark.parametrize('overrides, match', [
    ({'state': [0.0, 1.0]}, r'state must have shape \[3\].*got \(2,\)'),
    ({'state': [0.0, np.inf, 1.0]}, 'non-finite'),
    ({'images': {}}, r"missing \['front'\], extra \[\]"),
    ({'images': {'front': np.zeros((2, 2, 3), np.uint8), 'side': np.zeros((2, 2, 3), np.uint8)}},
     r"missing \[\], extra \['side'\]"),
    ({'images': {'front': np.zeros((4, 6, 3), np.float32)}}, 'uint8'),
    ({'images': {'front': np.zeros((4, 6), np.uint8)}}, r'\[H, W, 3\].*got \(4, 6\)'),
    ({'images': {'front': np.zeros((4, 6, 4), np.uint8)}}, r'got \(4, 6, 4\)'),
    ({'leftover': np.zeros((2, 2))}, r'leftover must have shape \[n, 3\], got \(2, 2\)'),
    ({'leftover': np.full((1, 3), np.nan)}, 'non-finite'),
    ({'inference_delay_steps': -1}, 'inference_delay_steps'),
    ({'task': None}, 'task must be a str'),
    ({'camera_names': ('front', 'front')}, 'duplicates'),
])
def test_observation_rejects_bad_fields(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidObservationError, match=match):
        _obs(**overrides)
