"""teleop in-process: a leader driver and a follower driver on two emulated buses; moving the
leader's (limp) servos by hand must make the follower's servos follow, with the mapping applied."""
from __future__ import annotations

import math
from pathlib import Path
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from smolvla_ros.core.robot.calibration import (  # noqa: E402
    MotorCalibration,
    save_calibration,
)
from smolvla_ros.hardware.emulator import ServoConfig, ServoEmulator  # noqa: E402
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS  # noqa: E402
from smolvla_ros.nodes.feetech_driver import FeetechDriver  # noqa: E402
from smolvla_ros.nodes.teleop import Teleop  # noqa: E402

pytestmark = pytest.mark.ros
IDS = SO101_MOTOR_IDS
RAD_PER_TICK = 2 * math.pi / 4095


def _cal(lo: int, hi: int) -> dict[str, MotorCalibration]:
    return {n: MotorCalibration(id=i, drive_mode=0, homing_offset=0,
                                range_min=0 if n == 'wrist_roll' else lo,
                                range_max=4095 if n == 'wrist_roll' else hi)
            for n, i in IDS.items()}


def _params(**values) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def test_follower_tracks_leader(rclpy_context, tmp_path: Path) -> None:
    leader_cal, follower_cal = tmp_path / 'leader.json', tmp_path / 'follower.json'
    save_calibration(leader_cal, _cal(1500, 2500))  # the leader's gripper spans less
    save_calibration(follower_cal, _cal(1000, 3000))
    # A generous reply margin: the emulator threads answer 30-70 ms late on a loaded machine.
    common = dict(write_calibration=True, bus_timeout_ms=100.0, rate_hz=100.0)
    start = {i: 2000.0 for i in IDS.values()}
    with ServoEmulator({i: ServoConfig(position=start[i]) for i in IDS.values()}) as lead_emu, \
            ServoEmulator({i: ServoConfig(position=start[i]) for i in IDS.values()}) as fol_emu:
        leader = FeetechDriver(
            context=rclpy_context, namespace='leader', parameter_overrides=_params(
                port=lead_emu.port_path, calibration_file=str(leader_cal), role='leader',
                **common))
        follower = FeetechDriver(context=rclpy_context, parameter_overrides=_params(
            port=fol_emu.port_path, calibration_file=str(follower_cal),
            enable_torque_on_start=True, max_step_rad=0.1, **common))
        teleop = Teleop(context=rclpy_context, parameter_overrides=_params(
            offsets_rad=[0.0, 0.0, 0.1, 0.0, 0.0, 0.0],
            inverted=[False, True, False, False, False, False],
            range_mapped=['gripper'], leader_calibration_file=str(leader_cal),
            follower_calibration_file=str(follower_cal)))
        probe = rclpy.create_node('probe', context=rclpy_context)
        follower_states: list[JointState] = []
        probe.create_subscription(JointState, 'joint_states', follower_states.append, 10)
        executor = SingleThreadedExecutor(context=rclpy_context)
        for node in (leader, follower, teleop, probe):
            executor.add_node(node)

        def spin_until(condition, timeout_s: float = 30.0) -> bool:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not condition():
                executor.spin_once(timeout_sec=0.01)
            return condition()

        try:
            assert spin_until(lambda: follower.arm.state.value == 'enabled')
            assert not any(lead_emu.get_torque_enabled().values())  # the leader stays limp
            # A hand moves the leader: pan +300 ticks, lift +200, elbow -100, gripper to its max.
            moved = {1: 2300.0, 2: 2200.0, 3: 1900.0, 4: 2000.0, 5: 2000.0, 6: 2500.0}
            lead_emu.set_actual_positions(moved)
            leader_rad = {n: (moved[i] - 2000.0) * RAD_PER_TICK for n, i in IDS.items()}
            leader_rad['wrist_roll'] = (2000.0 - 2047.5) * RAD_PER_TICK
            expected = dict(leader_rad)
            expected['shoulder_lift'] = -leader_rad['shoulder_lift']  # inverted
            expected['elbow_flex'] = leader_rad['elbow_flex'] + 0.1  # offset
            expected['gripper'] = 1000 * RAD_PER_TICK  # leader max -> follower max (3000 ticks)

            def tracking() -> bool:
                if not follower_states:
                    return False
                got = dict(zip(follower_states[-1].name, follower_states[-1].position,
                               strict=True))
                return all(abs(got[n] - expected[n]) < 3e-3 for n in IDS)
            assert spin_until(tracking), (follower_states[-1] if follower_states else None)
            assert teleop.forwarded > 0
        finally:
            follower.shutdown()
            leader.shutdown()
            executor.shutdown()
            for node in (leader, follower, teleop, probe):
                node.destroy_node()


# --- the bringup profile -----------------------------------------------------------------------

def _wait(condition, timeout_s: float, proc) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.05)
    return condition()


@pytest.mark.integration
@pytest.mark.slow
def test_profile_so101_teleop_emulated(ros_env: dict[str, str], tmp_path: Path) -> None:
    """`smolvla-ros up so101_teleop_emulated` against two emulators served by this test (so the
    test can move the leader by hand): the follower enables torque and tracks the leader; Ctrl-C
    turns its torque off."""
    import subprocess

    from smolvla_ros.bringup.processes import stop, up_command
    from smolvla_ros.core.robot.calibration import load_calibration
    from smolvla_ros.paths import config_path

    cals = {role: load_calibration(config_path('calibration') / f'so101_{role}_example.json')
            for role in ('follower', 'leader')}
    emus = {}
    for role, cal in cals.items():
        mid_actual = {c.id: (c.range_min + c.range_max) // 2 + c.homing_offset
                      for c in cal.values()}
        emu = ServoEmulator({i: ServoConfig(position=float(p)) for i, p in mid_actual.items()},
                            link_path=tmp_path / role)
        for c in cal.values():
            emu.set_register(c.id, 'Homing_Offset', c.homing_offset)
            emu.set_register(c.id, 'Min_Position_Limit', c.range_min)
            emu.set_register(c.id, 'Max_Position_Limit', c.range_max)
        emus[role] = emu.start()
    log = (tmp_path / 'up.log').open('w')
    # A generous SIGINT window: the follower must release torque on its own way out, which a
    # loaded machine may make slower than the default 5 s before up escalates.
    proc = subprocess.Popen(
        up_command('--sigint-timeout', '30', 'so101_teleop_emulated', 'emulators:=false',
                   f'follower_port:={tmp_path / "follower"}',
                   f'leader_port:={tmp_path / "leader"}'),
        env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    follower, leader = emus['follower'], emus['leader']
    try:
        assert _wait(lambda: all(follower.get_torque_enabled().values()), 90.0, proc), \
            (tmp_path / 'up.log').read_text()
        assert not any(leader.get_torque_enabled().values())

        # Move the leader: +300 ticks on the pan, -200 on the elbow, gripper to its max.
        lc, fc = cals['leader'], cals['follower']
        present = {n: (c.range_min + c.range_max) // 2 for n, c in lc.items()}
        present.update(shoulder_pan=present['shoulder_pan'] + 300,
                       elbow_flex=present['elbow_flex'] - 200, gripper=lc['gripper'].range_max)
        leader.set_actual_positions({c.id: present[n] + c.homing_offset for n, c in lc.items()})
        # Body joints keep their angle: the follower moves by the same ticks from its own mid.
        expected = {n: (c.range_min + c.range_max) / 2 + (present[n] - (lc[n].range_min
                                                                       + lc[n].range_max) / 2)
                    for n, c in fc.items()}
        expected['gripper'] = fc['gripper'].range_max  # range-mapped: max onto max

        def tracking() -> bool:
            actual = follower.get_actual_positions()
            return all(abs(actual[c.id] - c.homing_offset - expected[n]) <= 3
                       for n, c in fc.items())
        assert _wait(tracking, 30.0, proc), (follower.get_actual_positions(),
                                             (tmp_path / 'up.log').read_text()[-3000:])
    finally:
        stopped = stop(proc, 90.0)
        log.close()
        torque_after = follower.get_torque_enabled()
        for emu in emus.values():
            emu.stop()
    assert stopped, f'up did not stop on SIGINT:\n{(tmp_path / "up.log").read_text()[-3000:]}'
    assert not any(torque_after.values())  # torque_off_on_shutdown
