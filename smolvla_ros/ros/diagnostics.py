"""diagnostic_msgs/DiagnosticArray for a node's ``/diagnostics``, built in one place.

A node decides its level, message and key/values (ROS-free where it can:
core/executor/execution_status.py, hardware/arm/arm_status.py); :func:`diagnostic_status` and
:func:`diagnostic_array` turn them into the message. Levels are ints here, as the cores compute
them; the message field is a single byte.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from smolvla_ros.ros.time import ns_to_stamp

# diagnostic_msgs/DiagnosticStatus levels as ints (the message defines them as bytes).
OK, WARN, ERROR, STALE = (level[0] for level in (
    DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE))


def diagnostic_status(name: str, level: int, message: str, hardware_id: str = '',
                      values: Mapping[str, str] | Iterable[tuple[str, str]] = ()
                      ) -> DiagnosticStatus:
    """One status: ``level`` one of OK, WARN, ERROR, STALE; ``values`` key -> text, in order."""
    if type(level) is not int or level not in (OK, WARN, ERROR, STALE):  # bool, float: refused
        raise ValueError(f'diagnostic level must be one of OK=0, WARN=1, ERROR=2, STALE=3, '
                         f'got {level!r}')
    pairs = values.items() if isinstance(values, Mapping) else values
    return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                            hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in pairs])


def diagnostic_array(stamp_ns: int, statuses: Iterable[DiagnosticStatus]) -> DiagnosticArray:
    """The message a node publishes on ``/diagnostics``: its statuses, stamped ``stamp_ns``."""
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.status = list(statuses)
    return msg
