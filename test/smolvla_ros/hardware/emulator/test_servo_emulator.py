"""The servo emulator: servo model (pure, fake clock), byte-exact replies on a real pty, faults, the
simulator hooks, unplug/replug and the CLI process."""
from __future__ import annotations

import os
from pathlib import Path
import select
import subprocess
import sys
import time
import tty

import pytest
from waiting import wait_until

from smolvla_ros.hardware.emulator import EmulatedServo, ServoConfig, ServoEmulator, parse_fault
from smolvla_ros.hardware.emulator.faults import Fault, FaultKind
from smolvla_ros.hardware.feetech import FeetechBus, Motor
from smolvla_ros.hardware.feetech.protocol import (
    PacketParser,
    instruction_packet,
    ping_packet,
    read_packet,
    status_packet,
    sync_read_packet,
    write_packet,
)
from smolvla_ros.hardware.feetech.tables import BROADCAST_ID, INST_ACTION, INST_REG_WRITE

# -- the servo model, with an explicit clock --------------------------------------------------


def _servo(**cfg) -> EmulatedServo:
    servo = EmulatedServo(1, ServoConfig(**cfg), now=0.0)
    servo.write(55, b'\x00')  # Lock = 0
    return servo


def _goal(servo: EmulatedServo, ticks: int, now: float) -> None:
    servo.advance(now)
    servo.write(42, ticks.to_bytes(2, 'little'))
    servo.write(40, b'\x01')  # torque on


def test_motion_is_speed_limited_then_first_order() -> None:
    servo = _servo(position=2047, max_speed=1000.0, time_constant_s=0.02)
    _goal(servo, 3047, 0.0)
    servo.advance(0.5)
    # Error 1000 > vmax * tau = 20: constant 1000 ticks/s until the error is 20 (t = 0.98 s).
    assert servo.actual == pytest.approx(2547.0)
    assert servo.velocity == pytest.approx(1000.0)
    servo.advance(0.98)
    assert servo.actual == pytest.approx(3027.0)
    servo.advance(0.98 + 0.02)  # one time constant: error 20 -> 20 / e
    assert 3047 - servo.actual == pytest.approx(20 / 2.718281828, rel=1e-6)
    servo.advance(2.0)
    assert servo.present_position() == 3047
    assert servo.read(66, 1) == b'\x00'  # Moving = 0


def test_goal_velocity_limits_and_position_limits_clamp() -> None:
    servo = _servo(position=2000, max_speed=3000.0)
    servo.write(46, (200).to_bytes(2, 'little'))  # Goal_Velocity 200 ticks/s
    servo.write(11, (2300).to_bytes(2, 'little'))  # Max_Position_Limit (EEPROM, unlocked)
    _goal(servo, 4000, 0.0)
    servo.advance(1.0)
    assert servo.actual == pytest.approx(2200.0)
    servo.advance(10.0)
    assert servo.present_position() == 2300
    servo.write(40, b'\x00')
    servo.advance(20.0)
    assert servo.present_position() == 2300  # torque off: stays


def test_homing_offset_and_feedback_registers() -> None:
    servo = _servo(position=100)
    servo.write(31, (0x800 | 50).to_bytes(2, 'little'))  # Homing_Offset = -50
    assert servo.get('Homing_Offset') == -50
    assert servo.present_position() == 150  # Present = Actual - Homing_Offset
    servo.write(31, (200).to_bytes(2, 'little'))
    assert servo.present_position() == (100 - 200) % 4096  # wraps like the encoder
    data = servo.read(56, 8)  # Present_Position .. Present_Temperature
    assert int.from_bytes(data[0:2], 'little') == 3996
    assert data[6] == 120 and data[7] == 30  # 12.0 V, 30 deg C


def test_eeprom_lock_read_only_and_power_cycle() -> None:
    servo = EmulatedServo(1, now=0.0)  # power-on Lock = 1
    servo.write(9, (500).to_bytes(2, 'little'))
    assert servo.get('Min_Position_Limit') == 0 and servo.eeprom_writes_rejected == 1
    servo.write(55, b'\x00')
    servo.write(9, (500).to_bytes(2, 'little'))
    assert servo.get('Min_Position_Limit') == 500
    servo.write(56, b'\x00\x00')  # Present_Position is read-only
    servo.write(3, b'\x00\x00')  # Model_Number too
    assert servo.present_position() == 2047 and servo.get('Model_Number') == 777
    _goal(servo, 3000, 0.0)
    servo.power_cycle(0.5)
    assert servo.get('Torque_Enable') == 0 and servo.get('Lock') == 1
    assert servo.get('Goal_Position') == servo.present_position()
    assert servo.get('Min_Position_Limit') == 500  # EEPROM kept


# -- on the wire ---------------------------------------------------------------------------------


@pytest.fixture
def wire():
    """An emulator with ids 1..3 and a raw host end (no SDK): send bytes, get reply bytes."""
    with ServoEmulator(range(1, 4)) as emu:
        fd = os.open(emu.port_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)

        def transact(packet: bytes, expect: int, wait: float = 1.0) -> bytes:
            os.write(fd, packet)
            out = b''
            deadline = time.monotonic() + wait
            while len(out) < expect and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
                if ready:
                    out += os.read(fd, 256)
            return out

        try:
            yield emu, transact
        finally:
            os.close(fd)


def test_byte_exact_replies(wire) -> None:
    emu, transact = wire
    assert transact(ping_packet(1), 6).hex(' ') == 'ff ff 01 02 00 fc'
    assert transact(read_packet(1, 56, 2), 8) == status_packet(1, 0, b'\xff\x07')
    replies = transact(sync_read_packet(56, 2, [3, 1]), 16)
    assert replies == status_packet(3, 0, b'\xff\x07') + status_packet(1, 0, b'\xff\x07')
    assert transact(write_packet(2, 42, b'\x00\x08'), 6) == status_packet(2)
    assert emu.read_register(2, 'Goal_Position') == 2048
    # Broadcast writes apply to all and are never answered.
    assert transact(write_packet(BROADCAST_ID, 42, b'\x10\x08'), 6, wait=0.05) == b''
    # Packets without a reply are applied whenever the emulator thread runs: wait, don't sleep.
    goals = {1: 2064.0, 2: 2064.0, 3: 2064.0}
    assert wait_until(lambda: emu.get_goal_positions() == goals, 10.0, poll_s=0.005), (
        emu.get_goal_positions())
    stats = emu.stats()
    assert stats.instructions['sync_read'] == 1 and stats.instructions['write'] == 2
    assert stats.rx_bytes == 6 + 8 + 10 + 9 + 9
    assert stats.tx_bytes == 6 + 8 + 16 + 6


def test_reg_write_action_status_level_and_bad_packets(wire) -> None:
    emu, transact = wire
    assert transact(instruction_packet(1, INST_REG_WRITE, b'\x2a\x00\x09'), 6) == status_packet(1)
    assert emu.read_register(1, 'Goal_Position') == 2047  # not yet
    assert transact(instruction_packet(BROADCAST_ID, INST_ACTION), 6, wait=0.05) == b''
    assert wait_until(lambda: emu.read_register(1, 'Goal_Position') == 0x900, 10.0,
                      poll_s=0.005)
    assert transact(write_packet(1, 8, b'\x00'), 6) == status_packet(1)  # EEPROM: locked
    assert emu.servo(1).eeprom_writes_rejected == 1
    assert transact(write_packet(1, 55, b'\x00'), 6) == status_packet(1)  # unlock
    assert transact(write_packet(1, 8, b'\x00'), 6, wait=0.05) == b''  # status level 0
    assert transact(write_packet(1, 42, b'\x00\x08'), 6, wait=0.05) == b''  # now silent
    assert transact(read_packet(1, 42, 2), 8) == status_packet(1, 0, b'\x00\x08')  # reads answer
    bad = bytearray(ping_packet(2))
    bad[-1] ^= 0xFF
    assert transact(bytes(bad), 6, wait=0.05) == b''
    assert wait_until(lambda: emu.stats().bad_packets == 1, 10.0, poll_s=0.005), emu.stats()


def test_reply_faults_on_the_wire(wire) -> None:
    emu, transact = wire
    emu.inject('missing', 2)
    # Two replies' worth of bytes: the answers of 1 and 3 (a reply from 2 would show as [1, 2]).
    replies = transact(sync_read_packet(56, 2, [1, 2, 3]), 16, wait=10.0)
    assert [p.motor_id for p in PacketParser().feed(replies)] == [1, 3]
    emu.inject('corrupt_checksum', 1, count=1)
    parser = PacketParser()
    assert parser.feed(transact(ping_packet(1), 6)) == [] and parser.bad_checksums == 1
    assert transact(ping_packet(1), 6) == status_packet(1)  # count exhausted
    # A delayed reply that a new request overtakes is cancelled (it would collide on the bus).
    # The delay leaves a stalled test thread a full second to send the overtaking request.
    emu.inject('delay_reply', 3, count=1, delay_s=1.0)
    assert transact(ping_packet(3), 6, wait=0.05) == b''
    assert transact(ping_packet(1), 6) == status_packet(1)
    time.sleep(1.05)  # past the cancelled reply's due time: nothing may arrive
    assert transact(ping_packet(1), 6) == status_packet(1)  # nothing stale arrived
    assert emu.stats().cancelled_replies == 1
    emu.inject('overload', 3)
    assert transact(ping_packet(3), 6) == status_packet(3, 0x20)
    emu.clear_faults()
    assert transact(ping_packet(2), 6) == status_packet(2)
    assert transact(ping_packet(3), 6) == status_packet(3)


def test_external_motion_hooks_for_a_simulator() -> None:
    with ServoEmulator({1: ServoConfig(position=1000)}, motion='external') as emu:
        bus = FeetechBus(emu.port_path, {'j': Motor(1)}, timeout_ms=100)
        with bus:
            bus.disable_torque()
            bus.write('Homing_Offset', 'j', 100)
            bus.write('Goal_Position', 'j', 1500)
            bus.enable_torque()
            time.sleep(0.05)
            assert emu.get_actual_positions() == {1: 1000.0}  # the simulator moves it, not us
            assert emu.get_goal_positions() == {1: 1600.0}  # goal in the encoder frame
            assert emu.get_torque_enabled() == {1: True}
            emu.set_actual_positions({1: 1600.0})
            assert bus.read('Present_Position', 'j') == 1500


def test_unplug_and_replug_keep_state(tmp_path) -> None:
    link = tmp_path / 'arm'
    with ServoEmulator([1], link_path=link) as emu:
        first = emu.pty_path
        assert Path(os.readlink(link)) == Path(first)
        emu.set_register(1, 'Homing_Offset', -7)
        emu.unplug()
        assert not link.exists()
        emu.replug()
        assert link.exists()
        with FeetechBus(str(link), {'j': Motor(1)}, timeout_ms=100) as bus:
            assert bus.read('Homing_Offset', 'j') == -7
    assert not link.exists()


def test_fault_specs() -> None:
    assert parse_fault('drop_reply:3:5') == Fault(FaultKind.DROP_REPLY, 3, 5)
    assert parse_fault('delay_reply:1:2:0.01').delay_s == 0.01
    assert parse_fault('missing:4') == Fault(FaultKind.MISSING, 4)
    for bad in ('nope:1', 'missing', 'missing:x', 'delay_reply:1:1', 'missing:1:3'):
        with pytest.raises(ValueError):
            parse_fault(bad)
    with pytest.raises(KeyError, match='no servo'):
        ServoEmulator([1]).inject('missing', 9)


def test_cli_process_serves_a_calibrated_bus(tmp_path) -> None:
    link = tmp_path / 'so101'
    cal = tmp_path / 'cal.json'
    cal.write_text('{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": -20, '
                   '"range_min": 1000, "range_max": 3000}}')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'smolvla_ros.cli', 'servo-emulator', '--link', str(link),
         '--calibration', str(cal), '--fault', 'missing:3'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # a process start on a loaded machine; failure bound
        while not link.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert link.exists(), proc.stderr.read() if proc.poll() is not None else 'no link'
        motors = {'elbow_flex': Motor(3), 'gripper': Motor(6)}
        # Another process answers: a loaded machine delays replies by tens of ms, so a generous
        # margin and retries (the missing elbow_flex costs 3 x 100 ms once).
        bus = FeetechBus(str(link), motors, timeout_ms=100, retries=2)
        bus.connect(handshake=False)  # elbow_flex is missing on purpose
        assert bus.read('Homing_Offset', 'gripper') == -20
        assert bus.read('Present_Position', 'gripper') == 2000  # starts mid-range
        assert bus.read('Max_Position_Limit', 'gripper') == 3000
        assert bus.ping('elbow_flex') is None
        bus.close()
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave an emulator behind; the failure is reported below
            out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().startswith('/dev/pts/')
    assert not link.exists()


def test_cli_rejects_bad_arguments(tmp_path) -> None:
    from smolvla_ros.cli.main import main
    cal = tmp_path / 'cal.json'
    cal.write_text('{"x": {"id": 9, "drive_mode": 0, "homing_offset": 0, "range_min": 0, '
                   '"range_max": 10}}')
    assert main(['servo-emulator', '--ids', '1-2', '--calibration', str(cal)]) == 2
    assert main(['servo-emulator', '--ids', '1-2', '--positions', '1,2,3']) == 2


def test_line_noise_never_stops_the_bus(wire) -> None:
    emu, transact = wire
    rng = __import__('random').Random(7)
    for _ in range(50):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        transact(noise, 1, wait=0.0)
    # Odd but well-formed instructions: short params, unknown codes, reads past the table end.
    for packet in (instruction_packet(1, 0x02, b'\x7e'), instruction_packet(1, 0x42, b'\x00'),
                   instruction_packet(BROADCAST_ID, 0x82, b''),
                   instruction_packet(BROADCAST_ID, 0x83, b'\x2a\x00\x01')):
        transact(packet, 1, wait=0.01)
    assert transact(read_packet(1, 120, 20), 26)[:5] == b'\xff\xff\x01\x16\x00'
    time.sleep(0.05)
    assert transact(ping_packet(2), 6, wait=1.0)[-6:] == status_packet(2)
    assert emu.stats().handler_errors == 0


def test_wire_timing_schedules_replies_at_line_rate() -> None:
    """At 10 kbaud a byte takes 1 ms: replies are due after the request and their own bytes."""
    now = [100.0]
    emu = ServoEmulator(range(1, 4), wire_timing=True, baudrate=10_000, clock=lambda: now[0])
    emu.set_register(2, 'Return_Delay_Time', 250)  # 500 us
    queue: list[tuple[float, bytes]] = []
    packet = PacketParser().feed(sync_read_packet(56, 2, [1, 2, 3]))[0]  # 11 bytes
    emu._handle(packet, queue)
    due = [round((t - 100.0) * 1e3, 6) for t, _ in queue]
    # request ends at 11 ms; id1: +8 ms; id2: +0.5 ms delay +8 ms; id3 right after: +8 ms
    assert due == [19.0, 27.5, 35.5]
    assert [b for _, b in queue] == [status_packet(i, 0, b'\xff\x07') for i in (1, 2, 3)]


def test_cli_sweep_moves_a_leader_arm_by_hand() -> None:
    import argparse
    import threading

    from smolvla_ros.hardware.emulator import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert parser.parse_args(['--sweep', '300:2']).sweep == (300.0, 2.0)
    assert parser.parse_args(['--sweep', '300']).sweep == (300.0, 4.0)
    with pytest.raises(SystemExit):
        parser.parse_args(['--sweep', '-1'])
    start = {1: 2000.0, 2: 4000.0}
    # t = period/4: joint 1 at +amplitude, joint 2 (phase 60 deg) at +amplitude*cos(60) = +150,
    # clipped to the encoder range.
    pos = cli.sweep_positions(start, 300.0, 4.0, 1.0)
    assert pos[1] == pytest.approx(2300.0) and pos[2] == 4095.0
    with ServoEmulator({1: ServoConfig(position=2000)}) as emu:
        stop = threading.Event()
        thread = threading.Thread(target=cli.sweep_until, args=(emu, stop, 300.0, 0.5))
        thread.start()
        try:
            seen = set()
            deadline = time.monotonic() + 5
            while len(seen) < 3 and time.monotonic() < deadline:
                seen.add(round(emu.read_register(1, 'Present_Position'), -1))
                time.sleep(0.03)
        finally:
            stop.set()
            thread.join()
        assert len(seen) >= 3
        assert all(1700 <= p <= 2300 for p in seen)
