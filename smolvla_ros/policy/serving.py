"""Serving a SmolVLA checkpoint for one robot contract: load, check, predict, warm up (no ROS).

The ``policy_server`` node and ``smolvla-ros eval`` (smolvla_ros/sim/evaluation.py) serve a
checkpoint the same way, so this is the one place that does it: load the checkpoint (a LeRobot
policy directory or a preset name), check its image/state/action features against the contract's
cameras after the rename map (:class:`~smolvla_ros.core.inference.policy_io.PolicyIO`), wrap
``SmolVLAPolicy.predict_chunk`` as the ``predict(batch, prev, delay)`` callable that
:class:`~smolvla_ros.core.inference.inference_worker.InferenceWorker` runs, and warm it up before it
serves.

torch is imported inside the functions (through smolvla_ros.policy.policy), so this module, and
the node that imports :class:`PolicySetupError` from it, import without torch.
"""
from __future__ import annotations

from collections.abc import Callable
import logging
import time
from typing import Any

import numpy as np

from smolvla_ros.core.inference.inference_worker import InferenceWorker, PredictFn
from smolvla_ros.core.inference.policy_io import PolicyIO, describe_mismatch
from smolvla_ros.core.types import ObservationData

logger = logging.getLogger(__name__)

DTYPES = ('float32', 'bfloat16', 'float16')


class PolicySetupError(ValueError):
    """The checkpoint, contract or serving options do not fit together (raised at start)."""


def load_policy(checkpoint: str, io: PolicyIO, *, device: str = 'cpu', dtype: str = 'float32',
                threads: int = 0, compile_model: bool = False, compile_mode: str = 'default',
                force_dtype: bool = False, log: Callable[[str], None] = logger.info) -> Any:
    """The SmolVLAPolicy of ``checkpoint`` in eval mode, its features checked against ``io``.

    A checkpoint whose cameras or dims do not match the contract (after the rename map) raises
    PolicySetupError naming the keys and the rename_map remedy (policy_io.describe_mismatch).
    ``threads`` > 0 sets torch's intra-op threads (process-wide). bfloat16/float16 on a device
    without native support for them run in float32 unless ``force_dtype`` (or
    SMOLVLA_ROS_FORCE_DTYPE=1; policy/precision.py): ``policy.dtype`` says which was used.
    ``compile_model`` compiles the sampler with torch.compile ``compile_mode``
    (SmolVLAPolicy.compile_sampler); the first chunk, i.e. the warm-up, pays the compilation.
    """
    if dtype not in DTYPES:
        raise PolicySetupError(f'dtype must be one of {DTYPES}, got {dtype!r}')
    if threads < 0:
        raise PolicySetupError(f'torch threads must be >= 0, got {threads}')
    import torch  # here, not at module level: the node imports this module without torch

    from smolvla_ros.policy.policy import FeatureMismatchError, SmolVLAPolicy
    if threads:
        torch.set_num_threads(threads)
    start = time.monotonic()
    policy = SmolVLAPolicy.from_pretrained(checkpoint, device=device,
                                           dtype=getattr(torch, dtype), force_dtype=force_dtype)
    try:
        policy.validate_features(io.image_keys, state_dim=io.num_joints,
                                 action_dim=io.num_joints)
    except FeatureMismatchError as exc:
        raise PolicySetupError(describe_mismatch(exc, io, str(checkpoint))) from None
    if compile_model:
        policy.compile_sampler(compile_mode)
    used = str(policy.dtype).removeprefix('torch.')
    log(f'loaded {checkpoint} in {time.monotonic() - start:.1f} s ({used}'
        + (f' instead of {dtype}: no native {dtype} here' if used != dtype else '')
        + (f', compiled {compile_mode}' if compile_model else '') + ')')
    return policy


def predict_fn(policy: Any, num_steps: int | None = None) -> PredictFn:
    """``predict(batch, prev, delay) -> actions`` [1, T, J] float32 numpy, dataset units.

    ``num_steps`` (None or 0: the checkpoint's value) overrides the flow-matching steps.
    """
    steps = num_steps or None

    def predict(batch: dict[str, Any], prev: np.ndarray | None,
                delay: int | None) -> np.ndarray:
        actions = policy.predict_chunk(batch, prev_chunk_left_over=prev,
                                       inference_delay=delay, num_steps=steps)
        return actions.float().cpu().numpy()  # [1, T, J]
    return predict


def seed_sampling(seed: int) -> None:
    """Seed the flow-matching noise: torch's global generator, which the sampler draws from.

    torch seeds that generator differently in every process, so without this two evaluations of
    the same policy on the same seeds differ episode by episode. The simulated episodes seed it
    with the episode's seed (sim/episode_runner.run_episode), so an episode's result depends on
    neither the process nor the episodes before it.
    """
    import torch  # here, not at module level: the node imports this module without torch
    torch.manual_seed(seed)


def warmup_observation(io: PolicyIO) -> ObservationData:
    """A mid-grey observation at the policy image size (what the executor sends)."""
    c = io.contract
    images = {cam: np.full((*c.policy_image_shape(cam), 3), 128, np.uint8)
              for cam in c.camera_names}
    return ObservationData(stamp_ns=0, request_id=0, task='warm up', joint_names=c.joint_names,
                           state=np.zeros(len(c.joints)), camera_names=c.camera_names,
                           images=images)


def slow_warmup(times_ms: list[float], max_latency_ms: float, horizon_ms: float) -> str | None:
    """Why the warm-up runs say the policy is too slow to keep the arm moving, or None.

    The fastest run is judged (the first pays compilation and caches, a busy machine slows any
    one run); ``max_latency_ms`` <= 0 judges nothing.
    """
    if not times_ms or not 0 < max_latency_ms < min(times_ms):
        return None
    return (f'warm-up inference took {min(times_ms):.0f} ms at best, more than max_latency_ms '
            f'{max_latency_ms:.0f} ms (the chunk horizon is {horizon_ms:.0f} ms): the arm would '
            'stop between chunks. Use a GPU, bfloat16, fewer num_steps or compile')


def warm_up(worker: InferenceWorker, runs: int, max_latency_ms: float,
            log: Callable[[str], None] = logger.info, refuse: bool = True) -> list[float]:
    """Run ``runs`` predictions; with ``refuse``, PolicySetupError when even the fastest is too
    slow (:func:`slow_warmup`).

    A policy slower than its chunk horizon starves the executor between every two chunks
    whatever the fusion. Whether that should stop the server is the caller's choice: the
    policy_server node serves anyway and warns by default (a loaded machine can make a warm-up
    slow that later requests are not), and refuses only when asked. The worker's statistics are
    reset afterwards: warm-up runs are not requests. Returns the run times (ms).
    """
    if runs < 0:
        raise PolicySetupError(f'warm-up runs must be >= 0, got {runs}')
    obs = warmup_observation(worker.io)
    times_ms = []
    for i in range(runs):
        times_ms.append(worker.answer(obs).inference_ms)
        log(f'warm-up {i + 1}/{runs}: {times_ms[-1]:.0f} ms')
    worker.reset_statistics()
    horizon_ms = worker.config.chunk_size * worker.io.contract.dt * 1e3
    problem = slow_warmup(times_ms, max_latency_ms, horizon_ms)
    if problem is not None and refuse:
        raise PolicySetupError(f'{problem}, or set max_latency_ms:=-1 to serve anyway')
    return times_ms
