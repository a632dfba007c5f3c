"""OraclePolicy: the scripted expert behind the policy interface (observation -> action chunk).

It answers like a trained policy would, from the observation's joint state, plus one privileged
input a real policy does not get: the cube pose (from the simulator). The chunk is in ROS units
(rad), stamped with the observation time, ``chunk_size`` actions ``dt`` apart, so the executor
treats it exactly like a SmolVLA chunk. It exists so that the executor (sync vs async, fusion,
latency) can be measured on a policy that succeeds; ``policy_id`` is ``'oracle'``.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from smolvla_ros.core.types import ActionChunkData, ObservationData
from smolvla_ros.sim.errors import SimConfigError
from smolvla_ros.sim.expert import ExpertConfig, PlaceTarget, ScriptedExpert
from smolvla_ros.sim.scene import JOINT_NAMES, SceneConfig, build_model
from smolvla_ros.sim.world import CubePose

POLICY_ID = 'oracle'


class OracleInputError(ValueError):
    """The observation does not carry the joints the oracle needs."""


@dataclass(frozen=True)
class OracleConfig:
    chunk_size: int = 50  # SmolVLA's default
    dt: float = 1.0 / 30.0  # s between actions (the contract fps)

    def __post_init__(self) -> None:
        if isinstance(self.chunk_size, bool) or not 1 <= int(self.chunk_size) <= 1000:
            raise SimConfigError(f'chunk_size must be in 1..1000, got {self.chunk_size!r}')
        if not 0 < self.dt <= 1:
            raise SimConfigError(f'dt must be in (0, 1] s, got {self.dt!r}')


class OraclePolicy:
    """predict(observation, cube pose) -> ActionChunkData (see the module docstring)."""

    def __init__(self, config: OracleConfig | None = None, scene: SceneConfig | None = None,
                 expert: ExpertConfig | None = None,
                 model: mujoco.MjModel | None = None) -> None:
        self.config = config or OracleConfig()
        scene = scene or SceneConfig()
        # A scene with the bowl is the bowl task: the expert carries the cube there and lets go.
        place = PlaceTarget(scene.bowl_xy, scene.bowl_radius, scene.bowl_height) \
            if scene.bowl else None
        self.expert = ScriptedExpert(model if model is not None else build_model(scene), expert,
                                     cube_half_size=scene.cube_half_size, place=place)

    def predict(self, observation: ObservationData, cube: CubePose) -> ActionChunkData:
        names = observation.joint_names
        missing = [n for n in JOINT_NAMES if n not in names]
        if missing:
            raise OracleInputError(f'the observation lacks joints {missing} (has {list(names)})')
        state = np.array([observation.state[names.index(n)] for n in JOINT_NAMES])  # [6]
        positions = self.expert.trajectory(state, cube, self.config.chunk_size,
                                           self.config.dt)  # [T, 6]
        return ActionChunkData(
            stamp_ns=observation.stamp_ns, request_id=observation.request_id,
            joint_names=JOINT_NAMES, dt=self.config.dt, positions=positions.astype(np.float32),
            policy_id=POLICY_ID)
