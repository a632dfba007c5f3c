"""ServoEmulator: N emulated STS3215 servos speaking the Feetech protocol on a real pseudo-terminal.

The host side opens `port_path` like a USB serial adapter (pyserial, the real `scservo_sdk`, the
driver node: all unchanged). A thread reads instruction packets from the pty master with the
project's own parser (protocol.py), applies them to the servos and writes status packets back.

Bus model: replies are serialized (a half-duplex line), a delayed reply holds back the replies
queued after it, and a new instruction packet cancels replies not yet sent (on a real bus they
would collide with it). Byte and packet counters are kept at this end of the wire. With
`wire_timing=True` replies are also held back by the time the bytes would take on a real line at
`baudrate` (10 bit times per byte) plus each servo's Return_Delay_Time, so cycle rates measured on
the emulator approach what a real bus allows; without it a pty moves bytes at memory speed.

Hooks for a simulator: `motion='external'` turns the internal motion model off; the simulator
then calls `set_actual_positions()` with its joint angles (in encoder ticks) and reads
`get_goal_positions()` (the goals in the same encoder frame) and `get_torque_enabled()`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
import contextlib
import copy
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
import select
import threading
import time
import tty

from smolvla_ros.hardware.emulator.faults import STATUS_FAULTS, Fault, FaultKind
from smolvla_ros.hardware.emulator.servo import EmulatedServo, ServoConfig
from smolvla_ros.hardware.feetech.protocol import Packet, PacketParser, status_packet
from smolvla_ros.hardware.feetech.tables import (
    BROADCAST_ID,
    INST_ACTION,
    INST_PING,
    INST_READ,
    INST_REG_WRITE,
    INST_SYNC_READ,
    INST_SYNC_WRITE,
    INST_WRITE,
    MAX_ID,
    STATUS_BITS,
)

logger = logging.getLogger(__name__)

_INSTRUCTION_NAMES = {
    INST_PING: 'ping', INST_READ: 'read', INST_WRITE: 'write', INST_REG_WRITE: 'reg_write',
    INST_ACTION: 'action', INST_SYNC_READ: 'sync_read', INST_SYNC_WRITE: 'sync_write',
}


@dataclass
class EmulatorStats:
    """Counters at the emulator's end of the wire."""

    rx_bytes: int = 0  # host -> servos
    tx_bytes: int = 0  # servos -> host
    rx_packets: int = 0
    tx_packets: int = 0
    bad_packets: int = 0  # checksum errors seen by the servos
    instructions: Counter = field(default_factory=Counter)
    dropped_replies: int = 0
    corrupted_replies: int = 0
    delayed_replies: int = 0
    cancelled_replies: int = 0
    handler_errors: int = 0  # packets the emulator itself failed on (a bug; logged)


class ServoEmulator:
    """Emulated STS3215 bus on a pty. Use as a context manager or start()/stop()."""

    def __init__(self, servos: Mapping[int, ServoConfig | None] | Iterable[int],
                 faults: Iterable[Fault] = (), *, motion: str = 'internal',
                 link_path: str | os.PathLike[str] | None = None,
                 wire_timing: bool = False, baudrate: int = 1_000_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if motion not in ('internal', 'external'):
            raise ValueError(f"motion must be 'internal' or 'external', got {motion!r}")
        if not isinstance(servos, Mapping):
            servos = {int(i): None for i in servos}
        if not servos:
            raise ValueError('the emulator needs at least one servo')
        if baudrate <= 0:
            raise ValueError(f'baudrate must be > 0, got {baudrate}')
        self._clock = clock
        now = clock()
        self._servos: dict[int, EmulatedServo] = {}
        for motor_id, cfg in servos.items():
            if not 0 <= motor_id <= MAX_ID:
                raise ValueError(f'servo id {motor_id} out of range 0..{MAX_ID}')
            self._servos[motor_id] = EmulatedServo(motor_id, cfg, now)
        self.motion = motion
        self.link_path = Path(link_path) if link_path is not None else None
        self._lock = threading.RLock()
        self._faults: list[list] = []  # [Fault, remaining count or None]
        self._missing: set[int] = set()
        for fault in faults:
            self.inject(fault.kind, fault.motor_id, fault.count, fault.delay_s)
        self._stats = EmulatorStats()
        self._master = self._slave = -1
        self._pty_path = ''
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._running = False
        # Wire timing: bytes take 10 bit times each (8N1) and servos wait Return_Delay_Time.
        self.wire_timing = wire_timing
        self._byte_s = 10.0 / baudrate
        self._line_free = 0.0  # when the host -> servo direction finishes its current packet

    # -- life cycle -------------------------------------------------------------------------

    @property
    def pty_path(self) -> str:
        return self._pty_path

    @property
    def port_path(self) -> str:
        """What a host should open: the stable link when one was asked for, else the pty."""
        return str(self.link_path) if self.link_path is not None else self._pty_path

    def start(self) -> ServoEmulator:
        if self._running:
            return self
        self._open_pty()
        self._wake_r, self._wake_w = os.pipe()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name='servo-emulator', daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        os.write(self._wake_w, b'x')
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1
        self._close_pty()

    def __enter__(self) -> ServoEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        with self._lock:
            self._master, self._slave = master, slave
            self._pty_path = os.ttyname(slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(f'.{self.link_path.name}.{os.getpid()}.tmp')
            tmp.unlink(missing_ok=True)
            os.symlink(self._pty_path, tmp)
            os.replace(tmp, self.link_path)

    def _close_pty(self) -> None:
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = -1
        for fd in (master, slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.link_path is not None and self.link_path.is_symlink():
            self.link_path.unlink(missing_ok=True)

    def unplug(self) -> None:
        """Pull the USB adapter: the pty goes away (the host sees I/O errors) and the link too."""
        if not self._running:
            raise RuntimeError('unplug() needs a started emulator')
        with self._lock:
            self._close_pty()
        os.write(self._wake_w, b'x')

    def replug(self) -> None:
        """Plug it back: a new pty, the link (if any) pointing to it; servo state is kept."""
        if not self._running:
            raise RuntimeError('replug() needs a started emulator')
        if self._master >= 0:
            return
        self._open_pty()
        os.write(self._wake_w, b'x')

    # -- hooks for tests and simulators ------------------------------------------------------

    def send_unrequested(self, data: bytes) -> None:
        """Put bytes on the line that no request is waiting for: what the host sees when a
        servo's reply comes after the host gave up on it (a stalled servo or, in simulation, a
        starved emulator thread)."""
        with self._lock:
            if self._master < 0:
                raise RuntimeError('send_unrequested() needs a started, plugged-in emulator')
            os.write(self._master, bytes(data))

    def servo(self, motor_id: int) -> EmulatedServo:
        """Direct access to one servo's state (hold `lock` while touching it from outside)."""
        try:
            return self._servos[motor_id]
        except KeyError:
            raise KeyError(f'no servo with id {motor_id}; have {sorted(self._servos)}') from None

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def ids(self) -> list[int]:
        return sorted(self._servos)

    def _advance(self, servo: EmulatedServo, now: float) -> None:
        servo.advance(now, internal_motion=self.motion == 'internal')

    def set_actual_positions(self, positions: Mapping[int, float]) -> None:
        """Set encoder positions (ticks, Actual frame: Present = Actual - Homing_Offset)."""
        with self._lock:
            now = self._clock()
            for motor_id, pos in positions.items():
                servo = self.servo(motor_id)
                self._advance(servo, now)
                servo.set_actual(pos, now)

    def get_actual_positions(self) -> dict[int, float]:
        with self._lock:
            now = self._clock()
            out = {}
            for motor_id, servo in self._servos.items():
                self._advance(servo, now)
                out[motor_id] = servo.actual
            return out

    def get_goal_positions(self) -> dict[int, float]:
        """Goal_Position of every servo, clamped to its limits, in the Actual (encoder) frame."""
        with self._lock:
            return {i: s.goal_actual() for i, s in self._servos.items()}

    def get_torque_enabled(self) -> dict[int, bool]:
        with self._lock:
            return {i: s.torque_enabled for i, s in self._servos.items()}

    def read_register(self, motor_id: int, name: str) -> int:
        """Decoded register value as the host would read it now."""
        with self._lock:
            servo = self.servo(motor_id)
            self._advance(servo, self._clock())
            servo.read(0, 1)  # refresh feedback registers
            return servo.get(name)

    def set_register(self, motor_id: int, name: str, value: int) -> None:
        """Set a register directly (bypasses Lock): preload a calibration, set up a test."""
        with self._lock:
            self.servo(motor_id).set_register(name, value)

    def power_cycle(self, ids: Iterable[int] | None = None) -> None:
        with self._lock:
            now = self._clock()
            for motor_id in self.ids if ids is None else ids:
                self.servo(motor_id).power_cycle(now)

    # -- faults ------------------------------------------------------------------------------

    def inject(self, kind: FaultKind | str, motor_id: int, count: int | None = None,
               delay_s: float = 0.0) -> None:
        """Start a fault now (see faults.py for the kinds)."""
        fault = Fault(FaultKind(kind), motor_id, count, delay_s)
        with self._lock:
            servo = self.servo(motor_id)
            if fault.kind is FaultKind.MISSING:
                self._missing.add(motor_id)
            elif fault.kind is FaultKind.OVERHEAT:
                servo.temperature = servo.get('Max_Temperature_Limit') + 5.0
            elif fault.kind in (FaultKind.OVERLOAD, FaultKind.OVERCURRENT):
                servo.fault_status |= STATUS_BITS[fault.kind.value]
                servo.load_override = 1000
            elif fault.kind is FaultKind.VOLTAGE:
                servo.voltage = servo.get('Min_Voltage_Limit') / 10.0 - 0.5
            else:
                self._faults.append([fault, fault.count])
            if fault.kind in STATUS_FAULTS:
                servo.apply_protection()  # the servo's protection acts at once, not at a read

    def clear_faults(self, kind: FaultKind | str | None = None,
                     motor_id: int | None = None) -> None:
        """End faults (all, or of one kind and/or servo); readings return to their config."""
        kind = FaultKind(kind) if kind is not None else None
        with self._lock:
            self._faults = [
                f for f in self._faults
                if not ((kind is None or f[0].kind is kind)
                        and (motor_id is None or f[0].motor_id == motor_id))]
            for i, servo in self._servos.items():
                if motor_id is not None and i != motor_id:
                    continue
                if kind in (None, FaultKind.MISSING):
                    self._missing.discard(i)
                if kind in (None, *STATUS_FAULTS):
                    if kind in (None, FaultKind.OVERHEAT):
                        servo.temperature = servo.config.temperature
                    for bit in (FaultKind.OVERLOAD, FaultKind.OVERCURRENT):
                        if kind in (None, bit):
                            servo.fault_status &= ~STATUS_BITS[bit.value]
                    if not servo.fault_status & (STATUS_BITS['overload']
                                                 | STATUS_BITS['overcurrent']):
                        servo.load_override = None
                    if kind in (None, FaultKind.VOLTAGE):
                        servo.voltage = servo.config.voltage

    def _reply_fault(self, motor_id: int) -> Fault | None:
        """The first active reply fault for this servo, consuming one of its count."""
        for entry in self._faults:
            fault, remaining = entry
            if fault.motor_id != motor_id:
                continue
            if remaining is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    self._faults.remove(entry)
            return fault
        return None

    # -- statistics --------------------------------------------------------------------------

    def stats(self) -> EmulatorStats:
        with self._lock:
            return copy.deepcopy(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = EmulatorStats()

    # -- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        parser = PacketParser()
        queue: list[tuple[float, bytes]] = []  # (send time, bytes), in send order
        while self._running:
            master = self._master
            timeout = None
            if queue:
                timeout = max(0.0, queue[0][0] - self._clock())
            fds = [self._wake_r] + ([master] if master >= 0 else [])
            try:
                readable, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                continue  # the pty was closed under us (unplug); loop picks up the new one
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
                if self._master != master:
                    parser = PacketParser()
                    queue.clear()
                continue
            if master >= 0 and master in readable:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    continue
                with self._lock:
                    self._stats.rx_bytes += len(data)
                    bad_before = parser.bad_checksums
                    packets = parser.feed(data)
                    self._stats.bad_packets += parser.bad_checksums - bad_before
                    for packet in packets:
                        if queue:
                            self._stats.cancelled_replies += len(queue)
                            queue.clear()
                        self._stats.rx_packets += 1
                        try:
                            self._handle(packet, queue)
                        except Exception:  # one bad packet must not end the bus
                            self._stats.handler_errors += 1
                            logger.exception('emulator failed on packet %r', packet)
            self._flush(queue, master)

    def _flush(self, queue: list[tuple[float, bytes]], master: int) -> None:
        if not queue or master < 0:
            return
        now = self._clock()
        due = []
        while queue and queue[0][0] <= now:
            due.append(queue.pop(0)[1])
        if due:
            out = b''.join(due)
            with self._lock:  # counted before the host can see them, so counters never lag
                self._stats.tx_bytes += len(out)
                self._stats.tx_packets += len(due)
            with contextlib.suppress(OSError):  # unplugged meanwhile
                os.write(master, out)

    def _arrival(self, nbytes: int, now: float) -> float:
        """When the last byte of a host packet has arrived (now, unless wire timing is on)."""
        if not self.wire_timing:
            return now
        self._line_free = max(now, self._line_free) + nbytes * self._byte_s
        return self._line_free

    def _queue_reply(self, queue: list[tuple[float, bytes]], servo: EmulatedServo,
                     params: bytes, arrived: float) -> None:
        motor_id = servo.id
        packet = bytearray(status_packet(motor_id, servo.status_bits(), params))
        fault = self._reply_fault(motor_id)
        at = arrived
        if self.wire_timing:
            # After the request (or the previous reply) the servo waits its return delay (2 us per
            # Return_Delay_Time unit), then sends its bytes.
            start = (max(arrived, queue[-1][0] if queue else 0.0)
                     + 2e-6 * servo.get('Return_Delay_Time'))
            at = start + len(packet) * self._byte_s
        elif queue:
            at = max(at, queue[-1][0])
        if fault is not None:
            if fault.kind is FaultKind.DROP_REPLY:
                self._stats.dropped_replies += 1
                return
            if fault.kind is FaultKind.CORRUPT_CHECKSUM:
                bad = (packet[-1] + 1) & 0xFF
                packet[-1] = bad if bad != 0xFF else 0x00
                self._stats.corrupted_replies += 1
            elif fault.kind is FaultKind.DELAY_REPLY:
                at += fault.delay_s
                self._stats.delayed_replies += 1
        queue.append((at, bytes(packet)))

    def _present(self, motor_id: int) -> EmulatedServo | None:
        """The servo currently answering to `motor_id` (ids can be rewritten), unless missing."""
        for key, servo in self._servos.items():
            if servo.id == motor_id and key not in self._missing:
                return servo
        return None

    def _targets(self, motor_id: int) -> list[EmulatedServo]:
        if motor_id == BROADCAST_ID:
            return [s for k, s in self._servos.items() if k not in self._missing]
        servo = self._present(motor_id)
        return [servo] if servo is not None else []

    def _handle(self, packet: Packet, queue: list[tuple[float, bytes]]) -> None:
        inst, params, now = packet.code, packet.params, self._clock()
        arrived = self._arrival(len(params) + 6, now)
        self._stats.instructions[_INSTRUCTION_NAMES.get(inst, f'0x{inst:02x}')] += 1
        broadcast = packet.motor_id == BROADCAST_ID
        if inst == INST_SYNC_READ:
            if len(params) < 2:
                return
            address, length = params[0], params[1]
            for motor_id in params[2:]:
                servo = self._present(motor_id)
                if servo is not None:
                    self._advance(servo, now)
                    self._queue_reply(queue, servo, servo.read(address, length), arrived)
            return
        if inst == INST_SYNC_WRITE:
            if len(params) < 2 or params[1] == 0:
                return
            address, length = params[0], params[1]
            body = params[2:]
            for i in range(0, len(body) - length, length + 1):
                servo = self._present(body[i])
                if servo is not None:
                    self._advance(servo, now)
                    servo.write(address, body[i + 1:i + 1 + length])
            return
        for servo in self._targets(packet.motor_id):
            self._advance(servo, now)
            reply: bytes | None = None
            if inst == INST_PING:
                reply = b''
            elif inst == INST_READ and len(params) == 2:
                reply = servo.read(params[0], params[1])
            elif inst in (INST_WRITE, INST_REG_WRITE) and len(params) >= 2:
                if inst == INST_WRITE:
                    servo.write(params[0], params[1:])
                else:
                    servo.reg_write(params[0], params[1:])
                if servo.get('Response_Status_Level'):
                    reply = b''
            elif inst == INST_ACTION:
                servo.action()
                if servo.get('Response_Status_Level'):
                    reply = b''
            else:
                continue  # unknown or malformed instruction: a servo stays silent
            if reply is not None and (not broadcast or inst == INST_PING):
                self._queue_reply(queue, servo, reply, arrived)
