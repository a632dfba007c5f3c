"""Feetech protocol-0 packets, written from the packet format (not from the SDK).

    instruction: FF FF ID LEN INSTR PARAM... CHK      LEN = len(PARAM) + 2
    status:      FF FF ID LEN ERROR PARAM... CHK
    CHK = ~(ID + LEN + INSTR|ERROR + sum(PARAM)) & 0xFF

The bus itself talks through the real `scservo_sdk`; this module is the independent second
implementation that the emulator parses and answers with, and that the byte-exact tests use to check
what the SDK puts on the wire.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from smolvla_ros.hardware.feetech.errors import ProtocolError
from smolvla_ros.hardware.feetech.tables import (
    BROADCAST_ID,
    INST_PING,
    INST_READ,
    INST_SYNC_READ,
    INST_SYNC_WRITE,
    INST_WRITE,
)

MAX_PACKET_LEN = 250  # the SDK's buffer size; also the largest LEN + 4 we accept


def checksum(body: bytes | Iterable[int]) -> int:
    """Checksum over ID, LEN, INSTR/ERROR and parameters (all between header and checksum)."""
    return ~sum(body) & 0xFF


def _frame(motor_id: int, code: int, params: bytes) -> bytes:
    if not 0 <= motor_id <= 0xFE:
        raise ProtocolError(f'id {motor_id} out of range 0..254')
    length = len(params) + 2
    if length + 4 > MAX_PACKET_LEN:
        raise ProtocolError(f'packet of {length + 4} bytes exceeds {MAX_PACKET_LEN}')
    body = bytes((motor_id, length, code)) + params
    return b'\xff\xff' + body + bytes((checksum(body),))


def instruction_packet(motor_id: int, instruction: int, params: bytes = b'') -> bytes:
    """A complete instruction packet (host -> servo)."""
    return _frame(motor_id, instruction, bytes(params))


def status_packet(motor_id: int, error: int = 0, params: bytes = b'') -> bytes:
    """A complete status packet (servo -> host)."""
    if not 0 <= error <= 0x7F:
        raise ProtocolError(f'status error byte {error:#x} out of range 0..0x7f')
    return _frame(motor_id, error, bytes(params))


def ping_packet(motor_id: int) -> bytes:
    return instruction_packet(motor_id, INST_PING)


def read_packet(motor_id: int, address: int, length: int) -> bytes:
    return instruction_packet(motor_id, INST_READ, bytes((address, length)))


def write_packet(motor_id: int, address: int, data: bytes) -> bytes:
    return instruction_packet(motor_id, INST_WRITE, bytes((address,)) + bytes(data))


def sync_read_packet(address: int, length: int, ids: Iterable[int]) -> bytes:
    return instruction_packet(BROADCAST_ID, INST_SYNC_READ, bytes((address, length, *ids)))


def sync_write_packet(address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    params = bytearray((address, length))
    for motor_id, chunk in data.items():
        if len(chunk) != length:
            raise ProtocolError(
                f'sync write data for id {motor_id} has {len(chunk)} bytes, not {length}')
        params.append(motor_id)
        params += chunk
    return instruction_packet(BROADCAST_ID, INST_SYNC_WRITE, bytes(params))


@dataclass(frozen=True)
class Packet:
    """A decoded packet; `code` is the instruction (host) or the error byte (status reply)."""

    motor_id: int
    code: int
    params: bytes

    def encode(self) -> bytes:
        return _frame(self.motor_id, self.code, self.params)


def decode_packet(data: bytes) -> Packet:
    """Decode exactly one complete packet; raise ProtocolError on any malformation."""
    if len(data) < 6:
        raise ProtocolError(f'packet of {len(data)} bytes is shorter than the minimum 6')
    if data[0] != 0xFF or data[1] != 0xFF:
        raise ProtocolError(f'bad header {data[:2].hex()}')
    length = data[3]
    if length < 2 or len(data) != length + 4:
        raise ProtocolError(f'LEN {length} does not match packet size {len(data)}')
    if checksum(data[2:-1]) != data[-1]:
        raise ProtocolError(
            f'checksum {data[-1]:#04x} != expected {checksum(data[2:-1]):#04x}')
    return Packet(data[2], data[4], bytes(data[5:-1]))


class Piece(NamedTuple):
    """A run of a byte stream as `PacketParser.split` cuts it."""

    data: bytes
    is_packet: bool  # a complete, checksum-valid packet; False: bytes skipped as noise


class PacketParser:
    """Incremental parser for a byte stream (what a servo sees on its half of the bus).

    Bytes are fed as they arrive; complete, checksum-valid packets come out. Garbage before a header
    and packets with a bad checksum are skipped and counted, the way a servo ignores line noise.
    `feed` decodes the packets (the emulator); `split` hands back every byte, cut at packet
    boundaries (a proxy that forwards the stream and acts on whole packets, bench/soak.py).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_checksums = 0
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[Packet]:
        return [Packet(p.data[2], p.data[4], p.data[5:-1])
                for p in self.split(data) if p.is_packet]

    def split(self, data: bytes) -> list[Piece]:
        """Every byte fed so far comes out once, in order, as packets and skipped runs.

        Bytes that may still start or complete a packet are held back (`pending`) until the
        bytes that decide arrive.
        """
        self._buf += data
        pieces: list[Piece] = []
        buf = self._buf

        def skip(n: int) -> None:
            self.skipped_bytes += n
            if pieces and not pieces[-1].is_packet:
                pieces[-1] = Piece(pieces[-1].data + bytes(buf[:n]), False)
            else:
                pieces.append(Piece(bytes(buf[:n]), False))
            del buf[:n]

        while True:
            start = buf.find(b'\xff\xff')
            if start < 0:
                # Keep a trailing 0xFF: it may be the first half of the next header.
                keep = 1 if buf.endswith(b'\xff') else 0
                if len(buf) > keep:
                    skip(len(buf) - keep)
                break
            if start:
                skip(start)
            # A run of FF: the packet starts at the last pair (ID is never 0xFF).
            while len(buf) > 2 and buf[2] == 0xFF:
                skip(1)
            if len(buf) < 4:
                break
            length = buf[3]
            if length < 2 or length + 4 > MAX_PACKET_LEN:
                skip(2)
                continue
            total = length + 4
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            if checksum(frame[2:-1]) != frame[-1]:
                self.bad_checksums += 1
                skip(2)
                continue
            del buf[:total]
            pieces.append(Piece(frame, True))
        return pieces

    def pending(self) -> int:
        """Bytes held waiting for the rest of a packet."""
        return len(self._buf)


def sync_read_bytes(n_motors: int, data_len: int) -> tuple[int, int]:
    """Minimum bytes of a sync read: (request, all replies).

    Request: 2 header + ID + LEN + INSTR + address + length + one byte per id + CHK = 8 + n.
    Each reply: 2 header + ID + LEN + ERROR + data_len + CHK = 6 + data_len.
    """
    return 8 + n_motors, n_motors * (6 + data_len)


def sync_write_bytes(n_motors: int, data_len: int) -> int:
    """Minimum bytes of a sync write: 8 framing bytes + (id + data) per motor; no replies."""
    return 8 + n_motors * (1 + data_len)
