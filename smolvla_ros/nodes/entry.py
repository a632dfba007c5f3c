"""The console-script entry of every node: a Ctrl-C while the node's module is still importing.

A node's module imports rclpy and, for some, MuJoCo or the policy code before ``run_node`` can
install its signal handlers (node_main.py): seconds on a loaded machine. A stop asked for in
that time (``smolvla-ros up`` or ``ros2 launch`` stopping a stack that has just started) used to
end the process with a traceback: a KeyboardInterrupt, or a ``ctypes.ArgumentError`` wrapping it
when it landed in a foreign call of the import. Here SIGINT during the import ends the process
at once, quietly, with the exit status of a SIGINT (130), as Ctrl-C on a shell command does:
nothing has started yet, so there is nothing to clean up. SIGTERM keeps its default action (the
process ends, no traceback). Once imported, the node's ``main`` (``run_node``) handles both.
"""
from __future__ import annotations

import importlib
import os
import signal
from types import FrameType

EXIT_INTERRUPTED = 130  # 128 + SIGINT


def run(module: str) -> int:
    """Import ``module`` (a node's module) and return its ``main()``."""
    name = module.rsplit('.', 1)[-1]

    def stopped(signum: int, frame: FrameType | None) -> None:
        os.write(2, f'{name}: stopped while starting\n'.encode())
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, stopped)
    try:
        node = importlib.import_module(module)
    finally:
        signal.signal(signal.SIGINT, previous)
    return node.main()


def _entry(name: str):
    def main() -> int:
        return run(f'smolvla_ros.nodes.{name}')
    main.__name__ = name
    main.__doc__ = f'Entry point of the {name} node.'
    return main


null_policy_server = _entry('null_policy_server')
predict_probe = _entry('predict_probe')
feetech_driver = _entry('feetech_driver')
teleop = _entry('teleop')
camera = _entry('camera')
chunk_executor = _entry('chunk_executor')
policy_server = _entry('policy_server')
so101_sim = _entry('so101_sim')
chunk_visualizer = _entry('chunk_visualizer')
oracle_policy_server = _entry('oracle_policy_server')
recorder = _entry('recorder')
