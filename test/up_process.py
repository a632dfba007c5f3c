"""Starting `smolvla-ros up` from tests, and bounding a run without orphaning its nodes.

`up` starts every node in a session of its own; the kernel sends them SIGTERM when `up` dies
(PR_SET_PDEATHSIG, bringup/supervisor.py), but a run past its deadline still gets SIGINT first, so
that `up` stops its nodes in order and the test sees their exit, and SIGKILL only if that does not
end it.
"""
from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import sys

import pytest


def up_command(*args: str) -> list[str]:
    """``smolvla-ros up ARGS`` with the console script of this interpreter's environment."""
    script = Path(sys.executable).parent / 'smolvla-ros'
    base = [str(script)] if script.is_file() else [sys.executable, '-m', 'smolvla_ros.cli']
    return [*base, 'up', *args]


def run_up(cmd: list[str], env: dict[str, str], deadline_s: float, *,
           merge_stderr: bool = False) -> subprocess.CompletedProcess:
    """subprocess.run for `up` that fails the test (with the output) past ``deadline_s``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        pytest.fail(f'up did not end within {deadline_s:g} s:\n{out}\n{err or ""}')
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
