"""The one ``main()`` shape every node uses (style.md item 5), written once.

``rclpy.init``; build the node; spin (single-threaded, or a MultiThreadedExecutor for nodes whose
callback groups must run in parallel); Ctrl-C and external shutdown end quietly; a setup error
(bad parameter, contract, calibration, checkpoint) is logged as FATAL without a traceback and ends
the process with exit status 2, which `smolvla-ros up` reports with the node's name.
"""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

EXIT_OK = 0
EXIT_BAD_SETUP = 2


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None, *,
             setup_errors: tuple[type[BaseException], ...] = (ValueError,),
             threads: int = 0) -> int:
    """Run the node built by ``factory`` until shutdown; return the process exit status.

    ``threads`` > 0 spins a MultiThreadedExecutor with that many threads, else ``rclpy.spin``.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        if threads > 0:
            executor = MultiThreadedExecutor(num_threads=threads)
            executor.add_node(node)
            executor.spin()
        else:
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
