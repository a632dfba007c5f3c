"""The ``smolvla-ros`` command: the dispatcher (main.py) and one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported
only when its subcommand runs, so ``smolvla-ros up`` needs no torch and starts fast.
"""
