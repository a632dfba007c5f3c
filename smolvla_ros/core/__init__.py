"""ROS-free control logic: contracts, observation assembly, chunk queue, fusion, safety."""
