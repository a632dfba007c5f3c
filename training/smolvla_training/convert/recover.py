"""Turn the bag of a killed recording into a new, complete rosbag2 bag that rosbags can read.

A recorder that dies by SIGKILL, an OOM kill or a power cut never writes metadata.yaml, nor the
mcap summary and footer, and leaves sqlite3 rows of the open transaction in a hot journal; rosbags
(and so ``smolvla-convert``) refuse such a bag. They refuse as well a bag that has metadata.yaml
but whose files were cut short afterwards (an interrupted copy, a full disk) or damaged inside;
:func:`bag_damage` tells such bags from whole ones. :func:`recover_bag` reads what was durably
written -- every complete MCAP message record (``mcap_scan``), or every committed sqlite3 row --
and writes it through rosbags' own Writer into a new directory (default ``<bag>.recovered``) with
metadata.yaml, so the result is exactly as valid as a bag rosbags wrote itself. The original is
only read: sqlite3 files are copied before SQLite rolls their journal back. The report says how
many messages per topic were saved, the time span they cover, and where and why reading stopped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
import os
from pathlib import Path
import re
import shutil
import sqlite3
import struct

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import Reader, StoragePlugin, Writer, WriterError
from rosbags.rosbag2.metadata import parse_qos
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
import yaml

from smolvla_training.convert.errors import RecoveryError
from smolvla_training.convert.mcap_scan import (
    MAGIC,
    OP_FOOTER,
    McapChannel,
    McapMessage,
    McapScan,
)
from smolvla_training.convert.partial import make_partial_dir

STORAGES = {'.mcap': 'mcap', '.db3': 'sqlite3'}
RECOVERED_SUFFIX = '.recovered'
_IDL_SEP = '=' * 80 + '\n'
_U64 = struct.Struct('<Q')


@dataclass
class FileRecovery:
    """What was read from one storage file of the bag."""

    name: str
    size: int
    messages: int
    read_bytes: int  # mcap: bytes up to the first unusable record; sqlite3: the file size
    reason: str  # why reading stopped
    clean: bool  # nothing was cut off or corrupt


@dataclass
class RecoveryReport:
    """Outcome of :func:`recover_bag` (``summary()`` is what the CLI prints)."""

    source: Path
    output: Path
    storage: str
    topics: dict[str, int] = field(default_factory=dict)  # messages written per topic
    start_ns: int | None = None  # first and last receive (log) time written
    end_ns: int | None = None
    files: list[FileRecovery] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why it was not written
    reused: bool = False  # the output existed from an earlier recovery and was kept

    @property
    def messages(self) -> int:
        return sum(self.topics.values())

    def summary(self) -> str:
        if self.reused:
            return f'{self.source}: using the bag recovered earlier, {self.output}'
        lines = [f'recovered {self.messages} message(s) from {self.source} into {self.output} '
                 f'({self.storage})']
        if self.start_ns is not None and self.end_ns is not None:
            lines.append(f'  receive times {_iso(self.start_ns)} .. {_iso(self.end_ns)} '
                         f'({(self.end_ns - self.start_ns) / 1e9:.3f} s)')
        lines += [f'  {topic}: {n}' for topic, n in sorted(self.topics.items())]
        for f in self.files:
            lines.append(f'  {f.name}: {f.messages} message(s), {f.read_bytes} of {f.size} '
                         f'bytes usable; stopped: {f.reason}')
        lines += [f'  skipped {topic}: {why}' for topic, why in sorted(self.skipped.items())]
        return '\n'.join(lines)


def _iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, tz=timezone.utc).isoformat(timespec='milliseconds')


def _natural(path: Path) -> list:
    """Sort key putting bag_2 before bag_10 (rosbag2 numbers split files)."""
    return [int(p) if p.isdigit() else p for p in re.split(r'(\d+)', path.name)]


def storage_files(bag: str | os.PathLike[str]) -> tuple[str, list[Path]]:
    """The storage plugin and the data files of a bag directory, in recording order."""
    bag = Path(bag)
    if not bag.is_dir():
        raise RecoveryError(f'{bag}: not a bag directory')
    found = {s: sorted((p for p in bag.iterdir() if p.suffix == suffix and p.is_file()),
                       key=_natural) for suffix, s in STORAGES.items()}
    kinds = [s for s, files in found.items() if files]
    if len(kinds) != 1:
        what = 'no .mcap or .db3 file' if not kinds else 'both .mcap and .db3 files'
        compressed = [p.name for p in bag.iterdir() if p.suffix in ('.zstd', '.lz4')]
        hint = f' (compressed files {compressed} are not supported)' if compressed else ''
        raise RecoveryError(f'{bag}: {what} to recover from{hint}')
    return kinds[0], found[kinds[0]]


def _mcap_tail_damage(path: Path, size: int) -> str | None:
    """Why an mcap file's end is not that of a finished file (trailing magic and Footer record:
    opcode 0x02, length 20, summary start inside the file), or None. Reads 45 bytes."""
    foot = 9 + 20  # opcode u8 | length u64 | summary_start u64, summary_offset_start u64, crc u32
    if size < 2 * len(MAGIC) + foot:
        return f'{path.name} is {size} bytes, too short for a finished MCAP file'
    with path.open('rb') as f:
        head = f.read(len(MAGIC))
        f.seek(size - len(MAGIC) - foot)
        tail = f.read(len(MAGIC) + foot)
    if head != MAGIC:
        return f'{path.name} does not start with the MCAP magic'
    if tail[foot:] != MAGIC or tail[0] != OP_FOOTER or _U64.unpack(tail[1:9])[0] != 20:
        return (f'{path.name} does not end with the MCAP footer: the file was cut short (a '
                'copy or a disk that filled up?) or never finished')
    if _U64.unpack(tail[9:17])[0] > size - len(MAGIC) - foot:
        return f'{path.name}: its footer points past the end of the file (cut short?)'
    return None


def _sqlite_damage(path: Path, size: int) -> str | None:
    """Why a .db3 is not a whole, finished SQLite file (header, page count, hot journal)."""
    with path.open('rb') as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b'SQLite format 3\x00'):
        return f'{path.name} has no SQLite header (cut short or not a database)'
    page = int.from_bytes(head[16:18], 'big')
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], 'big')
    valid = head[24:28] == head[92:96]  # the in-header size is valid only when these agree
    if valid and pages and size < pages * page:
        return (f'{path.name} is {size} bytes, its header says {pages} pages of {page} '
                'bytes: the file was cut short')
    journal = path.with_name(path.name + '-journal')
    if journal.is_file() and journal.stat().st_size > 0:
        return f'{journal.name} holds an unfinished transaction (the writer was killed)'
    return None


def _listed_messages(bag: Path) -> tuple[dict | None, str | None]:
    """metadata.yaml's bag information, or why it cannot be used."""
    try:
        info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        if not isinstance(info, dict):
            raise TypeError('not a mapping')
        return info, None
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        return None, f'metadata.yaml is unreadable ({type(exc).__name__}: {exc})'


def _thorough_damage(bag: Path, info: dict) -> str | None:
    """Read every message of the bag through rosbags, as the conversion will (raw bytes, nothing
    deserialized), and compare the count with metadata.yaml's. Judging by rosbags' reading, not
    by a stricter scan of its own, keeps a bag that converts from being "recovered" into less:
    rosbags reads through the summary's indexes and may well skip a damaged stretch that a
    front-to-back scan has to stop at."""
    found = 0
    try:
        with Reader(bag) as reader:
            for _conn, _t, _raw in reader.messages():
                found += 1
    except Exception as exc:  # rosbags, struct, zstd, sqlite3 raise assorted errors
        return (f'rosbags stops reading it after {found} message(s) ({type(exc).__name__}: '
                f'{exc})')
    listed = info.get('message_count')
    if isinstance(listed, int) and listed != found:
        return f'metadata.yaml lists {listed} message(s), rosbags reads {found}'
    return None


def bag_damage(bag: str | os.PathLike[str], thorough: bool = False) -> str | None:
    """Why ``bag`` must be recovered before rosbags can read it, or None when it looks whole.

    Cheap checks (a few bytes per file): no metadata.yaml (the recording was killed), an
    unreadable metadata.yaml, a listed file missing, an mcap without its footer (cut short, even
    when metadata.yaml is there), a .db3 shorter than its header says or with a hot journal.
    ``thorough`` (what ``--recover`` asks for) also reads every message through rosbags and
    compares the count with metadata.yaml, which finds damage inside a file that ends well. Not a
    bag directory: None (opening it gives the specific error).
    """
    bag = Path(bag)
    try:
        storage, files = storage_files(bag)
    except RecoveryError:
        return None
    if not (bag / 'metadata.yaml').exists():
        return ('no metadata.yaml: the recording was not closed (process killed?), so the bag '
                'was never finalised')
    info, why = _listed_messages(bag)
    if info is None:
        return why
    listed = info.get('relative_file_paths') or []
    missing = [str(p) for p in listed if isinstance(p, str) and not (bag / p).is_file()]
    if missing:
        return f'metadata.yaml lists {missing}, missing from the bag directory'
    for path in files:
        size = path.stat().st_size
        why = (_mcap_tail_damage(path, size) if storage == 'mcap'
               else _sqlite_damage(path, size))
        if why is not None:
            return why
    return _thorough_damage(bag, info) if thorough else None


def needs_recovery(bag: str | os.PathLike[str], thorough: bool = False) -> bool:
    """True for a bag directory that rosbags cannot read as it is (see :func:`bag_damage`)."""
    return bag_damage(bag, thorough) is not None


def default_output(bag: str | os.PathLike[str]) -> Path:
    """Where a bag is recovered to unless told otherwise: ``<bag>.recovered`` beside it."""
    bag = Path(bag)
    return bag.with_name(bag.name + RECOVERED_SUFFIX)


class _BagOut:
    """A rosbags Writer plus the bookkeeping of the report: connections by (topic, type,
    serialization), types without a usable definition, counts and time span."""

    def __init__(self, path: Path, storage: str, report: RecoveryReport,
                 typestore: Typestore | None) -> None:
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.report, self.typestore = report, typestore
        self.conns: dict[tuple[str, str, str], Connection] = {}
        self.digests: dict[tuple[str, str], str | None] = {}

    def _digest(self, msgtype: str, encoding: str, msgdef: str) -> str | None:
        """RIHS01 hash of a definition as rosbags computes it (AnyReader checks it against the
        definition), or None when the definition does not parse."""
        key = (msgtype, msgdef)
        if key not in self.digests:
            ts = get_typestore(Stores.EMPTY)
            try:
                if encoding == 'ros2msg':
                    ts.register(get_types_from_msg(msgdef, msgtype))
                else:
                    for part in msgdef.split(_IDL_SEP)[1:] or [msgdef]:
                        ts.register(get_types_from_idl(part.split('\n', 1)[-1]))
                self.digests[key] = ts.hash_rihs01(msgtype)
            except Exception:  # rosbags' parsers raise assorted errors on bad definitions
                self.digests[key] = None
        return self.digests[key]

    def connection(self, topic: str, msgtype: str, serialization: str, encoding: str,
                   msgdef: str, digest: str, qos: str) -> Connection | None:
        """The output connection for a channel/topic of the source (None: skipped, see report)."""
        key = (topic, msgtype, serialization)
        if key in self.conns:
            return self.conns[key]
        try:
            profiles: list[Qos] = parse_qos(qos) if qos else []
        except Exception:  # an unreadable QoS string must not cost the messages
            profiles = []
        kwargs: dict = {'serialization_format': serialization, 'offered_qos_profiles': profiles}
        if msgdef and encoding in ('ros2msg', 'ros2idl'):
            digest = digest or self._digest(msgtype, encoding, msgdef) or ''
            if not digest:
                self.report.skipped[topic] = f'the bag\'s definition of {msgtype} does not parse'
                return None
            kwargs.update(msgdef=msgdef, rihs01=digest)
        elif self.typestore is not None and msgtype in self.typestore.types:
            kwargs['typestore'] = self.typestore
        else:
            self.report.skipped[topic] = (f'no definition of {msgtype} in the bag or the type '
                                          'store (pass --typestore / --msg-dir)')
            return None
        conn = self.writer.add_connection(topic, msgtype, **kwargs)
        self.conns[key] = conn
        self.report.topics.setdefault(topic, 0)
        return conn

    def write(self, conn: Connection, t_ns: int, data: bytes) -> None:
        self.writer.write(conn, t_ns, data)
        r = self.report
        r.topics[conn.topic] += 1
        r.start_ns = t_ns if r.start_ns is None else min(r.start_ns, t_ns)
        r.end_ns = t_ns if r.end_ns is None else max(r.end_ns, t_ns)


def _recover_mcap(path: Path, out: _BagOut) -> FileRecovery:
    scan = McapScan(path)
    local: dict[int, Connection | None] = {}
    written = 0
    for rec in scan:
        if isinstance(rec, McapChannel) and rec.id not in local:
            schema = scan.schemas.get(rec.schema_id)
            if schema is None:
                out.report.skipped[rec.topic] = 'schemaless channel (no message type)'
                local[rec.id] = None
                continue
            local[rec.id] = out.connection(
                rec.topic, schema.name, rec.message_encoding, schema.encoding,
                schema.data.decode(errors='replace'), '',
                rec.metadata.get('offered_qos_profiles', ''))
        elif isinstance(rec, McapMessage) and local.get(rec.channel_id) is not None:
            out.write(local[rec.channel_id], rec.log_time, rec.data)
            written += 1
    stop = scan.stop
    assert stop is not None
    return FileRecovery(path.name, scan.size, written, stop.offset, stop.reason, stop.clean)


def _fit_to_file(copy: Path) -> str | None:
    """Make the copy of a .db3 that was cut short readable up to its cut.

    SQLite calls a database malformed, and reads nothing, when its header counts more pages than
    the file holds. On the copy, drop a partial last page and set the header's page count to the
    whole pages present: rows on those pages then read normally, and reading stops with an error
    at the first page that is gone (the rows read before it are written). Returns what was cut,
    or None for a whole file."""
    with copy.open('r+b') as f:
        head = f.read(100)
        if len(head) < 100 or not head.startswith(b'SQLite format 3\x00'):
            return None
        page = int.from_bytes(head[16:18], 'big')
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], 'big')
        size = copy.stat().st_size
        if head[24:28] != head[92:96] or not page or size >= pages * page:
            return None
        whole = size // page
        f.truncate(whole * page)
        f.seek(28)
        f.write(whole.to_bytes(4, 'big'))
    return f'the file was cut short: {whole} of {pages} pages present'


def _recover_sqlite(path: Path, work: Path, out: _BagOut) -> FileRecovery:
    """Copy the db (and its journal) into ``work`` and read the committed rows from the copy."""
    work = work / 'source'
    work.mkdir(exist_ok=True)
    copy = work / path.name
    shutil.copyfile(path, copy)
    hot = False
    for suffix in ('-journal', '-wal', '-shm'):
        side = path.with_name(path.name + suffix)
        if side.is_file():
            shutil.copyfile(side, work / side.name)
            hot = hot or (suffix != '-shm' and side.stat().st_size > 0)
    size = path.stat().st_size
    cut = _fit_to_file(copy)
    written = 0
    db = sqlite3.connect(copy)  # opening the copy rolls an interrupted transaction back
    try:
        cur = db.cursor()
        tables = {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {'topics', 'messages'} <= tables:
            return FileRecovery(path.name, size, 0, size, 'no topics/messages tables (the '
                                'recording was killed before anything was committed)', False)
        cols = {r[1] for r in cur.execute('PRAGMA table_info(topics)')}
        qos = 'offered_qos_profiles' if 'offered_qos_profiles' in cols else "''"
        digest = 'type_description_hash' if 'type_description_hash' in cols else "''"
        defs: dict[str, tuple[str, str]] = {}
        if 'message_definitions' in tables:
            for name, enc, text in cur.execute('SELECT topic_type, encoding, encoded_message_'
                                               'definition FROM message_definitions'):
                defs[name] = (enc, text)
        topics: dict[int, Connection | None] = {}
        for tid, name, typ, fmt, q, d in list(cur.execute(
                f'SELECT id, name, type, serialization_format, {qos}, {digest} FROM topics')):
            enc, text = defs.get(typ, ('', ''))
            topics[tid] = out.connection(name, typ, fmt, enc, text, d, q)
        reason = 'all committed rows read' + (
            ' (the uncommitted tail in the journal was rolled back: it is lost)' if hot else '')
        if cut:
            reason = f'{cut}; {reason}'
        try:
            rows = cur.execute('SELECT topic_id, timestamp, data FROM messages ORDER BY id')
            for tid, t_ns, data in rows:
                if topics.get(tid) is not None:
                    out.write(topics[tid], t_ns, bytes(data))
                    written += 1
        except sqlite3.DatabaseError as exc:
            return FileRecovery(path.name, size, written, size, (f'{cut}; ' if cut else '')
                                + f'database error after {written} row(s): {exc}', False)
        return FileRecovery(path.name, size, written, size, reason, not hot and not cut)
    except sqlite3.DatabaseError as exc:
        return FileRecovery(path.name, size, written, 0, f'unreadable database: {exc}', False)
    finally:
        db.close()


def recover_bag(bag: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                typestore: Typestore | None = None) -> RecoveryReport:
    """Write every complete message of ``bag`` into the new bag ``out`` (same storage).

    ``typestore`` supplies definitions for topics whose type the bag does not carry. Raises
    RecoveryError when there is nothing to recover or ``out`` exists; the original bag is never
    modified, and a failed recovery leaves no output behind.
    """
    bag = Path(bag)
    out = Path(out) if out is not None else default_output(bag)
    storage, files = storage_files(bag)
    if out.exists():
        raise RecoveryError(f'{out} exists; recovery never overwrites (remove it or choose '
                            'another output)')
    out.parent.mkdir(parents=True, exist_ok=True)
    work = make_partial_dir(out)
    report = RecoveryReport(bag, out, storage)
    target = work / out.name
    writer: _BagOut | None = None
    try:
        writer = _BagOut(target, storage, report, typestore)
        read: Callable[[Path], FileRecovery] = (
            (lambda p: _recover_mcap(p, writer)) if storage == 'mcap'
            else (lambda p: _recover_sqlite(p, work, writer)))
        for path in files:
            report.files.append(read(path))
        if report.messages == 0:
            why = '; '.join(f'{f.name}: {f.reason}' for f in report.files)
            skipped = f'; skipped topics {report.skipped}' if report.skipped else ''
            raise RecoveryError(f'{bag}: no complete message to recover ({why}{skipped})')
        writer.writer.set_custom_data('recovered_from', str(bag.resolve()))
        writer.writer.close()
        writer = None
        if out.exists():
            raise RecoveryError(f'{out} appeared while recovering; not overwriting it')
        os.rename(target, out)
        return report
    except WriterError as exc:
        raise RecoveryError(f'{bag}: cannot write the recovered bag: {exc}') from exc
    finally:
        if writer is not None:
            writer.writer.abort()
        shutil.rmtree(work, ignore_errors=True)


def ensure_recovered(bag: str | os.PathLike[str], typestore: Typestore | None = None,
                     thorough: bool = True) -> tuple[Path, RecoveryReport | None]:
    """The bag to convert in place of ``bag``: itself when it is whole (``bag_damage``; read
    through when ``thorough``), else :func:`recovered_twin`."""
    bag = Path(bag)
    if not needs_recovery(bag, thorough):
        return bag, None
    return recovered_twin(bag, typestore)


def recovered_twin(bag: str | os.PathLike[str],
                   typestore: Typestore | None = None) -> tuple[Path, RecoveryReport]:
    """``<bag>.recovered``, made now unless an earlier recovery left a finished one (reused:
    the report says so)."""
    bag = Path(bag)
    out = default_output(bag)
    if (out / 'metadata.yaml').is_file():
        return out, RecoveryReport(bag, out, storage_files(bag)[0], reused=True)
    return out, recover_bag(bag, out, typestore)
