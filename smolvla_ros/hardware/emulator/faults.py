"""Fault injection for the servo emulator: what can go wrong on a real Feetech bus, on demand.

Reply faults (`drop_reply`, `corrupt_checksum`, `delay_reply`) apply to the next `count` replies of
one servo (count None = until cleared). `missing` makes a servo silent (absent from the start when
given to the constructor; disappearing mid-run when injected later). `overheat`, `overload` and
`overcurrent` and `voltage` raise the matching status bits (and, for overheat and low voltage, the
readings). A servo whose Unloading_Condition holds one of those bits (overheat, overcurrent and
overload by default) switches its own torque off, and stays limp after the fault is cleared, as
the real servo does: inject then clear to emulate a protection that tripped and recovered.
"""
from __future__ import annotations

from dataclasses import dataclass
import enum


class FaultKind(str, enum.Enum):
    DROP_REPLY = 'drop_reply'
    CORRUPT_CHECKSUM = 'corrupt_checksum'
    DELAY_REPLY = 'delay_reply'
    MISSING = 'missing'
    OVERHEAT = 'overheat'
    OVERLOAD = 'overload'
    OVERCURRENT = 'overcurrent'
    VOLTAGE = 'voltage'


REPLY_FAULTS = (FaultKind.DROP_REPLY, FaultKind.CORRUPT_CHECKSUM, FaultKind.DELAY_REPLY)
STATUS_FAULTS = (FaultKind.OVERHEAT, FaultKind.OVERLOAD, FaultKind.OVERCURRENT,
                 FaultKind.VOLTAGE)


@dataclass(frozen=True)
class Fault:
    """One injected fault. `delay_s` is used by delay_reply only."""

    kind: FaultKind
    motor_id: int
    count: int | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, 'kind', FaultKind(self.kind))
        if self.count is not None and self.count < 1:
            raise ValueError(f'fault count must be >= 1 or None, got {self.count}')
        if self.kind is FaultKind.DELAY_REPLY and not self.delay_s > 0:
            raise ValueError('delay_reply needs delay_s > 0')
        if self.kind not in REPLY_FAULTS and self.count is not None:
            raise ValueError(f'{self.kind.value} is a state, not a per-reply fault: no count')


def parse_fault(text: str) -> Fault:
    """Parse 'kind:id[:count[:delay_s]]' (command-line form), e.g. 'drop_reply:3:5'."""
    parts = text.split(':')
    if not 2 <= len(parts) <= 4:
        raise ValueError(f'fault {text!r}: expected kind:id[:count[:delay_s]]')
    try:
        kind = FaultKind(parts[0])
    except ValueError:
        raise ValueError(
            f'fault {text!r}: unknown kind; known: {[k.value for k in FaultKind]}') from None
    try:
        count = int(parts[2]) if len(parts) > 2 and parts[2] else None
        delay = float(parts[3]) if len(parts) > 3 else 0.0
        return Fault(kind, int(parts[1]), count, delay)
    except ValueError as exc:
        raise ValueError(f'fault {text!r}: {exc}') from None
