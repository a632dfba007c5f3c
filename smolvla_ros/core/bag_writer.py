"""The recorder's bag writer: one thread that owns a rosbags Writer and keeps the bag durable.

ROS-free (rosbags only), so the node stays wiring. One thread owns the writer because rosbags'
sqlite3 writer must be used from the thread that created it; callbacks only enqueue CDR bytes and
never block on disk. So that a SIGKILL, an OOM kill or a power cut costs at most about
``flush_period_s`` of data, the thread makes what it wrote durable that often (:func:`flush_bag`):
rosbags' mcap writer would otherwise hold up to 1 MiB (some 45 s of joint states) in memory, and its
sqlite3 writer commits nothing before close. Such a bag has no metadata.yaml; ``smolvla-convert
--recover BAG`` writes its complete messages into a new, finalised bag (docs/data.md).
"""
from __future__ import annotations

import os
from pathlib import Path
import queue
import threading
import time

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.typesys import Stores, get_typestore


def can_flush(writer: Writer) -> bool:
    """Whether :func:`flush_bag` knows this rosbags version's storage writer."""
    storage = writer.storage
    if isinstance(storage, McapWriter):
        return all(hasattr(storage, a) for a in ('chunk', 'bio', 'close_chunk'))
    return isinstance(storage, Sqlite3Writer) and hasattr(storage, 'conn')


def flush_bag(writer: Writer) -> None:
    """Put everything written so far on disk, readable by ``smolvla-convert --recover``.

    mcap: close the pending chunk (rosbags only closes one at 1 MiB; schemas and channels are in
    the first one) when it holds messages, and flush and fsync the file. sqlite3: commit (rosbags
    commits only on close; SQLite rolls an uncommitted transaction back after a crash). Both reach
    into rosbags' storage writers; ``can_flush`` says whether this version has what is used.
    """
    storage = writer.storage
    if isinstance(storage, McapWriter):
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())
    elif isinstance(storage, Sqlite3Writer):
        storage.conn.commit()


class BagWriterThread:
    """One thread that owns the rosbags Writer; ``put`` is safe from any callback thread.

    Every ``flush_period_s`` (0: never) after the first message not yet flushed, the thread calls
    :func:`flush_bag`, also when no message follows, so a killed recorder loses at most that much
    plus what was still queued.
    """

    def __init__(self, path: Path, storage: str, topics: dict[str, str],
                 flush_period_s: float = 0.5) -> None:
        self.path, self._storage, self._topics = path, storage, topics
        self._period = flush_period_s
        self._queue: queue.Queue = queue.Queue()
        self.written = dict.fromkeys(topics, 0)
        self.flush_supported = True
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name='bag_writer', daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self.error is not None:
            raise RuntimeError(f'cannot create the bag {path}: {self.error}') from self.error

    def put(self, topic: str, t_ns: int, raw: bytes) -> None:
        self._queue.put((topic, t_ns, raw))

    def _run(self) -> None:
        try:
            ts = get_typestore(Stores.ROS2_KILTED)
            plugin = StoragePlugin.MCAP if self._storage == 'mcap' else StoragePlugin.SQLITE3
            writer = Writer(self.path, version=9, storage_plugin=plugin)
            writer.open()
            conns = {t: writer.add_connection(t, ty, typestore=ts)
                     for t, ty in self._topics.items()}
            self.flush_supported = can_flush(writer)
            if self._period > 0 and self.flush_supported:
                flush_bag(writer)  # mcap header (sqlite3: topics, definitions) on disk now
        except Exception as exc:  # reported to the constructor, which raises it
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        periodic = self._period > 0 and self.flush_supported
        try:
            oldest: float | None = None  # monotonic time of the first unflushed message
            while True:
                timeout = None if oldest is None else max(0.0, oldest + self._period
                                                          - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = ()
                if item is None:
                    break
                if item:
                    topic, t_ns, raw = item
                    writer.write(conns[topic], t_ns, raw)
                    self.written[topic] += 1
                    if periodic and oldest is None:
                        oldest = time.monotonic()
                if oldest is not None and time.monotonic() - oldest >= self._period:
                    flush_bag(writer)
                    oldest = None
        except Exception as exc:  # kept for close(); the node logs it
            self.error = exc
        finally:
            writer.close()

    def close(self) -> None:
        """Write what is queued, finalise the bag, join the thread."""
        self._queue.put(None)
        self._thread.join()
