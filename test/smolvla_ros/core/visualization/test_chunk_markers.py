"""Marker geometry of a synthetic chunk: point count, ordering, colours by time, seams, ghost."""
from __future__ import annotations

import numpy as np
import pytest

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.core.visualization.chunk_markers import (
    TIME_GRADIENT,
    ChunkGeometryError,
    ChunkVisualizerState,
    MarkerStyle,
    chunk_path,
    ghost_segments,
    planned_at,
    time_colors,
)
from smolvla_ros.core.visualization.kinematics import ForwardKinematics

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
DT = 1 / 30
T0 = 10_000_000_000  # ns


@pytest.fixture(scope='module')
def fk() -> ForwardKinematics:
    return ForwardKinematics.from_urdf(joint_names=JOINTS)


def sweep_chunk(steps: int = 50, stamp_ns: int = T0, request_id: int = 1,
                names: tuple[str, ...] = JOINTS) -> ActionChunkData:
    """Pan sweeps 0 -> 1 rad: the tip moves monotonically around the base."""
    q = np.zeros((steps, len(names)), dtype=np.float32)
    q[:, names.index('shoulder_pan')] = np.linspace(0.0, 1.0, steps)
    return ActionChunkData(stamp_ns, request_id, names, DT, q)


def test_time_colors_follow_the_gradient() -> None:
    c = time_colors(np.array([0.0, 0.5, 1.0, -1.0, 2.0]))
    np.testing.assert_allclose(c[:3], TIME_GRADIENT)
    np.testing.assert_allclose(c[3], TIME_GRADIENT[0])  # clipped
    np.testing.assert_allclose(c[4], TIME_GRADIENT[-1])


def test_chunk_path_points_follow_step_order_and_fk(fk: ForwardKinematics) -> None:
    chunk = sweep_chunk()
    path = chunk_path(fk, chunk, now_ns=T0 - 1, style=MarkerStyle())
    assert path.points.shape == (50, 3)
    assert path.colors.shape == (50, 4)
    assert path.num_due == 0
    np.testing.assert_allclose(path.points, fk.tip_positions(chunk.positions.astype(np.float64)))
    # The pan axis points down (SO-101 servo mounting): +pan turns the tip clockwise seen from
    # above, by exactly the pan step (1/49 rad) from one point to the next.
    azimuth = np.unwrap(np.arctan2(path.points[:, 1], path.points[:, 0] - 0.0388353))
    np.testing.assert_allclose(np.diff(azimuth), -1 / 49, atol=1e-6)
    # Colours by time: first step at the gradient's start, last at its end, red rises monotonically.
    np.testing.assert_allclose(path.colors[0, :3], TIME_GRADIENT[0])
    np.testing.assert_allclose(path.colors[-1, :3], TIME_GRADIENT[-1])
    assert np.all(np.diff(path.colors[25:, 0]) > 0)
    assert np.all(path.colors[:, 3] == 1.0)
    np.testing.assert_array_equal(np.diff(path.due_ns), np.round(np.arange(1, 50) * DT * 1e9)
                                  - np.round(np.arange(49) * DT * 1e9))


def test_steps_already_due_take_the_due_colour(fk: ForwardKinematics) -> None:
    style = MarkerStyle()
    now = T0 + int(10.5 * DT * 1e9)  # steps 0..10 are due
    path = chunk_path(fk, sweep_chunk(), now_ns=now, style=style)
    assert path.num_due == 11
    np.testing.assert_allclose(path.colors[:11], np.tile(style.due_rgba, (11, 1)))
    assert not np.allclose(path.colors[11], style.due_rgba)


def test_joint_order_of_the_message_does_not_matter(fk: ForwardKinematics) -> None:
    names = tuple(reversed(JOINTS))
    chunk = sweep_chunk(names=names)
    path = chunk_path(fk, chunk, T0, MarkerStyle())
    np.testing.assert_allclose(path.points, chunk_path(fk, sweep_chunk(), T0, MarkerStyle()).points)
    with pytest.raises(ChunkGeometryError, match=r"\['gripper'\]"):
        chunk_path(fk, sweep_chunk(names=JOINTS[:5]), T0, MarkerStyle())


def test_planned_at_interpolates_and_holds_the_ends() -> None:
    chunk = sweep_chunk(steps=11)  # pan 0, 0.1, ..., 1.0
    assert planned_at(chunk, T0 + int(2.5 * DT * 1e9))[0] == pytest.approx(0.25, abs=1e-6)
    assert planned_at(chunk, T0 - 10**9)[0] == pytest.approx(0.0)
    assert planned_at(chunk, T0 + 10**10)[0] == pytest.approx(1.0)


def test_ghost_is_a_connected_stick_figure_ending_at_the_tip(fk: ForwardKinematics) -> None:
    q = np.array([0.3, -0.2, 0.4, 0.1, 0.0, 0.5])
    segs = ghost_segments(fk, q)
    assert segs.ndim == 3 and segs.shape[1:] == (2, 3)
    assert len(segs) == len(fk.model.joints)  # no joint of the SO-101 sits at its parent's origin
    tip = fk.tip_positions(q)
    assert min(np.linalg.norm(segs[:, 1] - tip, axis=1)) < 1e-12


def test_state_tracks_history_executed_path_and_seams(fk: ForwardKinematics) -> None:
    style = MarkerStyle(history=2, executed_points=5)
    state = ChunkVisualizerState(fk, style)
    assert state.add_chunk(sweep_chunk(request_id=1), now_ns=T0) is None  # nothing executed yet
    for k in range(8):
        q = np.zeros(6)
        q[0] = k * 0.01
        state.add_executed(JOINTS, q, T0 + k * int(DT * 1e9))
    seam_time = T0 + int(8 * DT * 1e9)
    second = sweep_chunk(stamp_ns=seam_time - int(3 * DT * 1e9), request_id=2)
    seam = state.add_chunk(second, now_ns=seam_time)
    assert seam is not None
    q_exec = np.zeros(6)
    q_exec[0] = 0.07
    np.testing.assert_allclose(seam.executed, fk.tip_positions(q_exec))
    np.testing.assert_allclose(seam.planned, fk.tip_positions(planned_at(second, seam_time)))
    assert seam.jump_m > 0
    state.add_chunk(sweep_chunk(stamp_ns=seam_time, request_id=3), now_ns=seam_time + 1)
    scene = state.scene(now_ns=seam_time + 1)
    assert [p.request_id for p in scene.chunks] == [2, 3]  # history=2 keeps the newest two
    assert [p.colors[-1, 3] for p in scene.chunks] == [0.5, 1.0]  # the older one fades
    assert scene.executed.shape == (5, 3)  # executed_points=5 keeps the last five
    np.testing.assert_allclose(scene.executed[-1], fk.tip_positions(q_exec))
    assert len(scene.seams) == 2
    end = np.zeros(6)
    end[0] = 1.0
    np.testing.assert_allclose(scene.ghost, ghost_segments(fk, end), atol=1e-6)


def test_bad_style_and_executed_inputs_raise(fk: ForwardKinematics) -> None:
    with pytest.raises(ValueError, match='line_width'):
        MarkerStyle(line_width=0)
    with pytest.raises(ValueError, match='seam_rgba'):
        MarkerStyle(seam_rgba=(1, 0, 0))
    with pytest.raises(ValueError, match='history'):
        MarkerStyle(history=0)
    state = ChunkVisualizerState(fk)
    with pytest.raises(ChunkGeometryError, match='6 joint names'):
        state.add_executed(JOINTS, np.zeros(5), 0)
    assert state.scene(0).ghost.shape == (0, 2, 3)
