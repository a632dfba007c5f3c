"""FeetechBus: named motors and named registers on top of the real `scservo_sdk` (protocol 0).

The SDK does the byte work (PacketHandler(0), GroupSyncRead, GroupSyncWrite); this class adds what a
driver needs around it: motor and register names, sign-magnitude decoding, bounded retries per
transfer with the failing motor identified, per-motor error counters, status-bit bookkeeping, byte
counts and cycle timing, and typed errors. It is thread-safe (one lock around every transfer), so a
service callback may toggle torque while the control timer reads positions.

Retry policy: a transfer is attempted `1 + retries` times. A sync read that fails at motor k keeps
the values already read and retries only k and the motors after it; every failed attempt counts one
error of its kind ('timeout', 'corrupt', 'short_reply', 'tx_fail', 'port_busy') against the motor
that failed. After a failed attempt the input is drained, and before every request the input
already received is dropped (`stale_bytes`), so a late reply is not taken as the answer to the
next request. When the retries are spent, CommunicationError names the motor and the kind.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
import copy
from dataclasses import dataclass, field
import logging
import select
import termios
import threading
import time
from typing import TypeVar

import scservo_sdk as scs
import serial

from smolvla_ros.hardware.feetech.encoding import decode_value, encode_value, from_bytes, to_bytes
from smolvla_ros.hardware.feetech.errors import (
    BusNotConnectedError,
    CommunicationError,
    FeetechError,
    MotorStatusError,
    PortError,
    UnknownMotorError,
)
from smolvla_ros.hardware.feetech.tables import (
    BAUD_RATE_CODES,
    MAX_ID,
    MODEL_NUMBERS,
    SO101_MOTOR_IDS,
    TABLES,
    Register,
    register,
    status_flags,
)

logger = logging.getLogger(__name__)
# What a vanished or broken serial port raises (termios.error is not an OSError).
_PORT_EXCEPTIONS = (OSError, serial.SerialException, termios.error)
_T = TypeVar('_T')

_RESULT_KIND = {
    scs.COMM_PORT_BUSY: 'port_busy',
    scs.COMM_TX_FAIL: 'tx_fail',
    scs.COMM_RX_FAIL: 'rx_fail',
    scs.COMM_TX_ERROR: 'tx_error',
    scs.COMM_RX_TIMEOUT: 'timeout',
    scs.COMM_RX_CORRUPT: 'corrupt',
    scs.COMM_NOT_AVAILABLE: 'not_available',
}
# Why a servo failed the connect handshake (CommunicationError.reason), by the last attempt's kind.
_HANDSHAKE_REASONS = {'timeout': 'no_answer', 'corrupt': 'corrupt_replies',
                      'short_reply': 'short_replies'}
_HANDSHAKE_HINTS = {
    'no_answer': 'no answer (check power, cabling and ids)',
    'corrupt_replies': 'corrupt replies (bad checksums: noise on the bus, a loose cable, or two '
                       'servos with the same id)',
    'short_replies': 'replies cut short (a loose cable or a baud-rate mismatch)',
}


@dataclass(frozen=True)
class Motor:
    """A servo on the bus: its id (1..252) and model (only 'sts3215' is tabled)."""

    id: int
    model: str = 'sts3215'

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not 0 <= self.id <= MAX_ID:
            raise ValueError(f'motor id must be an int in 0..{MAX_ID}, got {self.id!r}')
        if self.model not in TABLES:
            raise ValueError(f'unknown motor model {self.model!r}; known: {sorted(TABLES)}')


@dataclass
class MotorStats:
    """Counters of one motor. `errors` counts failed attempts by kind (a retried success still
    counts its failed attempts); `failures` counts transfers that failed after all retries."""

    transfers: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    last_status: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


@dataclass
class BusStats:
    """A snapshot of the bus counters and timings (returned by `FeetechBus.stats`)."""

    motors: dict[str, MotorStats]
    transfers: int = 0  # top-level operations that succeeded
    attempts: int = 0  # low-level attempts, including retries
    retries: int = 0
    failures: int = 0  # operations that raised CommunicationError
    tx_bytes: int = 0  # bytes written to the port
    rx_bytes: int = 0  # bytes read from the port (including drained garbage)
    stale_bytes: int = 0  # unrequested input dropped before a request (late replies)
    cycles: int = 0
    last_cycle_s: float = 0.0
    mean_cycle_s: float = 0.0
    max_cycle_s: float = 0.0
    last_transfer_s: float = 0.0
    broadcast_errors: dict[str, int] = field(default_factory=dict)  # failed sync writes by kind


class WaitingPortHandler(scs.PortHandler):
    """A PortHandler that waits in select() instead of spinning, with a settable timeout margin.

    The SDK's receive loop polls a non-blocking port until its packet deadline, so a missing servo
    burns ~34 ms of a full core. Only the waiting changes here; the SDK's protocol code runs as is.
    The deadline is tx time of the expected bytes + `timeout_ms` (the SDK hard-codes 2 x 16 ms of
    USB latency + 2 ms). Bytes written and read are counted for the benchmark.
    """

    def __init__(self, port_name: str, timeout_ms: float) -> None:
        super().__init__(port_name)
        self.timeout_margin_ms = float(timeout_ms)
        self.tx_bytes = 0
        self.rx_bytes = 0
        self.stale_bytes = 0

    def clearPort(self) -> None:  # noqa: N802 (SDK name)
        """Before each request: also drop the input nobody has asked for yet.

        The SDK calls this before it writes a request, but its version only flushes the output.
        The protocol has no sequence numbers, so a reply that arrived after its request had timed
        out (and after the drain that followed) would be read as the answer to this request --
        an older position taken for a fresh one. Non-blocking: only bytes already received.
        """
        super().clearPort()
        waiting = self.ser.in_waiting
        if waiting:
            dropped = len(self.ser.read(waiting))
            self.stale_bytes += dropped
            self.rx_bytes += dropped

    def setPacketTimeout(self, packet_length: int) -> None:  # noqa: N802 (SDK name)
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + self.timeout_margin_ms

    def readPort(self, length: int) -> bytes:  # noqa: N802 (SDK name)
        ser = self.ser
        if ser.in_waiting < length:
            remaining_ms = self.packet_timeout - self.getTimeSinceStart()
            if remaining_ms > 0:
                select.select([ser.fileno()], [], [], remaining_ms / 1000.0)
        data = ser.read(length)
        self.rx_bytes += len(data)
        return data

    def writePort(self, packet: list[int] | bytes) -> int:  # noqa: N802 (SDK name)
        written = self.ser.write(bytes(packet)) or 0
        self.tx_bytes += written
        return written

    def discard_input(self, quiet_s: float = 0.002, max_s: float = 0.05) -> int:
        """Drop bytes until the line is quiet for `quiet_s` (at most `max_s`); return the count."""
        ser = self.ser
        dropped = 0
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([ser.fileno()], [], [], quiet_s)
            if not ready:
                break
            chunk = ser.read(max(1, ser.in_waiting))
            if not chunk:
                break
            dropped += len(chunk)
        self.rx_bytes += dropped
        return dropped


class _AttemptFailed(Exception):
    """Internal: one attempt failed at `motor` with `kind`."""

    def __init__(self, motor: str, kind: str) -> None:
        super().__init__(motor, kind)
        self.motor = motor
        self.kind = kind


class FeetechBus:
    """A Feetech STS bus with named motors.

    Values are in decoded register units: sign-magnitude registers (positions, velocities, load,
    Homing_Offset) come back as signed ints and are written from signed ints; everything else is
    the raw unsigned value. No calibration or normalization happens here (see units.py).

    `timeout_ms` is the margin added to the transmit time of a reply before it counts as lost (the
    SDK default is 34 ms; LeRobot uses 50 ms). `raise_on_status=True` turns replies with hardware
    error bits (overheat, overload, ...) into MotorStatusError; by default they are counted in
    `stats` and reported, and the transfer succeeds.
    """

    def __init__(self, port: str, motors: Mapping[str, Motor], baudrate: int = 1_000_000,
                 retries: int = 2, timeout_ms: float = 50.0, raise_on_status: bool = False) -> None:
        if not motors:
            raise ValueError('a bus needs at least one motor')
        ids = [m.id for m in motors.values()]
        if len(set(ids)) != len(ids):
            raise ValueError(f'motor ids must be unique, got {ids}')
        if baudrate not in BAUD_RATE_CODES.values():
            raise ValueError(
                f'baudrate {baudrate} is not an STS rate: {sorted(BAUD_RATE_CODES.values())}')
        if retries < 0:
            raise ValueError(f'retries must be >= 0, got {retries}')
        if not timeout_ms > 0:
            raise ValueError(f'timeout_ms must be > 0, got {timeout_ms}')
        self.port = port
        self.motors: dict[str, Motor] = dict(motors)
        self.baudrate = baudrate
        self.retries = retries
        self.timeout_ms = timeout_ms
        self.raise_on_status = raise_on_status
        self._ids_to_name = {m.id: name for name, m in self.motors.items()}
        self._lock = threading.RLock()
        self._port: WaitingPortHandler | None = None
        self._ph = None
        self._sync_reads: dict[tuple[int, int, tuple[int, ...]], scs.GroupSyncRead] = {}
        self._sync_writes: dict[tuple[int, int], scs.GroupSyncWrite] = {}
        self._stats = BusStats(motors={name: MotorStats() for name in self.motors})
        self._cycle_sum = 0.0

    # -- connection -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._port is not None

    def connect(self, handshake: bool = True) -> None:
        """Open the port; with `handshake`, ping every motor and check its model number.

        Raises PortError when the port cannot be opened and CommunicationError naming the motors
        that fail the handshake, with the reason of the first of them: 'no_answer',
        'corrupt_replies', 'short_replies' (the detail says it for each) or 'wrong_model'.
        """
        with self._lock:
            if self._port is not None:
                return
            port = WaitingPortHandler(self.port, self.timeout_ms)
            port.baudrate = self.baudrate
            try:
                opened = port.openPort()
            except _PORT_EXCEPTIONS as exc:
                raise PortError(f'cannot open {self.port}: {exc}') from exc
            if not opened:
                raise PortError(f'cannot open {self.port} at {self.baudrate} baud')
            self._port = port
            self._ph = scs.PacketHandler(0)
            self._sync_reads.clear()
            self._sync_writes.clear()
        if handshake:
            try:
                self._handshake()
            except FeetechError:
                self.close()
                raise

    def _handshake(self) -> None:
        failed: dict[str, list[str]] = {}  # handshake reason -> motors, in motor order
        wrong = []
        for name, motor in self.motors.items():
            try:
                model = self._run([name], lambda n=name, i=motor.id: self._ping_once(n, i))
            except CommunicationError as exc:  # the last attempt's kind says why
                failed.setdefault(_HANDSHAKE_REASONS.get(exc.reason, exc.reason), []).append(name)
                continue
            if model != MODEL_NUMBERS[motor.model]:
                wrong.append(f'{name}: model {model}, expected {MODEL_NUMBERS[motor.model]}')
        if failed:
            # A servo that answers with bad checksums is there: saying 'no answer' sends the user
            # looking for a power or id problem instead of noise, a loose cable or an id clash.
            motors = [m for names in failed.values() for m in names]
            detail = '; '.join(f'{", ".join(names)}: {_HANDSHAKE_HINTS.get(reason, reason)}'
                               for reason, names in failed.items())
            raise CommunicationError(', '.join(motors), next(iter(failed)),
                                     f'on {self.port}: {detail}')
        if wrong:
            raise CommunicationError(', '.join(w.split(':')[0] for w in wrong), 'wrong_model',
                                     '; '.join(wrong))

    def close(self) -> None:
        """Close the port (no torque change; see disable_torque). Safe to call twice."""
        with self._lock:
            port, self._port = self._port, None
            if port is not None:
                self._stats.tx_bytes += port.tx_bytes
                self._stats.rx_bytes += port.rx_bytes
                self._stats.stale_bytes += port.stale_bytes
                try:
                    port.closePort()
                except _PORT_EXCEPTIONS:
                    logger.debug('error closing %s', self.port, exc_info=True)

    def __enter__(self) -> FeetechBus:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statistics -------------------------------------------------------------------------

    @property
    def stats(self) -> BusStats:
        """A consistent copy of the counters (safe to keep; later transfers do not change it)."""
        with self._lock:
            snap = copy.deepcopy(self._stats)
            if self._port is not None:
                snap.tx_bytes += self._port.tx_bytes
                snap.rx_bytes += self._port.rx_bytes
                snap.stale_bytes += self._port.stale_bytes
            return snap

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = BusStats(motors={name: MotorStats() for name in self.motors})
            self._cycle_sum = 0.0
            if self._port is not None:
                self._port.tx_bytes = self._port.rx_bytes = self._port.stale_bytes = 0

    @contextmanager
    def cycle(self) -> Iterator[None]:
        """Time one control cycle (e.g. sync read + sync write) into stats' cycle figures."""
        start = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - start
            with self._lock:
                s = self._stats
                s.cycles += 1
                s.last_cycle_s = dt
                s.max_cycle_s = max(s.max_cycle_s, dt)
                self._cycle_sum += dt
                s.mean_cycle_s = self._cycle_sum / s.cycles

    # -- transfers --------------------------------------------------------------------------

    def ping(self, name: str) -> int | None:
        """Model number of the motor, or None when it does not answer after the retries."""
        motor = self._motor(name)
        try:
            return self._run([name], lambda: self._ping_once(name, motor.id))
        except CommunicationError:
            return None

    def read(self, register_name: str, name: str) -> int:
        """Read one register of one motor (status reply; for configuration, not control loops)."""
        motor = self._motor(name)
        reg = register(register_name, motor.model)
        return self._run([name], lambda: self._read_once(name, motor.id, reg))

    def write(self, register_name: str, name: str, value: int) -> None:
        """Write one register of one motor and wait for its status reply (with retries)."""
        motor = self._motor(name)
        reg = register(register_name, motor.model)
        data = list(to_bytes(encode_value(reg, value), reg.size))
        self._run([name], lambda: self._write_once(name, motor.id, reg, data))

    def sync_read(self, register_name: str, names: Sequence[str] | None = None) -> dict[str, int]:
        """Read one register of many motors in one request (GroupSyncRead); name -> value."""
        block = self.sync_read_registers([register_name], names)
        return {name: regs[register_name] for name, regs in block.items()}

    def sync_read_registers(self, register_names: Sequence[str],
                            names: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """Read several registers in one sync read of the address span that covers them.

        E.g. Present_Position..Present_Temperature is one 8-byte read per motor. Returns
        name -> register -> decoded value.
        """
        names = self._names(names)
        model = self.motors[names[0]].model
        regs = [register(r, model) for r in register_names]
        if not regs:
            raise ValueError('no registers to read')
        start = min(r.address for r in regs)
        length = max(r.address + r.size for r in regs) - start
        raw = self._sync_read_raw(start, length, names)
        return {
            name: {r.name: decode_value(r, from_bytes(data[r.address - start:
                                                           r.address - start + r.size]))
                   for r in regs}
            for name, data in raw.items()
        }

    def sync_write(self, register_name: str, values: Mapping[str, int]) -> None:
        """Write one register of many motors in one broadcast packet (no reply, no retry needed
        for delivery; a port failure still raises)."""
        if not values:
            return
        names = self._names(list(values))
        reg = register(register_name, self.motors[names[0]].model)
        encoded = {self.motors[n].id: list(to_bytes(encode_value(reg, values[n]), reg.size))
                   for n in names}
        self._run(names, lambda: self._sync_write_once(reg, encoded))

    def enable_torque(self, names: Sequence[str] | None = None) -> None:
        """Torque_Enable=1 then Lock=1 (EEPROM locked), per motor."""
        for name in self._names(names):
            self.write('Torque_Enable', name, 1)
            self.write('Lock', name, 1)

    def disable_torque(self, names: Sequence[str] | None = None) -> None:
        """Torque_Enable=0 then Lock=0 (EEPROM writable), per motor."""
        for name in self._names(names):
            self.write('Torque_Enable', name, 0)
            self.write('Lock', name, 0)

    # -- internals --------------------------------------------------------------------------

    def _motor(self, name: str) -> Motor:
        try:
            return self.motors[name]
        except KeyError:
            raise UnknownMotorError(
                f'unknown motor {name!r}; this bus has {list(self.motors)}') from None

    def _names(self, names: Iterable[str] | None) -> list[str]:
        if names is None:
            return list(self.motors)
        out = list(names)
        for n in out:
            self._motor(n)
        if not out:
            raise ValueError('empty motor list')
        return out

    def _require_port(self) -> WaitingPortHandler:
        if self._port is None:
            raise BusNotConnectedError(f'bus on {self.port} is not connected; call connect()')
        return self._port

    def _run(self, names: list[str], attempt: Callable[[], _T]) -> _T:
        """Run `attempt` with bounded retries; count per-motor errors; raise typed errors."""
        with self._lock:
            port = self._require_port()
            start = time.perf_counter()
            last: _AttemptFailed | None = None
            for i in range(1 + self.retries):
                if i:
                    self._stats.retries += 1
                self._stats.attempts += 1
                port.is_using = False
                try:
                    result = attempt()
                except _AttemptFailed as fail:
                    last = fail
                    self._count_error(fail.motor, fail.kind)
                    self._drain(port)
                    continue
                except _PORT_EXCEPTIONS as exc:
                    self.close()
                    raise PortError(f'port {self.port} failed: {exc}') from exc
                self._stats.transfers += 1
                self._stats.last_transfer_s = time.perf_counter() - start
                for n in names:
                    self._stats.motors[n].transfers += 1
                return result
            self._stats.failures += 1
            assert last is not None
            if last.motor in self._stats.motors:
                self._stats.motors[last.motor].failures += 1
            raise CommunicationError(last.motor, last.kind,
                                     f'after {1 + self.retries} attempts on {self.port}')

    def _drain(self, port: WaitingPortHandler) -> None:
        try:
            port.discard_input()
        except _PORT_EXCEPTIONS as exc:
            self.close()
            raise PortError(f'port {self.port} failed: {exc}') from exc

    def _count_error(self, name: str, kind: str) -> None:
        target = self._stats.motors.get(name)
        errors = target.errors if target is not None else self._stats.broadcast_errors
        errors[kind] = errors.get(kind, 0) + 1

    def _check_status(self, name: str, status: int) -> None:
        m = self._stats.motors[name]
        m.last_status = status
        if not status:
            return
        flags = status_flags(status)
        for flag in flags:
            m.status_counts[flag] = m.status_counts.get(flag, 0) + 1
        if self.raise_on_status:
            raise MotorStatusError(name, status, flags)

    def _fail(self, name: str, result: int) -> _AttemptFailed:
        return _AttemptFailed(name, _RESULT_KIND.get(result, f'result_{result}'))

    def _ping_once(self, name: str, motor_id: int) -> int:
        try:
            model, result, status = self._ph.ping(self._port, motor_id)
        except IndexError:  # the SDK indexes the model-number reply without checking its length
            raise _AttemptFailed(name, 'short_reply') from None
        if result != scs.COMM_SUCCESS:
            raise self._fail(name, result)
        self._check_status(name, status)
        return model

    def _read_once(self, name: str, motor_id: int, reg: Register) -> int:
        data, result, status = self._ph.readTxRx(self._port, motor_id, reg.address, reg.size)
        if result != scs.COMM_SUCCESS:
            raise self._fail(name, result)
        if len(data) != reg.size:
            raise _AttemptFailed(name, 'short_reply')
        self._check_status(name, status)
        return decode_value(reg, from_bytes(data))

    def _write_once(self, name: str, motor_id: int, reg: Register, data: list[int]) -> None:
        result, status = self._ph.writeTxRx(self._port, motor_id, reg.address, reg.size, data)
        if result != scs.COMM_SUCCESS:
            raise self._fail(name, result)
        self._check_status(name, status)

    def _sync_write_once(self, reg: Register, encoded: dict[int, list[int]]) -> None:
        key = (reg.address, reg.size)
        group = self._sync_writes.get(key)
        if group is None:
            group = self._sync_writes[key] = scs.GroupSyncWrite(
                self._port, self._ph, reg.address, reg.size)
        group.clearParam()
        for motor_id, data in encoded.items():
            group.addParam(motor_id, data)
        result = group.txPacket()
        if result != scs.COMM_SUCCESS:
            raise self._fail('broadcast', result)

    def _sync_read_raw(self, start: int, length: int, names: list[str]) -> dict[str, bytes]:
        """Sync read with per-motor retry: a failure at motor k re-reads k and the rest only."""
        values: dict[str, bytes] = {}
        pending = list(names)

        def attempt() -> dict[str, bytes]:
            ids = tuple(self.motors[n].id for n in pending)
            key = (start, length, ids)
            group = self._sync_reads.get(key)
            if group is None:
                group = scs.GroupSyncRead(self._port, self._ph, start, length)
                for motor_id in ids:
                    group.addParam(motor_id)
                self._sync_reads[key] = group
            result = group.txPacket()
            if result != scs.COMM_SUCCESS:
                raise self._fail(pending[0], result)
            while pending:
                name = pending[0]
                data, result, status = self._ph.readRx(self._port, self.motors[name].id, length)
                if result != scs.COMM_SUCCESS:
                    raise self._fail(name, result)
                if len(data) != length:
                    raise _AttemptFailed(name, 'short_reply')
                self._check_status(name, status)
                values[name] = bytes(data)
                pending.pop(0)
            return {n: values[n] for n in names}

        return self._run(names, attempt)


def so101_motors() -> dict[str, Motor]:
    """The six STS3215 motors of an SO-100/SO-101 arm (follower or leader), in joint order."""
    return {name: Motor(motor_id) for name, motor_id in SO101_MOTOR_IDS.items()}
