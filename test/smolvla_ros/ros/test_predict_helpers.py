"""null_answer and check_answer: the null server's work and the probe's contract check."""
from __future__ import annotations

import numpy as np
import pytest
from smolvla_msgs.srv import PredictChunk

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.ros.observation import ImageEncoding, observation_to_msg
from smolvla_ros.ros.predict import (
    AnswerError,
    NullPolicyConfig,
    ProbeConfig,
    check_answer,
    chunk_answer,
    failed_answer,
    null_answer,
    stamp_request,
)
from smolvla_ros.ros.synthetic import SO101_JOINTS, synthetic_observation
from smolvla_ros.ros.time import stamp_to_ns


def _request(image_format: str = 'jpeg') -> PredictChunk.Request:
    obs = synthetic_observation(request_id=3, stamp_ns=2_000_000_001, num_cameras=2,
                                image_size=32)
    request = PredictChunk.Request()
    request.observation = observation_to_msg(obs, ImageEncoding(image_format))
    return request


@pytest.mark.parametrize('image_format', ['jpeg', 'raw'])
@pytest.mark.parametrize('decode', [True, False])
def test_null_answer_holds_the_observed_state(image_format: str, decode: bool) -> None:
    request = _request(image_format)
    config = NullPolicyConfig(chunk_size=7, fps=20.0, decode_images=decode, policy_id='nil')
    response = null_answer(request.observation, config)
    assert response.success, response.message
    chunk = check_answer(response, request_id=3, stamp_ns=2_000_000_001, joint_names=SO101_JOINTS,
                         chunk_size=7)
    state = np.asarray(request.observation.state.position, dtype=np.float32)
    assert chunk.positions.shape == (7, 6)
    np.testing.assert_array_equal(chunk.positions, np.tile(state, (7, 1)))
    assert chunk.dt == pytest.approx(0.05) and chunk.policy_id == 'nil'
    assert chunk.inference_ms > 0.0


def test_null_answer_reports_a_corrupt_image() -> None:
    request = _request()
    request.observation.images[0].data = request.observation.images[0].data[:50]
    response = null_answer(request.observation, NullPolicyConfig())
    assert not response.success
    assert response.message.startswith("ImageDecodeError: camera 'front': truncated JPEG")
    assert response.chunk.request_id == 3  # echoed so the client can match the failure
    with pytest.raises(AnswerError, match='request 3: server reported failure'):
        check_answer(response, request_id=3, stamp_ns=2_000_000_001, joint_names=SO101_JOINTS)


def test_failed_answer_names_the_error_and_echoes_id_and_stamp() -> None:
    observation = _request().observation
    response = failed_answer(PredictChunk.Response(), observation, KeyError('front'))
    assert not response.success and response.message == "KeyError: 'front'"
    assert response.chunk.request_id == 3
    assert stamp_to_ns(response.chunk.header.stamp) == 2_000_000_001
    assert failed_answer(PredictChunk.Response(), observation, 'no cube').message == 'no cube'


def test_chunk_answer_passes_the_probe_check() -> None:
    chunk = ActionChunkData(stamp_ns=2_000_000_001, request_id=3, joint_names=SO101_JOINTS,
                            dt=0.05, positions=np.ones((4, 6), np.float32), policy_id='p')
    response = chunk_answer(PredictChunk.Response(), chunk)
    assert response.success
    got = check_answer(response, request_id=3, stamp_ns=2_000_000_001, joint_names=SO101_JOINTS,
                       chunk_size=4)
    np.testing.assert_array_equal(got.positions, chunk.positions)


def test_without_decoding_a_corrupt_image_goes_unnoticed_but_state_is_checked() -> None:
    request = _request()
    request.observation.images[0].data = request.observation.images[0].data[:50]
    assert null_answer(request.observation, NullPolicyConfig(decode_images=False)).success
    request.observation.state.position = [0.0]
    response = null_answer(request.observation, NullPolicyConfig(decode_images=False))
    assert not response.success and 'LengthMismatchError' in response.message


def _good_response() -> PredictChunk.Response:
    return null_answer(_request().observation, NullPolicyConfig(chunk_size=5))


@pytest.mark.parametrize('kwargs, match', [
    ({'request_id': 4}, 'request 4: answer carries request_id 3'),
    ({'stamp_ns': 2_000_000_000}, 'chunk stamp 2000000001 ns != observation stamp 2000000000 ns'),
    ({'joint_names': SO101_JOINTS[::-1]}, 'chunk joints'),
    ({'chunk_size': 50}, 'chunk has 5 steps, expected 50'),
])
def test_check_answer_names_the_broken_part(kwargs: dict, match: str) -> None:
    args = dict(request_id=3, stamp_ns=2_000_000_001, joint_names=SO101_JOINTS, chunk_size=5)
    args.update(kwargs)
    with pytest.raises(AnswerError, match=match):
        check_answer(_good_response(), **args)


def test_check_answer_rejects_a_malformed_chunk() -> None:
    response = _good_response()
    response.chunk.num_steps = 6
    with pytest.raises(AnswerError, match='malformed chunk: .* 30 positions for num_steps 6'):
        check_answer(response, request_id=3, stamp_ns=2_000_000_001, joint_names=SO101_JOINTS)


def test_stamp_request_updates_id_and_both_stamps() -> None:
    request = _request()
    stamp_request(request, 99, 7_000_000_005)
    obs = request.observation
    assert obs.request_id == 99
    assert (obs.header.stamp.sec, obs.header.stamp.nanosec) == (7, 5)
    assert obs.state.header.stamp == obs.header.stamp


@pytest.mark.parametrize('kwargs', [
    {'chunk_size': 0}, {'fps': 0.0}, {'fps': float('nan')}, {'decode_threads': 0}])
def test_null_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NullPolicyConfig(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    ({'count': 0}, 'count'), ({'image_size': 4}, 'image_size'), ({'jpeg_quality': 101}, '<= 100'),
    ({'num_cameras': -1}, 'num_cameras'), ({'wait_timeout_s': 0.0}, 'wait_timeout_s'),
    ({'expected_chunk_size': -1}, 'expected_chunk_size'),
])
def test_probe_config_is_validated(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ProbeConfig(**kwargs)
