"""Progress bars: tqdm when installed, else a plain one-line counter on stderr."""
from __future__ import annotations

import sys
from typing import TextIO


class _Plain:
    """A minimal stand-in for tqdm: prints ``desc: n/total`` at every 10 %."""

    def __init__(self, total: int, desc: str, stream: TextIO) -> None:
        self.total, self.desc, self.stream, self.n, self._next = total, desc, stream, 0, 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total and self.n / self.total >= self._next:
            self.stream.write(f'{self.desc}: {self.n}/{self.total}\n')
            self._next += 0.1

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True) -> object:
    """An object with ``update(n)`` and ``close()``; silent when not ``enabled``."""
    if not enabled:
        return _Plain(0, desc, sys.stderr)  # total 0: never writes
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(total, desc, sys.stderr)
    return tqdm(total=total, desc=desc, unit='frame', leave=False)
