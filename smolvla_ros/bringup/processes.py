"""Starting and stopping a stack's processes from tests and benchmarks (no rclpy).

test/ and bench/ both start ``smolvla-ros up`` (or ``ros2 launch``) as processes on a DDS domain
of their own and stop them as a person would, with Ctrl-C; this module is the one copy of that
(docs/ARCHITECTURE.md, "Tests"). The in-process node that watches such a stack is
:class:`smolvla_ros.bringup.watcher.StackWatcher`.
"""
from __future__ import annotations

import os
from pathlib import Path
import random
import signal
import subprocess
import sys

# ROS_DOMAIN_ID values valid for the default port mapping: wide enough that concurrent runs on one
# machine rarely meet (a test that must not be answered by a stranger also uses names of its own).
DOMAIN_IDS = (1, 215)


def random_domain_id() -> int:
    return random.randint(*DOMAIN_IDS)


def isolated_ros_env(domain_id: int | None = None,
                     base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ROS processes: a domain of their own (random unless given), discovery on
    this machine only, this interpreter's bin/ first on PATH (its console scripts), unbuffered
    Python output (logs arrive as they are written)."""
    env = dict(os.environ if base is None else base)
    env['ROS_DOMAIN_ID'] = str(random_domain_id() if domain_id is None else domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['PYTHONUNBUFFERED'] = '1'
    return env


def up_command(*args: str) -> list[str]:
    """``smolvla-ros up ARGS`` with the console script of this interpreter's environment, else
    ``python -m smolvla_ros.cli`` (a checkout without the console scripts installed).

    The ``up`` it starts stops when this process ends (``--parent-pid``), however this one ends:
    a test runner or benchmark killed with SIGKILL leaves no stack behind. Start it from a thread
    that lives as long as the stack should (the kernel's signal follows the creating thread).
    """
    script = Path(sys.executable).parent / 'smolvla-ros'
    base = [str(script)] if script.is_file() else [sys.executable, '-m', 'smolvla_ros.cli']
    return [*base, 'up', '--parent-pid', str(os.getpid()), *args]


def stop(proc: subprocess.Popen, timeout_s: float = 30.0, *, group: bool = False,
         signum: int = signal.SIGINT) -> bool:
    """Stop ``proc`` as a terminal's Ctrl-C does, SIGKILL it if that does not end it.

    Sends ``signum`` (SIGINT) to a process still running -- to its whole process group when
    ``group`` (a process started with ``start_new_session``, e.g. ``ros2 launch`` and its nodes)
    -- waits up to ``timeout_s``, then SIGKILLs it (the group) and reaps it. True when it ended
    without SIGKILL, including when it had ended already; ``proc.returncode`` is set either way.
    """
    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass  # ended between poll() and the signal

    if proc.poll() is not None:
        return True
    send(signum)
    try:
        proc.wait(timeout=timeout_s)
        return True
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()
        return False
