"""Shared test fixtures.

Every test process talks DDS on loopback only and on its own random domain, so parallel CI jobs and
other sessions on the same machine never see each other's nodes.
"""
from __future__ import annotations

import os
import random
import signal
import sys

import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(random.randint(1, 215)))
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


def random_domain_id() -> int:
    """A domain id in 1..215: valid for the default port mapping, wide enough that concurrent test
    runs on one machine rarely meet. Tests that must not be answered by a stranger also use
    service/topic names of their own."""
    return random.randint(1, 215)


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for ROS subprocesses: a fresh random domain, localhost discovery, this venv."""
    domain = str(random_domain_id())
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env = dict(os.environ)
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['PYTHONUNBUFFERED'] = '1'
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
