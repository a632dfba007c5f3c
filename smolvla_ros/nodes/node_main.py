"""The one ``main()`` shape every node uses (style.md item 5), and how a node awaits a thread.

``rclpy.init``; build the node; spin it single-threaded; Ctrl-C and external shutdown end quietly;
a setup error (bad parameter, contract, calibration, checkpoint) is logged as FATAL without a
traceback and ends the process with exit status 2, which `smolvla-ros up` reports with the node's
name.

Every node spins a SingleThreadedExecutor. Work that takes long (policy inference) runs in a
thread of its own, and the callback that needs its result is a coroutine that awaits it through
:class:`ThreadResult`, so the executor keeps serving timers (diagnostics) and other callbacks in
the meantime. The Kilted rclpy wheels' MultiThreadedExecutor re-yields ready work many times per
period and burnt a core in chunk_executor (see its module docstring); nothing uses it any more.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from contextlib import suppress
from typing import TypeVar

import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.task import Future as RosFuture

EXIT_OK = 0
EXIT_BAD_SETUP = 2
T = TypeVar('T')


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None, *,
             setup_errors: tuple[type[BaseException], ...] = (ValueError,)) -> int:
    """Run the node built by ``factory`` until shutdown; return the process exit status."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except setup_errors as exc:
        rclpy.logging.get_logger(name).fatal(f'{type(exc).__name__}: {exc}')
        return EXIT_BAD_SETUP
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
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
