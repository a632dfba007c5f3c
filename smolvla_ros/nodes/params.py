"""Declaring a node parameter, written once for every node.

Every parameter of this stack is read-only: a node reads its configuration at start and is
restarted to change it (values that could change under a running control loop are a hazard).
A float parameter is declared with dynamic typing so that an integer from YAML or the command line
(``rate_hz:=50``) is accepted instead of rejected by rclpy's strict typing; its value comes back as
float.
"""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


def read_only_parameter(node: Node, name: str, default: Any, description: str,
                        **descriptor: Any) -> Any:
    """Declare ``name`` on ``node`` (read-only, documented) and return its value.

    ``default`` may be a value or a ``Parameter.Type`` (declared without a value: ``None`` when
    unset); ``descriptor`` adds ParameterDescriptor fields such as ``integer_range``.
    """
    is_float = isinstance(default, float)
    value = node.declare_parameter(name, default, ParameterDescriptor(
        description=description, read_only=True, dynamic_typing=is_float, **descriptor)).value
    return float(value) if is_float else value
