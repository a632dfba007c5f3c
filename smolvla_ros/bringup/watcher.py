"""An in-process node that watches a stack started as processes (tests and benchmarks).

Tests and benchmarks start ``smolvla-ros up`` or ``ros2 launch`` (bringup/processes.py) and watch
the stack from their own process: diagnostics, episode events, commands. Each does so through a
StackWatcher: an rclpy context of its own on the stack's domain (so it never touches the default
context of the process), one node, one single-threaded executor (docs/ARCHITECTURE.md,
"Threading"). Subclasses add their subscriptions, publishers and clients to ``self.node``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
import subprocess
import time


class StackWatcher:
    def __init__(self, domain_id: int, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self._rclpy = rclpy
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, done: Callable[[], object], timeout_s: float,
                   procs: subprocess.Popen | Sequence[subprocess.Popen] = ()) -> bool:
        """Spin until ``done()`` is true (True); False after ``timeout_s`` or as soon as one of
        ``procs`` has exited (``done()`` is checked once more then)."""
        watched = [procs] if isinstance(procs, subprocess.Popen) else list(procs)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and all(p.poll() is None for p in watched):
            self.executor.spin_once(timeout_sec=0.1)
            self.on_spin()
            if done():
                return True
        return bool(done())

    def on_spin(self) -> None:
        """Called after every spin_once of spin_until; subclasses override."""

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> StackWatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
