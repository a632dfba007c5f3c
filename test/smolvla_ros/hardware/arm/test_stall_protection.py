"""Stall protection against the register-level fake bus, on a fake clock (docs/driver.md).

An obstruction is a joint whose servo does not move toward its goal and reports a high
Present_Load. The driver must release that joint's push (goal := present) only after load and
position error persisted for stall_timeout_s, hold the other joints, ignore commands until
enable_torque, and leave the gripper alone unless asked to watch it.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from test_arm_control import NAMES, Clock, FakeBus, make_cal

from smolvla_ros.core.robot.calibration import MotorCalibration
from smolvla_ros.hardware.arm.arm_config import ArmConfig, ArmConfigError
from smolvla_ros.hardware.arm.arm_control import ArmController, ArmState

DT = 0.01  # 100 Hz
ELBOW = NAMES.index('elbow_flex')


class ObstructedBus(FakeBus):
    """FakeBus whose ``blocked`` joints stay where they are whatever their goal."""

    def __init__(self, cal: Mapping[str, MotorCalibration]) -> None:
        super().__init__(cal)
        self.blocked: set[str] = set()

    def sync_write(self, register: str, values: Mapping[str, int]) -> None:
        before = dict(self.actual)
        super().sync_write(register, values)
        for name in self.blocked:
            self.actual[name] = before[name]

    def push(self, name: str, load: int) -> None:
        """An obstruction on ``name``: it stops moving and its servo reports ``load`` (0.1 %)."""
        self.blocked.add(name)
        self.regs[name]['Present_Load'] = load

    def free(self, name: str) -> None:
        self.blocked.discard(name)
        self.regs[name]['Present_Load'] = 0


def make(**kw) -> tuple[ArmController, ObstructedBus, Clock]:
    cal = make_cal()
    bus = ObstructedBus(cal)
    clock = Clock()
    config = ArmConfig(**{'max_step_rad': 0.05, 'command_timeout_s': 100.0, 'stall_load': 0.5,
                          'stall_timeout_s': 0.3, 'stall_position_tolerance_rad': 0.05, **kw})
    ctl = ArmController(bus, cal, config, clock=clock)
    assert ctl.connect()
    ctl.enable_torque()
    return ctl, bus, clock


def run(ctl: ArmController, clock: Clock, seconds: float) -> None:
    for _ in range(round(seconds / DT)):
        clock.t += DT
        assert ctl.cycle()


def goal_ticks(bus: ObstructedBus) -> dict[str, int]:
    return {n: bus.regs[n]['Goal_Position'] for n in NAMES}


def entries(ctl: ArmController) -> dict:
    return {e.name.split(': ')[1]: e for e in ctl.status().entries('arm')}


def test_obstruction_trips_after_the_timeout_and_releases_only_that_joint() -> None:
    ctl, bus, clock = make()
    start = ctl.position.copy()
    bus.push('elbow_flex', 900)
    ctl.command({'elbow_flex': start[ELBOW] + 0.5, 'shoulder_pan': start[0] + 0.2})
    run(ctl, clock, 0.25)  # the error reaches the tolerance after one step: 0.24 s of streak
    assert ctl.state is ArmState.ENABLED
    run(ctl, clock, 0.1)
    assert ctl.state is ArmState.STALLED
    # The stalled joint stops pushing: its goal is where it is; torque stays on everywhere.
    assert bus.regs['elbow_flex']['Goal_Position'] == bus.present('elbow_flex')
    assert ctl.goal[ELBOW] == pytest.approx(ctl.position[ELBOW], abs=1e-3)
    assert all(bus.regs[n]['Torque_Enable'] == 1 for n in NAMES)
    held = goal_ticks(bus)
    assert held['shoulder_pan'] != bus.goal_at_enable['shoulder_pan']  # it had moved

    # Latched: commands (to the stalled joint and the others) are not applied, nothing moves.
    writes = len(bus.goal_writes)
    ctl.command({'elbow_flex': start[ELBOW] + 0.5, 'shoulder_pan': start[0] - 0.3})
    run(ctl, clock, 1.0)
    assert ctl.state is ArmState.STALLED and goal_ticks(bus) == held
    assert len(bus.goal_writes) == writes

    e = entries(ctl)
    assert e['bus'].level == 2 and 'elbow_flex' in e['bus'].message
    assert e['bus'].message.startswith('stalled')
    assert dict(e['bus'].values)['stalls'] == '1'
    assert e['elbow_flex'].level == 2 and 'load 0.90' in e['elbow_flex'].message
    assert dict(e['elbow_flex'].values)['stalled'].startswith('stalled: load 0.90')
    assert all(e[n].level == 0 and dict(e[n].values)['stalled'] == 'no'
               for n in NAMES if n != 'elbow_flex')

    # enable_torque is the way back: goal := present everywhere, commands apply again.
    bus.free('elbow_flex')
    ctl.enable_torque()
    assert ctl.state is ArmState.ENABLED
    assert dict(entries(ctl)['elbow_flex'].values)['stalled'] == 'no'
    pan = float(ctl.position[0])
    ctl.command({'shoulder_pan': pan - 0.1})
    run(ctl, clock, 0.1)
    assert ctl.goal[0] == pytest.approx(pan - 0.1)
    assert ctl.status().stalls == 1  # the counter survives the acknowledgement


def test_interrupted_pushes_and_high_load_near_the_goal_do_not_trip() -> None:
    ctl, bus, clock = make()
    target = ctl.position[ELBOW] + 0.5
    for _ in range(5):  # pushes shorter than the timeout, each broken by one quiet cycle
        bus.push('elbow_flex', 1000)
        ctl.command({'elbow_flex': target})
        run(ctl, clock, 0.25)
        bus.regs['elbow_flex']['Present_Load'] = 0
        run(ctl, clock, DT)
    assert ctl.state is ArmState.ENABLED
    # Full load while the goal is reached (holding a weight against gravity) is not a stall.
    bus.free('elbow_flex')
    run(ctl, clock, 0.5)
    bus.regs['elbow_flex']['Present_Load'] = 1000
    run(ctl, clock, 2.0)
    assert ctl.state is ArmState.ENABLED and ctl.status().stalls == 0


def test_gripper_is_not_watched_by_default() -> None:
    ctl, bus, clock = make()
    assert 'gripper' not in ctl.config.stall_joints
    bus.push('gripper', 1000)  # a grasp: the jaws close on an object and push
    ctl.command({'gripper': float(ctl.joints.lower[5])})
    run(ctl, clock, 2.0)
    assert ctl.state is ArmState.ENABLED

    ctl, bus, clock = make(stall_joints=['gripper'])
    bus.push('gripper', 1000)
    ctl.command({'gripper': float(ctl.joints.lower[5])})
    run(ctl, clock, 0.5)
    assert ctl.state is ArmState.STALLED and ctl.stall.stalled.tolist() == [0, 0, 0, 0, 0, 1]


def test_a_second_joint_against_the_obstruction_is_released_too() -> None:
    ctl, bus, clock = make()
    bus.push('elbow_flex', 900)
    bus.push('shoulder_lift', -300)  # against the table too, lightly at first
    ctl.command({'elbow_flex': ctl.position[ELBOW] + 0.5,
                 'shoulder_lift': ctl.position[1] - 0.2})
    run(ctl, clock, 0.4)
    assert ctl.state is ArmState.STALLED and ctl.stall.stalled.tolist() == [0, 0, 1, 0, 0, 0]
    # The shoulder holds its goal below the table and now takes the load the elbow gave up:
    # detection goes on in STALLED.
    bus.regs['shoulder_lift']['Present_Load'] = -800
    run(ctl, clock, 0.4)
    assert ctl.stall.stalled.tolist() == [0, 1, 1, 0, 0, 0]
    assert bus.regs['shoulder_lift']['Goal_Position'] == bus.present('shoulder_lift')
    assert 'shoulder_lift, elbow_flex' in ctl.fault_reason
    assert ctl.status().stalls == 2
    ctl.disable_torque()  # also acknowledges
    assert ctl.state is ArmState.IDLE and not ctl.stall.stalled.any()


def test_load_is_read_every_cycle_when_velocity_effort_is_off() -> None:
    ctl, bus, clock = make(read_velocity_effort=False, health_period_s=10.0)
    bus.push('wrist_flex', 700)
    ctl.command({'wrist_flex': ctl.position[3] - 0.4})
    run(ctl, clock, 0.5)
    assert ctl.state is ArmState.STALLED and 'wrist_flex' in ctl.fault_reason


def test_servo_unloading_while_stalled_is_torque_lost() -> None:
    ctl, bus, clock = make(health_period_s=0.2)
    bus.push('elbow_flex', 900)
    ctl.command({'elbow_flex': ctl.position[ELBOW] + 0.5})
    run(ctl, clock, 0.4)
    assert ctl.state is ArmState.STALLED
    bus.regs['wrist_roll']['Torque_Enable'] = 0
    run(ctl, clock, 0.3)
    assert ctl.state is ArmState.TORQUE_LOST
    e = entries(ctl)
    assert e['elbow_flex'].level == 2 and e['wrist_roll'].level == 2


def test_stall_parameters_are_validated() -> None:
    default = ArmConfig()
    assert default.stall_load == 0.0 and not default.stall_protection  # off unless asked
    assert default.stall_joints == NAMES[:5]
    for bad in (1.5, -0.1, float('nan')):
        with pytest.raises(ArmConfigError, match='stall_load'):
            ArmConfig(stall_load=bad)
    for name in ('stall_position_tolerance_rad', 'stall_timeout_s'):
        with pytest.raises(ArmConfigError, match=name):
            ArmConfig(**{name: 0.0})
    with pytest.raises(ArmConfigError, match='leader'):
        ArmConfig(role='leader', stall_load=0.5)
    with pytest.raises(ArmConfigError, match='stall_joints'):
        ArmConfig(stall_load=0.5, stall_joints=[])
    with pytest.raises(ArmConfigError, match='stall_joints'):
        ArmConfig(stall_joints='elbow_flex')
    cal = make_cal()
    with pytest.raises(ArmConfigError, match="'elbow'"):
        ArmController(FakeBus(cal), cal, ArmConfig(stall_load=0.5, stall_joints=['elbow']))
    # With protection off the list is not checked: another arm's joint names still start.
    ArmController(FakeBus(cal), cal, ArmConfig(stall_joints=['elbow']))
    assert np.array_equal(ArmController(FakeBus(cal), cal, ArmConfig()).stall.watched,
                          [1, 1, 1, 1, 1, 0])
