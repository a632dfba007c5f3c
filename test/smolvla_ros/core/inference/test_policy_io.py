"""Policy request conversion (ROS units -> dataset batch -> chunk in rad), the inference worker."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from smolvla_ros.core.inference.inference_worker import InferenceWorker, WorkerConfig
from smolvla_ros.core.inference.policy_io import (
    PolicyIO,
    PolicyRequestError,
    RenameMapError,
    parse_rename_map,
    positional_rename_map,
)
from smolvla_ros.core.robot.contract import contract_from_dict
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.core.types import ObservationData
from smolvla_ros.paths import config_path

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


def _contract():
    return contract_from_dict({
        'fps': 25, 'joints': [{'name': j, 'unit': 'range_0_100' if j == 'gripper' else 'degrees'}
                              for j in JOINTS],
        'state': {'topic': 'joint_states'}, 'action': {'topic': 'joint_commands'},
        'cameras': {c: {'topic': f'cameras/{c}/image_raw/compressed', 'width': 8, 'height': 6,
                        'max_age_s': 0.1} for c in ('front', 'wrist')}}, source='test.yaml')


@pytest.fixture
def io() -> PolicyIO:
    contract = _contract()
    units = DatasetUnits.from_contract(
        contract, config_path('calibration', 'so101_follower_example.json'))
    return PolicyIO(contract, units, parse_rename_map('front=camera1, wrist=camera2', contract))


def _obs(joint_order=JOINTS, leftover=None, delay=0) -> ObservationData:
    state = {j: 0.1 * (i + 1) for i, j in enumerate(JOINTS)}
    images = {'front': np.full((6, 8, 3), 255, np.uint8), 'wrist': np.zeros((6, 8, 3), np.uint8)}
    return ObservationData(
        stamp_ns=5_000_000_000, request_id=7, task='pick', joint_names=joint_order,
        state=[state[j] for j in joint_order], camera_names=('front', 'wrist'), images=images,
        inference_delay_steps=delay,
        leftover=np.zeros((0, 6)) if leftover is None else leftover)


def test_rename_map_forms_and_errors() -> None:
    contract = _contract()
    assert parse_rename_map('[front=camera1]', contract) == {
        'front': 'observation.images.camera1', 'wrist': 'observation.images.wrist'}
    assert parse_rename_map({'observation.images.wrist': 'observation.images.top'}, contract)[
        'wrist'] == 'observation.images.top'
    with pytest.raises(RenameMapError, match="camera 'side', which is not in the contract"):
        parse_rename_map('side=camera1', contract)
    with pytest.raises(RenameMapError, match='must be "from=to"'):
        parse_rename_map('front:camera1', contract)
    with pytest.raises(RenameMapError, match='same feature'):
        parse_rename_map('front=camera1,wrist=camera1', contract)


def test_positional_rename_map_pairs_in_contract_order() -> None:
    contract = _contract()
    assert positional_rename_map(contract, ['observation.images.camera1', 'camera2']) == {
        'front': 'observation.images.camera1', 'wrist': 'observation.images.camera2'}
    with pytest.raises(RenameMapError, match='2 cameras .* 3 image features'):
        positional_rename_map(contract, ['camera1', 'camera2', 'camera3'])


def test_batch_is_in_dataset_units_contract_order_and_renamed(io) -> None:
    shuffled = tuple(reversed(JOINTS))
    batch = io.batch(_obs(shuffled))
    state = batch['observation.state']
    assert state.shape == (1, 6) and state.dtype == np.float32
    rad = np.array([0.1 * (i + 1) for i in range(6)])
    np.testing.assert_allclose(state[0], io.units.to_dataset(rad), rtol=1e-6)
    np.testing.assert_allclose(state[0, :5], np.rad2deg(rad[:5]), rtol=1e-6)  # body: degrees
    assert batch['observation.images.camera1'].shape == (1, 3, 6, 8)
    assert batch['observation.images.camera1'].max() == 1.0
    assert batch['observation.images.camera2'].max() == 0.0
    assert batch['task'] == ['pick']


def test_request_with_other_cameras_names_them(io) -> None:
    obs = _obs()
    bad = ObservationData(stamp_ns=1, request_id=1, task='', joint_names=JOINTS,
                          state=obs.state, camera_names=('front', 'side'),
                          images={'front': obs.images['front'], 'side': obs.images['front']})
    with pytest.raises(PolicyRequestError, match=r"missing \['wrist'\], extra \['side'\]"):
        io.batch(bad)


def test_chunk_round_trips_units_and_keeps_stamp_and_id(io) -> None:
    obs = _obs()
    rad = np.linspace(-0.5, 0.5, 4 * 6).reshape(4, 6)  # [T, J]
    chunk = io.chunk(obs, io.units.to_dataset(rad)[None], inference_ms=3.0, policy_id='p')
    assert chunk.stamp_ns == obs.stamp_ns and chunk.request_id == 7
    assert chunk.dt == pytest.approx(1 / 25) and chunk.joint_names == JOINTS
    np.testing.assert_allclose(chunk.positions, rad, atol=1e-5)
    with pytest.raises(PolicyRequestError, match='policy returned .* non-finite'):
        io.chunk(obs, np.full((4, 6), np.nan), inference_ms=0, policy_id='')
    with pytest.raises(PolicyRequestError, match=r'policy returned .*\(0, 6\).* \[T >= 1, 6\]'):
        io.chunk(obs, np.zeros((0, 6)), inference_ms=0, policy_id='')
    with pytest.raises(PolicyRequestError, match=r'policy returned .*\(2, 4, 6\).* \[T >= 1, 6\]'):
        io.chunk(obs, np.zeros((2, 4, 6)), inference_ms=0, policy_id='')


def test_rtc_inputs_convert_and_clip_the_tail(io) -> None:
    tail = np.tile(np.linspace(0.0, 0.5, 6), (12, 1)).astype(np.float32)  # [12, J] rad
    prev, delay = io.rtc_inputs(_obs(leftover=tail, delay=15), chunk_size=10)
    assert prev.shape == (1, 10, 6) and delay == 10
    np.testing.assert_allclose(prev[0], io.units.to_dataset(tail[:10]), rtol=1e-5)
    assert io.rtc_inputs(_obs(), chunk_size=10) == (None, None)


def _counts(worker: InferenceWorker) -> tuple[int, int, int]:
    """(answered, failed, latency samples) from one stats() snapshot."""
    stats = worker.stats()
    return stats.answered, stats.failed, stats.latency.count


def test_worker_runs_predict_in_its_own_thread_and_adds_latency(io) -> None:
    seen = {}

    def predict(batch, prev, delay):
        seen['thread'] = threading.current_thread().name
        seen['prev'], seen['delay'] = prev, delay
        return np.repeat(batch['observation.state'][:, None], 5, axis=1)  # [1, 5, J] hold

    worker = InferenceWorker(predict, io, WorkerConfig(chunk_size=5, policy_id='hold',
                                                       extra_latency_ms=30.0))
    try:
        chunk = worker.answer(_obs())
    finally:
        worker.shutdown()
    assert seen['thread'].startswith('inference') and seen['prev'] is None
    assert chunk.num_steps == 5 and chunk.policy_id == 'hold'
    np.testing.assert_allclose(chunk.positions[3], _obs().state, atol=1e-5)
    assert chunk.inference_ms >= 30.0
    assert _counts(worker) == (1, 0, 1)


def test_worker_counts_failures_and_reraises(io) -> None:
    def broken(batch, prev, delay):
        return np.zeros((5, 3))  # wrong joint count

    worker = InferenceWorker(broken, io, WorkerConfig(chunk_size=5))
    try:
        with pytest.raises(PolicyRequestError, match=r'\(5, 3\).* must hold 6 joints'):
            worker.answer(_obs())
    finally:
        worker.shutdown()
    assert _counts(worker)[:2] == (0, 1)


def _gated_predict(gate: threading.Event, log: list[str]):
    """A hold-the-state predict that waits for ``gate`` and logs start/end (one at a time?)."""
    def predict(batch, prev, delay):
        log.append('start')
        assert gate.wait(30.0), 'the test never opened the gate'
        log.append('end')
        return np.repeat(batch['observation.state'][:, None], 5, axis=1)  # [1, 5, J]
    return predict


def test_submit_returns_at_once_runs_in_order_and_counts_before_the_result(io) -> None:
    gate, log = threading.Event(), []
    worker = InferenceWorker(_gated_predict(gate, log), io, WorkerConfig(chunk_size=5))
    try:
        first, second = worker.submit(_obs()), worker.submit(_obs())
        assert not first.done() and not second.done()  # predict is held at the gate
        assert _counts(worker) == (0, 0, 0)
        gate.set()
        chunks = [first.result(timeout=30.0), second.result(timeout=30.0)]
        # counted in the inference thread before each future completed: no wait needed here
        assert _counts(worker) == (2, 0, 2)
    finally:
        gate.set()
        worker.shutdown()
    assert log == ['start', 'end', 'start', 'end']  # one request at a time, in order
    assert all(c.num_steps == 5 for c in chunks)


def test_submit_failure_is_in_the_future_and_counted(io) -> None:
    def broken(batch, prev, delay):
        return np.zeros((5, 3))  # wrong joint count

    worker = InferenceWorker(broken, io, WorkerConfig(chunk_size=5))
    try:
        exc = worker.submit(_obs()).exception(timeout=30.0)
    finally:
        worker.shutdown()
    assert isinstance(exc, PolicyRequestError)
    assert _counts(worker) == (0, 1, 0)


def test_submit_after_shutdown_raises_and_counts_a_failure(io) -> None:
    worker = InferenceWorker(lambda *a: np.zeros((5, 6)), io, WorkerConfig(chunk_size=5))
    worker.shutdown()
    with pytest.raises(RuntimeError):
        worker.submit(_obs())
    assert _counts(worker)[:2] == (0, 1)


def test_reset_statistics_forgets_warm_up_requests(io) -> None:
    def hold(batch, prev, delay):
        return np.repeat(batch['observation.state'][:, None], 5, axis=1)

    worker = InferenceWorker(hold, io, WorkerConfig(chunk_size=5))
    try:
        worker.answer(_obs())
        worker.reset_statistics()
        assert _counts(worker) == (0, 0, 0)
        worker.answer(_obs())
    finally:
        worker.shutdown()
    assert _counts(worker) == (1, 0, 1)
