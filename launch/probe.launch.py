"""ros2 launch smolvla_ros probe.launch.py [count:=N server:=true|false namespace:=NS ...]

PredictChunk round-trip probe; everything is defined in config/profiles/probe.yaml, which
``smolvla-ros up probe`` reads too. ``ros2 launch -s smolvla_ros probe.launch.py`` lists the
arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('probe')
