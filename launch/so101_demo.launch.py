"""ros2 launch smolvla_ros so101_demo.launch.py [sim:=true oracle:=true checkpoint:=... ...]

Everything is defined in config/profiles/so101_demo.yaml, which ``smolvla-ros up so101_demo``
reads too. ``ros2 launch -s smolvla_ros so101_demo.launch.py`` lists the arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('so101_demo')
