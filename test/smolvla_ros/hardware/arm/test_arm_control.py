"""ArmController against a register-level fake bus (no bytes, no ROS).

The fake keeps a register file per motor with the Feetech semantics that matter to the driver
(Present = Actual - Homing_Offset, torque and lock flags) and lets a test script failures: a
transfer error at the next N calls, or the port vanishing and coming back.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import math

import numpy as np
import pytest

from smolvla_ros.core.robot.calibration import MotorCalibration
from smolvla_ros.hardware.arm.arm_config import ArmConfig, ArmConfigError, ArmJoints
from smolvla_ros.hardware.arm.arm_control import ArmController, ArmState, TorqueRequestError
from smolvla_ros.hardware.arm.command_watchdog import UnknownJointError
from smolvla_ros.hardware.arm.servo_bus import CalibrationMismatchError
from smolvla_ros.hardware.feetech.errors import CommunicationError, PortError

NAMES = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
RAD_PER_TICK = 2 * math.pi / 4095


@dataclass
class _Motor:
    id: int


class FakeBus:
    """Register-level stand-in for FeetechBus."""

    def __init__(self, cal: Mapping[str, MotorCalibration]) -> None:
        self.motors = {n: _Motor(c.id) for n, c in cal.items()}
        self.regs: dict[str, dict[str, int]] = {}
        for n, c in cal.items():
            self.regs[n] = {
                'Homing_Offset': c.homing_offset, 'Min_Position_Limit': c.range_min,
                'Max_Position_Limit': c.range_max, 'Torque_Enable': 0, 'Lock': 0,
                'Goal_Position': 0, 'Present_Velocity': 0, 'Present_Load': 0,
                'Present_Voltage': 120, 'Present_Temperature': 30, 'Status': 0,
                'Return_Delay_Time': 250, 'Operating_Mode': 0, 'Acceleration': 0,
                'P_Coefficient': 32, 'I_Coefficient': 0, 'D_Coefficient': 0,
                'Max_Torque_Limit': 1000, 'Protection_Current': 500, 'Overload_Torque': 80,
            }
        self.actual = {n: (c.range_min + c.range_max) // 2 + c.homing_offset
                       for n, c in cal.items()}
        self.connected = False
        self.port_present = True
        self.fail_calls = 0  # fail this many upcoming transfers
        self.fail_motor = NAMES[2]
        self.goal_writes: list[dict[str, int]] = []
        self.goal_at_enable: dict[str, int] = {}  # Goal_Position when Torque_Enable went to 1
        self.stats = {'fake': True}

    # -- fault scripting
    def _transfer(self) -> None:
        if not self.connected:
            from smolvla_ros.hardware.feetech.errors import BusNotConnectedError
            raise BusNotConnectedError('not connected')
        if not self.port_present:
            self.connected = False
            raise PortError('port vanished')
        if self.fail_calls:
            self.fail_calls -= 1
            raise CommunicationError(self.fail_motor, 'timeout', 'scripted')

    def present(self, name: str) -> int:
        return self.actual[name] - self.regs[name]['Homing_Offset']

    # -- ServoBus
    def connect(self) -> None:
        if not self.port_present:
            raise PortError('no such port')
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def ping(self, name: str) -> int | None:
        return 777

    def read(self, register: str, name: str) -> int:
        self._transfer()
        return self.present(name) if register == 'Present_Position' else self.regs[name][register]

    def write(self, register: str, name: str, value: int) -> None:
        self._transfer()
        if register == 'Torque_Enable' and value == 1:
            self.goal_at_enable[name] = self.regs[name]['Goal_Position']
        self.regs[name][register] = int(value)

    def sync_read(self, register: str, names: Iterable[str] | None = None) -> dict[str, int]:
        return {n: r[register] for n, r in self.sync_read_registers([register], names).items()}

    def sync_read_registers(self, registers: Sequence[str],
                            names: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        self._transfer()
        names = list(names) if names is not None else list(self.motors)
        return {n: {r: (self.present(n) if r == 'Present_Position' else self.regs[n][r])
                    for r in registers} for n in names}

    def sync_write(self, register: str, values: Mapping[str, int]) -> None:
        self._transfer()
        for n, v in values.items():
            self.regs[n][register] = int(v)
        if register == 'Goal_Position':
            self.goal_writes.append(dict(values))
            # Torque on: the servo reaches the goal within the cycle (ideal servo).
            for n, v in values.items():
                if self.regs[n]['Torque_Enable']:
                    self.actual[n] = int(v) + self.regs[n]['Homing_Offset']

    def enable_torque(self, names: Iterable[str] | None = None) -> None:
        for n in names or self.motors:
            self.write('Torque_Enable', n, 1)
            self.write('Lock', n, 1)

    def disable_torque(self, names: Iterable[str] | None = None) -> None:
        for n in names or self.motors:
            self.write('Torque_Enable', n, 0)
            self.write('Lock', n, 0)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_cal() -> dict[str, MotorCalibration]:
    cal = {}
    for i, n in enumerate(NAMES):
        lo, hi = (0, 4095) if n == 'wrist_roll' else (1000 + 10 * i, 3000 - 10 * i)
        cal[n] = MotorCalibration(id=i + 1, drive_mode=1 if n == 'elbow_flex' else 0,
                                  homing_offset=-50 + 20 * i, range_min=lo, range_max=hi)
    return cal


def make(config: ArmConfig | None = None, cal: dict | None = None):
    cal = cal or make_cal()
    bus = FakeBus(cal)
    clock = Clock()
    ctl = ArmController(bus, cal, config or ArmConfig(max_step_rad=0.05), clock=clock)
    return ctl, bus, clock


def test_joint_geometry_from_calibration() -> None:
    j = ArmJoints.from_calibration(make_cal())
    assert j.names == NAMES and j.ids == (1, 2, 3, 4, 5, 6)
    # wrist_roll 0..4095 spans a full turn centred on 0.
    assert j.lower[4] == pytest.approx(-math.pi) and j.upper[4] == pytest.approx(math.pi)
    raw = {n: c.range_max for n, c in make_cal().items()}
    rad = j.to_radians(raw)
    assert rad[2] < 0 < rad[0]  # elbow_flex has drive_mode 1: its max tick is its lower angle
    assert j.to_ticks(rad) == raw  # exact round trip on ticks


def test_connect_reads_positions_in_rad_and_idle_goal_tracks_present() -> None:
    ctl, bus, clock = make()
    assert ctl.connect()
    assert ctl.state is ArmState.IDLE
    bus.actual['shoulder_pan'] += 100
    assert ctl.cycle()
    cal = make_cal()['shoulder_pan']
    expected = (bus.present('shoulder_pan') - (cal.range_min + cal.range_max) / 2) * RAD_PER_TICK
    assert ctl.position[0] == pytest.approx(expected)
    np.testing.assert_allclose(ctl.goal, ctl.position)
    assert bus.goal_writes == []  # nothing is written while torque is off


def test_connect_applies_servo_setup_only_where_different() -> None:
    ctl, bus, _ = make()
    ctl.connect()
    assert bus.regs['gripper']['Max_Torque_Limit'] == 500
    assert bus.regs['elbow_flex']['Return_Delay_Time'] == 0
    assert bus.regs['elbow_flex']['P_Coefficient'] == 16


def test_enable_sets_goal_to_present_first_no_jump() -> None:
    ctl, bus, clock = make()
    ctl.connect()
    bus.regs['wrist_flex']['Goal_Position'] = 4000  # stale goal left in the servo
    before = {n: bus.present(n) for n in NAMES}
    ctl.enable_torque()
    assert bus.goal_at_enable == before  # goal := present was in the servo before torque on
    assert all(bus.regs[n]['Torque_Enable'] == 1 for n in NAMES)
    for _ in range(5):
        clock.t += 0.01
        ctl.cycle()
    assert {n: bus.present(n) for n in NAMES} == before  # no command: the arm holds


def test_commands_are_step_limited_and_clamped() -> None:
    ctl, bus, clock = make(ArmConfig(max_step_rad=0.05, command_timeout_s=10.0))
    ctl.connect()
    ctl.enable_torque()
    start = ctl.position.copy()
    ctl.command({'shoulder_pan': start[0] + 1.0, 'gripper': 100.0})  # partial command
    clock.t += 0.01
    ctl.cycle()
    assert ctl.goal[0] == pytest.approx(start[0] + 0.05)
    for _ in range(200):
        clock.t += 0.01
        ctl.cycle()
    assert ctl.goal[0] == pytest.approx(start[0] + 1.0, abs=RAD_PER_TICK)
    assert ctl.goal[5] == pytest.approx(ctl.joints.upper[5])  # clamped to the calibrated range
    assert bus.goal_writes[-1]['gripper'] == make_cal()['gripper'].range_max
    np.testing.assert_allclose(ctl.goal[1:5], start[1:5])  # joints not commanded hold
    status = ctl.status()
    assert status.clip_counts['gripper'] > 0 and status.clip_counts['shoulder_lift'] == 0


def test_stale_command_is_not_reapplied() -> None:
    ctl, bus, clock = make(ArmConfig(max_step_rad=0.01, command_timeout_s=0.1))
    ctl.connect()
    ctl.enable_torque()
    start = ctl.goal[0]
    ctl.command({'shoulder_pan': start + 1.0})
    for _ in range(30):  # 0.3 s: only the first 0.1 s of the ramp happens
        clock.t += 0.01
        ctl.cycle()
    moved = ctl.goal[0] - start
    assert 0.05 <= moved <= 0.11
    held = ctl.goal[0]
    for _ in range(10):
        clock.t += 0.01
        ctl.cycle()
    assert ctl.goal[0] == held


def test_commands_before_enable_are_discarded() -> None:
    ctl, bus, clock = make(ArmConfig(command_timeout_s=10.0))
    ctl.connect()
    ctl.command({'shoulder_pan': 1.0})
    ctl.enable_torque()
    start = ctl.goal.copy()
    clock.t += 0.01
    ctl.cycle()
    np.testing.assert_allclose(ctl.goal, start)


def test_bad_command_raises_and_changes_nothing() -> None:
    ctl, _, _ = make()
    ctl.connect()
    with pytest.raises(UnknownJointError):
        ctl.command({'elbow': 0.0})
    assert ctl.status().commands_rejected == 1


def test_enable_refused_when_reading_outside_range() -> None:
    ctl, bus, _ = make()
    ctl.connect()
    bus.actual['elbow_flex'] = bus.regs['elbow_flex']['Homing_Offset'] + 3900  # far past max
    with pytest.raises(TorqueRequestError, match='elbow_flex'):
        ctl.enable_torque()
    assert bus.regs['elbow_flex']['Torque_Enable'] == 0
    assert ctl.state is ArmState.IDLE


def test_leader_never_enables_torque() -> None:
    ctl, bus, _ = make(ArmConfig(role='leader'))
    ctl.connect()
    with pytest.raises(TorqueRequestError, match='leader'):
        ctl.enable_torque()
    with pytest.raises(TorqueRequestError):
        ctl.command({'gripper': 0.0})
    assert all(bus.regs[n]['Torque_Enable'] == 0 for n in NAMES)
    with pytest.raises(ArmConfigError):
        ArmConfig(role='leader', enable_torque_on_start=True)


def test_transient_error_is_counted_and_held() -> None:
    ctl, bus, clock = make(ArmConfig(max_consecutive_errors=3))
    ctl.connect()
    ctl.enable_torque()
    writes = len(bus.goal_writes)
    bus.fail_calls = 2
    assert not ctl.cycle() and not ctl.cycle()
    assert len(bus.goal_writes) == writes  # failed cycles write nothing: servos hold
    assert ctl.cycle()
    s = ctl.status()
    assert s.state == 'enabled' and s.failed_cycles == 2 and s.consecutive_errors == 0
    assert s.health['elbow_flex'].errors == {'timeout': 2}


def test_persistent_errors_turn_torque_off_and_fault() -> None:
    ctl, bus, clock = make(ArmConfig(max_consecutive_errors=3))
    ctl.connect()
    ctl.enable_torque()
    bus.fail_calls = 3
    for _ in range(3):
        ctl.cycle()
    assert ctl.state is ArmState.FAULT and 'consecutive' in ctl.fault_reason
    assert all(bus.regs[n]['Torque_Enable'] == 0 for n in NAMES)
    ctl.cycle()  # the bus works again, but a follower stays in FAULT until re-enabled
    assert ctl.state is ArmState.FAULT
    entries = ctl.status().entries('arm')
    assert entries[0].level == 2 and entries[0].message.startswith('fault')
    ctl.enable_torque()
    assert ctl.state is ArmState.ENABLED


def test_port_loss_and_reconnect() -> None:
    ctl, bus, clock = make(ArmConfig(reconnect_interval_s=1.0))
    ctl.connect()
    ctl.enable_torque()
    bus.port_present = False
    assert not ctl.cycle()
    assert ctl.state is ArmState.DISCONNECTED and 'port lost' in ctl.fault_reason
    clock.t += 2.0
    assert not ctl.cycle()  # still gone: one failed attempt, no exception
    bus.port_present = True
    clock.t += 0.5
    ctl.cycle()
    assert ctl.state is ArmState.DISCONNECTED  # next attempt only after reconnect_interval_s
    clock.t += 1.0
    ctl.cycle()
    assert ctl.state is ArmState.IDLE and ctl.reconnects == 1  # back, torque left off
    assert all(bus.regs[n]['Torque_Enable'] == 0 for n in NAMES)
    assert ctl.cycle()


def test_calibration_mismatch_fails_fast_or_is_written() -> None:
    ctl, bus, _ = make()
    bus.regs['wrist_flex']['Homing_Offset'] = 7
    with pytest.raises(CalibrationMismatchError, match='wrist_flex'):
        ctl.connect()
    ctl2, bus2, _ = make(ArmConfig(write_calibration=True))
    bus2.regs['wrist_flex']['Homing_Offset'] = 7
    assert ctl2.connect()
    assert bus2.regs['wrist_flex']['Homing_Offset'] == make_cal()['wrist_flex'].homing_offset


def test_health_and_velocity_effort() -> None:
    ctl, bus, clock = make(ArmConfig(effort_scale_nm=2.0))
    ctl.connect()
    bus.regs['gripper']['Present_Load'] = -250
    bus.regs['gripper']['Present_Velocity'] = 100
    bus.regs['elbow_flex']['Status'] = 0x04  # overheat
    ctl.cycle()
    assert ctl.effort[5] == pytest.approx(-0.5)
    assert ctl.velocity[5] == pytest.approx(100 * RAD_PER_TICK)
    s = ctl.status()
    assert s.health['gripper'].voltage_v == pytest.approx(12.0)
    entries = {e.name: e for e in s.entries('arm')}
    assert entries['arm: elbow_flex'].level == 2
    assert 'overheat' in entries['arm: elbow_flex'].message
    assert dict(entries['arm: gripper'].values)['temperature_c'] == '30.000'


def test_close_turns_torque_off() -> None:
    ctl, bus, _ = make()
    ctl.connect()
    ctl.enable_torque()
    ctl.close()
    assert all(bus.regs[n]['Torque_Enable'] == 0 for n in NAMES)
    assert not bus.connected


def test_limp_servo_is_torque_lost_until_disable_or_enable() -> None:
    ctl, bus, clock = make(ArmConfig(max_step_rad=0.05, health_period_s=1.0))
    ctl.connect()
    ctl.enable_torque()
    assert ctl.cycle() and ctl.state is ArmState.ENABLED
    bus.regs['wrist_flex']['Torque_Enable'] = 0  # unloaded by the servo, status already clear
    assert ctl.cycle() and ctl.state is ArmState.ENABLED  # noticed at the next health read only
    clock.t += 1.0
    assert ctl.cycle()
    assert ctl.state is ArmState.TORQUE_LOST
    writes = len(bus.goal_writes)
    assert 'wrist_flex' in ctl.fault_reason
    assert 'no error bits' in ctl.status().health['wrist_flex'].torque_lost
    ctl.command({'shoulder_pan': 0.1})
    assert ctl.cycle() and len(bus.goal_writes) == writes  # holding: nothing written
    ctl.disable_torque()  # releases the arm and acknowledges
    assert ctl.state is ArmState.IDLE
    assert all(bus.regs[n]['Torque_Enable'] == 0 for n in NAMES)
    assert ctl.status().health['wrist_flex'].torque_lost == ''
