"""Waiting on a condition in tests: a deadline bounds a failure, it is never a timed assertion."""
from __future__ import annotations

from collections.abc import Callable
import time


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll until ``predicate()`` is true; False after ``timeout_s`` (checked once more then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())
