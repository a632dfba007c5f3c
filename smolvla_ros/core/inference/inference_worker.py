"""The policy server's inference thread: one request at a time, off the ROS executor (ROS-free).

Why a dedicated thread: the ROS executor must stay free for diagnostics and discovery while a
chunk is computed (style item 8), and a GPU policy is best driven from one long-lived thread
(CUDA streams, torch.compile and CUDA graphs are per thread). The worker takes any
``predict(batch, prev_chunk_left_over, inference_delay) -> actions`` callable, so it is tested
with a plain function and no torch.

Per request: batch (PolicyIO) -> predict -> optional ``extra_latency_ms`` (emulates a slower
machine) -> chunk in rad. Latency statistics cover the whole server-side time. ``submit`` queues a
request and returns at once (the single-threaded policy_server awaits the future in a coroutine);
``answer`` blocks until the chunk is ready (warm-up, tests). Both count the request in the inference
thread before its future completes, so whoever sees a result also sees it in ``stats()``. The
counters and the latency window are written in the inference thread and read by the node's
executor thread, so both sides go through the worker's lock (docs/ARCHITECTURE.md, "Threading").
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
import math
import threading
import time
from typing import Any

import numpy as np

from smolvla_ros.core.inference.policy_io import PolicyIO
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


@dataclass(frozen=True)
class WorkerStats:
    """A consistent snapshot of the worker's counters and latency window."""

    answered: int
    failed: int
    latency: LatencySummary  # server-side ms per answer


class InferenceWorker:
    """Runs ``predict`` in its own thread, one request after the other (module docstring)."""

    def __init__(self, predict: PredictFn, io: PolicyIO, config: WorkerConfig,
                 initializer: Callable[[], None] | None = None) -> None:
        self._predict = predict
        self.io = io
        self.config = config
        self._pool = ThreadPoolExecutor(1, 'inference', initializer=initializer)
        self._lock = threading.Lock()
        self._latency = LatencyRecorder(config.latency_window)  # server-side ms per answer
        self._answered = 0
        self._failed = 0

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

    def _counted(self, obs: ObservationData) -> ActionChunkData:
        """``_run`` plus the accounting, in the inference thread (before the future completes)."""
        try:
            chunk = self._run(obs)
        except BaseException:
            self._count_failure()
            raise
        with self._lock:
            self._answered += 1
            self._latency.add(chunk.inference_ms)
        return chunk

    def _count_failure(self) -> None:
        with self._lock:
            self._failed += 1

    def submit(self, obs: ObservationData) -> Future[ActionChunkData]:
        """Queue one request; the future holds its chunk or the error (``answer`` would raise).

        A request refused because the worker is shut down raises RuntimeError here and counts
        as failed, like one that fails in the thread.
        """
        try:
            return self._pool.submit(self._counted, obs)
        except RuntimeError:
            self._count_failure()
            raise

    def answer(self, obs: ObservationData) -> ActionChunkData:
        """The chunk for one request, computed in the inference thread (errors propagate)."""
        return self.submit(obs).result()

    def reset_statistics(self) -> None:
        """Forget the requests so far (warm-up runs are not service requests)."""
        with self._lock:
            self._latency.clear()
            self._answered = 0
            self._failed = 0

    def stats(self) -> WorkerStats:
        """Answered and failed requests and the latency window, read together under the lock."""
        with self._lock:
            return WorkerStats(self._answered, self._failed, self._latency.summary())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
