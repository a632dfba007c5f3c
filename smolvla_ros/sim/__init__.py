"""MuJoCo simulation of the SO-101 (no rclpy)."""
