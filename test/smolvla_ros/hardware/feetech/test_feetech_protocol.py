"""Byte-exact protocol vectors: our encoder against hand-computed packets, and against what the real
scservo_sdk writes to (and accepts from) a real pseudo-terminal."""
from __future__ import annotations

import os
import select
import tty

import pytest
import scservo_sdk as scs

from smolvla_ros.hardware.feetech.errors import ProtocolError
from smolvla_ros.hardware.feetech.protocol import (
    Packet,
    PacketParser,
    checksum,
    decode_packet,
    ping_packet,
    read_packet,
    status_packet,
    sync_read_bytes,
    sync_read_packet,
    sync_write_bytes,
    sync_write_packet,
    write_packet,
)

# Checksums worked by hand: ~(sum of ID..last param) & 0xFF.
VECTORS = [
    # PING id 1: ~(01+02+01) = ~04 = FB
    (lambda: ping_packet(1), 'ff ff 01 02 01 fb'),
    # READ id 1, Present_Position (56 = 0x38), 2 bytes: ~(01+04+02+38+02 = 41) = BE
    (lambda: read_packet(1, 0x38, 2), 'ff ff 01 04 02 38 02 be'),
    # SYNC_READ ids 1..6 of Present_Position: LEN = 6 + 4; sum = 0x1D9 -> ~D9 = 26
    (lambda: sync_read_packet(0x38, 2, range(1, 7)), 'ff ff fe 0a 82 38 02 01 02 03 04 05 06 26'),
    # status of id 1 with 2047 = 0x07FF little-endian: sum = 0x10B -> ~0B = F4
    (lambda: status_packet(1, 0, b'\xff\x07'), 'ff ff 01 04 00 ff 07 f4'),
    # SYNC_WRITE Goal_Position (42 = 0x2A): id1 <- 2048, id2 <- -5 (sign bit 15: 0x8005)
    (lambda: sync_write_packet(0x2A, 2, {1: b'\x00\x08', 2: b'\x05\x80'}),
     'ff ff fe 0a 83 2a 02 01 00 08 02 05 80 b8'),
    # WRITE id 3 Homing_Offset (31 = 0x1F) <- -10 (sign bit 11: 0x080A): ~3C = C3
    (lambda: write_packet(3, 0x1F, b'\x0a\x08'), 'ff ff 03 05 03 1f 0a 08 c3'),
]


@pytest.mark.parametrize(('build', 'expected'), VECTORS)
def test_packet_vectors(build, expected: str) -> None:
    packet = build()
    assert packet.hex(' ') == expected
    decoded = decode_packet(packet)
    assert decoded.encode() == packet


def test_checksum_is_complement_of_low_byte() -> None:
    assert checksum([0x01, 0x02, 0x01]) == 0xFB
    assert checksum([0xFF, 0xFF, 0x02]) == 0xFF ^ ((0xFF + 0xFF + 0x02) & 0xFF)


def test_decode_rejects_malformed() -> None:
    good = ping_packet(1)
    with pytest.raises(ProtocolError, match='checksum'):
        decode_packet(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ProtocolError, match='header'):
        decode_packet(b'\xfe' + good[1:])
    with pytest.raises(ProtocolError, match='LEN'):
        decode_packet(good + b'\x00')
    with pytest.raises(ProtocolError, match='shorter'):
        decode_packet(good[:4])
    with pytest.raises(ProtocolError):
        status_packet(1, 0x80)


def test_parser_handles_split_noise_and_bad_checksums() -> None:
    stream = (b'\x00\x13' + ping_packet(1) + b'\xff' + read_packet(2, 56, 2)
              + ping_packet(3)[:-1] + b'\x00' + ping_packet(4))
    parser = PacketParser()
    out: list[Packet] = []
    for i in range(0, len(stream), 3):  # arrive in small pieces
        out += parser.feed(stream[i:i + 3])
    assert [(p.motor_id, p.code) for p in out] == [(1, 0x01), (2, 0x02), (4, 0x01)]
    assert out[1].params == bytes((56, 2))
    assert parser.bad_checksums == 1
    assert parser.pending() == 0


def test_split_returns_every_byte_cut_at_packet_boundaries() -> None:
    """What a forwarding proxy needs (bench/soak.py): nothing lost, packets whole."""
    bad = ping_packet(3)[:-1] + b'\x00'
    stream = (b'\x00\x13' + ping_packet(1) + b'\xff' + status_packet(2, 0, b'\x07\x08')
              + bad + ping_packet(4) + b'\xff\xff')
    parser = PacketParser()
    pieces = []
    for i in range(0, len(stream), 3):  # arrive in small pieces
        pieces += parser.split(stream[i:i + 3])
    assert b''.join(p.data for p in pieces) + b'\xff\xff' == stream
    assert parser.pending() == 2  # a header whose packet has not come yet
    packets = [p.data for p in pieces if p.is_packet]
    assert packets == [ping_packet(1), status_packet(2, 0, b'\x07\x08'), ping_packet(4)]
    skipped = [p.data for p in pieces if not p.is_packet]
    assert skipped == [b'\x00\x13', b'\xff', bad]  # one run each; the bad packet as noise
    assert parser.bad_checksums == 1
    assert parser.skipped_bytes == sum(len(s) for s in skipped)
    assert decode_packet(packets[1]) == Packet(2, 0, b'\x07\x08')


def test_minimum_byte_counts() -> None:
    # 6-servo sync read of 2 bytes: request 8 + 6 = 14, replies 6 x (6 + 2) = 48.
    assert sync_read_bytes(6, 2) == (14, 48)
    assert sync_read_bytes(6, 2)[0] == len(sync_read_packet(56, 2, range(1, 7)))
    # 6-servo sync write of 2 bytes: 8 + 6 x 3 = 26.
    assert sync_write_bytes(6, 2) == 26
    assert sync_write_bytes(6, 2) == len(
        sync_write_packet(42, 2, {i: b'\x00\x08' for i in range(1, 7)}))


@pytest.fixture
def raw_pty():
    """A bare pty: the SDK on the slave path, the test reading/writing the master."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    port = scs.PortHandler(os.ttyname(slave))
    assert port.openPort()
    try:
        yield master, port
    finally:
        port.closePort()
        os.close(master)
        os.close(slave)


def _read_exactly(fd: int, n: int) -> bytes:
    out = b''
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], 2.0)
        assert ready, f'only {len(out)} of {n} bytes arrived'
        out += os.read(fd, n - len(out))
    return out


def test_sdk_writes_the_same_bytes_as_our_encoder(raw_pty) -> None:
    master, port = raw_pty
    ph = scs.PacketHandler(0)
    group = scs.GroupSyncWrite(port, ph, 42, 2)
    group.addParam(1, [0x00, 0x08])
    group.addParam(2, [0x05, 0x80])
    assert group.txPacket() == scs.COMM_SUCCESS
    expected = sync_write_packet(42, 2, {1: b'\x00\x08', 2: b'\x05\x80'})
    assert _read_exactly(master, len(expected)) == expected

    reader = scs.GroupSyncRead(port, ph, 56, 2)
    for motor_id in range(1, 7):
        reader.addParam(motor_id)
    assert reader.txPacket() == scs.COMM_SUCCESS
    expected = sync_read_packet(56, 2, range(1, 7))
    assert _read_exactly(master, len(expected)) == expected


def test_sdk_accepts_our_status_packets_and_rejects_bad_checksums(raw_pty) -> None:
    master, port = raw_pty
    ph = scs.PacketHandler(0)
    reply = status_packet(1, 0, b'\xff\x07')
    os.write(master, reply)
    assert ph.readTx(port, 1, 56, 2) == scs.COMM_SUCCESS
    _read_exactly(master, len(read_packet(1, 56, 2)))
    value, result, error = ph.read2ByteRx(port, 1)
    assert (value, result, error) == (2047, scs.COMM_SUCCESS, 0)

    os.write(master, reply[:-1] + bytes([reply[-1] ^ 0x01]))
    assert ph.readTx(port, 1, 56, 2) == scs.COMM_SUCCESS
    _, result, _ = ph.read2ByteRx(port, 1)
    assert result == scs.COMM_RX_CORRUPT
