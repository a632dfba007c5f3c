"""Bad bags give typed, specific errors and leave no dataset (nor temp directory) behind."""
from __future__ import annotations

from pathlib import Path
import sqlite3
import subprocess
import sys

import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from smolvla_training.convert.converter import ConvertConfig, convert
from smolvla_training.convert.errors import (
    BagOpenError,
    ConvertError,
    EmptyBagError,
    MissingTopicError,
    NoFramesError,
    NonMonotonicStampsError,
    UnknownMessageTypeError,
    WrongMessageTypeError,
)
from smolvla_training.convert.synthetic_bag import SEC, T0, jittery_spec, regular, write_bag

CFG = ConvertConfig(vcodec='h264', progress=False)


def _assert_fails(tmp_path: Path, bags: list[Path], contract, error: type, match: str) -> None:
    out = tmp_path / 'ds'
    with pytest.raises(error, match=match):
        convert(bags, contract, out, CFG)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if '.partial-' in p.name]


def test_truncated_mcap(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(1.0))
    mcap = next(bag.glob('*.mcap'))
    data = mcap.read_bytes()
    mcap.write_bytes(data[:len(data) // 2])
    _assert_fails(tmp_path, [bag], contract, BagOpenError, 'truncated|cannot open')


def test_unfinalised_recording(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    (bag / 'metadata.yaml').unlink()  # what a SIGKILLed writer leaves
    _assert_fails(tmp_path, [bag], contract, BagOpenError, 'never finalised')


def test_missing_bag_and_not_a_bag(tmp_path, contract) -> None:
    _assert_fails(tmp_path, [tmp_path / 'nope'], contract, BagOpenError, 'no such bag')
    (tmp_path / 'junk').mkdir()
    _assert_fails(tmp_path, [tmp_path / 'junk'], contract, BagOpenError, 'cannot open')


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_empty_bag(tmp_path, contract, storage) -> None:
    ts = get_typestore(Stores.ROS2_KILTED)
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(tmp_path / 'bag', version=9, storage_plugin=plugin) as w:
        w.add_connection('/joint_states', 'sensor_msgs/msg/JointState', typestore=ts)
    _assert_fails(tmp_path, [tmp_path / 'bag'], contract, EmptyBagError, 'no messages')


def test_missing_topic_names_what_the_bag_has(tmp_path, contract) -> None:
    spec = jittery_spec(0.5)
    del spec.cameras['wrist']
    bag = write_bag(tmp_path / 'bag', spec)
    _assert_fails(tmp_path, [bag], contract, MissingTopicError,
                  r"'/cameras/wrist/image_raw/compressed'.*/cameras/front/image_raw/compressed")


def test_namespace_is_honoured(tmp_path, contract) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5, namespace='so101'))
    _assert_fails(tmp_path, [bag], contract, MissingTopicError, '--namespace')
    cfg = ConvertConfig(vcodec='h264', progress=False, namespace='so101')
    assert convert([bag], contract, tmp_path / 'ds', cfg).frames > 10


def test_wrong_message_type(tmp_path, contract) -> None:
    # A joint state topic that carries strings.
    ts = get_typestore(Stores.ROS2_KILTED)
    with Writer(tmp_path / 'bag2', version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection('/joint_states', 'std_msgs/msg/String', typestore=ts)
        msg = ts.types['std_msgs/msg/String'](data='x')
        w.write(conn, T0, bytes(ts.serialize_cdr(msg, 'std_msgs/msg/String')))
    _assert_fails(tmp_path, [tmp_path / 'bag2'], contract, WrongMessageTypeError,
                  "'/joint_states' has type std_msgs/msg/String.*JointState")


def test_unknown_custom_type(tmp_path, contract) -> None:
    # Bags from older ROS (sqlite3, Humble) store no message definitions: a custom type on the
    # task topic is then unknown. rosbags writes definitions, so they are deleted by hand.
    code = ('import sys; from pathlib import Path; '
            'from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag; '
            'write_bag(Path(sys.argv[1]), jittery_spec(0.5, tasks=[]), "sqlite3", version=8, '
            'custom=("/task", "acme_msgs/msg/Gadget", "int32 x"))')
    subprocess.run([sys.executable, '-c', code, str(tmp_path / 'bag')], check=True,
                   capture_output=True)
    with sqlite3.connect(next((tmp_path / 'bag').glob('*.db3'))) as db:
        db.execute("delete from message_definitions where topic_type = 'acme_msgs/msg/Gadget'")
    _assert_fails(tmp_path, [tmp_path / 'bag'], contract, UnknownMessageTypeError,
                  'acme_msgs/msg/Gadget.*neither the bag nor the type store')


def test_non_monotonic_stamps(tmp_path, contract) -> None:
    # Front frame 5 arrives 0.1 s late: in bag (receive) order its stamp goes backwards.
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5, late={'front': {5: 100_000_000}}))
    _assert_fails(tmp_path, [bag], contract, NonMonotonicStampsError,
                  'stamps on /cameras/front/image_raw/compressed go backwards at message 8')


def test_no_valid_frame_and_missing_task(tmp_path, contract) -> None:
    end = T0 + SEC
    spec = jittery_spec(1.0)
    spec.cameras['front'] = [T0]  # one frame, stale after 0.15 s, never again
    spec.state = regular(T0 + SEC // 2, end, 100)
    bag = write_bag(tmp_path / 'bag', spec)
    _assert_fails(tmp_path, [bag], contract, NoFramesError, 'no valid frames')
    bag2 = write_bag(tmp_path / 'bag2', jittery_spec(0.5, tasks=[]))
    _assert_fails(tmp_path, [bag2], contract, ConvertError, '--task')
