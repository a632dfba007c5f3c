"""null_policy_server and predict_probe: in-process answer content, and the two as processes."""
from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from smolvla_msgs.srv import PredictChunk  # noqa: E402

from smolvla_ros.nodes.null_policy_server import NullPolicyServer  # noqa: E402
from smolvla_ros.nodes.predict_probe import (  # noqa: E402
    EXIT_BAD_PARAMETERS,
    EXIT_INVALID,
    EXIT_NO_SERVICE,
    EXIT_OK,
    PredictProbe,
)
from smolvla_ros.ros.chunk import msg_to_chunk  # noqa: E402
from smolvla_ros.ros.observation import observation_to_msg  # noqa: E402
from smolvla_ros.ros.synthetic import SO101_JOINTS, synthetic_observation  # noqa: E402

pytestmark = pytest.mark.ros


def _service() -> str:
    """A service name of this test's own: other sessions' servers may share the random domain."""
    return f'predict_chunk_{uuid.uuid4().hex[:12]}'


def _remap(service: str) -> list[str]:
    return ['--ros-args', '-r', f'predict_chunk:={service}']


# predict_probe's waits (defaults 10 s for the service, 5 s per answer) are failure bounds here:
# process start-up, discovery and JPEG work on a loaded 2-core machine get generous ones.
PROBE_WAITS = ['-p', 'wait_timeout_s:=60.0', '-p', 'request_timeout_s:=30.0']


class _Spinner:
    """Spins nodes in a background thread for the duration of a with-block."""

    def __init__(self, context, *nodes) -> None:
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)

    def __enter__(self) -> _Spinner:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5)


def test_server_answers_with_the_observed_state(rclpy_context) -> None:
    service = _service()
    server = NullPolicyServer(context=rclpy_context, cli_args=_remap(service), parameter_overrides=[
        Parameter('chunk_size', value=12), Parameter('fps', value=15.0),
        Parameter('policy_id', value='null-test'), Parameter('decode_threads', value=3),
        Parameter('diagnostics_period_s', value=0.1)])
    client_node = rclpy.create_node('null_server_test_client', context=rclpy_context)
    client = client_node.create_client(PredictChunk, service)
    diagnostics: list[dict[str, str]] = []
    client_node.create_subscription(
        DiagnosticArray, '/diagnostics',
        lambda m: diagnostics.extend({kv.key: kv.value for kv in s.values} for s in m.status), 10)
    obs = synthetic_observation(request_id=41, stamp_ns=1_234_000_000_567, num_cameras=3,
                                image_size=96)
    try:
        with _Spinner(rclpy_context, server):
            assert client.wait_for_service(timeout_sec=30.0)
            executor = SingleThreadedExecutor(context=rclpy_context)
            executor.add_node(client_node)
            request = PredictChunk.Request(observation=observation_to_msg(obs))
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=30.0)
            assert future.done(), 'no answer within 30 s'
            response = future.result()
            # A corrupt image is answered with a failure that names it.
            request.observation.images[2].data = request.observation.images[2].data[:64]
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=30.0)
            assert future.done(), 'no answer within 30 s'
            failure = future.result()
            deadline = time.monotonic() + 30.0
            while not any(d.get('rejected') == '1' for d in diagnostics) and (
                    time.monotonic() < deadline):
                executor.spin_once(timeout_sec=0.1)
            executor.shutdown()
    finally:
        client_node.destroy_node()
        server.destroy_node()
    assert response.success, response.message
    chunk = msg_to_chunk(response.chunk)
    assert chunk.request_id == 41 and chunk.stamp_ns == 1_234_000_000_567
    assert chunk.joint_names == SO101_JOINTS
    assert chunk.positions.shape == (12, 6)
    np.testing.assert_array_equal(chunk.positions, np.tile(obs.state.astype(np.float32), (12, 1)))
    assert chunk.dt == pytest.approx(1 / 15) and chunk.policy_id == 'null-test'
    assert chunk.inference_ms > 0.0  # the three JPEG decodes were paid
    assert not failure.success
    assert "camera 'side'" in failure.message and 'JPEG' in failure.message
    assert failure.chunk.request_id == 41
    latest = next(d for d in diagnostics if d.get('rejected') == '1')
    assert latest['answered'] == '1' and latest['chunk_size'] == '12'
    assert float(latest['server_time_p50_ms']) == pytest.approx(chunk.inference_ms, abs=0.01)


@pytest.mark.parametrize('overrides, status', [
    ([Parameter('expected_chunk_size', value=50)], EXIT_OK),
    ([Parameter('jpeg', value=False)], EXIT_OK),
    ([Parameter('expected_chunk_size', value=10)], EXIT_INVALID),
])
def test_probe_in_process(rclpy_context, overrides, status) -> None:
    service = _service()
    server = NullPolicyServer(context=rclpy_context, cli_args=_remap(service))
    probe = PredictProbe(context=rclpy_context, cli_args=_remap(service), parameter_overrides=[
        Parameter('count', value=4), Parameter('image_size', value=64),
        Parameter('wait_timeout_s', value=60.0), Parameter('request_timeout_s', value=30.0),
        *overrides])
    try:
        with _Spinner(rclpy_context, server):
            assert probe.run() == status
    finally:
        probe.destroy_node()
        server.destroy_node()
    valid = probe.round_trip.summary().count
    assert valid == (4 if status == EXIT_OK else 0)
    if status == EXIT_OK:
        assert probe.server_ms.summary().p50_ms > 0.0


def _run(cmd: list[str], env: dict[str, str], timeout: float = 60.0):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_probe_and_server_as_processes(ros_env) -> None:
    service = _service()
    server = subprocess.Popen(
        ['null_policy_server', *_remap(service), '-p', 'chunk_size:=20', '-p', 'decode_threads:=3'],
        env=ros_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ok = _run(['predict_probe', *_remap(service), '-p', 'count:=5', '-p', 'image_size:=64',
                   '-p', 'expected_chunk_size:=20', *PROBE_WAITS], ros_env, timeout=180.0)
        bad = _run(['predict_probe', *_remap(service), '-p', 'count:=2', '-p', 'image_size:=64',
                    '-p', 'expected_chunk_size:=50', *PROBE_WAITS], ros_env, timeout=180.0)
    finally:
        # SIGTERM (what process managers send) must stop a server whose decode threads are up.
        server.send_signal(signal.SIGTERM)
        try:
            server_out, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()  # never leave a server behind; the failure is reported below
            server_out = server.communicate()[0] + '\n(ignored SIGTERM for 30 s, killed)'
    assert ok.returncode == EXIT_OK, ok.stdout + ok.stderr
    assert '5/5 valid answers' in ok.stderr + ok.stdout
    assert bad.returncode == EXIT_INVALID, bad.stdout + bad.stderr
    assert 'chunk has 20 steps, expected 50' in bad.stderr + bad.stdout
    assert server.returncode == 0, server_out
    assert f'serving /{service}: 20 steps' in server_out


def test_probe_without_server_and_with_bad_parameters(ros_env) -> None:
    alone = _run(['predict_probe', *_remap(_service()), '-p', 'wait_timeout_s:=0.5'], ros_env)
    assert alone.returncode == EXIT_NO_SERVICE, alone.stdout + alone.stderr
    assert 'not available after 0.5 s' in alone.stderr + alone.stdout
    bad = _run(['predict_probe', '--ros-args', '-p', 'jpeg_quality:=0'], ros_env)
    assert bad.returncode == EXIT_BAD_PARAMETERS, bad.stdout + bad.stderr
    assert 'jpeg_quality must be an int >= 1, got 0' in bad.stderr + bad.stdout


def test_server_rejects_bad_parameters_with_their_name(ros_env) -> None:
    bad = _run(['null_policy_server', '--ros-args', '-p', 'fps:=0.0'], ros_env)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert 'FATAL' in bad.stderr + bad.stdout and 'fps' in bad.stderr + bad.stdout
