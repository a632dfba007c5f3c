"""Visualization math: URDF reader, forward kinematics, chunk markers, chunk logs."""
