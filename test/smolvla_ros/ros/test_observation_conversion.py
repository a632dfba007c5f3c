"""smolvla_msgs/Observation <-> ObservationData, JPEG and raw."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.types import InvalidObservationError, ObservationData
from smolvla_ros.ros.errors import (
    ConversionError,
    ImageDecodeError,
    LengthMismatchError,
    UnknownEncodingError,
)
from smolvla_ros.ros.image import numpy_to_image
from smolvla_ros.ros.observation import ImageEncoding, msg_to_observation, observation_to_msg
from smolvla_ros.ros.synthetic import synthetic_observation, synthetic_scene


def _obs(**overrides) -> ObservationData:
    base = synthetic_observation(request_id=11, stamp_ns=5_000_000_123, num_cameras=2,
                                 image_size=64)
    fields = dict(stamp_ns=base.stamp_ns, request_id=base.request_id, task='stack the cubes',
                  joint_names=base.joint_names, state=base.state,
                  camera_names=base.camera_names, images=dict(base.images),
                  inference_delay_steps=3,
                  leftover=np.arange(24, dtype=np.float32).reshape(4, 6) / 10)
    fields.update(overrides)
    return ObservationData(**fields)


def _assert_same_except_images(a: ObservationData, b: ObservationData) -> None:
    assert (a.stamp_ns, a.request_id, a.task) == (b.stamp_ns, b.request_id, b.task)
    assert a.joint_names == b.joint_names and a.camera_names == b.camera_names
    np.testing.assert_array_equal(a.state, b.state)
    assert a.inference_delay_steps == b.inference_delay_steps
    np.testing.assert_array_equal(a.leftover, b.leftover)


def test_raw_round_trip_is_exact() -> None:
    obs = _obs()
    msg = observation_to_msg(obs, ImageEncoding('raw'))
    assert len(msg.raw_images) == 2 and len(msg.images) == 0
    assert msg.raw_images[0].encoding == 'rgb8' and msg.raw_images[1].header.frame_id == 'wrist'
    assert msg.leftover_steps == 4 and len(msg.leftover_positions) == 24
    back = msg_to_observation(msg)
    _assert_same_except_images(obs, back)
    for name in obs.camera_names:
        np.testing.assert_array_equal(back.images[name], obs.images[name])


def test_jpeg_round_trip_is_close() -> None:
    obs = _obs()
    msg = observation_to_msg(obs, ImageEncoding('jpeg', jpeg_quality=95))
    assert len(msg.images) == 2 and len(msg.raw_images) == 0
    assert msg.images[0].format == 'jpeg'
    assert msg.state.header.stamp == msg.header.stamp
    back = msg_to_observation(msg)
    _assert_same_except_images(obs, back)
    for name in obs.camera_names:
        err = np.abs(back.images[name].astype(np.int16) - obs.images[name])
        assert back.images[name].shape == (64, 64, 3)
        assert err.mean() < 8.0  # noise + 4:2:0 chroma on a small, edge-rich frame


def test_default_encoding_is_jpeg_q90() -> None:
    msg = observation_to_msg(_obs())
    assert len(msg.images) == 2 and len(msg.raw_images) == 0


def test_no_cameras_and_no_leftover() -> None:
    obs = _obs(camera_names=(), images={}, leftover=np.zeros((0, 6), np.float32))
    back = msg_to_observation(observation_to_msg(obs))
    assert back.camera_names == () and back.leftover.shape == (0, 6)


def test_raw_bgr_frames_from_a_camera_are_read_as_rgb() -> None:
    obs = _obs()
    msg = observation_to_msg(obs, ImageEncoding('raw'))
    front = obs.images['front']
    msg.raw_images[0] = numpy_to_image(np.ascontiguousarray(front[:, :, ::-1]), 'bgr8')
    np.testing.assert_array_equal(msg_to_observation(msg).images['front'], front)


def test_both_image_lists_filled_is_rejected() -> None:
    msg = observation_to_msg(_obs())
    msg.raw_images = observation_to_msg(_obs(), ImageEncoding('raw')).raw_images
    with pytest.raises(ConversionError, match=r'both images \(2\) and raw_images \(2\)'):
        msg_to_observation(msg)


def test_camera_count_mismatch_is_rejected() -> None:
    msg = observation_to_msg(_obs())
    msg.images = msg.images[:1]
    with pytest.raises(LengthMismatchError, match=r"2 cameras \['front', 'wrist'\].* 1 images"):
        msg_to_observation(msg)


def test_leftover_length_mismatch_is_rejected() -> None:
    msg = observation_to_msg(_obs())
    msg.leftover_steps = 5
    with pytest.raises(LengthMismatchError, match=r'24 values for leftover_steps 5 x 6 joints'):
        msg_to_observation(msg)


def test_state_without_positions_is_rejected() -> None:
    msg = observation_to_msg(_obs())
    msg.state.position = []
    with pytest.raises(LengthMismatchError, match='0 positions for 6 joints'):
        msg_to_observation(msg)


def test_corrupt_image_names_the_camera() -> None:
    msg = observation_to_msg(_obs())
    msg.images[1].data = msg.images[1].data[:100]
    with pytest.raises(ImageDecodeError, match="camera 'wrist': truncated JPEG"):
        msg_to_observation(msg)


def test_unknown_raw_encoding_names_the_camera() -> None:
    msg = observation_to_msg(_obs(), ImageEncoding('raw'))
    msg.raw_images[0].encoding = 'rgba8'
    with pytest.raises(UnknownEncodingError, match="camera 'front'.*'rgba8'"):
        msg_to_observation(msg)


def test_non_finite_state_raises_the_core_error() -> None:
    msg = observation_to_msg(_obs())
    msg.state.position[0] = float('nan')
    with pytest.raises(InvalidObservationError, match='non-finite'):
        msg_to_observation(msg)


@pytest.mark.parametrize('kwargs, match', [
    ({'format': 'png'}, 'image format'), ({'jpeg_quality': 0}, 'jpeg_quality'),
    ({'jpeg_quality': 101}, 'jpeg_quality'),
])
def test_image_encoding_is_validated(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ImageEncoding(**kwargs)


def test_synthetic_scene_is_deterministic_and_not_flat() -> None:
    a, b = synthetic_scene(64, 80, seed=4), synthetic_scene(64, 80, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (64, 80, 3) and a.dtype == np.uint8
    assert a.std() > 20  # gradients and shapes, not a flat frame
    assert not np.array_equal(a, synthetic_scene(64, 80, seed=5))
    with pytest.raises(ValueError, match='at least 8x8'):
        synthetic_scene(4, 80)


def test_parallel_decode_matches_sequential_and_names_the_camera() -> None:
    from concurrent.futures import ThreadPoolExecutor

    msg = observation_to_msg(_obs())
    with ThreadPoolExecutor(2) as pool:
        encoded = observation_to_msg(_obs(), executor=pool)
        assert [bytes(m.data) for m in encoded.images] == [bytes(m.data) for m in msg.images]
        assert [m.header.frame_id for m in encoded.images] == ['front', 'wrist']
        parallel = msg_to_observation(msg, pool)
        sequential = msg_to_observation(msg)
        assert list(parallel.images) == ['front', 'wrist']
        for name in sequential.camera_names:
            np.testing.assert_array_equal(parallel.images[name], sequential.images[name])
        msg.images[0].data = msg.images[0].data[:100]
        with pytest.raises(ImageDecodeError, match="camera 'front': truncated JPEG"):
            msg_to_observation(msg, pool)


def test_codec_pool_threads_block_shutdown_signals() -> None:
    import signal

    from smolvla_ros.ros.observation import codec_pool

    assert codec_pool(1) is None
    pool = codec_pool(2)
    try:
        blocked = pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result()
    finally:
        pool.shutdown()
    assert {signal.SIGINT, signal.SIGTERM} <= set(blocked)
