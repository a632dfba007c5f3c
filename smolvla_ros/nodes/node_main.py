"""The one ``main()`` shape every node uses, and how a node awaits a thread.

``rclpy.init``; build the node; spin it single-threaded; Ctrl-C and external shutdown end quietly;
a setup error (bad parameter, contract, calibration, checkpoint) is logged as FATAL without a
traceback and ends the process with exit status 2, which `smolvla-ros up` reports with the node's
name.

Stopping (docs/bringup.md, "Stopping"): SIGINT and SIGTERM mean the same thing, "stop now, and
clean up". rclpy's own handlers end ``spin()`` (they shut the context down); ours, installed
before ``rclpy.init`` so that rclpy's chain to them, only decide whether a Python exception is
raised as well:

- while the node is being built, the first signal raises ``KeyboardInterrupt`` so that a long
  setup (loading a checkpoint) can be interrupted;
- while it spins, nothing is raised: ``spin()`` returns between two callbacks, so a Ctrl-C never
  cuts a bus transfer or a publish in half;
- from then on the cleanup (``destroy_node``: the driver turns torque off, the recorder closes its
  bag) runs to its end whatever arrives: a terminal's Ctrl-C plus the SIGINT that ``ros2 launch``
  forwards, a second Ctrl-C, SIGTERM from an escalating front end. A repeated signal is reported
  once on stderr and otherwise ignored; no traceback is printed for any of them.

The cleanup is bounded: a watchdog thread ends the process with :data:`EXIT_CLEANUP_TIMEOUT` if
it has not finished within ``cleanup_timeout_s`` (default :data:`CLEANUP_TIMEOUT_S`, below the
10 s after which ``ros2 launch`` and ``smolvla-ros up`` send SIGKILL), so a stuck cleanup ends
with a status that says so instead of a SIGKILL. ``run_node`` is a process's ``main``: when it
returns, SIGINT and SIGTERM stay ignored while the interpreter exits.

Threading (docs/ARCHITECTURE.md, "Threading"): ``run_node`` spins the node with rclpy's
SingleThreadedExecutor, so all its callbacks run on this one thread. Work that takes long (policy
inference) runs in a thread of its own, and the callback that needs its result is a coroutine that
awaits it through :class:`ThreadResult`, so the executor keeps serving timers (diagnostics) and
other callbacks in the meantime.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future as ThreadFuture
from contextlib import contextmanager, suppress
import enum
import os
import signal
import threading
import time
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.task import Future as RosFuture

EXIT_OK = 0
EXIT_BAD_SETUP = 2
EXIT_CLEANUP_TIMEOUT = 3
# Below the SIGKILL of both front ends (ros2 launch: sigterm_timeout + sigkill_timeout = 10 s;
# smolvla-ros up: --sigint-timeout + --sigterm-timeout = 10 s), far above a normal cleanup.
CLEANUP_TIMEOUT_S = 8.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_QUIET_S = 1.0
T = TypeVar('T')


class RosArgumentsError(ValueError):
    """rclpy.init refused the command line (a remap rule, a parameter file): a setup error."""


class _Phase(enum.Enum):
    SETUP = 'setup'
    SPINNING = 'spinning'
    CLEANUP = 'cleanup'


def _stderr(text: str) -> None:
    """One line on stderr from a signal handler: os.write, because a handler that runs while the
    main thread is inside a buffered write would make ``print`` raise (reentrant call)."""
    with suppress(OSError):
        os.write(2, text.encode('utf-8', errors='replace') + b'\n')


class StopSignals:
    """What SIGINT/SIGTERM do to a node process in each phase of its life (module docstring)."""

    def __init__(self, name: str, cleanup_timeout_s: float = CLEANUP_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.cleanup_timeout_s = cleanup_timeout_s
        self.phase = _Phase.SETUP
        self.received: list[int] = []  # signal numbers, in arrival order
        self._clock = clock
        self._first_at: float | None = None
        self._reported = False

    def install(self) -> dict[int, object]:
        """Install the handler for SIGINT and SIGTERM (main thread only); the previous ones."""
        return {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        now = self._clock()
        if self._first_at is None:
            self._first_at = now
            if self.phase is _Phase.SETUP:
                raise KeyboardInterrupt  # interrupt the setup; the cleanup follows
            return
        # Within REPEAT_QUIET_S it is the same stop (a non-interactive `ros2 launch` forwards
        # the terminal's SIGINT); a later one is a person pressing Ctrl-C again: answer once.
        if now - self._first_at > REPEAT_QUIET_S and not self._reported:
            self._reported = True
            _stderr(f'[{self.name}] {signal.Signals(signum).name} again: already stopping, the '
                    f'cleanup runs to its end (at most {self.cleanup_timeout_s:g} s)')


@contextmanager
def cleanup_deadline(name: str, timeout_s: float) -> Iterator[None]:
    """End the process with EXIT_CLEANUP_TIMEOUT if the block has not finished in ``timeout_s``.

    A watchdog thread, because the main thread may be the one that is stuck (in a C call). It
    exits with ``os._exit``: nothing else would stop a process whose main thread does not return.
    """
    def give_up() -> None:
        _stderr(f'[{name}] cleanup did not finish within {timeout_s:g} s: exiting without it '
                f'(status {EXIT_CLEANUP_TIMEOUT})')
        os._exit(EXIT_CLEANUP_TIMEOUT)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None, *,
             setup_errors: tuple[type[BaseException], ...] = (ValueError,),
             cleanup_timeout_s: float = CLEANUP_TIMEOUT_S) -> int:
    """Run the node built by ``factory`` until shutdown; return the process exit status.

    ``setup_errors`` raised while the node is built give EXIT_BAD_SETUP; once it spins, an error
    is a bug and propagates (after the cleanup), except the one a stop itself causes: rclpy's
    signal handler shuts the context down from another thread, so a callback that is publishing
    at that moment fails ("publisher's context is invalid"); with the context down that ends the
    spin quietly. Call it from the main thread of a process that ends when it returns.
    """
    signals = StopSignals(name, cleanup_timeout_s)
    signals.install()  # before rclpy.init: rclpy's handlers run first, then chain to these
    node = None
    try:
        try:
            try:
                rclpy.init(args=args)
            except RuntimeError as exc:  # rcl's RCLError: unparsable --ros-args, params file
                raise RosArgumentsError(str(exc)) from exc
            node = factory()
        except (RosArgumentsError, *setup_errors) as exc:
            rclpy.logging.get_logger(name).fatal(f'{type(exc).__name__}: {exc}')
            return EXIT_BAD_SETUP
        signals.phase = _Phase.SPINNING
        try:
            rclpy.spin(node)  # the global SingleThreadedExecutor: callbacks on this thread
        except (RuntimeError, InvalidHandle):
            if rclpy.ok():  # not a stop: a real error
                raise
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signals.phase = _Phase.CLEANUP  # from here on no signal raises anything
        with cleanup_deadline(name, cleanup_timeout_s):
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        for signum in STOP_SIGNALS:  # the process is about to exit: stay quiet until it has
            signal.signal(signum, signal.SIG_IGN)
    return EXIT_OK


def _nothing() -> None:
    """The wake-up guard condition's callback: waking the executor is all it is for."""


class ThreadResult:
    """Lets a coroutine callback ``await`` a ``concurrent.futures.Future`` on a single thread.

    rclpy runs a pending coroutine callback again only when its executor wakes up, and a future
    completed by another thread does not wake it: measured with the Kilted wheels, an answer
    ready after 2.2 s went out at 3.0 s, with the next 1 s diagnostics tick. The thread that
    completes the future therefore triggers a guard condition of the node, which wakes the
    executor at once. While the coroutine waits the executor sleeps in its wait set (no polling:
    8 ms of CPU over a 2.2 s wait) and runs other callbacks; the coroutine holds its callback
    group, so give the awaiting callback a group that periodic callbacks do not share.
    """

    def __init__(self, node: Node) -> None:
        # A group of its own: the guard must stay in the wait set while the awaiting callback's
        # group is busy (a busy mutually exclusive group drops its members from the wait set).
        self._guard = node.create_guard_condition(
            _nothing, callback_group=MutuallyExclusiveCallbackGroup())

    async def wait(self, future: ThreadFuture[T]) -> T:
        """The future's result (or its exception, raised), without blocking the executor."""
        done: RosFuture[None] = RosFuture()

        def on_done(_: ThreadFuture[T]) -> None:  # in the thread that completed the future
            done.set_result(None)
            with suppress(InvalidHandle):  # the node is gone: no executor left to wake
                self._guard.trigger()

        future.add_done_callback(on_done)
        await done
        return future.result()
