"""smolvla_training: rosbag2 -> LeRobot dataset conversion, dataset reading and SmolVLA training.

Never imports rclpy: it runs on a training machine without ROS. Bags are read with ``rosbags``.
"""

__version__ = '0.1.0'
