"""recorder: the contract's topics, commands, task and episode events into a rosbag2 mcap bag.

The pip-only stand-in for ``ros2 bag record`` (DESIGN §9): raw (serialized) subscriptions hand
CDR bytes to a queue, and one writer thread owns the rosbags ``Writer`` (sqlite3 writers must be
used from the thread that created them; mcap does not care), so callbacks never block on disk.
Episodes are marked in the bag itself: services ``~/start_episode``, ``~/stop_episode`` and
``~/discard_episode`` (std_srvs/Trigger) publish ``start``/``stop``/``discard`` on ``episode``
(std_msgs/String), which the recorder records like any other topic, so a teleop operator (or a
script, or the simulator's expert) marks episodes and ``smolvla-convert`` splits the bag on them.

The bag is finalised (metadata.yaml, mcap summary) on Ctrl-C, SIGTERM or node destruction. So
that a SIGKILL, an OOM kill or a power cut costs at most about ``flush_period_s`` of data, the
writer thread makes what it wrote durable that often (:func:`flush_bag`: rosbags' mcap writer would
otherwise hold up to 1 MiB -- some 45 s of joint states -- in memory, and its sqlite3 writer
commits nothing before close). Such a bag has no metadata.yaml; ``smolvla-convert --recover
BAG`` writes its complete messages into a new, finalised bag (docs/data.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
import os
from pathlib import Path
import queue
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from smolvla_ros.core.contract import default_contract_path, load_contract
from smolvla_ros.nodes.params import read_only_parameter

EPISODE_TOPIC = 'episode'
_TYPES = {JointState: 'sensor_msgs/msg/JointState', CompressedImage:
          'sensor_msgs/msg/CompressedImage', Image: 'sensor_msgs/msg/Image',
          String: 'std_msgs/msg/String'}


@dataclass(frozen=True)
class RecorderConfig:
    """Frozen node parameters."""

    contract: str
    output_dir: str
    bag_name: str
    storage: str
    queue_size: int
    flush_period_s: float = 0.5

    def __post_init__(self) -> None:
        if self.storage not in ('mcap', 'sqlite3'):
            raise ValueError(f'storage must be mcap or sqlite3, got {self.storage!r}')
        if self.queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {self.queue_size}')
        if not self.flush_period_s >= 0.0:
            raise ValueError(f'flush_period_s must be >= 0 (0: never), got {self.flush_period_s}')


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


class Recorder(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('recorder', **kwargs)
        p = partial(read_only_parameter, self)
        self.config = RecorderConfig(
            contract=p('contract', '', 'robot contract YAML (default: the so101 contract)'),
            output_dir=p('output_dir', 'bags', 'directory the bag directory is created in'),
            bag_name=p('bag_name', '', 'bag directory name (default: rec_<date>_<time>)'),
            storage=p('storage', 'mcap', 'rosbag2 storage: mcap or sqlite3'),
            queue_size=p('queue_size', 100, 'subscription queue depth per topic'),
            flush_period_s=p('flush_period_s', 0.5, 'put written messages on disk this often, s '
                             '(bounds what a SIGKILL or power cut loses; 0: only at close)'))
        contract = load_contract(self.config.contract or default_contract_path())
        topics: dict[str, type] = {contract.state.topic: JointState,
                                   contract.action.topic: JointState,
                                   contract.task.topic: String, EPISODE_TOPIC: String}
        for cam in contract.cameras.values():
            topics[cam.topic] = CompressedImage if cam.compressed else Image
        resolved = {self.resolve_topic_name(t): cls for t, cls in topics.items()}
        name = self.config.bag_name or datetime.now().strftime('rec_%Y%m%d_%H%M%S')
        self.bag_path = Path(self.config.output_dir).expanduser() / name
        self.bag_path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = BagWriterThread(self.bag_path, self.config.storage,
                                      {t: _TYPES[cls] for t, cls in resolved.items()},
                                      self.config.flush_period_s)
        if not self.writer.flush_supported:
            self.get_logger().warning(
                'this rosbags version\'s writer cannot be flushed: a SIGKILL or power cut loses '
                'everything not yet finalised (stop the recorder with Ctrl-C or SIGTERM)')
        task_topic = self.resolve_topic_name(contract.task.topic)
        for topic, cls in resolved.items():
            qos = self._task_qos(task_topic) if topic == task_topic else self.config.queue_size
            self.create_subscription(cls, topic, self._callback(topic), qos, raw=True)
        self._event_pub = self.create_publisher(String, EPISODE_TOPIC, 10)
        self.episode_open = False
        for event in ('start', 'stop', 'discard'):
            self.create_service(Trigger, f'~/{event}_episode', self._service(event))
        self.get_logger().info(f'recording {sorted(resolved)} into {self.bag_path}')

    def _task_qos(self, topic: str) -> QoSProfile:
        """Transient-local when every task publisher already up offers it (to get the latched
        task), else volatile, which matches publishers of both kinds (as ros2 bag record adapts).
        """
        pubs = self.get_publishers_info_by_topic(topic)
        latched = bool(pubs) and all(
            p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pubs)
        return QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                          else DurabilityPolicy.VOLATILE)

    def _callback(self, topic: str):
        def on_message(raw: bytes) -> None:
            self.writer.put(topic, self.get_clock().now().nanoseconds, raw)
        return on_message

    def _service(self, event: str):
        def handle(_request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            if event == 'stop' and not self.episode_open:
                response.success, response.message = False, 'no episode is open'
                return response
            self._event_pub.publish(String(data=event))
            self.episode_open = event == 'start'
            response.success, response.message = True, f'episode {event}'
            self.get_logger().info(f'episode {event}')
            return response
        return handle

    def close(self) -> dict[str, int]:
        """Finalise the bag; returns the messages written per topic."""
        self.writer.close()
        if self.writer.error is not None:
            self.get_logger().error(f'bag writer failed: {self.writer.error}')
        self.get_logger().info(f'bag {self.bag_path} closed: {self.writer.written}')
        return dict(self.writer.written)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = Recorder()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, RuntimeError) as exc:  # bad parameters, contract, or output directory
        rclpy.logging.get_logger('recorder').fatal(str(exc))
        return 2
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
