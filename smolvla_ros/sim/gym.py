"""Registers the Gymnasium id ``smolvla_ros/SO101Pick-v0`` (imports gymnasium, not MuJoCo).

    import gymnasium
    import smolvla_ros.sim.gym  # noqa: F401  (registers the id)
    env = gymnasium.make('smolvla_ros/SO101Pick-v0', task='lift')

or, without the import, ``gymnasium.make('smolvla_ros.sim.gym:smolvla_ros/SO101Pick-v0')``.
MuJoCo and the scene load only when an environment is made (sim/pick_env.py), so registering is
cheap. The environment is documented in sim/pick_env.py and docs/simulation.md.
"""
from __future__ import annotations

import gymnasium

ENV_ID = 'smolvla_ros/SO101Pick-v0'
MAX_EPISODE_STEPS = 600  # 20 s at the contract's 30 fps

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point='smolvla_ros.sim.pick_env:SO101PickEnv',
                       max_episode_steps=MAX_EPISODE_STEPS)
