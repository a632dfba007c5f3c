"""The camera source ABC: connect / read / async_read / close, and a context manager.

Blocking semantics (the node relies on them): ``read()`` blocks until the *next* frame exists and
returns it; a source therefore paces its caller at the camera's frame rate. Real devices pace
themselves; the file and synthetic sources sleep until the next frame is due, so a capture loop
behaves the same against all three. ``async_read(timeout_ms)`` is ``read`` with a deadline: it
raises ``CameraReadError`` when no frame arrives in time instead of blocking forever.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
import threading
import time

import numpy as np


class CameraError(RuntimeError):
    """Base class of camera errors."""


class CameraConfigError(ValueError):
    """An invalid camera parameter (names it and its value)."""


class CameraNotConnectedError(CameraError):
    """read() on a source that is not connected (or was closed)."""


class CameraReadError(CameraError):
    """The device or file produced no frame (unplugged, corrupt, timed out)."""


@dataclass(frozen=True)
class Frame:
    """One captured frame: RGB pixels and when they were captured (monotonic clock)."""

    rgb: np.ndarray  # uint8 [H, W, 3]
    capture_monotonic_s: float  # time.monotonic() when the frame was grabbed
    index: int  # frames read since connect


class CameraSource(ABC):
    """A frame source. Subclasses implement ``_open``, ``_grab`` and ``_release``."""

    def __init__(self) -> None:
        self._connected = False
        self._count = 0
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    @abstractmethod
    def description(self) -> str:
        """What this source reads, for logs and diagnostics (e.g. 'file demo.mp4 (loop)')."""

    def connect(self) -> None:
        """Open the device or file; raises CameraError (or CameraConfigError) when it cannot."""
        if self._connected:
            return
        self._open()
        self._connected = True
        self._count = 0

    def read(self) -> Frame:
        """Block until the next frame and return it (see the module docstring)."""
        if not self._connected:
            raise CameraNotConnectedError(f'{self.description}: read() before connect()')
        with self._lock:
            rgb = self._grab()
            self._count += 1
            return Frame(rgb, time.monotonic(), self._count)

    def async_read(self, timeout_ms: float) -> Frame:
        """``read`` with a deadline: CameraReadError when no frame arrives within timeout_ms."""
        result: list[Frame | BaseException] = []

        def run() -> None:
            try:
                result.append(self.read())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                result.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout_ms / 1e3)
        if not result:
            raise CameraReadError(f'{self.description}: no frame within {timeout_ms:g} ms')
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def close(self) -> None:
        """Release the device or file (idempotent)."""
        if self._connected:
            self._connected = False
            self._release()

    def __enter__(self) -> CameraSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _grab(self) -> np.ndarray:
        """The next frame, RGB uint8 [H, W, 3]; blocks until it is due."""

    @abstractmethod
    def _release(self) -> None: ...


class Pacer:
    """Sleeps until the next frame of a fixed rate is due (the file and synthetic sources).

    Deadlines advance by exactly 1/fps; a caller that fell more than one period behind is
    re-synchronised instead of bursting frames to catch up (a camera drops frames, it does not
    queue them).
    """

    def __init__(self, fps: float) -> None:
        self.period_s = 1.0 / fps
        self._next: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self.period_s:
            self._next = now
        else:
            time.sleep(max(0.0, self._next - now))
        self._next += self.period_s
