"""What the robot is: the contract (joints, cameras, rates, units), LeRobot's calibration file and
norm modes, and the one conversion between ROS radians and dataset units."""
