"""Feetech STS3215 servos (SO-100/SO-101 arms): protocol, control table, bus, calibration, units.

ROS-free. The bus runs on the real `scservo_sdk`; smolvla_ros.hardware.emulator serves the same
protocol on a pseudo-terminal so everything here is testable without an arm.
"""
from smolvla_ros.hardware.feetech.bus import BusStats, FeetechBus, Motor, MotorStats, so101_motors
from smolvla_ros.hardware.feetech.errors import (
    BusNotConnectedError,
    CommunicationError,
    FeetechError,
    PortError,
)

__all__ = [
    'BusNotConnectedError',
    'BusStats',
    'CommunicationError',
    'FeetechBus',
    'FeetechError',
    'Motor',
    'MotorStats',
    'PortError',
    'so101_motors',
]
