"""Calibration: LeRobot JSON round trip, validation, EEPROM write with Lock handling, mismatches."""
from __future__ import annotations

import json

import pytest

from smolvla_ros.core.robot.calibration import (
    CalibrationError,
    MotorCalibration,
    load_calibration,
    save_calibration,
)
from smolvla_ros.hardware.emulator import ServoEmulator
from smolvla_ros.hardware.feetech import FeetechBus
from smolvla_ros.hardware.feetech.calibration import (
    calibration_mismatches,
    read_calibration_from_bus,
    write_calibration_to_bus,
)

# A file as LeRobot writes it (draccus dump, indent 4).
LEROBOT_FILE = """{
    "shoulder_pan": {
        "id": 1,
        "drive_mode": 0,
        "homing_offset": -1472,
        "range_min": 787,
        "range_max": 3292
    },
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 1037, "range_min": 899,
                      "range_max": 3159},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": 1130, "range_min": 885,
                   "range_max": 3069},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": -1099, "range_min": 829,
                   "range_max": 3187},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 1563, "range_min": 0,
                   "range_max": 4095},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1328, "range_min": 2023,
                "range_max": 3478}
}"""


def test_load_save_round_trip(tmp_path) -> None:
    src = tmp_path / 'src.json'
    src.write_text(LEROBOT_FILE)
    cal = load_calibration(src)
    assert list(cal) == ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                         'wrist_roll', 'gripper']
    assert cal['shoulder_pan'] == MotorCalibration(1, 0, -1472, 787, 3292)
    out = tmp_path / 'sub' / 'out.json'
    save_calibration(out, cal)
    assert load_calibration(out) == cal
    data = json.loads(out.read_text())
    assert list(data['gripper']) == ['id', 'drive_mode', 'homing_offset', 'range_min',
                                     'range_max']
    assert out.read_text().startswith('{\n    "shoulder_pan": {\n        "id": 1,')
    assert not list(out.parent.glob('.*tmp'))  # atomic write leaves no temp file


@pytest.mark.parametrize(('mutate', 'message'), [
    (lambda d: d['gripper'].pop('range_max'), 'missing fields'),
    (lambda d: d['gripper'].update(extra=1), 'unknown fields'),
    (lambda d: d['gripper'].update(range_min=3478), 'below range_max'),
    (lambda d: d['gripper'].update(homing_offset=3000), 'homing_offset'),
    (lambda d: d['gripper'].update(drive_mode=2), 'drive_mode'),
    (lambda d: d['gripper'].update(range_max=5000), 'range_max'),
    (lambda d: d['gripper'].update(id=1), 'not unique'),
    (lambda d: d['gripper'].update(id='6'), 'integer'),
])
def test_invalid_files_name_motor_and_field(tmp_path, mutate, message: str) -> None:
    data = json.loads(LEROBOT_FILE)
    mutate(data)
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)


def test_unreadable_files(tmp_path) -> None:
    with pytest.raises(CalibrationError, match='cannot read'):
        load_calibration(tmp_path / 'nope.json')
    (tmp_path / 'x.json').write_text('{"a": ')
    with pytest.raises(CalibrationError, match='not valid JSON'):
        load_calibration(tmp_path / 'x.json')
    (tmp_path / 'y.json').write_text('[]')
    with pytest.raises(CalibrationError, match='object'):
        load_calibration(tmp_path / 'y.json')


def test_write_to_eeprom_then_read_back_and_validate(
        tmp_path, bus: FeetechBus, emulator: ServoEmulator) -> None:
    (tmp_path / 'c.json').write_text(LEROBOT_FILE)
    cal = load_calibration(tmp_path / 'c.json')
    bus.enable_torque()  # locks EEPROM; the writer must unlock it
    assert len(calibration_mismatches(bus, cal)) == 16  # 6 offsets + 5 mins + 5 maxes differ
    write_calibration_to_bus(bus, cal)
    assert calibration_mismatches(bus, cal) == []
    assert read_calibration_from_bus(bus) == cal
    # EEPROM holds it across a power cycle; torque is left off and EEPROM locked again.
    emulator.power_cycle()
    assert read_calibration_from_bus(bus) == cal
    assert bus.sync_read('Torque_Enable') == dict.fromkeys(cal, 0)
    servo = emulator.servo(1)
    assert servo.get('Homing_Offset') == -1472 and servo.get('Lock') == 1


def test_mismatch_reports_and_locked_eeprom_detected(
        bus: FeetechBus, emulator: ServoEmulator) -> None:
    cal = {'gripper': MotorCalibration(6, 0, 100, 1000, 3000)}
    write_calibration_to_bus(bus, cal)
    bus.write('Lock', 'gripper', 0)
    bus.write('Max_Position_Limit', 'gripper', 2900)
    assert calibration_mismatches(bus, cal) == [
        'gripper: Max_Position_Limit is 2900 on the servo, 3000 in the calibration']
    # A write with the EEPROM locked does not stick on the servo; nothing is silently accepted.
    bus.write('Lock', 'gripper', 1)
    bus.write('Max_Position_Limit', 'gripper', 3000)
    assert emulator.servo(6).eeprom_writes_rejected == 1
    assert bus.read('Max_Position_Limit', 'gripper') == 2900


def test_calibration_must_match_bus_ids(bus: FeetechBus) -> None:
    with pytest.raises(CalibrationError, match='bus motor id'):
        write_calibration_to_bus(bus, {'gripper': MotorCalibration(5, 0, 0, 0, 4095)})
    with pytest.raises(CalibrationError, match='does not know'):
        calibration_mismatches(bus, {'elbow': MotorCalibration(3, 0, 0, 0, 4095)})


def test_calibration_file_and_control_table_agree_on_the_highest_id() -> None:
    from smolvla_ros.core.robot import calibration
    from smolvla_ros.hardware.feetech import tables

    assert calibration.MAX_ID == tables.MAX_ID
