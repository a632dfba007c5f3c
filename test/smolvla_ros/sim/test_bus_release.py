"""sim/bus_release.py: the simulated bus waits for the driver's release, bounded, then reports.

The emulator is used without its pty (no transfers): torque flags are set directly and the
"driver" is the sleep hook, which advances a fake clock and may turn torque off or count packets.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smolvla_ros.hardware.emulator.server import ServoEmulator
from smolvla_ros.sim.bus_release import wait_for_release, write_report

IDS = (1, 2, 3)


class _Driver:
    """Fake time plus what a driver does on the bus at given moments."""

    def __init__(self, emulator: ServoEmulator, release_at: float | None = None,
                 packets_until: float = 0.0) -> None:
        self.emulator, self.release_at, self.packets_until = emulator, release_at, packets_until
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.now < self.packets_until:  # the driver's acknowledged writes still arrive
            with self.emulator.lock:
                self.emulator._stats.rx_packets += 1
        if self.release_at is not None and self.now >= self.release_at:
            for motor_id in IDS:
                self.emulator.set_register(motor_id, 'Torque_Enable', 0)


@pytest.fixture
def emulator() -> ServoEmulator:
    emu = ServoEmulator(list(IDS))
    for motor_id in IDS:
        emu.set_register(motor_id, 'Torque_Enable', 1)
    return emu


def test_returns_once_torque_is_off_and_the_bus_is_quiet(emulator) -> None:
    driver = _Driver(emulator, release_at=0.3, packets_until=0.5)
    release = wait_for_release(emulator, grace_s=2.0, quiet_s=0.2, clock=driver.clock,
                               sleep=driver.sleep)
    assert release.released and release.torque_on == []
    assert 0.65 <= release.waited_s < 0.8  # last packet just before 0.5 s, then 0.2 s quiet
    assert sorted(release.servos) == list(IDS)
    assert not any(s.torque_enabled for s in release.servos.values())


def test_gives_up_after_the_grace_and_names_the_servos_still_holding(emulator) -> None:
    emulator.set_register(2, 'Torque_Enable', 0)
    driver = _Driver(emulator)  # never releases (torque_off_on_shutdown: false)
    release = wait_for_release(emulator, grace_s=1.0, clock=driver.clock, sleep=driver.sleep)
    assert not release.released
    assert release.torque_on == [1, 3]
    assert 1.0 <= release.waited_s < 1.1


def test_no_driver_and_no_torque_costs_only_the_quiet_time(emulator) -> None:
    for motor_id in IDS:
        emulator.set_register(motor_id, 'Torque_Enable', 0)
    driver = _Driver(emulator)
    release = wait_for_release(emulator, grace_s=2.0, quiet_s=0.2, clock=driver.clock,
                               sleep=driver.sleep)
    assert release.released and 0.2 <= release.waited_s < 0.3


def test_report_is_json_with_every_servo(emulator, tmp_path: Path) -> None:
    driver = _Driver(emulator)
    release = wait_for_release(emulator, grace_s=0.0, clock=driver.clock, sleep=driver.sleep)
    path = tmp_path / 'bus.json'
    write_report(path, release)
    data = json.loads(path.read_text())
    assert data['released'] is False and data['torque_on'] == list(IDS)
    assert set(data['servos']) == {'1', '2', '3'}
    assert all(s['torque_enabled'] for s in data['servos'].values())
    assert not list(tmp_path.glob('.*.tmp'))  # written atomically, nothing left behind


def test_negative_grace_is_refused(emulator) -> None:
    with pytest.raises(ValueError, match='grace_s'):
        wait_for_release(emulator, grace_s=-1.0)
