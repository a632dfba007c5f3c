"""ros2 launch smolvla_ros so101_async.launch.py [sim:=true oracle:=true checkpoint:=... ...]

Everything is defined in config/profiles/so101_async.yaml, which ``smolvla-ros up so101_async``
reads too. ``ros2 launch -s smolvla_ros so101_async.launch.py`` lists the arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('so101_async')
