"""The policy server's inference thread: one request at a time, off the ROS executor (ROS-free).

Why a dedicated thread: the ROS executor must stay free for diagnostics and discovery while a
chunk is computed (style item 8), and a GPU policy is best driven from one long-lived thread
(CUDA streams, torch.compile and CUDA graphs are per thread). The worker takes any
``predict(batch, prev_chunk_left_over, inference_delay) -> actions`` callable, so it is tested
with a plain function and no torch.

Per request: batch (PolicyIO) -> predict -> optional ``extra_latency_ms`` (emulates a slower
machine, DESIGN §8) -> chunk in rad. Latency statistics cover the whole server-side time.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import math
import threading
import time
from typing import Any

import numpy as np

from smolvla_ros.core.policy_io import PolicyIO
from smolvla_ros.core.stats import LatencyRecorder, LatencySummary
from smolvla_ros.core.types import ActionChunkData, ObservationData

PredictFn = Callable[[dict[str, Any], np.ndarray | None, int | None], np.ndarray]


@dataclass(frozen=True)
class WorkerConfig:
    chunk_size: int  # steps the policy predicts (caps the RTC tail and delay)
    policy_id: str = ''
    extra_latency_ms: float = 0.0
    latency_window: int = 200

    def __post_init__(self) -> None:
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or (
                self.chunk_size < 1):
            raise ValueError(f'chunk_size must be an int >= 1, got {self.chunk_size!r}')
        if not (math.isfinite(self.extra_latency_ms) and self.extra_latency_ms >= 0):
            raise ValueError(f'extra_latency_ms must be a finite number >= 0, got '
                             f'{self.extra_latency_ms!r}')


class InferenceWorker:
    """Runs ``predict`` in its own thread; ``answer`` blocks the caller until the chunk is ready."""

    def __init__(self, predict: PredictFn, io: PolicyIO, config: WorkerConfig,
                 initializer: Callable[[], None] | None = None) -> None:
        self._predict = predict
        self.io = io
        self.config = config
        self._pool = ThreadPoolExecutor(1, 'inference', initializer=initializer)
        self._lock = threading.Lock()
        self.latency = LatencyRecorder(config.latency_window)  # server-side ms per answer
        self.answered = 0
        self.failed = 0

    def _run(self, obs: ObservationData) -> ActionChunkData:
        start = time.perf_counter()
        batch = self.io.batch(obs)
        prev, delay = self.io.rtc_inputs(obs, self.config.chunk_size)
        actions = self._predict(batch, prev, delay)  # [1, T, J] or [T, J], dataset units
        if self.config.extra_latency_ms > 0:
            time.sleep(self.config.extra_latency_ms / 1e3)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return self.io.chunk(obs, np.asarray(actions), inference_ms=elapsed_ms,
                             policy_id=self.config.policy_id)

    def answer(self, obs: ObservationData) -> ActionChunkData:
        """The chunk for one request, computed in the inference thread (errors propagate)."""
        try:
            chunk = self._pool.submit(self._run, obs).result()
        except BaseException:
            with self._lock:
                self.failed += 1
            raise
        with self._lock:
            self.answered += 1
            self.latency.add(chunk.inference_ms)
        return chunk

    def summary(self) -> LatencySummary:
        with self._lock:
            return self.latency.summary()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
