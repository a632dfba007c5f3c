"""Typed errors of the Feetech bus, so callers (the driver node, the calibrate CLI, tests) can tell
a cable problem from a bad packet without parsing messages. A bad calibration raises
``smolvla_ros.core.robot.calibration.CalibrationError`` (a ValueError)."""
from __future__ import annotations


class FeetechError(RuntimeError):
    """Base class of every error raised by smolvla_ros.hardware.feetech."""


class BusNotConnectedError(FeetechError):
    """A transfer was asked of a bus that is not open (never connected, closed, or port gone)."""


class PortError(FeetechError):
    """The serial port could not be opened or failed at the OS level (unplugged adapter, EIO)."""


class CommunicationError(FeetechError):
    """A transfer to one motor failed after all retries.

    `motor` names the motor that did not answer correctly (or 'broadcast' for a sync write),
    `reason` is the last failure kind ('timeout', 'corrupt', 'tx_fail', 'short_reply', 'port_busy').
    """

    def __init__(self, motor: str, reason: str, detail: str = '') -> None:
        self.motor = motor
        self.reason = reason
        self.detail = detail
        text = f'motor {motor!r}: {reason}'
        super().__init__(f'{text} ({detail})' if detail else text)


class MotorStatusError(FeetechError):
    """A motor answered with hardware error bits set (overheat, overload, voltage, angle, current).

    Raised only when the bus is asked to treat status bits as errors (`raise_on_status=True`); by
    default the bits are counted and exposed in `FeetechBus.stats` and the transfer succeeds.
    """

    def __init__(self, motor: str, status: int, flags: tuple[str, ...]) -> None:
        self.motor = motor
        self.status = status
        self.flags = flags
        super().__init__(f'motor {motor!r} reports status 0x{status:02x}: {", ".join(flags)}')


class UnknownMotorError(FeetechError, KeyError):
    """A motor name that the bus was not configured with."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ''


class UnknownRegisterError(FeetechError, KeyError):
    """A register name that is not in the STS3215 control table."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class EncodingError(FeetechError, ValueError):
    """A value that does not fit its register (too large, negative for an unsigned register)."""


class ProtocolError(FeetechError, ValueError):
    """Bytes that are not a valid Feetech packet (bad header, length, checksum)."""
