"""Helpers shared by the recorder node's tests."""
from __future__ import annotations

import threading
import time


def finish_recording(rec, rec_exec, spinner: threading.Thread,
                     timeout_s: float = 10.0) -> dict[str, int]:
    """After ~/stop: wait until the recorder wrote the episode's stop event, stop the thread that
    spins it, close it; its messages written per topic."""
    end = time.monotonic() + timeout_s
    while rec.writer.written['/episode'] < 2 and time.monotonic() < end:
        time.sleep(0.05)
    rec_exec.shutdown()
    spinner.join(timeout_s)
    return rec.close()
