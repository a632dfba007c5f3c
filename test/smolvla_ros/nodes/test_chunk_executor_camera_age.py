"""chunk_executor's ``camera_max_age_s``: slower cameras get their own max age, the state keeps its.

The simulator renders at 10 Hz, so its frames are legitimately older than a 30 fps camera's;
``max_obs_age_s`` would relax every stream, this parameter only the cameras (the profiles of the
simulated stack set it from the render rate, docs/simulation.md).
"""
from __future__ import annotations

import pytest

rclpy = pytest.importorskip('rclpy')

from executor_fixtures import JOINTS, write_contract  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from smolvla_ros.nodes.chunk_executor import ChunkExecutor  # noqa: E402

pytestmark = pytest.mark.ros
NOW = 10_000_000_000  # ns


def _executor(context, contract: str, **params) -> ChunkExecutor:
    overrides = [Parameter('contract_file', value=contract), Parameter('task', value='test')]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return ChunkExecutor(context=context, parameter_overrides=overrides)


def _feed(node: ChunkExecutor, state_age_s: float, frame_age_s: float) -> None:
    node.assembler.add_joint_state(NOW - round(state_age_s * 1e9), JOINTS, [0.0] * len(JOINTS))
    node.assembler.add_image('front', NOW - round(frame_age_s * 1e9), object())


def test_camera_max_age_overrides_cameras_only(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', camera_max_age_s=0.15)  # state: 0.3
    node = _executor(rclpy_context, contract, camera_max_age_s=0.35)
    try:
        assert node.contract.cameras['front'].max_age_s == pytest.approx(0.35)
        assert node.contract.state.max_age_s == pytest.approx(0.3)
        _feed(node, state_age_s=0.01, frame_age_s=0.3)  # stale for the contract, fresh here
        assert node.assembler.report(NOW).ok, node.assembler.report(NOW).describe()
        _feed(node, state_age_s=0.01, frame_age_s=0.31)
        report = node.assembler.report(NOW + round(0.1e9))  # frame 0.41 s old
        assert report.stale == ('front',), report.describe()
    finally:
        node.destroy_node()


def test_state_keeps_its_contract_age(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', camera_max_age_s=0.15)
    node = _executor(rclpy_context, contract, camera_max_age_s=0.6)
    try:
        _feed(node, state_age_s=0.4, frame_age_s=0.05)
        report = node.assembler.report(NOW)
        assert report.stale == ('state',), report.describe()
    finally:
        node.destroy_node()


def test_unset_keeps_the_contract_camera_age(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml', camera_max_age_s=0.15)
    node = _executor(rclpy_context, contract)
    try:
        _feed(node, state_age_s=0.01, frame_age_s=0.3)
        assert node.assembler.report(NOW).stale == ('front',)
    finally:
        node.destroy_node()


def test_negative_camera_max_age_fails_at_start(rclpy_context, tmp_path) -> None:
    contract = write_contract(tmp_path / 'contract.yaml')
    with pytest.raises(ValueError, match='max_age_s'):
        _executor(rclpy_context, contract, camera_max_age_s=-0.1)


def test_the_camera_sources_values_apply_unless_overridden(rclpy_context, tmp_path) -> None:
    """The simulated profiles set camera_source_* (params/chunk_executor_sim_true.yaml), so that
    `up so101_async sim:=true` works with its defaults; camera_max_age_s / camera_fps still win."""
    contract = write_contract(tmp_path / 'contract.yaml', camera_max_age_s=0.15)
    node = _executor(rclpy_context, contract, camera_source_max_age_s=0.35,
                     camera_source_fps=10.0)
    try:
        cam = node.contract.cameras['front']
        assert (cam.max_age_s, cam.fps) == pytest.approx((0.35, 10.0))
    finally:
        node.destroy_node()
    node = _executor(rclpy_context, contract, camera_source_max_age_s=0.35,
                     camera_source_fps=10.0, camera_max_age_s=0.2, camera_fps=15.0)
    try:
        cam = node.contract.cameras['front']
        assert (cam.max_age_s, cam.fps) == pytest.approx((0.2, 15.0))
    finally:
        node.destroy_node()
