"""Recovery of killed recordings: truncated mcap files and uncommitted sqlite3 bags give exactly the
messages that were durably written -- never one that was not -- in a new bag rosbags reads."""
from __future__ import annotations

import hashlib
from pathlib import Path
import shutil
import struct
import zlib

from lz4.frame import compress as lz4_compress
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from smolvla_training.convert.errors import RecoveryError
from smolvla_training.convert.mcap_scan import MAGIC, McapMessage, McapScan
from smolvla_training.convert.recover import bag_damage, needs_recovery, recover_bag

TS = get_typestore(Stores.ROS2_KILTED)
T0 = 1_700_000_000 * 10**9


def _joint_state(k: int) -> bytes:
    JointState = TS.types['sensor_msgs/msg/JointState']
    Header = TS.types['std_msgs/msg/Header']
    Time = TS.types['builtin_interfaces/msg/Time']
    msg = JointState(header=Header(stamp=Time(sec=k, nanosec=0), frame_id=''), name=['a'],
                     position=np.array([float(k)]), velocity=np.zeros(0), effort=np.zeros(0))
    return bytes(TS.serialize_cdr(msg, 'sensor_msgs/msg/JointState'))


def _image(k: int, nbytes: int) -> bytes:
    Image = TS.types['sensor_msgs/msg/CompressedImage']
    Header = TS.types['std_msgs/msg/Header']
    Time = TS.types['builtin_interfaces/msg/Time']
    data = np.random.default_rng(k).integers(0, 256, nbytes, dtype=np.uint8)
    msg = Image(header=Header(stamp=Time(sec=k, nanosec=0), frame_id=''), format='jpeg', data=data)
    return bytes(TS.serialize_cdr(msg, 'sensor_msgs/msg/CompressedImage'))


def _write(path: Path, storage: str = 'mcap', n: int = 90, image_bytes: int = 90_000,
           zstd: bool = False) -> list[tuple[str, int, bytes]]:
    """A finished bag of ``n`` joint states and n/3 images (several 1 MiB mcap chunks); returns
    the messages in write order as (topic, time, raw)."""
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    sent = []
    writer = Writer(path, version=9, storage_plugin=plugin)
    if zstd:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        js = writer.add_connection('/joint_states', 'sensor_msgs/msg/JointState', typestore=TS)
        cam = writer.add_connection('/cam', 'sensor_msgs/msg/CompressedImage', typestore=TS)
        for k in range(n):
            t = T0 + k * 10_000_000
            sent.append(('/joint_states', t, _joint_state(k)))
            writer.write(js, t, sent[-1][2])
            if k % 3 == 0:
                sent.append(('/cam', t, _image(k, image_bytes)))
                writer.write(cam, t, sent[-1][2])
    return sent


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with AnyReader([bag], default_typestore=TS) as reader:
        out = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
        for c, _t, raw in reader.messages():  # every recovered message deserializes
            reader.deserialize(raw, c.msgtype)
    return out


def _kill(bag: Path, size: int | None = None) -> Path:
    """What a killed writer leaves: no metadata.yaml and (optionally) the mcap cut at ``size``."""
    (bag / 'metadata.yaml').unlink()
    mcap = next(bag.glob('*.mcap'))
    if size is not None:
        with mcap.open('r+b') as f:
            f.truncate(size)
    return bag


def _digest(bag: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(bag.iterdir())}


def test_an_unfinalised_but_complete_mcap_is_recovered_whole(tmp_path) -> None:
    sent = _write(tmp_path / 'bag')
    bag = _kill(tmp_path / 'bag')
    assert needs_recovery(bag)
    before = _digest(bag)
    report = recover_bag(bag)
    assert report.output == tmp_path / 'bag.recovered' and not needs_recovery(report.output)
    assert sorted(_read(report.output)) == sorted(sent)
    assert report.topics == {'/joint_states': 90, '/cam': 30}
    assert report.start_ns == T0 and report.end_ns == T0 + 89 * 10_000_000
    assert report.files[0].clean and report.files[0].reason == 'end of the data section'
    assert _digest(bag) == before  # the original is only read
    with pytest.raises(RecoveryError, match='exists'):
        recover_bag(bag)


def _chunk_offsets(mcap: Path) -> list[int]:
    """Offsets of the top-level Chunk records (read with the spec's framing, independently)."""
    data, pos, out = mcap.read_bytes(), len(MAGIC), []
    while pos + 9 <= len(data):
        op, length = data[pos], struct.unpack_from('<Q', data, pos + 1)[0]
        if op == 0x06:
            out.append(pos)
        if op in (0x02, 0x0F):
            break
        pos += 9 + length
    return out


@pytest.mark.parametrize('zstd', [False, True])
def test_truncation_anywhere_gives_a_prefix_of_what_was_written(tmp_path, zstd) -> None:
    """Cut the file at chunk edges, inside chunks and inside records: recovery never crashes,
    and what it recovers is exactly the first n messages written, n growing with the cut."""
    sent = _write(tmp_path / 'orig', zstd=zstd)
    _kill(tmp_path / 'orig')
    mcap = next((tmp_path / 'orig').glob('*.mcap'))
    size = mcap.stat().st_size
    chunks = _chunk_offsets(mcap)
    assert len(chunks) >= 3
    cuts = sorted({0, 4, 8, 20, 60, size - 1, size,
                   *[c + d for c in chunks for d in (-1, 0, 1, 9, 200, 60_000)],
                   *np.linspace(0, size, 23).astype(int).tolist()})
    last_n = 0
    for i, cut in enumerate(c for c in cuts if 0 <= c <= size):
        bag = tmp_path / f'cut{i}'
        shutil.copytree(tmp_path / 'orig', bag)
        with (bag / mcap.name).open('r+b') as f:
            f.truncate(cut)
        try:
            report = recover_bag(bag, tmp_path / f'rec{i}')
        except RecoveryError as exc:
            assert 'no complete message' in str(exc)
            n = 0
        else:
            got = _read(report.output)
            n = len(got)
            assert n == report.messages > 0
            assert sorted(got) == sorted(sent[:n]), f'cut at {cut}: not a prefix'
            shutil.rmtree(report.output)
        assert n >= last_n, f'cut at {cut} recovered fewer messages than a shorter file'
        last_n = n
        shutil.rmtree(bag)
    assert last_n == len(sent)  # the uncut file gives everything


def test_a_cut_uncompressed_chunk_yields_its_complete_records(tmp_path) -> None:
    sent = _write(tmp_path / 'bag')
    bag = _kill(tmp_path / 'bag')
    mcap = next(bag.glob('*.mcap'))
    second = _chunk_offsets(mcap)[1]
    # Cut a few KB into the second chunk: only messages whose records lie wholly before the cut.
    cut = second + 9 + 40 + 200_000
    with mcap.open('r+b') as f:
        f.truncate(cut)
    report = recover_bag(bag)
    first_chunk_msgs = len(_read_prefix(mcap, second))
    assert first_chunk_msgs < report.messages < len(sent)
    assert sorted(_read(report.output)) == sorted(sent[:report.messages])
    assert 'salvaged' in report.files[0].reason and report.files[0].read_bytes == second


def _read_prefix(mcap: Path, end: int) -> list[McapMessage]:
    part = mcap.with_name('prefix.bin')
    part.write_bytes(mcap.read_bytes()[:end])
    try:
        return [r for r in McapScan(part) if isinstance(r, McapMessage)]
    finally:
        part.unlink()


def test_zero_filled_tail_stops_cleanly(tmp_path) -> None:
    """A power cut can leave allocated but unwritten (zero) blocks: nothing is made of them."""
    sent = _write(tmp_path / 'bag')
    bag = _kill(tmp_path / 'bag')
    mcap = next(bag.glob('*.mcap'))
    second = _chunk_offsets(mcap)[1]
    data = bytearray(mcap.read_bytes())
    data[second:] = bytes(len(data) - second)
    mcap.write_bytes(bytes(data))
    report = recover_bag(bag)
    assert report.files[0].read_bytes == second and not report.files[0].clean
    assert '0x00' in report.files[0].reason
    assert sorted(_read(report.output)) == sorted(sent[:report.messages])


# --- a small MCAP written by hand from the spec: lz4 chunks, CRCs, records outside chunks ---

def _record(op: int, content: bytes) -> bytes:
    return bytes([op]) + struct.pack('<Q', len(content)) + content


def _string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack('<I', len(b)) + b


def _spec_mcap(path: Path, compression: str, bad_crc: bool = False) -> list[tuple[int, bytes]]:
    msgdef, _ = TS.generate_msgdef('sensor_msgs/msg/JointState', ros_version=2)
    schema = _record(0x03, struct.pack('<H', 1) + _string('sensor_msgs/msg/JointState')
                     + _string('ros2msg') + _string(msgdef))
    meta = _string('offered_qos_profiles') + _string('')
    channel = _record(0x04, struct.pack('<HH', 1, 1) + _string('/joint_states') + _string('cdr')
                      + struct.pack('<I', len(meta)) + meta)

    def message(k: int) -> tuple[int, bytes]:
        t = T0 + k * 10**7
        return t, _record(0x05, struct.pack('<HIQQ', 1, k, t, t) + _joint_state(k))

    msgs = [message(k) for k in range(9)]
    out = MAGIC + _record(0x01, _string('ros2') + _string('hand'))
    out += schema + channel + msgs[0][1]  # definitions and one message outside any chunk
    for i, group in enumerate((msgs[1:5], msgs[5:9])):
        inner = b''.join(m[1] for m in group)
        packed = lz4_compress(inner) if compression == 'lz4' else inner
        crc = zlib.crc32(inner) ^ (1 if bad_crc and i == 1 else 0)  # the second chunk is bad
        out += _record(0x06, struct.pack('<QQQI', group[0][0], group[-1][0], len(inner), crc)
                       + _string(compression) + struct.pack('<Q', len(packed)) + packed)
        out += _record(0x07, struct.pack('<HI', 1, 0))  # an (empty) message index: skipped
    out += _record(0x0F, struct.pack('<I', 0)) + b'garbage after DataEnd is never read'
    path.mkdir()
    (path / f'{path.name}.mcap').write_bytes(out)
    return [(t, _joint_state(k)) for k, (t, _) in enumerate(msgs)]


@pytest.mark.parametrize('compression', ['', 'lz4'])
def test_spec_built_file_with_lz4_and_crc(tmp_path, compression) -> None:
    sent = _spec_mcap(tmp_path / 'bag', compression)
    report = recover_bag(tmp_path / 'bag')
    assert [(t, raw) for _topic, t, raw in _read(report.output)] == sent
    assert report.files[0].clean and report.files[0].reason == 'end of the data section'


def test_crc_mismatch_drops_the_chunk_and_stops(tmp_path) -> None:
    sent = _spec_mcap(tmp_path / 'bag', 'lz4', bad_crc=True)
    report = recover_bag(tmp_path / 'bag')
    assert [(t, raw) for _topic, t, raw in _read(report.output)] == sent[:5]
    assert 'CRC mismatch' in report.files[0].reason and not report.files[0].clean


def test_nothing_recoverable_is_an_error_and_leaves_nothing(tmp_path) -> None:
    bag = tmp_path / 'bag'
    bag.mkdir()
    (bag / 'bag.mcap').write_bytes(b'')  # killed before the first flush
    with pytest.raises(RecoveryError, match='no complete message.*empty'):
        recover_bag(bag)
    (bag / 'bag.mcap').write_bytes(b'not an mcap at all')
    with pytest.raises(RecoveryError, match='no MCAP magic'):
        recover_bag(bag)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']
    (tmp_path / 'empty').mkdir()
    with pytest.raises(RecoveryError, match=r'no \.mcap or \.db3'):
        recover_bag(tmp_path / 'empty')


def test_sqlite3_keeps_committed_rows_and_rolls_back_the_rest(tmp_path) -> None:
    """A sqlite3 writer killed mid-transaction: what was committed is recovered, the rest (spilled
    into the db file, undone by the hot journal) is not, and the killed bag is not modified."""
    path = tmp_path / 'live'
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    js = writer.add_connection('/joint_states', 'sensor_msgs/msg/JointState', typestore=TS)
    cam = writer.add_connection('/cam', 'sensor_msgs/msg/CompressedImage', typestore=TS)
    sent = []
    for k in range(40):
        sent.append(('/joint_states', T0 + k, _joint_state(k)))
        writer.write(js, T0 + k, sent[-1][2])
    writer.storage.conn.commit()  # what the recorder's periodic flush does
    for k in range(40, 80):  # ~4 MB uncommitted: more than SQLite's page cache, so it spills
        writer.write(cam, T0 + k, _image(k, 100_000))
    killed = tmp_path / 'killed'
    killed.mkdir()
    for p in path.iterdir():  # the files as a SIGKILL would leave them
        shutil.copyfile(p, killed / p.name.replace('live', 'killed'))
    writer.abort()
    assert (killed / 'killed.db3-journal').stat().st_size > 0
    before = _digest(killed)
    report = recover_bag(killed)
    assert sorted(_read(report.output)) == sorted(sent)
    assert report.topics == {'/joint_states': 40, '/cam': 0}
    assert 'rolled back' in report.files[0].reason and not report.files[0].clean
    assert _digest(killed) == before


def test_sqlite3_unfinalised_complete_bag(tmp_path) -> None:
    sent = _write(tmp_path / 'bag', storage='sqlite3', n=30, image_bytes=1000)
    (tmp_path / 'bag/metadata.yaml').unlink()
    report = recover_bag(tmp_path / 'bag')
    assert sorted(_read(report.output)) == sorted(sent)
    assert report.storage == 'sqlite3' and report.files[0].clean


def test_topics_without_a_usable_definition_are_skipped_and_listed(tmp_path) -> None:
    msgdef, _ = TS.generate_msgdef('sensor_msgs/msg/JointState', ros_version=2)
    meta = struct.pack('<I', 0)
    data = MAGIC + _record(0x01, _string('ros2') + _string('hand'))
    data += _record(0x03, struct.pack('<H', 1) + _string('my_pkg/msg/Thing') + _string('ros2msg')
                    + _string('this is not @ a definition'))
    data += _record(0x03, struct.pack('<H', 2) + _string('sensor_msgs/msg/JointState')
                    + _string('ros2msg') + _string(msgdef))
    data += _record(0x04, struct.pack('<HH', 1, 1) + _string('/thing') + _string('cdr') + meta)
    data += _record(0x04, struct.pack('<HH', 2, 2) + _string('/joint_states') + _string('cdr')
                    + meta)
    data += _record(0x04, struct.pack('<HH', 3, 0) + _string('/raw') + _string('cdr') + meta)
    for k in range(3):
        for channel, payload in ((1, b'\x00\x01\x00\x00'), (2, _joint_state(k)), (3, b'x')):
            data += _record(0x05, struct.pack('<HIQQ', channel, k, T0 + k, T0 + k) + payload)
    (tmp_path / 'bag').mkdir()
    (tmp_path / 'bag' / 'bag.mcap').write_bytes(data)
    report = recover_bag(tmp_path / 'bag')
    assert report.topics == {'/joint_states': 3}
    assert set(report.skipped) == {'/thing', '/raw'}
    assert 'does not parse' in report.skipped['/thing'] and 'skipped /raw' in report.summary()
    assert [(t, raw) for _topic, t, raw in _read(report.output)] == [
        (T0 + k, _joint_state(k)) for k in range(3)]


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_finalised_bag_cut_short_needs_recovery_and_gives_a_prefix(tmp_path, storage) -> None:
    """metadata.yaml present, the data file cut afterwards (an interrupted copy, a full disk):
    the bag is no longer whole, and recovery keeps exactly a prefix of what was written."""
    sent = _write(tmp_path / 'bag', storage=storage)
    assert bag_damage(tmp_path / 'bag') is None
    assert bag_damage(tmp_path / 'bag', thorough=True) is None
    cut = tmp_path / 'cut'
    shutil.copytree(tmp_path / 'bag', cut)
    data = next(cut.glob('*.mcap' if storage == 'mcap' else '*.db3'))
    with data.open('r+b') as f:
        f.truncate(data.stat().st_size * 3 // 5 + 7)
    assert (cut / 'metadata.yaml').is_file()
    why = bag_damage(cut)
    assert why is not None and 'cut short' in why and data.name in why
    report = recover_bag(cut)
    got = _read(report.output)
    assert 0 < len(got) < len(sent) and got == sent[:len(got)]
    assert not report.files[0].clean
    if storage == 'sqlite3':
        assert 'cut short' in report.files[0].reason


def test_a_hot_journal_or_missing_listed_file_needs_recovery(tmp_path) -> None:
    _write(tmp_path / 'bag', storage='sqlite3', n=9, image_bytes=100)
    db3 = next((tmp_path / 'bag').glob('*.db3'))
    journal = db3.with_name(db3.name + '-journal')
    journal.write_bytes(b'\xd9\xd5\x05\xf9\x20\xa1\x63\xd7' + bytes(504))
    assert 'unfinished transaction' in bag_damage(tmp_path / 'bag')
    journal.unlink()
    (tmp_path / 'bag' / 'metadata.yaml').write_text(
        (tmp_path / 'bag' / 'metadata.yaml').read_text().replace(db3.name, 'gone.db3'))
    assert 'missing' in bag_damage(tmp_path / 'bag')
    (tmp_path / 'bag' / 'metadata.yaml').write_text('rosbag2_bagfile_information: [')
    assert 'metadata.yaml is unreadable' in bag_damage(tmp_path / 'bag')


def test_thorough_check_finds_what_the_footer_hides(tmp_path) -> None:
    """A finished mcap whose summary section (the indexes rosbags reads by) was damaged in place
    keeps a valid footer: only reading it through (what --recover does) finds it, and recovery
    keeps every message of the intact data section."""
    sent = _write(tmp_path / 'bag')
    mcap = next((tmp_path / 'bag').glob('*.mcap'))
    size = mcap.stat().st_size
    with mcap.open('r+b') as f:
        f.seek(size - len(MAGIC) - 20)  # the footer's content: summary_start u64, ...
        summary_start = struct.unpack('<Q', f.read(8))[0]
        assert 0 < summary_start < size
        f.seek(summary_start)
        f.write(b'\x00' * 64)
    assert bag_damage(tmp_path / 'bag') is None
    why = bag_damage(tmp_path / 'bag', thorough=True)
    assert why is not None and 'rosbags stops reading it' in why, why
    assert _read(recover_bag(tmp_path / 'bag').output) == sent
