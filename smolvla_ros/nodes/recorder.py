"""recorder: the contract's topics, commands, task and episode events into a rosbag2 mcap bag.

The pip-only stand-in for ``ros2 bag record`` (docs/data.md): raw (serialized) subscriptions hand
CDR bytes to a queue, and one writer thread owns the rosbags ``Writer`` (sqlite3 writers must be
used from the thread that created them; mcap does not care), so callbacks never block on disk.
Episodes are marked in the bag itself: services ``~/start_episode``, ``~/stop_episode`` and
``~/discard_episode`` (std_srvs/Trigger) publish ``start``/``stop``/``discard`` on ``episode``
(std_msgs/String), which the recorder records like any other topic, so a teleop operator (or a
script, or the simulator's expert) marks episodes and ``smolvla-convert`` splits the bag on them.

The bag is finalised (metadata.yaml, mcap summary) on Ctrl-C, SIGTERM or node destruction; in
between, the writer thread (core/bag_writer.py) makes what it wrote durable every
``flush_period_s``, so a SIGKILL or power cut loses at most about that much, and ``smolvla-convert
--recover BAG`` rebuilds the unfinished bag (docs/data.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
import sys

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from smolvla_ros.core.bag_writer import BagWriterThread
from smolvla_ros.core.robot.contract import default_contract_path, load_contract
from smolvla_ros.nodes.node_main import run_node
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
        self._closed: dict[str, int] | None = None
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
        """Finalise the bag (once; later calls return the same counts): messages per topic."""
        if self._closed is not None:
            return self._closed
        self.writer.close()
        if self.writer.error is not None:
            self.get_logger().error(f'bag writer failed: {self.writer.error}')
        self.get_logger().info(f'bag {self.bag_path} closed: {self.writer.written}')
        self._closed = dict(self.writer.written)
        return self._closed

    def destroy_node(self) -> None:
        """Every exit path (Ctrl-C, SIGTERM, a test) finalises the bag first."""
        if getattr(self, 'writer', None) is not None:  # absent when the setup failed part-way
            self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``recorder``; exit 2 for bad parameters, contract or output directory."""
    return run_node(Recorder, 'recorder', args, setup_errors=(ValueError, RuntimeError))

if __name__ == '__main__':
    sys.exit(main())
