"""Issue 2's promise for the pip-only path: smolvla_msgs imports and round-trips through rclpy's
serializer in a subprocess started with an EMPTY environment (nothing sourced, no PYTHONPATH, no
LD_LIBRARY_PATH, no AMENT_PREFIX_PATH), because `make setup` installs the interfaces into the venv.
"""
from __future__ import annotations

import subprocess
import sys

PROBE = '''
from rclpy.serialization import deserialize_message, serialize_message
from smolvla_msgs.msg import ActionChunk, Observation
from smolvla_msgs.srv import PredictChunk
chunk = ActionChunk(joint_names=['a', 'b'], dt=0.1, num_steps=2, positions=[1.0, 2.0, 3.0, 4.0])
back = deserialize_message(serialize_message(chunk), ActionChunk)
assert list(back.positions) == [1.0, 2.0, 3.0, 4.0] and back.joint_names == ['a', 'b']
obs = Observation(task='pick', camera_names=['front'])
assert deserialize_message(serialize_message(obs), Observation).task == 'pick'
print(PredictChunk.Request().observation.task == '')
'''


def test_interfaces_import_with_an_empty_environment() -> None:
    proc = subprocess.run([sys.executable, '-c', PROBE], env={}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == 'True'
