"""ros2 launch smolvla_ros so101_teleop_emulated.launch.py [namespace:=NS emulators:=true|false ...]

Leader-arm teleoperation of an SO-101 on emulated Feetech buses; everything is defined in
config/profiles/so101_teleop_emulated.yaml, which ``smolvla-ros up so101_teleop_emulated`` reads
too. ``ros2 launch -s smolvla_ros so101_teleop_emulated.launch.py`` lists the arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('so101_teleop_emulated')
