"""Waiting on a condition in tests: a deadline bounds a failure, it is never a timed assertion.
And the condition most waited for: a process gone."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import time


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll until ``predicate()`` is true; False after ``timeout_s`` (checked once more then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'
