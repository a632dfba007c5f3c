"""Shared test fixtures.

Every test process talks DDS on loopback only and on its own random domain, so parallel CI jobs and
other sessions on the same machine never see each other's nodes.
"""
from __future__ import annotations

import os
import signal

import pytest

from smolvla_ros.bringup.processes import isolated_ros_env, random_domain_id

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(random_domain_id()))
# MuJoCo fixes its GL backend at first import; a test module that imports mujoco before
# smolvla_ros.sim would leave the whole process on GLFW, which fails on a headless CI machine.
os.environ.setdefault('MUJOCO_GL', 'egl')

# A suite started as a background job of a non-interactive shell inherits SIGINT *ignored* (and
# under nohup SIGHUP too), and every process a test starts (ros2 launch, nodes, converters) would
# inherit that, so the stop-signal tests would fail for a reason no user has. Reset here, children
# exec with the default dispositions, as under a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for ROS subprocesses: a fresh random domain, localhost discovery, this venv
    (bringup/processes.isolated_ros_env); this process's rclpy gets the same domain."""
    env = isolated_ros_env()
    monkeypatch.setenv('ROS_DOMAIN_ID', env['ROS_DOMAIN_ID'])
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context of its own (random domain), shut down after the test."""
    rclpy = pytest.importorskip('rclpy')
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=random_domain_id())
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
