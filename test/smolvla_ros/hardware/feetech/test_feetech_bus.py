"""FeetechBus (real scservo_sdk) against the servo emulator over a real pty: transfers, encodings,
torque/lock, and every injected fault with its counters."""
from __future__ import annotations

import time

import pytest

from smolvla_ros.hardware.emulator import ServoEmulator
from smolvla_ros.hardware.feetech import (
    BusNotConnectedError,
    CommunicationError,
    FeetechBus,
    Motor,
    PortError,
    so101_motors,
)
from smolvla_ros.hardware.feetech.errors import MotorStatusError, UnknownMotorError
from smolvla_ros.hardware.feetech.protocol import status_packet, sync_read_bytes, sync_write_bytes

NAMES = list(so101_motors())


def test_handshake_ping_and_model(bus: FeetechBus) -> None:
    assert bus.is_connected
    assert bus.ping('gripper') == 777
    assert bus.read('Model_Number', 'shoulder_pan') == 777


def test_sync_read_reports_emulated_positions_with_homing_offset(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    emulator.set_actual_positions({i: 1000 + 100 * i for i in range(1, 7)})
    assert bus.sync_read('Present_Position') == {
        n: 1000 + 100 * i for i, n in enumerate(NAMES, start=1)}
    bus.disable_torque(['elbow_flex'])  # unlocks EEPROM
    bus.write('Homing_Offset', 'elbow_flex', -10)
    # Negative offset travels as sign-magnitude (bit 11): 0x080A on the servo.
    servo = emulator.servo(3)
    assert bytes(servo.mem[31:33]) == b'\x0a\x08'
    assert bus.read('Homing_Offset', 'elbow_flex') == -10
    # Present = Actual - Homing_Offset.
    assert bus.sync_read('Present_Position', ['elbow_flex']) == {'elbow_flex': 1310}


def test_sync_write_moves_goals_and_torque_moves_servos(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    goals = {n: 1500 + 50 * i for i, n in enumerate(NAMES)}
    bus.sync_write('Goal_Position', goals)
    # A sync write has no reply; a read after it is answered only once the write was applied.
    assert bus.sync_read('Goal_Position') == goals
    assert emulator.get_goal_positions() == {i: float(g) for i, g in
                                             zip(range(1, 7), goals.values(), strict=True)}
    assert not any(emulator.get_torque_enabled().values())
    assert bus.sync_read('Present_Position')['gripper'] == 2047  # torque off: no motion
    bus.enable_torque()
    assert all(emulator.get_torque_enabled().values())
    assert bus.sync_read('Lock') == dict.fromkeys(NAMES, 1)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        present = bus.sync_read('Present_Position')
        if all(abs(present[n] - goals[n]) <= 1 for n in NAMES):
            break
        time.sleep(0.05)
    assert all(abs(present[n] - goals[n]) <= 1 for n in NAMES), present
    bus.disable_torque()
    assert bus.sync_read('Lock') == dict.fromkeys(NAMES, 0)
    assert not any(emulator.get_torque_enabled().values())


def test_sync_read_registers_decodes_a_block(bus: FeetechBus, emulator: ServoEmulator) -> None:
    block = bus.sync_read_registers(
        ['Present_Position', 'Present_Load', 'Present_Voltage', 'Present_Temperature'])
    assert set(block) == set(NAMES)
    assert block['wrist_flex'] == {'Present_Position': 2047, 'Present_Load': 0,
                                   'Present_Voltage': 120, 'Present_Temperature': 30}


def test_cycle_bytes_equal_protocol_minimum(bus: FeetechBus, emulator: ServoEmulator) -> None:
    bus.reset_stats()
    emulator.reset_stats()
    for _ in range(20):
        with bus.cycle():
            present = bus.sync_read('Present_Position')
            bus.sync_write('Goal_Position', present)
    req, replies = sync_read_bytes(6, 2)
    stats = bus.stats
    assert stats.tx_bytes == 20 * (req + sync_write_bytes(6, 2))
    assert stats.rx_bytes == 20 * replies
    assert stats.cycles == 20 and stats.mean_cycle_s > 0
    assert stats.retries == 0 and all(m.error_total == 0 for m in stats.motors.values())
    # The emulator's end of the wire saw the same bytes (the last write may still be in flight).
    deadline = time.monotonic() + 2.0
    while emulator.stats().rx_bytes < stats.tx_bytes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emulator.stats().rx_bytes == stats.tx_bytes
    assert emulator.stats().tx_bytes == stats.rx_bytes


@pytest.mark.parametrize(('fault', 'kind'), [('drop_reply', 'timeout'),
                                             ('corrupt_checksum', 'corrupt')])
def test_transient_reply_fault_is_retried_and_counted(
        bus: FeetechBus, emulator: ServoEmulator, fault: str, kind: str) -> None:
    emulator.set_actual_positions({3: 1234})
    bus.reset_stats()
    emulator.inject(fault, 3, count=1)
    assert bus.sync_read('Present_Position')['elbow_flex'] == 1234
    stats = bus.stats
    assert stats.motors['elbow_flex'].errors == {kind: 1}
    assert stats.motors['elbow_flex'].failures == 0
    assert stats.retries == 1 and stats.failures == 0
    assert all(stats.motors[n].error_total == 0 for n in NAMES if n != 'elbow_flex')
    emu = emulator.stats()
    assert (emu.dropped_replies, emu.corrupted_replies) == (
        (1, 0) if fault == 'drop_reply' else (0, 1))
    # Single reads and writes retry the same way.
    emulator.inject(fault, 6, count=1)
    bus.write('Goal_Position', 'gripper', 2000)
    assert bus.stats.motors['gripper'].errors == {kind: 1}
    assert emulator.read_register(6, 'Goal_Position') == 2000


def test_delayed_reply_within_timeout_succeeds_beyond_it_is_retried(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    bus.reset_stats()
    emulator.inject('delay_reply', 2, count=1, delay_s=0.005)
    assert bus.read('Present_Position', 'shoulder_lift') == 2047
    assert bus.stats.motors['shoulder_lift'].error_total == 0
    # Far beyond the margin, so that a bus thread stalled past the margin still times out; free,
    # since the retry overtakes (and so cancels) the late reply.
    emulator.inject('delay_reply', 2, count=1, delay_s=3.0)
    assert bus.sync_read('Present_Position')['shoulder_lift'] == 2047
    stats = bus.stats
    assert stats.motors['shoulder_lift'].errors == {'timeout': 1}
    assert stats.retries == 1
    assert emulator.stats().delayed_replies == 2


def test_a_late_reply_already_received_is_not_taken_for_the_next_answer(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    # A reply that arrives after its request timed out, and after the drain that followed, waits
    # in the input; the protocol has no sequence numbers, so the next read of the same servo would
    # take it (an old position) for its answer.
    emulator.set_actual_positions({2: 2047})
    bus.reset_stats()
    late = status_packet(2, 0, (1000).to_bytes(2, 'little'))
    emulator.send_unrequested(late)
    time.sleep(0.05)  # in the host's input buffer before the request goes out
    assert bus.read('Present_Position', 'shoulder_lift') == 2047
    emulator.send_unrequested(late)
    time.sleep(0.05)
    assert bus.sync_read('Present_Position')['shoulder_lift'] == 2047
    stats = bus.stats
    assert stats.stale_bytes == 2 * len(late)
    assert stats.motors['shoulder_lift'].error_total == 0 and stats.retries == 0


def test_missing_servo_raises_after_bounded_retries(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    bus.reset_stats()
    emulator.inject('missing', 2)  # disappears mid-run
    with pytest.raises(CommunicationError) as info:
        bus.sync_read('Present_Position')
    assert (info.value.motor, info.value.reason) == ('shoulder_lift', 'timeout')
    stats = bus.stats
    assert stats.motors['shoulder_lift'].errors == {'timeout': 3}  # 1 + retries=2
    assert stats.motors['shoulder_lift'].failures == 1 and stats.failures == 1
    assert stats.motors['shoulder_pan'].error_total == 0
    assert bus.ping('shoulder_lift') is None
    assert bus.ping('shoulder_pan') == 777
    emulator.clear_faults('missing', 2)  # it comes back
    assert bus.sync_read('Present_Position')['shoulder_lift'] == 2047


def test_handshake_names_missing_servo(emulator: ServoEmulator, timeout_ms: float) -> None:
    emulator.inject('missing', 4)
    bus = FeetechBus(emulator.port_path, so101_motors(), retries=0, timeout_ms=timeout_ms)
    with pytest.raises(CommunicationError, match='wrist_flex') as info:
        bus.connect()
    assert info.value.reason == 'no_answer'
    assert not bus.is_connected
    bus.connect(handshake=False)  # a partial bus can still be opened on purpose
    assert bus.read('Present_Position', 'gripper') == 2047
    bus.close()


def test_handshake_says_corrupt_replies_not_no_answer(emulator: ServoEmulator,
                                                     timeout_ms: float) -> None:
    """A servo that answers with bad checksums is present: 'no_answer' would send the user
    looking for power or ids instead of noise, a loose cable or an id clash."""
    emulator.inject('corrupt_checksum', 3)  # every reply of elbow_flex, until cleared
    emulator.inject('missing', 5)
    bus = FeetechBus(emulator.port_path, so101_motors(), retries=1, timeout_ms=timeout_ms)
    with pytest.raises(CommunicationError) as info:
        bus.connect()
    assert info.value.reason == 'corrupt_replies'  # the first failing motor's reason
    assert info.value.motor == 'elbow_flex, wrist_roll'
    text = str(info.value)
    assert 'elbow_flex: corrupt replies (bad checksums' in text
    assert 'wrist_roll: no answer' in text
    assert not bus.is_connected


def test_overheat_and_overload_status_bits(bus: FeetechBus, emulator: ServoEmulator,
                                          timeout_ms: float) -> None:
    bus.enable_torque()
    emulator.inject('overheat', 5)
    emulator.inject('overload', 1)
    emulator.inject('voltage', 2)
    block = bus.sync_read_registers(
        ['Present_Voltage', 'Present_Temperature', 'Status', 'Present_Load'])
    assert block['shoulder_lift']['Status'] == 0x01
    assert block['shoulder_lift']['Present_Voltage'] == 35  # below Min_Voltage_Limit 4.0 V
    assert emulator.get_torque_enabled()[2] is True  # voltage is not an unloading condition
    assert block['wrist_roll']['Present_Temperature'] == 75
    assert block['wrist_roll']['Status'] == 0x04
    assert block['shoulder_pan']['Status'] == 0x20
    assert block['shoulder_pan']['Present_Load'] == 1000
    stats = bus.stats
    assert stats.motors['wrist_roll'].last_status == 0x04
    assert stats.motors['wrist_roll'].status_counts == {'overheat': 1}
    assert stats.motors['shoulder_pan'].status_counts == {'overload': 1}
    # The servo protects itself (Unloading_Condition): torque released.
    assert emulator.get_torque_enabled()[5] is False
    strict = FeetechBus(bus.port, so101_motors(), timeout_ms=timeout_ms, raise_on_status=True)
    bus.close()
    strict.connect(handshake=False)
    with pytest.raises(MotorStatusError, match='overheat'):
        strict.read('Present_Position', 'wrist_roll')
    emulator.clear_faults()
    assert strict.read('Status', 'wrist_roll') == 0
    strict.close()


def test_port_unplug_raises_port_error_and_reconnects(tmp_path, timeout_ms: float) -> None:
    link = tmp_path / 'ttyARM'
    with ServoEmulator(range(1, 7), link_path=link) as emu:
        bus = FeetechBus(str(link), so101_motors(), timeout_ms=timeout_ms)
        bus.connect()
        emu.unplug()
        assert not link.exists()
        with pytest.raises(PortError):
            bus.sync_read('Present_Position')
        assert not bus.is_connected
        with pytest.raises(BusNotConnectedError):
            bus.sync_read('Present_Position')
        with pytest.raises(PortError):
            bus.connect()
        emu.replug()
        bus.connect()
        assert bus.sync_read('Present_Position')['gripper'] == 2047
        bus.close()


def test_bad_arguments_are_typed_errors(bus: FeetechBus) -> None:
    with pytest.raises(UnknownMotorError, match='wrist'):
        bus.read('Present_Position', 'wrist')
    with pytest.raises(ValueError, match='motor id'):
        Motor(300)
    with pytest.raises(ValueError, match='unique'):
        FeetechBus('/dev/null', {'a': Motor(1), 'b': Motor(1)})
    with pytest.raises(ValueError, match='baudrate'):
        FeetechBus('/dev/null', {'a': Motor(1)}, baudrate=12345)
    with pytest.raises(PortError):
        FeetechBus('/nonexistent/tty', {'a': Motor(1)}).connect()
    bus.close()
    with pytest.raises(BusNotConnectedError):
        bus.read('Present_Position', 'gripper')


def test_concurrent_callers_are_serialized(bus: FeetechBus, emulator: ServoEmulator) -> None:
    """A service thread toggling torque while the control loop reads: no transfer interleaves."""
    import threading

    errors: list[BaseException] = []

    def toggle() -> None:
        try:
            for _ in range(20):
                bus.enable_torque(['gripper'])
                bus.disable_torque(['gripper'])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=toggle)
    thread.start()
    reads = 0
    while thread.is_alive() or reads < 50:
        assert bus.sync_read('Present_Position') == dict.fromkeys(NAMES, 2047)
        reads += 1
    thread.join()
    assert errors == []
    stats = bus.stats
    assert stats.retries == 0 and all(m.error_total == 0 for m in stats.motors.values())
    assert emulator.get_torque_enabled()[6] is False


def test_ping_counts_an_sdk_index_error_as_a_short_reply_and_retries(
        bus: FeetechBus, monkeypatch: pytest.MonkeyPatch) -> None:
    # scservo_sdk's ping() reads the model number and indexes a short reply (e.g. a late reply of
    # an earlier attempt taken as this one's) without a length check, so a short reply raises
    # IndexError inside the SDK; the bus must count it and retry, not let it escape.
    real_ping = bus._ph.ping
    calls = []

    def flaky_ping(port, motor_id):
        calls.append(motor_id)
        if len(calls) == 1:
            raise IndexError('list index out of range')
        return real_ping(port, motor_id)

    monkeypatch.setattr(bus._ph, 'ping', flaky_ping)
    assert bus.ping('gripper') == 777
    assert len(calls) == 2
    assert bus.stats.motors['gripper'].errors == {'short_reply': 1}
