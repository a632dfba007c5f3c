"""rosbag2 -> LeRobot v3.0 conversion (``smolvla-convert``)."""
