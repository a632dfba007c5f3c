"""The recovery disturbances of sim-record (sim/variation.py): each kind is drawn, and the two
that copy the learned policy's misses, ``nudge`` and ``slip``, really put the expert in the
state they are for and it recovers from there. Frames are rendered at 64x48 to keep this cheap.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('mujoco')
pytest.importorskip('rosbags')

from smolvla_ros.core.robot.contract import default_contract_path, load_contract  # noqa: E402
from smolvla_ros.sim.expert import ExpertConfig  # noqa: E402
from smolvla_ros.sim.record import EpisodeRecorder, RecordConfig  # noqa: E402
from smolvla_ros.sim.variation import (  # noqa: E402
    PERTURBATIONS,
    VariationConfig,
    draw_variation,
)


def test_every_kind_is_drawn_with_its_amplitude() -> None:
    config = VariationConfig(recovery_fraction=1.0)
    draws = [draw_variation(s, config) for s in range(60)]
    assert {d.perturbation for d in draws} == set(PERTURBATIONS)
    for d in draws:
        assert config.nudge_m[0] <= np.linalg.norm(d.nudge_offset) <= config.nudge_m[1]
        assert config.slip_m[0] <= np.linalg.norm(d.slip_offset) <= config.slip_m[1]
    # Adding nudge and slip did not reshuffle what the older kinds draw.
    old = VariationConfig(recovery_fraction=1.0, kinds=('push', 'bump', 'drop'))
    assert draw_variation(3, old).summary()['joint_speed'] == draws[3].summary()['joint_speed']
    assert np.array_equal(draw_variation(3, old).bump_offset, draws[3].bump_offset)


def _record(kind: str, seed: int):
    """Record episode `seed` with one disturbance of `kind`; returns it and its gripper angle
    per joint_states sample (rad) with the sample times (s)."""
    config = RecordConfig(image_width=64, image_height=48,
                          variation=VariationConfig(recovery_fraction=1.0, kinds=(kind,)))
    recorder = EpisodeRecorder(config, load_contract(default_contract_path()))
    try:
        rec = recorder.record(seed)
        state_topic = next(iter(recorder.topics))
        times, grip = [], []
        for t_ns, topic, raw in rec.messages:
            if topic == state_topic:
                msg = recorder.ts.deserialize_cdr(raw, 'sensor_msgs/msg/JointState')
                times.append((t_ns - rec.messages[0][0]) * 1e-9)
                grip.append(msg.position[5])
    finally:
        recorder.close()
    return rec, np.array(times), np.array(grip)


def test_slip_leaves_the_jaws_closed_on_nothing_and_the_expert_reopens_and_regrasps() -> None:
    rec, t, grip = _record('slip', 100)
    assert [kind for _, kind in rec.disturbances] == ['slip']
    assert rec.result.success
    when = rec.disturbances[0][0]
    after = grip[t > when]
    expert = ExpertConfig()
    empty = np.flatnonzero(after < expert.empty_grip)
    assert empty.size, 'the jaws never closed on nothing after the slip'
    reopened = after[empty[0]:] > expert.contact_grip
    assert reopened.any(), 'the expert did not re-open the jaws'
    # ... and closed them on the cube again (the success above is a lift with the cube held).
    regrasp = after[empty[0] + int(np.argmax(reopened)):]
    assert (regrasp < expert.contact_grip).any() and (regrasp > expert.empty_grip).any()


def test_nudge_moves_the_cube_under_the_closing_jaws_and_the_episode_still_succeeds() -> None:
    rec, _, _ = _record('nudge', 100)
    assert [kind for _, kind in rec.disturbances] == ['nudge']
    assert rec.result.success
    assert rec.variation.summary()['nudge_offset_m'] == [
        round(float(v), 4) for v in rec.variation.nudge_offset]
