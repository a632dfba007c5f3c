"""The chunk executor's one-line status: what it does and, when it stalls, why.

"starved" alone says that the queue ran dry, not why; the executor usually knows: the policy
service is not there, requests fail (the policy's own message), requests time out, a camera is
stale, or its frames are refused. :class:`StallCauses` keeps the latest such cause for a while
(each failed attempt renews it, a chunk accepted clears it), and :func:`execution_status` puts it
in the ``/diagnostics`` message of a starving or still waiting executor. ROS-free, so the wording
is tested without nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN = 0, 1  # diagnostic_msgs/DiagnosticStatus levels


@dataclass
class StallCauses:
    """The latest known reason why no chunk arrives, forgotten ``hold_ns`` after it was noted."""

    hold_ns: int = 5_000_000_000
    _cause: str = ''
    _at_ns: int = 0

    def note(self, cause: str, now_ns: int) -> None:
        self._cause, self._at_ns = cause, int(now_ns)

    def clear(self) -> None:
        self._cause = ''

    def current(self, now_ns: int) -> str:
        """The cause noted within the last ``hold_ns``, or ''."""
        if self._cause and now_ns - self._at_ns <= self.hold_ns:
            return self._cause
        return ''


def execution_status(*, started: bool, paused: bool, starved: bool, stale: str,
                     cause: str) -> tuple[int, str]:
    """(level, message): paused; a stale input (``stale``, the alignment report's text, with the
    cause when known, e.g. the camera's frames are refused); starved, with the cause when known;
    waiting for a first chunk, with the cause; else OK."""
    if paused:
        return OK, 'paused (~/pause)'
    if stale:
        return WARN, stale + (f' ({cause})' if cause else '')
    if starved:
        return WARN, 'starved: holding the last command' + (f' ({cause})' if cause else '')
    if not started:
        return (WARN, f'waiting for a first chunk: {cause}') if cause else (OK, 'waiting')
    return OK, 'executing'
