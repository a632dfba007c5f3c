"""Conversions between ROS messages and numpy. Imports message types, never rclpy.node."""
