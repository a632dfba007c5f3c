"""Async vs sync chunk execution under injected policy latency, fusion seams, tick cost and jitter.

What it measures, with the real ``ExecutorCore`` (the logic the chunk_executor node runs) and no
ROS graph, so figures are the executor's own and reproducible on a loaded machine:

1. Latency sweep (simulated clock, 30 fps contract, 50-action chunks, control at 30 Hz, 20 s per
   run): for injected round trips of 0/100/300/600 ms, async vs sync: the share of ticks the arm
   waits (holds for lack of a plan, after the first chunk), planned (non-hold) commands per second,
   requests and dropped chunks.
2. Seam jump per fusion method at 300 ms, async, on one reference motion: each chunk is the
   reference f(stamp + k*dt) plus a per-chunk bias (N(0, 0.02 rad) per joint, same seed for every
   method), i.e. a policy whose successive chunks disagree a little, as real ones do. Seam jump =
   largest per-joint step of the planned command at a chunk switch (rad); step_max = largest step
   anywhere else.
3. Tick CPU time (``time.thread_time`` around ``ExecutorCore.tick``) and wake-up jitter of a
   real-time loop (sleep until each deadline; |wake - deadline|) at 30 and 100 Hz for 3 s each,
   with a chunk flowing. This is the core's cost and Python's scheduling on this machine; the
   node adds rclpy's timer and publish on top (it reports tick_p95_ms and jitter_p95_ms in
   /diagnostics).

Run: ``python bench/async_vs_sync.py`` (about 15 s); prints markdown tables and writes
bench/results/async_vs_sync.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import time

from _machine import cpu_model
import numpy as np

from smolvla_ros.core.executor.executor_core import ExecutorConfig, ExecutorCore
from smolvla_ros.core.executor.fusion import FUSION_NAMES
from smolvla_ros.core.types import ActionChunkData, ObservationData

RESULTS = Path(__file__).resolve().parent / 'results'
JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
FPS, CHUNK = 30.0, 50
LATENCIES_MS = (0, 100, 300, 600)


def reference(t_ns: np.ndarray) -> np.ndarray:
    """The reference motion f(t), [..., J] rad: slow sines with per-joint phase."""
    t = np.asarray(t_ns, dtype=np.float64)[..., None] / 1e9
    return 0.5 * np.sin(2 * np.pi * t / 4.0 + np.arange(len(JOINTS)) * 0.6)



def simulate(mode: str, fusion: str, latency_ms: float, *, seconds: float = 20.0,
             control_hz: float = 30.0, bias_rad: float = 0.0, seed: int = 0) -> dict:
    """Run the core on a simulated clock; answers arrive latency_ms after each request."""
    core = ExecutorCore(ExecutorConfig(JOINTS, fps=FPS, control_hz=control_hz, mode=mode,
                                       fusion=fusion, initial_latency_s=latency_ms / 1e3))
    rng = np.random.default_rng(seed)
    dt_ns, tick_ns = round(1e9 / FPS), round(1e9 / control_hz)
    latency_ns = round(latency_ms * 1e6) + 1_000_000  # + 1 ms transport
    pending: list[tuple[int, int, ActionChunkData]] = []  # (arrival, sent, chunk)
    planned = 0
    t = 1_000_000_000
    end = t + round(seconds * 1e9)
    while t < end:
        for item in [p for p in pending if p[0] <= t]:
            pending.remove(item)
            core.on_chunk(item[2], item[1], item[0])
        if core.tick(t).status == 'plan':
            planned += 1
        if core.should_request(t):
            obs = ObservationData(stamp_ns=t, request_id=0, task='', joint_names=JOINTS,
                                  state=reference(t))
            request = core.make_request(obs, t)
            times = t + np.arange(CHUNK, dtype=np.int64) * dt_ns  # [T]
            bias = rng.normal(0.0, bias_rad, len(JOINTS)) if bias_rad else 0.0
            chunk = ActionChunkData(stamp_ns=t, request_id=request.request_id,
                                    joint_names=JOINTS, dt=1 / FPS,
                                    positions=reference(times) + bias)
            pending.append((t + latency_ns, t, chunk))
        t += tick_ns
    snap = core.metrics()
    return {'mode': mode, 'fusion': fusion, 'latency_ms': latency_ms,
            'wait_fraction': snap.starvation_fraction,
            'commands_per_s': planned / seconds, 'requests': snap.requests,
            'drops': snap.drops, 'seams': snap.seams, 'seam_jump_mean': snap.seam_jump_mean,
            'seam_jump_max': snap.seam_jump_max, 'step_max': snap.step_max}


def realtime(control_hz: float, seconds: float = 3.0) -> dict:
    """Tick CPU time and wake-up jitter of a sleep-until loop driving the core in real time."""
    core = ExecutorCore(ExecutorConfig(JOINTS, fps=FPS, control_hz=control_hz))
    period = 1.0 / control_hz
    cpu_us, jitter_ms = [], []
    start = time.monotonic()
    deadline = start
    clock0 = time.monotonic_ns()
    while deadline - start < seconds:
        deadline += period
        time.sleep(max(0.0, deadline - time.monotonic()))
        jitter_ms.append(abs(time.monotonic() - deadline) * 1e3)
        now = time.monotonic_ns() - clock0 + 1_000_000_000
        c0 = time.thread_time()
        core.tick(now)
        if core.should_request(now):
            obs = ObservationData(stamp_ns=now, request_id=0, task='', joint_names=JOINTS,
                                  state=reference(now))
            req = core.make_request(obs, now)
            times = now + np.arange(CHUNK, dtype=np.int64) * round(1e9 / FPS)
            core.on_chunk(ActionChunkData(now, req.request_id, JOINTS, 1 / FPS,
                                          reference(times)), now, now)
        cpu_us.append((time.thread_time() - c0) * 1e6)
    return {'control_hz': control_hz, 'ticks': len(cpu_us),
            'tick_cpu_us_p50': float(np.percentile(cpu_us, 50)),
            'tick_cpu_us_p95': float(np.percentile(cpu_us, 95)),
            'jitter_ms_p50': float(np.percentile(jitter_ms, 50)),
            'jitter_ms_p95': float(np.percentile(jitter_ms, 95)),
            'jitter_ms_max': float(np.max(jitter_ms))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='simulated seconds per run')
    args = parser.parse_args(argv)
    sweep = [simulate(mode, 'crossfade', lat, seconds=args.seconds)
             for lat in LATENCIES_MS for mode in ('async', 'sync')]
    seams = [simulate('async', f, 300, seconds=args.seconds, bias_rad=0.02)
             for f in FUSION_NAMES]
    ticks = [realtime(hz) for hz in (30.0, 100.0)]
    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'python': platform.python_version()}
    print(f'# async vs sync ({machine["nproc"]} cores, {machine["cpu"]})\n')
    print('| latency ms | mode | wait fraction | commands/s | requests | drops |')
    print('|---|---|---|---|---|---|')
    for r in sweep:
        print(f'| {r["latency_ms"]} | {r["mode"]} | {r["wait_fraction"]:.3f} | '
              f'{r["commands_per_s"]:.1f} | {r["requests"]} | {r["drops"]} |')
    print('\n| fusion (300 ms, async) | seams | seam jump mean rad | seam jump max rad | '
          'step max rad |')
    print('|---|---|---|---|---|')
    for r in seams:
        print(f'| {r["fusion"]} | {r["seams"]} | {r["seam_jump_mean"]:.4f} | '
              f'{r["seam_jump_max"]:.4f} | {r["step_max"]:.4f} |')
    print('\n| control Hz | ticks | tick CPU p50 us | tick CPU p95 us | jitter p50 ms | '
          'jitter p95 ms | jitter max ms |')
    print('|---|---|---|---|---|---|---|')
    for r in ticks:
        print(f'| {r["control_hz"]:g} | {r["ticks"]} | {r["tick_cpu_us_p50"]:.0f} | '
              f'{r["tick_cpu_us_p95"]:.0f} | {r["jitter_ms_p50"]:.3f} | '
              f'{r["jitter_ms_p95"]:.3f} | {r["jitter_ms_max"]:.3f} |')
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / 'async_vs_sync.json'
    out.write_text(json.dumps({'machine': machine, 'latency_sweep': sweep, 'fusion_seams': seams,
                               'tick': ticks}, indent=2))
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
