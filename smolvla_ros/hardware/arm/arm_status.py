"""Health and counters of one arm as plain data, and their layout as diagnostic entries.

The driver node turns :class:`DiagnosticEntry` into ``diagnostic_msgs/DiagnosticStatus`` one to
one; keeping the layout here means the keys users see in ``rqt_runtime_monitor`` are tested
without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smolvla_ros.hardware.feetech.tables import status_flags

# diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR, STALE = 0, 1, 2, 3



@dataclass
class JointHealth:
    """Latest slow readings and error counters of one servo (mutable, owned by the controller)."""

    temperature_c: float | None = None
    voltage_v: float | None = None
    load: float | None = None  # fraction of max torque, signed, -1..1
    status: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failure kind -> count
    torque_lost: str = ''  # why, while the servo is limp against the driver's will
    stalled: str = ''  # the evidence, while the joint's stall is latched

    def copy(self) -> JointHealth:
        return JointHealth(self.temperature_c, self.voltage_v, self.load, self.status,
                           dict(self.errors), self.torque_lost, self.stalled)

    @property
    def status_flags(self) -> list[str]:
        return list(status_flags(self.status))


@dataclass(frozen=True)
class DiagnosticEntry:
    level: int
    name: str
    message: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ArmStatus:
    """A snapshot of the controller for diagnostics."""

    state: str
    role: str
    reason: str
    joint_names: tuple[str, ...]
    health: dict[str, JointHealth]
    clip_counts: dict[str, int]
    good_cycles: int
    failed_cycles: int
    consecutive_errors: int
    reconnects: int
    faults: int
    torque_losses: int
    stalls: int
    commands_received: int
    commands_rejected: int
    last_cycle_ms: float
    mean_cycle_ms: float
    bus_stats: Any = None

    def entries(self, prefix: str) -> list[DiagnosticEntry]:
        """One entry for the bus and one per joint: ``<prefix>: bus``, ``<prefix>: <joint>``."""
        if self.state in ('fault', 'disconnected', 'torque_lost', 'stalled'):
            level, message = ERROR, f'{self.state}: {self.reason}'
        elif self.consecutive_errors:
            level, message = WARN, f'{self.state}, {self.consecutive_errors} failed cycles in a row'
        else:
            level, message = OK, self.state
        bus = DiagnosticEntry(level, f'{prefix}: bus', message, _kv(
            state=self.state, role=self.role, reason=self.reason,
            good_cycles=self.good_cycles, failed_cycles=self.failed_cycles,
            consecutive_errors=self.consecutive_errors, reconnects=self.reconnects,
            faults=self.faults, torque_losses=self.torque_losses, stalls=self.stalls,
            commands_received=self.commands_received,
            commands_rejected=self.commands_rejected,
            last_cycle_ms=f'{self.last_cycle_ms:.3f}', mean_cycle_ms=f'{self.mean_cycle_ms:.3f}',
            stale_bytes=getattr(self.bus_stats, 'stale_bytes', 0),
        ))
        out = [bus]
        for name in self.joint_names:
            h = self.health[name]
            flags = h.status_flags
            level = ERROR if flags or h.torque_lost or h.stalled else (WARN if h.errors else OK)
            if h.torque_lost:
                message = h.torque_lost
            elif h.stalled:
                message = h.stalled
            elif flags:
                message = 'servo reports ' + ', '.join(flags)
            else:
                message = f'{sum(h.errors.values())} transfer errors' if h.errors else 'ok'
            values = _kv(
                temperature_c=_fmt(h.temperature_c), voltage_v=_fmt(h.voltage_v),
                load_fraction=_fmt(h.load), status=f'0x{h.status:02x}',
                errors_total=sum(h.errors.values()), goals_clipped=self.clip_counts[name],
                torque_lost=h.torque_lost or 'no', stalled=h.stalled or 'no',
            ) + tuple((f'errors_{k}', str(v)) for k, v in sorted(h.errors.items()))
            values += self._bus_counters(name)
            out.append(DiagnosticEntry(level, f'{prefix}: {name}', message, values))
        return out


    def _bus_counters(self, name: str) -> tuple[tuple[str, str], ...]:
        """Per-attempt counters of the bus (retried failures included), when it keeps them."""
        motors = getattr(self.bus_stats, 'motors', None)
        if not motors or name not in motors:
            return ()
        m = motors[name]
        return ((('bus_transfers', str(m.transfers)),)
                + tuple((f'bus_errors_{k}', str(v)) for k, v in sorted(m.errors.items())))


def _fmt(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.3f}'


def _kv(**values: object) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in values.items())
