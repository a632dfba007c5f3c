"""Cost of the chunk visualizer's work per marker frame and per message, on the robot computer.

Measured side by side in one run (median of repeats, ms):
  fk_chunk         FK of one 50-step chunk (the tip path of one predicted_chunk)
  fk_single        FK of one joint vector (one executed_action / joint_states message)
  scene            ChunkVisualizerState.scene(now) with `history` chunks, 600 executed points and
                   20 seams (FK of every kept chunk each frame, plus the ghost)
  markers          scene_to_markers: the scene as a visualization_msgs/MarkerArray
  frame            scene + markers: the node's timer callback (publishing excluded)
  tf               joint_transforms + TransformStamped conversion for one joint_states message
The frame budget at the default 10 Hz is 100 ms; at the executor's 30 Hz, a message budget is 33 ms.

Run: `python bench/chunk_visualizer.py` (or `smolvla-ros bench chunk_visualizer`); prints a markdown
table and writes bench/results/chunk_visualizer.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import statistics
import time

from _machine import cpu_model
import numpy as np

from smolvla_ros.core.types import ActionChunkData
from smolvla_ros.core.visualization.chunk_markers import ChunkVisualizerState, MarkerStyle
from smolvla_ros.core.visualization.kinematics import ForwardKinematics

RESULTS = Path(__file__).resolve().parent / 'results'
JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')



def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in ms over `repeats` calls (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--history', type=int, default=3)
    args = parser.parse_args()

    from smolvla_ros.nodes.chunk_visualizer import scene_to_markers  # message types only

    rng = np.random.default_rng(0)
    fk = ForwardKinematics.from_urdf(joint_names=JOINTS)
    style = MarkerStyle(history=args.history)
    state = ChunkVisualizerState(fk, style)
    now = 10**12
    for k in range(600):
        state.add_executed(JOINTS, rng.uniform(-1, 1, 6), now - (600 - k) * 33_000_000)
    chunks = [ActionChunkData(now + k, k, JOINTS, 1 / 30, rng.uniform(-1, 1, (50, 6)))
              for k in range(max(args.history, 20))]
    for c in chunks:
        state.add_chunk(c, now)
    q_chunk = chunks[0].positions.astype(np.float64)
    q_one = q_chunk[0]
    scene = state.scene(now)

    from geometry_msgs.msg import TransformStamped  # noqa: F401  (import cost outside timing)

    def tf() -> None:
        from smolvla_ros.core.visualization.kinematics import matrix_to_quaternion
        for _parent, _child, t in fk.joint_transforms(q_one):
            matrix_to_quaternion(t[:3, :3])

    rows = {
        'fk_chunk': timed(lambda: fk.tip_positions(q_chunk), args.repeats),
        'fk_single': timed(lambda: fk.tip_positions(q_one), args.repeats),
        'scene': timed(lambda: state.scene(now), args.repeats),
        'markers': timed(lambda: scene_to_markers(scene, style, 'base_link', now), args.repeats),
        'frame': timed(lambda: scene_to_markers(state.scene(now), style, 'base_link', now),
                       args.repeats),
        'tf': timed(tf, args.repeats),
    }
    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'python': platform.python_version()}
    print(f'# chunk_visualizer ({machine["nproc"]} CPUs, {machine["cpu"]}), history '
          f'{args.history}, median of {args.repeats}\n')
    print('| step | ms |\n|---|---|')
    for name, ms in rows.items():
        print(f'| {name} | {ms:.3f} |')
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / 'chunk_visualizer.json'
    out.write_text(json.dumps({'machine': machine, 'history': args.history,
                               'repeats': args.repeats, 'median_ms': rows}, indent=2))
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
