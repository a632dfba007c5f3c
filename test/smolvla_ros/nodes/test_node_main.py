"""run_node: the shared main() of every node; ThreadResult: awaiting a thread on one thread.

Stopping (nodes/node_main.py): child processes that run ``run_node`` get SIGINT while spinning,
then SIGINT and SIGTERM again while their cleanup runs; the cleanup must finish, the exit status
be 0 and nothing be printed as a traceback. A cleanup that hangs ends the process with
EXIT_CLEANUP_TIMEOUT once its bound has passed.
"""
from __future__ import annotations

import ast
from concurrent.futures import Future
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from executor_fixtures import wait_until  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

import smolvla_ros  # noqa: E402
from smolvla_ros.nodes.node_main import (  # noqa: E402
    EXIT_BAD_SETUP,
    EXIT_CLEANUP_TIMEOUT,
    REPEAT_QUIET_S,
    StopSignals,
    ThreadResult,
    run_node,
)

pytestmark = pytest.mark.ros
STOP_S = 30.0  # wall bound of a child's stop (failure only)


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """run_node leaves SIGINT/SIGTERM ignored for its process's exit: not for pytest's."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class _BadCalibration(ValueError):
    pass


def _failing_factory():
    raise _BadCalibration('calibration file does not match the servos')


def test_setup_error_gives_exit_2_and_shuts_rclpy_down() -> None:
    assert run_node(_failing_factory, 'probe_node') == EXIT_BAD_SETUP
    assert not rclpy.ok(), 'the default context must be shut down after a failed start'


def test_unparsable_ros_arguments_are_a_setup_error(capfd) -> None:
    assert run_node(_failing_factory, 'probe_node', ['probe', '--ros-args', '-r', 'bad']) == (
        EXIT_BAD_SETUP)
    assert "RosArgumentsError: failed to initialize rcl: Couldn't parse remap rule" in (
        capfd.readouterr().err)


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


# -- stopping ---------------------------------------------------------------------------------

class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_stop_signals_interrupt_only_the_setup_and_answer_a_late_repeat_once(capfd) -> None:
    clock = _Clock()
    signals = StopSignals('probe_node', cleanup_timeout_s=8.0, clock=clock)
    with pytest.raises(KeyboardInterrupt):  # setup: a long load can be interrupted
        signals._handle(signal.SIGINT, None)
    signals._handle(signal.SIGINT, None)  # repeats never raise
    clock.now = REPEAT_QUIET_S / 2
    signals._handle(signal.SIGINT, None)  # e.g. launch forwarding the same Ctrl-C: quiet
    assert capfd.readouterr().err == ''
    clock.now = REPEAT_QUIET_S + 1.0
    signals._handle(signal.SIGTERM, None)
    signals._handle(signal.SIGINT, None)
    err = capfd.readouterr().err
    assert err == ('[probe_node] SIGTERM again: already stopping, the cleanup runs to its end '
                   '(at most 8 s)\n')
    assert signals.received == [signal.SIGINT] * 3 + [signal.SIGTERM, signal.SIGINT]

    spinning = StopSignals('spinner')
    spinning.phase = type(spinning.phase).SPINNING
    spinning._handle(signal.SIGINT, None)  # rclpy ends the spin; nothing is raised here


# A node whose cleanup takes `cleanup_s` in a Python loop (where a KeyboardInterrupt would land)
# and writes markers when it starts spinning, starts cleaning up and has finished.
SLOW_CLEANUP_NODE = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from rclpy.node import Node
    from smolvla_ros.nodes.node_main import run_node

    folder, cleanup_s, bound_s = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])

    class SlowCleanup(Node):
        def __init__(self):
            super().__init__('slow_cleanup')
            self.create_timer(0.05, lambda: (folder / 'spinning').touch())

        def destroy_node(self):
            (folder / 'cleanup_started').touch()
            end = time.monotonic() + cleanup_s
            while time.monotonic() < end:
                time.sleep(0.005)
            (folder / 'cleanup_done').touch()
            super().destroy_node()

    sys.exit(run_node(SlowCleanup, 'slow_cleanup', cleanup_timeout_s=bound_s))
''')


def _start_slow_node(tmp_path: Path, cleanup_s: float, bound_s: float) -> subprocess.Popen:
    script = tmp_path / 'slow_node.py'
    script.write_text(SLOW_CLEANUP_NODE)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path), str(cleanup_s),
                             str(bound_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f'the node did not exit within {STOP_S:g} s:\n{err}')
    return proc.returncode, err


def test_signals_during_the_cleanup_do_not_cut_it_short(tmp_path: Path) -> None:
    proc = _start_slow_node(tmp_path, cleanup_s=1.5, bound_s=8.0)
    try:
        assert wait_until((tmp_path / 'spinning').exists, STOP_S), 'never spun'
        proc.send_signal(signal.SIGINT)
        assert wait_until((tmp_path / 'cleanup_started').exists, STOP_S), 'no cleanup'
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):  # Ctrl-C, launch, ...
            proc.send_signal(signum)
            time.sleep(0.05)
        time.sleep(REPEAT_QUIET_S)
        proc.send_signal(signal.SIGINT)  # a person pressing Ctrl-C again, later
    finally:
        code, err = _finish(proc)
    assert (tmp_path / 'cleanup_done').exists(), err
    assert code == 0, err
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err
    assert err.count('already stopping') == 1, err


def test_a_hanging_cleanup_ends_with_its_own_status_after_the_bound(tmp_path: Path) -> None:
    proc = _start_slow_node(tmp_path, cleanup_s=600.0, bound_s=1.0)
    try:
        assert wait_until((tmp_path / 'spinning').exists, STOP_S), 'never spun'
        proc.send_signal(signal.SIGTERM)
    finally:
        code, err = _finish(proc)
    assert code == EXIT_CLEANUP_TIMEOUT, err
    assert '[slow_cleanup] cleanup did not finish within 1 s' in err, err
    assert not (tmp_path / 'cleanup_done').exists()


def test_a_callback_failing_because_the_context_went_down_is_a_quiet_stop() -> None:
    """rclpy's signal handler shuts the context down from its own thread; a callback that is
    publishing at that moment fails. That is a stop, not an error."""
    from std_msgs.msg import String

    class LatePublisher(rclpy.node.Node):
        def __init__(self) -> None:
            super().__init__('late_publisher')
            self.pub = self.create_publisher(String, 'late', 10)
            self.create_timer(0.01, self._tick)

        def _tick(self) -> None:
            self.context.shutdown()  # what the signal handler does, here deterministically
            self.pub.publish(String(data='too late'))

    assert run_node(LatePublisher, 'late_publisher') == 0
    assert not rclpy.ok()


def test_every_callback_runs_on_the_thread_that_called_run_node() -> None:
    """docs/ARCHITECTURE.md "Threading": node state takes no locks because of this. Two timers in
    a reentrant group would run in the executor's worker threads under a MultiThreadedExecutor."""
    from rclpy.callback_groups import ReentrantCallbackGroup

    threads: set[int] = set()

    class TwoTimers(rclpy.node.Node):
        def __init__(self) -> None:
            super().__init__('two_timers')
            self.calls = 0
            group = ReentrantCallbackGroup()
            for _ in range(2):
                self.create_timer(0.005, self._tick, callback_group=group)

        def _tick(self) -> None:
            threads.add(threading.get_ident())
            self.calls += 1
            if self.calls == 20:
                self.context.shutdown()

    assert run_node(TwoTimers, 'two_timers') == 0
    assert threads == {threading.get_ident()}


def _names_used(path: Path) -> set[str]:
    """Every identifier a module imports or refers to (docstrings and comments excluded)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.alias):
            names.add(node.name.split('.')[-1])
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def test_no_module_of_the_package_uses_a_multi_threaded_executor() -> None:
    package = Path(smolvla_ros.__file__).resolve().parent
    offenders = [str(p.relative_to(package)) for p in sorted(package.rglob('*.py'))
                 if 'MultiThreadedExecutor' in _names_used(p)]
    assert offenders == [], 'docs/ARCHITECTURE.md "Threading": one thread per node'


def test_an_error_while_spinning_is_not_taken_for_a_setup_error() -> None:
    class Broken(rclpy.node.Node):
        def __init__(self) -> None:
            super().__init__('broken')
            self.create_timer(0.01, self._tick)

        def _tick(self) -> None:
            raise ValueError('a bug in a callback')

    with pytest.raises(ValueError, match='a bug in a callback'):
        run_node(Broken, 'broken', setup_errors=(ValueError,))
    assert not rclpy.ok()
