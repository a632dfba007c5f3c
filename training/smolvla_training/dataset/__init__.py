"""LeRobot dataset reading (v3.0 and v2.1) for training."""
