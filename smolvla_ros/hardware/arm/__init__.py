"""The Feetech arm driver's logic (ROS-free): configuration, control state machine, status,
watchdog, the bus interface it drives, and the leader-to-follower teleop mapping."""
