"""Hardware access without ROS: Feetech servo bus, servo emulator, camera sources."""
