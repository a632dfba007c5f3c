"""builtin_interfaces Time and Duration <-> int nanoseconds (the core's one time representation)."""
from __future__ import annotations

from builtin_interfaces.msg import Duration, Time

from smolvla_ros.ros.errors import StampError

_NS_PER_S = 1_000_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def stamp_to_ns(stamp: Time) -> int:
    """Nanoseconds since the epoch of the clock (exact integer arithmetic, no float rounding)."""
    if not 0 <= stamp.nanosec < _NS_PER_S:
        raise StampError(f'stamp nanosec must be in [0, 1e9), got {stamp.nanosec} '
                         f'(sec={stamp.sec})')
    return stamp.sec * _NS_PER_S + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    """A Time for integer nanoseconds; sec must fit in int32 (until 2038 for wall time)."""
    if isinstance(ns, bool) or not isinstance(ns, int):
        raise StampError(f'stamp must be an int of nanoseconds, got {type(ns).__name__} {ns!r}')
    sec, nanosec = divmod(ns, _NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise StampError(f'stamp {ns} ns does not fit builtin_interfaces/Time (sec={sec} '
                         f'outside int32)')
    return Time(sec=sec, nanosec=nanosec)


def ns_to_duration(ns: int) -> Duration:
    """A Duration for integer nanoseconds (same range rules as ``ns_to_stamp``)."""
    stamp = ns_to_stamp(ns)
    return Duration(sec=stamp.sec, nanosec=stamp.nanosec)
