"""SmolVLA latency per 50-action chunk (p50/p95) and peak memory, prefix KV cache vs naive.

Builds the smolvla_base geometry (450M parameters, random init: the timing does not depend on the
weights), and times `SmolVLAPolicy.predict_chunk` end to end (image resize-with-pad, state
normalization, prefix, 10 Euler steps, unnormalization) for 2 and 3 cameras, each camera count in
a fresh subprocess. The naive path recomputes the whole prefix through the VLM at every flow step
(use_cache=False); it runs in the same process, alternating with the cached path, so that load
from other processes hits both alike and the ratio stays fair. Peak memory is taken per path over
one chunk: on the CPU the process's RSS high-water mark (VmHWM, reset after loading; tracemalloc
does not see torch's allocations), on CUDA torch.cuda.max_memory_allocated.

    python bench/policy_latency.py                       # CPU fp32, few iterations (minutes)
    python bench/policy_latency.py --device cuda --dtype bfloat16 --compile
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from _machine import cpu_model

RESULTS = Path(__file__).resolve().parent / 'results' / 'policy_latency.json'
IMAGE_SHAPE = (3, 480, 640)  # a typical camera frame; resized with padding to 512x512



def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a small sample."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0: '5' > /proc/self/clear_refs).

    Without it the peak would include the transient memory of building the model.
    """
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak RSS since the last reset (VmHWM), else since the start (getrusage), MiB."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Current resident set size, MiB (from /proc; psutil is not required)."""
    try:
        pages = int(Path('/proc/self/statm').read_text().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError, IndexError):
        return float('nan')


# ------------------------------------------------------------------------------------------------
# child: one configuration


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    import torch

    from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy

    device = torch.device(spec['device'])
    dtype = getattr(torch, spec['dtype'])
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch reports no CUDA device')
    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    torch.manual_seed(0)
    base = SmolVLAConfig.preset('smolvla_base')
    cams = [k for k in base.image_features][: spec['cameras']]
    features = {k: v for k, v in base.input_features.items() if k in cams or v.type != 'VISUAL'}
    config = dataclasses.replace(base, input_features=features, num_steps=spec['num_steps'])
    policy = SmolVLAPolicy(config).to(device)
    if dtype != torch.float32:
        policy.set_dtype(dtype)
    policy.eval()
    if spec['compile']:
        policy.model.sample_actions = torch.compile(policy.model.sample_actions,
                                                    mode=spec['compile_mode'])

    g = torch.Generator().manual_seed(0)
    batch: dict[str, Any] = {k: torch.rand(1, *IMAGE_SHAPE, generator=g).to(device) for k in cams}
    batch['observation.state'] = torch.randn(1, 6, generator=g).to(device)
    # The SmolVLM2 tokenizer is not available offline: feed 48 token ids as the preprocessor
    # would produce them (a 20-token task, right padded to tokenizer_max_length).
    length = config.tokenizer_max_length
    tokens = torch.randint(0, 49152, (1, length), generator=g)
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[:, :20] = True
    batch['observation.language.tokens'] = tokens.to(device)
    batch['observation.language.attention_mask'] = mask.to(device)
    noise = torch.randn(1, config.chunk_size, config.max_action_dim, generator=g).to(device)

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()

    paths = [True] + ([] if spec['no_naive'] else [False])  # use_cache values
    if device.type == 'cuda':
        torch.cuda.synchronize()
        model_mib = torch.cuda.memory_allocated() / 2**20
    else:
        model_mib = current_rss_mib()

    def timed(use_cache: bool) -> float:
        sync()
        t0 = time.perf_counter()
        actions = policy.predict_chunk(batch, noise=noise, use_cache=use_cache)
        sync()
        elapsed = (time.perf_counter() - t0) * 1000.0
        if not torch.isfinite(actions).all() or tuple(actions.shape) != (1, config.chunk_size, 6):
            raise SystemExit(f'bad output {tuple(actions.shape)}')
        return elapsed

    for _ in range(spec['warmup']):
        for use_cache in paths:
            timed(use_cache)
    # Memory: one run per path, with the peak counter reset before each (these runs are timed
    # samples too). Then the remaining runs alternate between the paths, so that load from other
    # processes hits both alike and the ratio stays fair on a shared machine.
    times: dict[bool, list[float]] = {u: [] for u in paths}
    peaks: dict[bool, float] = {}
    peak_kind = 'cuda allocated'
    for use_cache in paths:
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        elif not reset_peak_rss():
            peak_kind = 'process RSS (peak includes loading: VmHWM reset unavailable)'
        times[use_cache].append(timed(use_cache))
        if device.type == 'cuda':
            peaks[use_cache] = torch.cuda.max_memory_allocated() / 2**20
        else:
            peaks[use_cache] = peak_rss_mib()
            peak_kind = 'process RSS' if peak_kind == 'cuda allocated' else peak_kind
    wanted = {True: spec['iters'], False: spec['naive_iters']}
    while any(len(times[u]) < wanted[u] for u in paths):
        for use_cache in paths:
            if len(times[use_cache]) < wanted[use_cache]:
                times[use_cache].append(timed(use_cache))

    def summary(use_cache: bool) -> dict[str, Any]:
        ts = times[use_cache]
        return {'cameras': spec['cameras'], 'use_cache': use_cache, 'iters': len(ts),
                'warmup': spec['warmup'], 'p50_ms': percentile(ts, 50),
                'p95_ms': percentile(ts, 95), 'min_ms': min(ts), 'mean_ms': statistics.fmean(ts),
                'times_ms': ts, 'model_mib': model_mib, 'peak_mib': peaks[use_cache],
                'inference_mib': peaks[use_cache] - model_mib, 'memory_kind': peak_kind,
                'prefix_tokens': spec['cameras'] * 64 + length + 1,
                'params': sum(p.numel() for p in policy.parameters()),
                'threads': torch.get_num_threads()}

    result = {'cached': summary(True), 'naive': None if spec['no_naive'] else summary(False),
              'load_avg': os.getloadavg()}
    return result


# ------------------------------------------------------------------------------------------------
# parent: the table


def run_config(args: argparse.Namespace, cameras: int) -> dict[str, Any]:
    """Both paths for one camera count, in a fresh subprocess (its own memory and build)."""
    spec = {
        'device': args.device, 'dtype': args.dtype, 'compile': args.compile,
        'compile_mode': args.compile_mode, 'cameras': cameras, 'num_steps': args.num_steps,
        'threads': args.threads, 'warmup': args.warmup, 'iters': args.iters,
        'naive_iters': args.naive_iters, 'no_naive': args.no_naive,
    }
    proc = subprocess.run([sys.executable, __file__, '--child', json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'configuration {spec} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16', 'float16'])
    parser.add_argument('--compile', action='store_true', help='torch.compile sample_actions')
    parser.add_argument('--compile-mode', default='max-autotune',
                        help="torch.compile mode ('reduce-overhead' uses CUDA graphs)")
    parser.add_argument('--cameras', type=int, nargs='+', default=[2, 3])
    parser.add_argument('--num-steps', type=int, default=10, help='flow-matching Euler steps')
    parser.add_argument('--iters', type=int, default=None,
                        help='timed chunks with the KV cache (default 3 on CPU, 30 on CUDA)')
    parser.add_argument('--naive-iters', type=int, default=None,
                        help='timed chunks without the cache (default 2 on CPU, 30 on CUDA)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='untimed chunks per path first (default 1 on CPU, 5 on CUDA)')
    parser.add_argument('--no-naive', action='store_true', help='skip the naive comparison')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--out', type=Path, default=RESULTS)
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    if args.compile and args.device == 'cpu':
        parser.error('--compile is for CUDA runs (use --device cuda)')
    cpu = args.device == 'cpu'
    args.iters = args.iters or (3 if cpu else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if cpu else 5)
    args.naive_iters = args.naive_iters or (2 if cpu else 30)

    import torch

    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'torch': torch.__version__,
               'python': platform.python_version(), 'device': args.device, 'dtype': args.dtype,
               'compile': args.compile and args.compile_mode}
    if not cpu:
        if not args.device.startswith('cuda') or not torch.cuda.is_available():
            print(f'policy_latency: device {args.device!r} is not available here (torch '
                  f'{torch.__version__}, CUDA available: {torch.cuda.is_available()})',
                  file=sys.stderr)
            return 2
        machine['gpu'] = torch.cuda.get_device_name(0)
    print(f'SmolVLA (smolvla_base geometry, random init) per-chunk latency: {args.num_steps} flow '
          f'steps, 50 actions, batch 1, {args.device} {args.dtype}'
          f'{" compiled " + args.compile_mode if args.compile else ""}')
    print(f'machine: {machine["nproc"]} cores, {machine["cpu"]}, torch {machine["torch"]}'
          + (f', {machine.get("gpu")}' if 'gpu' in machine else ''))
    print(f'iterations: {args.iters} cached, {args.naive_iters} naive, alternating, after '
          f'{args.warmup} warm-up each'
          + ('; few on purpose on a CPU, so p95 is near the max of a small sample' if cpu else '')
          + f'; load average at start {os.getloadavg()[0]:.1f}', flush=True)
    rows = []
    for cams in args.cameras:
        row = run_config(args, cams)
        naive = row['naive']
        row['speedup_p50'] = naive['p50_ms'] / row['cached']['p50_ms'] if naive else None
        rows.append(row)
        print(f'  {cams} cameras done (load average {row["load_avg"][0]:.1f})', flush=True)

    header = (f'{"cams":>4} {"prefix":>6} {"path":>6} {"p50 ms":>9} {"p95 ms":>9} '
              f'{"min ms":>9} {"n":>3} '
              f'{"model MiB":>9} {"peak MiB":>9} {"+infer MiB":>10} {"naive/cached":>12}')
    print(header)
    print('-' * len(header))
    for row in rows:
        for name in ('cached', 'naive'):
            r = row[name]
            if r is None:
                continue
            ratio = f'{row["speedup_p50"]:.2f}x' if name == 'naive' else ''
            print(f'{r["cameras"]:>4} {r["prefix_tokens"]:>6} {name:>6} {r["p50_ms"]:>9.1f} '
                  f'{r["p95_ms"]:>9.1f} {r["min_ms"]:>9.1f} {r["iters"]:>3} '
                  f'{r["model_mib"]:>9.0f} '
                  f'{r["peak_mib"]:>9.0f} {r["inference_mib"]:>10.0f} {ratio:>12}')
    mem_kind = rows[0]['cached']['memory_kind'] if rows else ''
    print(f'memory: {mem_kind}; model = after building, peak = max during one chunk of that '
          f'path, +infer = peak - model')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'benchmark': 'policy_latency', 'machine': machine,
                                    'num_steps': args.num_steps, 'rows': rows}, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
