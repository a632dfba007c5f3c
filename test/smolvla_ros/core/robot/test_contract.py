"""The robot contract: the shipped so101.yaml, validation errors naming file and key, units."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from smolvla_ros.core.robot.calibration import calibration_from_dict
from smolvla_ros.core.robot.contract import (
    ContractError,
    contract_from_dict,
    default_contract_path,
    load_contract,
)
from smolvla_ros.core.robot.dataset_units import CalibrationRequiredError, DatasetUnits
from smolvla_ros.core.robot.units import radian_limits

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


def base() -> dict:
    return yaml.safe_load(default_contract_path().read_text())


def calibration() -> dict:
    return calibration_from_dict({
        n: {'id': i + 1, 'drive_mode': 1 if n == 'elbow_flex' else 0, 'homing_offset': 0,
            'range_min': 1000 + 10 * i, 'range_max': 3000 - 20 * i}
        for i, n in enumerate(JOINTS)})


def test_shipped_so101_contract():
    c = load_contract(default_contract_path())
    assert c.fps == 30 and c.dt_ns == 33_333_333
    assert c.joint_names == JOINTS
    assert c.feature_names == tuple(f'{j}.pos' for j in JOINTS)
    assert [u.value for u in c.joint_units] == ['degrees'] * 5 + ['range_0_100']
    assert c.camera_names == ('front', 'wrist')
    assert c.image_features == ('observation.images.front', 'observation.images.wrist')
    assert c.state.topic == 'joint_states' and c.state.feature == 'observation.state'
    assert c.action.topic == 'joint_commands' and c.action.feature == 'action'
    assert c.task.topic == 'task' and c.task.parameter == 'task'
    assert c.policy_image_shape('front') == (384, 512)
    assert c.cameras['front'].max_age_ns == 150_000_000
    assert c.calibration_file == (default_contract_path().parent.parent / 'calibration'
                                  / 'so101_follower_example.json')
    assert c.calibration_file.is_file()
    # The shipped contract converts with its calibration: mid pose 0 rad -> 0 deg; the gripper's
    # calibrated range maps onto 0..100.
    units = DatasetUnits.from_contract(c)
    lo, hi = radian_limits(units.calibration)
    np.testing.assert_allclose(units.to_dataset(np.zeros(6))[:5], 0.0, atol=1e-9)
    np.testing.assert_allclose(sorted([units.to_dataset(lo)[5], units.to_dataset(hi)[5]]),
                               [0.0, 100.0], atol=1e-9)
    feats = c.dataset_features()
    assert feats['observation.state']['names'] == list(c.feature_names)
    assert feats['observation.images.wrist']['shape'] == [480, 640, 3]


@pytest.mark.parametrize('edit,key,text', [
    (lambda d: d.pop('fps'), 'fps', 'number'),
    (lambda d: d.__setitem__('fps', -30), 'fps', '> 0'),
    (lambda d: d['joints'][5].__setitem__('unit', 'percent'), 'joints[5]', 'unit must be one of'),
    (lambda d: d['joints'].append({'name': 'gripper', 'unit': 'degrees'}), 'joints', 'twice'),
    (lambda d: d['cameras']['front'].pop('topic'), 'cameras.front', 'missing'),
    (lambda d: d['cameras']['wrist'].__setitem__('max_age_s', 0), 'cameras.wrist', 'max_age_s'),
    (lambda d: d['cameras']['wrist'].__setitem__('fov', 60), 'cameras.wrist', "unknown keys"),
    (lambda d: d['state'].__setitem__('topic', 'bad topic'), 'state', 'topic'),
    (lambda d: d.__setitem__('policy_image_size', {'width': 0, 'height': 4}),
     'policy_image_size.width', '>= 1'),
    (lambda d: d.__setitem__('extra', 1), '', 'unknown keys'),
])
def test_errors_name_the_file_and_key(tmp_path: Path, edit, key, text):
    data = base()
    edit(data)
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert info.value.source == str(path) and info.value.key == key
    assert text in str(info.value) and str(path) in str(info.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(ContractError, match='cannot read'):
        load_contract(tmp_path / 'missing.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('fps: [30\n')
    with pytest.raises(ContractError, match='not valid YAML'):
        load_contract(bad)


def test_degrees_convert_without_calibration():
    data = base()
    data['joints'] = [{'name': n, 'unit': 'degrees'} for n in JOINTS]
    c = contract_from_dict(data)
    u = DatasetUnits.from_contract(c)
    rad = np.array([[0.1, -0.2, 0.3, 1.0, -1.5, 0.05]])
    np.testing.assert_allclose(u.to_dataset(rad), np.rad2deg(rad))
    np.testing.assert_allclose(u.to_ros(u.to_dataset(rad)), rad)
    # The calibrated path (through the driver's tick mapping) gives the same degrees.
    with_cal = DatasetUnits.from_contract(c, calibration())
    np.testing.assert_allclose(with_cal.to_dataset(rad), np.rad2deg(rad), atol=1e-9)


def test_range_units_need_and_use_the_calibration(tmp_path: Path):
    data = base()
    data['calibration_file'] = None
    c = contract_from_dict(data, source='x.yaml')
    with pytest.raises(CalibrationRequiredError, match='gripper'):
        DatasetUnits.from_contract(c)
    # A calibration file next to the contract, named relative to it.
    (tmp_path / 'cal').mkdir()
    cal_file = tmp_path / 'cal' / 'arm.json'
    raw = {n: {'id': i + 1, 'drive_mode': 0, 'homing_offset': 0, 'range_min': 1024,
               'range_max': 3072} for i, n in enumerate(JOINTS)}
    cal_file.write_text(json.dumps(raw))
    data = copy.deepcopy(base())
    data['calibration_file'] = 'cal/arm.json'
    data['joints'][0]['unit'] = 'range_m100_100'
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump(data))
    units = DatasetUnits.from_contract(load_contract(path))
    # Mid-range (raw 2048) is 0 rad: 0 in m100_100, 0 deg, 50 for the gripper's 0..100.
    mid = units.to_dataset(np.zeros(6))
    np.testing.assert_allclose(mid, [0, 0, 0, 0, 0, 50], atol=1e-9)
    # range_max (raw 3072) on the gripper = +1024 ticks = 90.02 deg in ROS rad -> 100.
    top = np.deg2rad(1024 * 360 / 4095)
    np.testing.assert_allclose(units.to_dataset(np.full(6, top))[[0, 5]], [100, 100])
    values = np.array([[-40.0, 10.0, -20.0, 30.0, 5.0, 75.0]])
    np.testing.assert_allclose(units.to_dataset(units.to_ros(values)), values, atol=1e-9)
    with pytest.raises(ValueError, match='6 joints'):
        units.to_ros(np.zeros(5))


def test_state_stream_fps_is_optional_and_validated(tmp_path) -> None:
    assert load_contract(default_contract_path()).state.fps == 100.0  # the driver's rate
    data = yaml.safe_load(default_contract_path().read_text())
    data['calibration_file'] = str(
        (default_contract_path().parent / data['calibration_file']).resolve())
    del data['state']['fps']
    path = tmp_path / 'no_fps.yaml'
    path.write_text(yaml.safe_dump(data))
    assert load_contract(path).state.fps is None  # the executor then expects the contract fps
    data['state']['fps'] = -5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match='state.*fps'):
        load_contract(path)
