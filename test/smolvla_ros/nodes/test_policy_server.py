"""policy_server in-process, tiny preset: answers, RTC requests, errors, mismatch at start, and
diagnostics that keep flowing on a single-threaded executor while requests wait on inference."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
pytest.importorskip('torch')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from executor_fixtures import Spin, wait_until  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from smolvla_msgs.srv import PredictChunk  # noqa: E402

from smolvla_ros.core.types import ObservationData  # noqa: E402
from smolvla_ros.nodes.policy_server import (  # noqa: E402
    PolicyServer,
    PolicySetupError,
    _preset_image_features,
)
from smolvla_ros.paths import config_path  # noqa: E402
from smolvla_ros.ros.buffers import to_array  # noqa: E402
from smolvla_ros.ros.chunk import msg_to_chunk  # noqa: E402
from smolvla_ros.ros.observation import observation_to_msg  # noqa: E402
from smolvla_ros.ros.time import stamp_to_ns  # noqa: E402

pytestmark = pytest.mark.ros
JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


def _contract(tmp_path) -> str:
    joints = '\n'.join(f'  - {{name: {j}, unit: degrees}}' for j in JOINTS[:5])
    cams = '\n'.join(f'  {c}: {{topic: cameras/{c}/image_raw/compressed, width: 32, height: 24, '
                     f'max_age_s: 0.2}}' for c in ('front', 'wrist'))
    path = tmp_path / 'contract.yaml'
    path.write_text(f'fps: 25\njoints:\n{joints}\n  - {{name: gripper, unit: range_0_100}}\n'
                    'state: {topic: joint_states}\naction: {topic: joint_commands}\n'
                    f'policy_image_size: null\ncameras:\n{cams}\n')
    return str(path)


def _server(context, contract: str, rename: str, extra_ms: float = 20.0,
            **params) -> PolicyServer:
    return PolicyServer(context=context, parameter_overrides=[
        *(Parameter(k, value=v) for k, v in params.items()),
        Parameter('checkpoint', value='tiny'), Parameter('contract_file', value=contract),
        Parameter('calibration_file',
                  value=str(config_path('calibration', 'so101_follower_example.json'))),
        Parameter('rename_map', value=rename), Parameter('num_steps', value=2),
        Parameter('warmup_runs', value=1), Parameter('extra_latency_ms', value=extra_ms),
        Parameter('diagnostics_period_s', value=0.2)])


def _observation(request_id: int, **kwargs) -> ObservationData:
    rng = np.random.default_rng(request_id)
    images = {c: rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for c in ('front', 'wrist')}
    return ObservationData(stamp_ns=7_000_000_123, request_id=request_id, task='pick',
                           joint_names=JOINTS, state=np.full(6, 0.2),
                           camera_names=('front', 'wrist'), images=images, **kwargs)


def test_server_answers_plain_rtc_and_malformed_requests(rclpy_context, tmp_path) -> None:
    server = _server(rclpy_context, _contract(tmp_path), 'front=camera1,wrist=camera2')
    client_node = rclpy.create_node('policy_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, 'predict_chunk')
    diagnostics: list[DiagnosticArray] = []
    client_node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    answers = []
    try:
        with Spin(rclpy_context, server, client_node):
            assert client.wait_for_service(timeout_sec=10.0)
            tail = np.tile(np.full(6, 0.1, np.float32), (8, 1))  # [8, J] rad
            bad = observation_to_msg(_observation(3))
            bad.images[1].data = bad.images[1].data[:40]  # truncated JPEG
            bomb = observation_to_msg(_observation(4))  # header claims 20000x20000: refused unread
            bomb.images[0].data = to_array(_claiming(bytes(bomb.images[0].data), 20000, 20000),
                                           np.uint8)
            cut = observation_to_msg(_observation(5))  # half a scan, end marker re-appended
            data = bytes(cut.images[0].data)
            cut.images[0].data = to_array(data[:len(data) // 2] + b'\xff\xd9', np.uint8)
            for msg in (observation_to_msg(_observation(1)),
                        observation_to_msg(_observation(2, inference_delay_steps=3,
                                                        leftover=tail)), bad, bomb, cut):
                future = client.call_async(PredictChunk.Request(observation=msg))
                assert wait_until(future.done, 60.0), 'no answer'
                answers.append(future.result())
            assert wait_until(lambda: any(
                kv.key == 'latency_count' and kv.value == '2'
                for d in diagnostics for s in d.status for kv in s.values), 10.0)
    finally:
        client_node.destroy_node()
        server.destroy_node()
    for rid, response in zip((1, 2), answers[:2], strict=True):
        assert response.success, response.message
        chunk = msg_to_chunk(response.chunk)
        assert chunk.request_id == rid and chunk.stamp_ns == 7_000_000_123
        assert chunk.positions.shape == (50, 6) and chunk.joint_names == JOINTS
        assert chunk.dt == pytest.approx(0.04) and chunk.policy_id == 'tiny'
        assert np.isfinite(chunk.positions).all() and chunk.inference_ms >= 20.0
    assert not answers[2].success
    assert 'wrist' in answers[2].message and 'JPEG' in answers[2].message
    assert answers[2].chunk.request_id == 3
    assert not answers[3].success and answers[3].chunk.request_id == 4
    assert "camera 'front'" in answers[3].message
    assert '20000x20000, larger than the 32x24 allowed' in answers[3].message
    assert not answers[4].success and answers[4].chunk.request_id == 5
    assert 'corrupt or truncated JPEG scan' in answers[4].message


def _claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header rewritten to claim width x height pixels."""
    sof = jpeg.index(b'\xff\xc0')
    return jpeg[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big') + jpeg[sof + 9:]


def test_checkpoint_camera_mismatch_fails_at_start_naming_the_keys(rclpy_context,
                                                                  tmp_path) -> None:
    with pytest.raises(PolicySetupError) as info:
        _server(rclpy_context, _contract(tmp_path), 'front=camera1')
    text = str(info.value)
    assert "missing image features ['observation.images.camera2']" in text
    assert "unexpected image features ['observation.images.wrist']" in text
    assert 'rename_map' in text


def test_empty_rename_map_feeds_an_untrained_presets_cameras_in_order(rclpy_context,
                                                                     tmp_path) -> None:
    """What lets every profile start with its defaults: 'tiny' has placeholder cameras."""
    server = _server(rclpy_context, _contract(tmp_path), '')
    try:
        assert server.io.rename == {'front': 'observation.images.camera1',
                                    'wrist': 'observation.images.camera2'}
    finally:
        server.destroy_node()


def test_only_presets_are_paired_in_order(tmp_path) -> None:
    assert _preset_image_features('tiny') == ('observation.images.camera1',
                                              'observation.images.camera2')
    assert _preset_image_features('sim_small') == ('observation.images.front',
                                                   'observation.images.wrist')
    (tmp_path / 'tiny').mkdir()  # a checkpoint directory, even one named like a preset
    assert _preset_image_features(str(tmp_path / 'tiny')) is None
    assert _preset_image_features('no_such_preset') is None


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_diagnostics_flow_while_two_slow_requests_wait_on_inference(rclpy_context,
                                                                    tmp_path) -> None:
    """Spun by one SingleThreadedExecutor (as run_node does), the server keeps publishing
    diagnostics while a 1.5 s request is in inference, and answers two concurrent requests."""
    server = _server(rclpy_context, _contract(tmp_path), 'front=camera1,wrist=camera2',
                     extra_ms=1500.0, max_latency_ms=-1.0)  # 1.5 s + inference on a busy CI
    client_node = rclpy.create_node('policy_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, 'predict_chunk')
    diagnostics: list[tuple[int, dict[str, str]]] = []  # (server stamp ns, values)
    client_node.create_subscription(
        DiagnosticArray, '/diagnostics',
        lambda m: diagnostics.extend((stamp_to_ns(m.header.stamp), _values(s)) for s in m.status),
        10)
    try:
        with Spin(rclpy_context, server, client_node):
            assert client.wait_for_service(timeout_sec=10.0)
            sent_ns = client_node.get_clock().now().nanoseconds
            futures = [client.call_async(PredictChunk.Request(
                observation=observation_to_msg(_observation(rid)))) for rid in (11, 12)]
            assert wait_until(lambda: all(f.done() for f in futures), 120.0), 'no answers'
            assert wait_until(lambda: any(v['answered'] == '2' for _, v in diagnostics), 10.0)
    finally:
        client_node.destroy_node()
        server.destroy_node()
    for rid, future in zip((11, 12), futures, strict=True):
        response = future.result()
        assert response.success, response.message
        assert response.chunk.request_id == rid and response.chunk.inference_ms >= 1500.0
    # Published after the requests were sent and before the first (then the second) was
    # answered: the executor thread was free while each request waited ~1.5 s on inference.
    after = [v['answered'] for stamp, v in diagnostics if stamp > sent_ns]
    assert after.count('0') >= 2 and after.count('1') >= 2, after


def test_a_slow_warm_up_is_refused_at_start_only_when_asked(rclpy_context, tmp_path) -> None:
    contract = _contract(tmp_path)  # 25 fps: the tiny preset's 50-step chunk lasts 2000 ms
    with pytest.raises(PolicySetupError, match=r'warm-up inference took \d+ ms at best, more '
                       r'than max_latency_ms 2000 ms .*max_latency_ms:=-1'):
        _server(rclpy_context, contract, 'front=camera1,wrist=camera2', extra_ms=2100.0,
                slow_warmup='refuse')
    with pytest.raises(PolicySetupError, match='more than max_latency_ms 100 ms'):
        _server(rclpy_context, contract, 'front=camera1,wrist=camera2', extra_ms=150.0,
                max_latency_ms=100.0, slow_warmup='refuse')
    server = _server(rclpy_context, contract, 'front=camera1,wrist=camera2', extra_ms=150.0,
                     max_latency_ms=-1.0, slow_warmup='refuse')  # not judged: serves
    server.destroy_node()
    with pytest.raises(PolicySetupError, match="slow_warmup must be 'warn' or 'refuse'"):
        _server(rclpy_context, contract, 'front=camera1,wrist=camera2', slow_warmup='maybe')


def test_a_slow_warm_up_serves_and_warns_by_default(rclpy_context, tmp_path) -> None:
    """Serving slowly beats not serving: on a loaded machine a warm-up can overrun the chunk horizon
    by a little (docs/ARCHITECTURE.md, "Decision log"), and refusing would end the whole bringup."""
    server = _server(rclpy_context, _contract(tmp_path), 'front=camera1,wrist=camera2',
                     extra_ms=150.0, max_latency_ms=100.0)
    client_node = rclpy.create_node('policy_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, 'predict_chunk')
    statuses = []
    client_node.create_subscription(DiagnosticArray, '/diagnostics',
                                    lambda m: statuses.extend(m.status), 10)
    try:
        with Spin(rclpy_context, server, client_node):
            assert client.wait_for_service(timeout_sec=10.0)  # it serves
            assert wait_until(lambda: statuses, 10.0)
    finally:
        client_node.destroy_node()
        server.destroy_node()
    status = statuses[-1]
    assert status.level == DiagnosticStatus.WARN
    assert 'more than max_latency_ms 100 ms' in status.message and 'GPU' in status.message
    assert float(_values(status)['warmup_best_ms']) >= 150.0


def _shipped_server(context, checkpoint: str) -> PolicyServer:
    return PolicyServer(context=context, parameter_overrides=[
        Parameter('checkpoint', value=checkpoint), Parameter('num_steps', value=2),
        Parameter('warmup_runs', value=1), Parameter('max_latency_ms', value=-1.0)])


def test_the_shipped_policy_is_served_by_name_with_the_contract_cameras(rclpy_context) -> None:
    """What the simulated profiles' default (checkpoint:=so101_sim_lift) starts: the shipped
    directory, its front/wrist features matching the contract's cameras without a rename_map."""
    from smolvla_ros.paths import default_policy_dir

    server = _shipped_server(rclpy_context, 'so101_sim_lift')
    try:
        assert server.checkpoint == str(default_policy_dir())
        assert server.io.rename == {'front': 'observation.images.front',
                                    'wrist': 'observation.images.wrist'}
    finally:
        server.destroy_node()


def test_a_missing_shipped_policy_fails_at_start_saying_so(rclpy_context, monkeypatch) -> None:
    from smolvla_ros import paths

    monkeypatch.setattr(paths, 'DEFAULT_POLICY', 'policies/not_installed')
    with pytest.raises(PolicySetupError, match='missing or incomplete'):
        _shipped_server(rclpy_context, 'so101_sim_lift')
