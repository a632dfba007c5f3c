"""run_node: the shared main() of every node; ThreadResult: awaiting a thread on one thread."""
from __future__ import annotations

from concurrent.futures import Future
import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from executor_fixtures import wait_until  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from smolvla_ros.nodes.node_main import EXIT_BAD_SETUP, ThreadResult, run_node  # noqa: E402

pytestmark = pytest.mark.ros


class _BadCalibration(ValueError):
    pass


def _failing_factory():
    raise _BadCalibration('calibration file does not match the servos')


def test_setup_error_gives_exit_2_and_shuts_rclpy_down() -> None:
    assert run_node(_failing_factory, 'probe_node') == EXIT_BAD_SETUP
    assert not rclpy.ok(), 'the default context must be shut down after a failed start'


def test_unexpected_errors_are_not_swallowed() -> None:
    def factory():
        raise KeyError('bug')
    with pytest.raises(KeyError):
        run_node(factory, 'probe_node', setup_errors=(ValueError,))
    assert not rclpy.ok()


def _spin_in_thread(executor) -> threading.Thread:
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return thread


def test_thread_result_wakes_an_idle_single_threaded_executor(rclpy_context) -> None:
    """No timer or message wakes this executor: only the completing thread's guard can, so the
    coroutine finishes only if ThreadResult wakes it (rclpy does not by itself)."""
    node = rclpy.create_node('thread_result_probe', context=rclpy_context)
    waiter = ThreadResult(node)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    pending: Future[str] = Future()
    waited = threading.Event()

    async def callback() -> str:
        waited.set()
        return await waiter.wait(pending)

    task = executor.create_task(callback)
    thread = _spin_in_thread(executor)
    try:
        assert wait_until(waited.is_set, 30.0), 'the coroutine never started'
        # Let the executor go to sleep in its wait set (a slower machine only makes this test
        # less sensitive, never wrong): completing the future then must wake it.
        time.sleep(0.5)
        assert not task.done()  # still waiting: the future is not complete
        pending.set_result('chunk')  # from this (another) thread
        assert wait_until(task.done, 30.0), 'the executor was not woken'
        assert task.result() == 'chunk'
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=5.0)
        node.destroy_node()


def test_thread_result_raises_the_threads_error_in_the_coroutine(rclpy_context) -> None:
    node = rclpy.create_node('thread_result_error', context=rclpy_context)
    waiter = ThreadResult(node)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    pending: Future[str] = Future()
    seen: list[BaseException] = []

    async def callback() -> None:
        try:
            await waiter.wait(pending)
        except RuntimeError as exc:
            seen.append(exc)

    task = executor.create_task(callback)
    thread = _spin_in_thread(executor)
    try:
        pending.set_exception(RuntimeError('CUDA out of memory'))
        assert wait_until(task.done, 30.0), 'the executor was not woken'
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=5.0)
        node.destroy_node()
    assert [str(e) for e in seen] == ['CUDA out of memory']
