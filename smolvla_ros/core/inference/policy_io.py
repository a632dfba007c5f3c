"""The policy server's request/answer conversion: ObservationData <-> a policy batch (numpy only).

A request arrives in ROS units (rad, joints by name, RGB frames named by contract camera); the
checkpoint wants dataset units in contract column order and image features under its own names.
This module does exactly that mapping and nothing else, with the stack's one unit conversion
(``dataset_units.DatasetUnits``) and the contract's camera list, so that the torch side
(``policy.SmolVLAPolicy.predict_chunk``, which accepts numpy arrays) never sees ROS conventions.

Camera renames follow LeRobot's ``rename_map`` idea: ``front=camera1`` (or the full
``observation.images.front=observation.images.camera1``) feeds the contract camera ``front`` to the
checkpoint feature ``observation.images.camera1``. Contract cameras without an entry keep their
name.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from smolvla_ros.core.robot.contract import IMAGE_FEATURE_PREFIX, RobotContract
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_ros.core.types import ActionChunkData, ObservationData


class RenameMapError(ValueError):
    """A rename_map entry that is malformed or names a camera the contract does not have."""


class PolicyRequestError(ValueError):
    """A request that cannot be turned into a policy batch (names what is wrong)."""


def _feature(name: str) -> str:
    return name if name.startswith(IMAGE_FEATURE_PREFIX) else IMAGE_FEATURE_PREFIX + name


def parse_rename_map(entries: str | Sequence[str] | Mapping[str, str],
                     contract: RobotContract) -> dict[str, str]:
    """Contract camera name -> checkpoint image feature key, for every contract camera.

    ``entries`` are ``'from=to'`` strings, one string of them separated by commas (the ROS
    parameter: ``'front=camera1,wrist=camera2'``, brackets allowed), or a mapping; ``from`` and
    ``to`` may be bare camera names or full ``observation.images.*`` keys.
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(entries, str):
        entries = [e.strip() for e in entries.strip().strip('[]').split(',')]
    if isinstance(entries, Mapping):
        pairs = [(str(k), str(v)) for k, v in entries.items()]
    else:
        for entry in entries:
            if not entry:
                continue
            parts = entry.split('=')
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise RenameMapError(f'rename_map entry {entry!r} must be "from=to", e.g. '
                                     '"front=camera1"')
            pairs.append((parts[0].strip(), parts[1].strip()))
    known = {c.feature: c.name for c in contract.cameras.values()}
    out = {name: _feature(name) for name in contract.camera_names}
    for src, dst in pairs:
        camera = known.get(_feature(src))
        if camera is None:
            raise RenameMapError(f'rename_map names camera {src!r}, which is not in the contract '
                                 f'{contract.source} (cameras {list(contract.camera_names)})')
        out[camera] = _feature(dst)
    targets = list(out.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise RenameMapError(f'rename_map sends two cameras to the same feature {dupes}')
    return out


def positional_rename_map(contract: RobotContract,
                          image_keys: Sequence[str]) -> dict[str, str]:
    """Contract camera i -> checkpoint image feature i, in order.

    Only for checkpoints whose camera names carry no learned meaning (a preset with random
    weights): for a trained checkpoint a wrong pairing silently feeds the wrist view as the front
    one, so there the mapping must be given. RenameMapError when the counts differ.
    """
    cameras, keys = contract.camera_names, tuple(image_keys)
    if len(cameras) != len(keys):
        raise RenameMapError(f'the contract has {len(cameras)} cameras {list(cameras)}, the '
                             f'checkpoint {len(keys)} image features {list(keys)}: no pairing in '
                             'order; give rename_map')
    return {camera: _feature(key) for camera, key in zip(cameras, keys, strict=True)}


class PolicyIO:
    """Request -> batch and prediction -> chunk for one contract, unit converter and rename map."""

    def __init__(self, contract: RobotContract, units: DatasetUnits,
                 rename: Mapping[str, str] | None = None) -> None:
        if units.joint_names != contract.joint_names:
            raise ValueError(f'unit converter joints {list(units.joint_names)} != contract '
                             f'joints {list(contract.joint_names)}')
        self.contract = contract
        self.units = units
        self.rename = dict(rename) if rename is not None else parse_rename_map((), contract)
        missing = [c for c in contract.camera_names if c not in self.rename]
        if missing:
            raise RenameMapError(f'rename map lacks contract cameras {missing}')

    @property
    def image_keys(self) -> tuple[str, ...]:
        """The checkpoint image features this contract feeds, in contract camera order."""
        return tuple(self.rename[c] for c in self.contract.camera_names)

    @property
    def num_joints(self) -> int:
        return len(self.contract.joints)

    def _order(self, names: tuple[str, ...]) -> np.ndarray:
        if names == self.contract.joint_names:
            return np.arange(len(names))
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.contract.joint_names if n not in index]
        if missing:
            raise PolicyRequestError(f'request state lacks contract joints {missing} (it has '
                                     f'{list(names)})')
        return np.array([index[n] for n in self.contract.joint_names], dtype=np.int64)

    def batch(self, obs: ObservationData) -> dict[str, Any]:
        """The policy batch of one request (batch size 1, numpy, dataset units).

        ``observation.state`` float32 [1, J]; each image feature float32 [1, 3, H, W] in [0, 1];
        ``task`` [str]. Cameras must be exactly the contract's (extra or missing ones are named).
        """
        cams = set(obs.camera_names)
        missing = [c for c in self.contract.camera_names if c not in cams]
        extra = sorted(cams - set(self.contract.camera_names))
        if missing or extra:
            raise PolicyRequestError(f'request cameras {list(obs.camera_names)} do not match the '
                                     f'contract: missing {missing}, extra {extra}')
        order = self._order(obs.joint_names)
        state = self.units.to_dataset(obs.state[order])  # [J] dataset units
        batch: dict[str, Any] = {
            'observation.state': state[None].astype(np.float32),  # [1, J]
            'task': [obs.task],
        }
        for cam in self.contract.camera_names:
            rgb = obs.images[cam]  # uint8 [H, W, 3]
            chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)  # [3, H, W]
            batch[self.rename[cam]] = (chw * (1.0 / 255.0))[None]  # [1, 3, H, W] in [0, 1]
        return batch

    def rtc_inputs(self, obs: ObservationData, chunk_size: int
                   ) -> tuple[np.ndarray | None, int | None]:
        """(prev_chunk_left_over [1, n, J] in dataset units, inference_delay) or (None, None).

        The tail is cut to ``chunk_size`` rows and the delay clipped to it: steps beyond the
        chunk cannot be guided anyway.
        """
        if obs.leftover.shape[0] == 0:
            return None, None
        order = self._order(obs.joint_names)
        tail = obs.leftover[:chunk_size][:, order]  # [n, J] rad, contract order
        prev = self.units.to_dataset(tail)[None].astype(np.float32)  # [1, n, J]
        return prev, min(int(obs.inference_delay_steps), chunk_size)

    def chunk(self, obs: ObservationData, actions: np.ndarray, *, inference_ms: float,
              policy_id: str) -> ActionChunkData:
        """The answer: predicted actions [T, J] or [1, T, J] (dataset units) as a chunk in rad.

        Stamped with the observation's stamp and request id; dt is the contract's 1/fps. The
        actions are checked by the layers that own their shape (docs/ARCHITECTURE.md, "Shape
        checks"): DatasetUnits the joint axis, ActionChunkData [T >= 1, J] and finiteness; their
        errors come out as PolicyRequestError, naming the policy as the culprit.
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim == 3 and actions.shape[0] == 1:
            actions = actions[0]  # [T, J]
        try:
            rad = self.units.to_ros(actions)  # [T, J]
            return ActionChunkData(
                stamp_ns=obs.stamp_ns, request_id=obs.request_id,
                joint_names=self.contract.joint_names, dt=self.contract.dt,
                positions=rad.astype(np.float32), inference_ms=float(inference_ms),
                policy_id=policy_id)
        except ValueError as exc:  # InvalidChunkError is one
            raise PolicyRequestError(f'policy returned actions of shape {actions.shape} that '
                                     f'make no chunk: {exc}') from exc


def describe_mismatch(error: Exception, io: PolicyIO, checkpoint: str) -> str:
    """One message for a contract/checkpoint mismatch found at start: what, where, how to fix."""
    mapping = ', '.join(f'{c} -> {io.rename[c]}' for c in io.contract.camera_names)
    return (f'checkpoint {checkpoint!r} does not match contract {io.contract.source}: {error}. '
            f'Contract cameras feed [{mapping}]; map them with the rename_map parameter, e.g. '
            f'rename_map:=front=camera1,wrist=camera2')
