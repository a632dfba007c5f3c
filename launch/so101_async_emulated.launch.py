"""ros2 launch smolvla_ros so101_async_emulated.launch.py [policy:=true|false checkpoint:=...]

SmolVLA (async inference) on an emulated SO-101; everything is defined in
config/profiles/so101_async_emulated.yaml, which ``smolvla-ros up so101_async_emulated`` reads
too. ``ros2 launch -s smolvla_ros so101_async_emulated.launch.py`` lists the arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('so101_async_emulated')
