"""An STS3215 servo-bus emulator on a real pseudo-terminal: the real SDK and driver run unchanged.

ROS-free. `ServoEmulator` is the bus; `EmulatedServo` one servo; faults.py the injectable faults;
cli.py the `smolvla-ros servo-emulator` subcommand that serves one bus as a process.
"""
from smolvla_ros.hardware.emulator.faults import Fault, FaultKind, parse_fault
from smolvla_ros.hardware.emulator.server import EmulatorStats, ServoEmulator
from smolvla_ros.hardware.emulator.servo import EmulatedServo, ServoConfig

__all__ = [
    'EmulatedServo',
    'EmulatorStats',
    'Fault',
    'FaultKind',
    'ServoConfig',
    'ServoEmulator',
    'parse_fault',
]
