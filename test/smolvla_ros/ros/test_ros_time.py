"""builtin_interfaces/Time <-> int ns."""
from __future__ import annotations

from builtin_interfaces.msg import Time
import pytest

from smolvla_ros.ros.errors import StampError
from smolvla_ros.ros.time import ns_to_stamp, stamp_to_ns


@pytest.mark.parametrize('ns', [0, 1, 999_999_999, 1_000_000_000, 1_795_320_637_782_583_526,
                                (2**31 - 1) * 10**9 + 999_999_999, -1, -(2**31) * 10**9])
def test_round_trip_is_exact(ns: int) -> None:
    stamp = ns_to_stamp(ns)
    assert 0 <= stamp.nanosec < 10**9
    assert stamp_to_ns(stamp) == ns


def test_split_into_sec_and_nanosec() -> None:
    stamp = ns_to_stamp(12_000_000_345)
    assert (stamp.sec, stamp.nanosec) == (12, 345)


@pytest.mark.parametrize('ns', [2**31 * 10**9, -(2**31) * 10**9 - 1])
def test_out_of_range_is_rejected(ns: int) -> None:
    with pytest.raises(StampError, match='does not fit'):
        ns_to_stamp(ns)


@pytest.mark.parametrize('ns', [1.5, True, '5'])
def test_non_int_is_rejected(ns) -> None:
    with pytest.raises(StampError, match='must be an int'):
        ns_to_stamp(ns)


def test_malformed_nanosec_is_rejected() -> None:
    with pytest.raises(StampError, match='nanosec must be in'):
        stamp_to_ns(Time(sec=1, nanosec=1_000_000_000))
