"""ros2 launch smolvla_ros so101_teleop_record.launch.py [output_dir:=DIR bag_name:=NAME ...]

Leader-arm teleoperation on emulated Feetech buses, recorded with two cameras; everything is in
config/profiles/so101_teleop_record.yaml, which ``smolvla-ros up so101_teleop_record`` reads
too. ``ros2 launch -s smolvla_ros so101_teleop_record.launch.py`` lists the arguments.
"""
from smolvla_ros.bringup.launch_support import profile_launch_description


def generate_launch_description():
    return profile_launch_description('so101_teleop_record')
