"""Starting `smolvla-ros up` from tests, and bounding a run without orphaning its nodes.

`up` starts every node in a session of its own; the kernel sends them SIGTERM when `up` dies
(PR_SET_PDEATHSIG, bringup/supervisor.py), but a run past its deadline still gets SIGINT first, so
that `up` stops its nodes in order and the test sees their exit, and SIGKILL only if that does not
end it. The helpers that bench/ shares (the command, the environment, stop, StackWatcher) live in
smolvla_ros/bringup/processes.py and watcher.py; this module adds what fails a test.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import signal
import subprocess

import pytest

from smolvla_ros.bringup.watcher import StackWatcher


def run_up(cmd: list[str], env: dict[str, str], deadline_s: float, *,
           merge_stderr: bool = False) -> subprocess.CompletedProcess:
    """subprocess.run for `up` that fails the test (with the output) past ``deadline_s``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # communicate, not stop(): the pipes must be drained
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        pytest.fail(f'up did not end within {deadline_s:g} s:\n{out}\n{err or ""}')
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def spin_or_fail(watcher: StackWatcher, done: Callable[[], object], timeout_s: float,
                 proc: subprocess.Popen, log: Path) -> bool:
    """``watcher.spin_until`` that fails the test, with the log's tail, when ``proc`` (the stack)
    exits first. False at the timeout: the caller's assertion says what was missing."""
    if watcher.spin_until(done, timeout_s, proc):
        return True
    if proc.poll() is not None:
        pytest.fail(f'the stack exited early ({proc.returncode}):\n{log.read_text()[-6000:]}')
    return False
