"""smolvla_ros: SmolVLA on SO-100/SO-101 arms with asynchronous inference over ROS 2.

Subpackages (docs/ARCHITECTURE.md, "The Python package split"): ``core`` (ROS-free control
logic), ``hardware`` (servo bus, emulator, cameras), ``policy`` (SmolVLA, torch), ``sim`` (MuJoCo
world), ``ros`` (message <-> numpy conversions), ``nodes`` (one rclpy Node per file), ``bringup``
(profiles and the ``up`` runner), ``cli`` (the ``smolvla-ros`` command and its subcommands).
"""

__version__ = '0.1.0'
