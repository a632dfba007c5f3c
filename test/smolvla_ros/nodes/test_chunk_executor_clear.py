"""chunk_executor's ``~/clear`` service and ``reset_topic``: a new episode drops the old plan.

The core's behaviour (queue emptied, the in-flight answer dropped as 'cleared', the arm held where
it was observed after the clear until the new chunk) is tested in
test/smolvla_ros/core/executor/test_executor_core.py; here the wiring: the service and the topic
reach ``ExecutorCore.clear``, the next request goes out although the old one was never answered,
and what is held is a joint state stamped after the clear.
"""
from __future__ import annotations

import json

import pytest

rclpy = pytest.importorskip('rclpy')

from executor_fixtures import (  # noqa: E402
    FakeRobot,
    Recorder,
    Spin,
    analytic,
    wait_until,
    write_contract,
)
import numpy as np  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from smolvla_ros.nodes.chunk_executor import ChunkExecutor  # noqa: E402

pytestmark = pytest.mark.ros
FPS = 20.0


def _executor(context, contract: str, **params) -> ChunkExecutor:
    overrides = [Parameter('contract_file', value=contract), Parameter('task', value='test'),
                 Parameter('request_timeout_s', value=30.0)]  # the old request must not expire
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return ChunkExecutor(context=context, parameter_overrides=overrides)


def test_clear_service_empties_the_plan_and_the_next_request_goes_out(rclpy_context,
                                                                      tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    # The server hangs below; the streams must go on meanwhile, so they are a node of their own.
    sensors = FakeRobot(rclpy_context, fps=FPS, name='fake_sensors', serve=False)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=30, delay_s=0.05, publish=False)
    node = _executor(rclpy_context, contract)
    recorder = Recorder(rclpy_context)
    helper = rclpy.create_node('clear_caller', context=rclpy_context)
    client = helper.create_client(Trigger, 'chunk_executor/clear')
    try:
        with Spin(rclpy_context, sensors, robot, node, recorder, helper):
            assert wait_until(lambda: node.core.metrics().chunks_accepted >= 2, 30.0)
            # A server that hangs: the next request stays in flight until the clear.
            robot.answering = False
            assert wait_until(lambda: node.core.in_flight is not None
                              and node.core.in_flight in robot.requests, 30.0)
            stale = node.core.in_flight
            before = node.core.metrics()  # nothing changes while the request hangs
            assert client.wait_for_service(timeout_sec=10.0)
            called_at = helper.get_clock().now().nanoseconds
            future = client.call_async(Trigger.Request())
            assert wait_until(future.done, 10.0)
            cleared_at = helper.get_clock().now().nanoseconds
            response = future.result()
            assert response.success and f'request {stale}' in response.message, response.message
            assert node.core.clears == 1
            assert node.core.remaining_ns(cleared_at) == 0  # the queue is empty
            cleared = node.core.metrics()

            # The next request goes out at once, although the old one was never answered...
            assert wait_until(lambda: node.core.metrics().requests > before.requests, 10.0), (
                node.core.trigger_decision(helper.get_clock().now().nanoseconds))
            assert node.core.in_flight != stale
            # ...and meanwhile the executor holds the first joint state stamped after the clear
            # (no plan: counted as idle, not as starvation).
            assert wait_until(lambda: node.core.metrics().idle_ticks >= before.idle_ticks + 10,
                              10.0)
            waiting = node.core.metrics()
            assert waiting.chunks_accepted == before.chunks_accepted
            assert waiting.starvation_ticks == cleared.starvation_ticks
            margin = round(0.1e9)  # a command from before the clear: stamped at most this after
            held = [c for _, c in recorder.since(cleared_at + margin)]
            assert held and all(np.array_equal(c, held[0]) for c in held), held[:3]
            # It is the fake robot's state f(t) at a t after the clear was asked for.
            grid = np.arange(called_at - round(0.5e9), cleared_at + margin, 10**4)  # [N] ns
            fit = np.abs(analytic(grid) - held[0]).max(axis=1)  # [N]
            assert fit.min() < 1e-5 and grid[fit.argmin()] >= called_at - 10**6, (
                fit.min(), (grid[fit.argmin()] - called_at) / 1e6)

            # The server answers again: the old request's late answer is dropped, the new
            # request's chunk is executed.
            robot.answering = True
            assert wait_until(lambda: node.core.metrics().chunks_dropped.get('cleared') == 1
                              and node.core.metrics().chunks_accepted > before.chunks_accepted,
                              20.0), node.core.metrics()
            assert wait_until(lambda: any(not np.array_equal(c, held[0])
                                          for _, c in recorder.since(cleared_at + margin)), 10.0)
    finally:
        for n in (helper, node, robot, sensors, recorder):
            n.destroy_node()


def test_reset_topic_clears_only_on_the_configured_event(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    node = _executor(rclpy_context, contract, reset_topic='sim/episode', reset_event='reset')
    helper = rclpy.create_node('episode_publisher', context=rclpy_context)
    publisher = helper.create_publisher(String, 'sim/episode', 10)
    try:
        with Spin(rclpy_context, node, helper):
            assert wait_until(lambda: publisher.get_subscription_count() >= 1, 10.0)
            # Reliable and in order: once the reset has cleared, the success was delivered too.
            publisher.publish(String(data=json.dumps({'event': 'success', 'episode': 0})))
            publisher.publish(String(data=json.dumps({'event': 'reset', 'episode': 1})))
            assert wait_until(lambda: node.core.clears >= 1, 10.0)
            assert node.core.clears == 1, 'a success event cleared the plan'
            publisher.publish(String(data=json.dumps({'event': 'reset', 'episode': 2})))
            assert wait_until(lambda: node.core.clears >= 2, 10.0)
    finally:
        for n in (helper, node):
            n.destroy_node()


def test_pause_service_stops_commands_and_requests_until_resumed(rclpy_context,
                                                                 tmp_path) -> None:
    from std_srvs.srv import SetBool

    contract = write_contract(tmp_path / 'contract.yaml', fps=FPS)
    robot = FakeRobot(rclpy_context, fps=FPS, chunk_size=30, delay_s=0.05)
    node = _executor(rclpy_context, contract)
    recorder = Recorder(rclpy_context)
    helper = rclpy.create_node('pause_caller', context=rclpy_context)
    client = helper.create_client(SetBool, 'chunk_executor/pause')

    def call(data: bool) -> SetBool.Response:
        future = client.call_async(SetBool.Request(data=data))
        assert wait_until(future.done, 10.0)
        return future.result()

    try:
        with Spin(rclpy_context, robot, node, recorder, helper):
            assert wait_until(lambda: node.core.metrics().chunks_accepted >= 2, 30.0)
            assert client.wait_for_service(timeout_sec=10.0)
            response = call(True)
            assert response.success and response.message.startswith('paused'), response.message
            paused_at = helper.get_clock().now().nanoseconds
            requests = node.core.metrics().requests
            ticks = node.core.metrics().ticks
            assert wait_until(lambda: node.core.metrics().ticks >= ticks + 20, 10.0)
            assert node.core.metrics().requests == requests  # no request while paused
            margin = round(0.1e9)  # a command already on its way when the pause came
            assert not recorder.since(paused_at + margin), 'commanded while paused'
            assert call(True).message.startswith('already paused')

            assert call(False).message.startswith('resumed')
            resumed_at = helper.get_clock().now().nanoseconds
            assert wait_until(lambda: len(recorder.since(resumed_at)) >= 5, 20.0)
            assert node.core.metrics().requests > requests
    finally:
        for n in (helper, recorder, node, robot):
            n.destroy_node()
