"""Read the records of a possibly truncated MCAP file, front to back, up to the first bad one.

A recording that was killed (SIGKILL, OOM, power cut) leaves an MCAP without its summary and
footer, and possibly with a record cut in half at the end; readers that start from the footer
(rosbags, the mcap CLI) refuse it. This scanner follows the data section the way it was written
(https://mcap.dev/spec): magic, Header, then records of ``opcode u8 | length u64 | content``,
where Chunk records hold Schema/Channel/Message records, optionally zstd/lz4-compressed. It yields
every Schema, Channel and Message it can prove complete, and stops -- without raising -- at the
first record that is cut off or inconsistent, recording where and why (``McapScan.stop``).

Nothing is guessed: a message is yielded only when its whole record lies in the file, its channel
was defined before it (as the spec requires) and, for a chunk, the chunk decompresses to its
declared size and matches its CRC when it has one. An uncompressed chunk that the file cuts off
still yields the complete message records before the cut (they are byte-for-byte what was
written); a compressed one cannot be read partially and is dropped.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import struct
import zlib

MAGIC = b'\x89MCAP0\r\n'
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL = 0x01, 0x02, 0x03, 0x04
OP_MESSAGE, OP_CHUNK, OP_DATA_END = 0x05, 0x06, 0x0F
_U16, _U32, _U64 = struct.Struct('<H'), struct.Struct('<I'), struct.Struct('<Q')
_MSG_HEAD = struct.Struct('<HIQQ')  # channel id, sequence, log time, publish time
_CHUNK_HEAD = struct.Struct('<QQQI')  # start time, end time, uncompressed size, uncompressed crc


class McapCorrupt(ValueError):
    """A record whose content contradicts its own lengths or the records before it."""


@dataclass(frozen=True)
class McapSchema:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(frozen=True)
class McapChannel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class McapMessage:
    channel_id: int
    sequence: int
    log_time: int
    publish_time: int
    data: bytes


McapRecord = McapSchema | McapChannel | McapMessage


@dataclass
class ScanStop:
    """Where the scan ended: ``clean`` when it met DataEnd/Footer (or the file ended exactly at a
    record boundary), else the byte offset of the first record it could not use and why."""

    offset: int
    reason: str
    clean: bool


class _Cursor:
    """Bounds-checked reads from one record's content (raises McapCorrupt past its end)."""

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos = buf, pos
        self.end = len(buf) if end is None else end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise McapCorrupt(f'field of {n} bytes overruns its record')
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def unpack(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.take(fmt.size))

    def string(self) -> str:
        try:
            return self.take(self.unpack(_U32)[0]).decode()
        except UnicodeDecodeError as exc:
            raise McapCorrupt(f'string is not UTF-8 ({exc})') from exc

    def string_map(self) -> dict[str, str]:
        nbytes = self.unpack(_U32)[0]
        sub = _Cursor(self.buf, self.pos, self.pos + nbytes)
        if sub.end > self.end:
            raise McapCorrupt('map overruns its record')
        out = {}
        while sub.pos < sub.end:
            key = sub.string()
            out[key] = sub.string()
        self.pos = sub.end
        return out


def _decompress(compression: str, data: bytes, size: int) -> bytes:
    if compression == '':
        return data
    try:
        if compression == 'zstd':
            try:
                from compression import zstd  # Python >= 3.14
            except ImportError:
                from backports import zstd
            return zstd.decompress(data)
        if compression == 'lz4':
            from lz4.frame import decompress
            return decompress(data)
    except Exception as exc:  # each codec raises its own error type on damaged input
        raise McapCorrupt(f'{compression} chunk does not decompress ({exc})') from exc
    raise McapCorrupt(f'unsupported chunk compression {compression!r}')


class McapScan:
    """Iterate over the records of ``path``; read ``stop`` (and the counters) afterwards.

    ``schemas`` and ``channels`` hold every definition met so far, by id.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.schemas: dict[int, McapSchema] = {}
        self.channels: dict[int, McapChannel] = {}
        self.messages = 0
        self.stop: ScanStop | None = None

    def __iter__(self) -> Iterator[McapRecord]:
        with self.path.open('rb') as f:
            head = f.read(len(MAGIC))
            if head != MAGIC:
                self.stop = ScanStop(0, 'no MCAP magic at the start of the file' if head
                                     else 'the file is empty', False)
                return
            offset = len(MAGIC)
            while True:
                rec_head = f.read(9)
                if not rec_head:
                    self.stop = ScanStop(offset, 'end of file at a record boundary', True)
                    return
                if len(rec_head) < 9:
                    self.stop = ScanStop(offset, 'file ends inside a record header', False)
                    return
                op, length = rec_head[0], _U64.unpack(rec_head[1:])[0]
                available = self.size - offset - 9
                if op == 0x00:
                    self.stop = ScanStop(offset, 'opcode 0x00 (zero-filled or corrupt data)',
                                         False)
                    return
                if length > available:
                    if op == OP_CHUNK:
                        yield from self._partial_chunk(f.read(available), offset)
                    else:
                        self.stop = ScanStop(offset, f'file ends inside a record (opcode 0x{op:02x}'
                                             f', {length} bytes declared, {available} present)',
                                             False)
                    return
                if op in (OP_DATA_END, OP_FOOTER):
                    self.stop = ScanStop(offset, 'end of the data section', True)
                    return
                if op in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK):
                    content = f.read(length)
                    try:
                        records = (self._chunk(content) if op == OP_CHUNK
                                   else [self._record(op, content)])
                    except McapCorrupt as exc:
                        self.stop = ScanStop(offset, f'corrupt record (opcode 0x{op:02x}): {exc}',
                                             False)
                        return
                    yield from records
                elif op == OP_HEADER and offset != len(MAGIC):
                    self.stop = ScanStop(offset, 'a second Header record (corrupt data)', False)
                    return
                else:  # indexes, attachments, metadata, private records: not needed, skipped
                    f.seek(length, os.SEEK_CUR)
                offset += 9 + length

    def _record(self, op: int, content: bytes | memoryview) -> McapRecord:
        """Parse one Schema/Channel/Message and check it against the definitions so far."""
        cur = _Cursor(content)
        if op == OP_MESSAGE:
            if len(content) < _MSG_HEAD.size:
                raise McapCorrupt(f'message record of {len(content)} bytes')
            channel, seq, log_time, pub_time = cur.unpack(_MSG_HEAD)
            if channel not in self.channels:
                raise McapCorrupt(f'message on channel {channel}, which is not defined before it')
            self.messages += 1
            return McapMessage(channel, seq, log_time, pub_time, bytes(content[cur.pos:]))
        if op == OP_SCHEMA:
            rec: McapRecord = McapSchema(cur.unpack(_U16)[0], cur.string(), cur.string(),
                                         cur.take(cur.unpack(_U32)[0]))
            if rec.id == 0:
                raise McapCorrupt('schema id 0 is reserved')
            known = self.schemas.setdefault(rec.id, rec)
        else:
            cid, sid = cur.unpack(_U16)[0], cur.unpack(_U16)[0]
            rec = McapChannel(cid, sid, cur.string(), cur.string(), cur.string_map())
            if sid and sid not in self.schemas:
                raise McapCorrupt(f'channel {cid} refers to schema {sid}, not defined before it')
            known = self.channels.setdefault(rec.id, rec)
        if known != rec:
            raise McapCorrupt(f'{type(rec).__name__} {rec.id} redefined differently')
        return rec

    def _chunk_records(self, data: bytes | memoryview, strict: bool) -> list[McapRecord]:
        """Records of a chunk's (uncompressed) content. ``strict``: the content is complete, so
        anything but whole Schema/Channel/Message records raises McapCorrupt; otherwise (a chunk
        cut off by the end of the file) the records before the first bad one are returned.
        """
        out: list[McapRecord] = []
        pos = 0
        try:
            while pos < len(data):
                if len(data) - pos < 9:
                    raise McapCorrupt('chunk content ends inside a record header')
                op, length = data[pos], _U64.unpack(data[pos + 1:pos + 9])[0]
                if op not in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE):
                    raise McapCorrupt(f'opcode 0x{op:02x} inside a chunk')
                if length > len(data) - pos - 9:
                    raise McapCorrupt('a record overruns its chunk')
                out.append(self._record(op, data[pos + 9:pos + 9 + length]))
                pos += 9 + length
        except McapCorrupt:
            if strict:
                raise
        return out

    def _chunk_head(self, content: bytes | memoryview) -> tuple[_Cursor, int, int, str, int]:
        cur = _Cursor(content)
        _start, _end, size, crc = cur.unpack(_CHUNK_HEAD)
        compression = cur.string()
        return cur, size, crc, compression, cur.unpack(_U64)[0]

    def _chunk(self, content: bytes) -> list[McapRecord]:
        """All records of a complete chunk, or McapCorrupt (and none of them)."""
        cur, size, crc, compression, nbytes = self._chunk_head(content)
        data = _decompress(compression, cur.take(nbytes), size)
        if len(data) != size:
            raise McapCorrupt(f'chunk holds {len(data)} bytes, its header says {size}')
        if crc and zlib.crc32(data) != crc:
            raise McapCorrupt('chunk CRC mismatch')
        schemas, channels, count = dict(self.schemas), dict(self.channels), self.messages
        try:
            return self._chunk_records(memoryview(data), strict=True)
        except McapCorrupt:
            self.schemas, self.channels, self.messages = schemas, channels, count
            raise

    def _partial_chunk(self, content: bytes, offset: int) -> Iterator[McapRecord]:
        """The complete records of an uncompressed chunk that the end of the file cuts off."""
        salvaged: list[McapRecord] = []
        reason = 'file ends inside a chunk record'
        try:
            cur, _size, _crc, compression, _n = self._chunk_head(content)
            if compression:
                reason += f' ({compression}-compressed: nothing salvageable from it)'
            else:
                salvaged = self._chunk_records(memoryview(content)[cur.pos:], strict=False)
                n = sum(isinstance(r, McapMessage) for r in salvaged)
                reason += f' ({n} complete message(s) salvaged from it)'
        except McapCorrupt as exc:
            reason += f' (unreadable: {exc})'
        yield from salvaged
        self.stop = ScanStop(offset, reason, False)
