"""SmolVLA latency per 50-action chunk by precision and compilation, against the FLOP floor.

Builds the smolvla_base geometry from its config (450M parameters, random init, nothing
downloaded: the timing does not depend on the weights) and times `SmolVLAPolicy.predict_chunk`
end to end (image resize-with-pad, state normalization, prefix, 10 Euler steps with the prefix
KV cache, unnormalization). Modes (`--modes`):

    fp32            float32 eager
    bf16            LeRobot's bf16 layout (SmolVLAPolicy.set_dtype: fp32 projections)
    compiled-fp32   SmolVLAPolicy.compile_sampler (torch.compile of the prefix embedding, the
    compiled-bf16   prefix pass and one denoising step; inductor, C++ on the CPU)
    naive-fp32      float32 eager, prefix recomputed every flow step (use_cache=False)

All modes of one camera count run in ONE subprocess and alternate chunk by chunk, so load from
other processes hits every mode alike and the ratios stay fair on a shared machine (the compiled
modes share the eager modes' weights). Every row gives:

* p50 / p95 / min ms per chunk, and the first chunk (the compiled modes' compilation);
* GFLOP per chunk, counted with torch.utils.flop_counter.FlopCounterMode over one eager fp32
  chunk (every mode runs the same matrix products), and the vision tower's share;
* achieved GFLOP/s (GFLOP / p50) and the floor: the time the chunk would take if every FLOP ran
  at the machine's large-GEMM rate in that dtype (a 1024^3 F.linear timed between the chunks,
  same threads); "of floor" = floor / p50;
* the mode's weights (MiB), and its memory measured in a separate process that holds only that
  mode (--no-memory skips it): peak MiB = the process's RSS high-water mark (VmHWM; tracemalloc
  does not see torch's allocations) over a chunk that follows a warm-up chunk (and the
  compilation), reset after building; +inference MiB = peak - RSS once built; on CUDA
  torch.cuda.max_memory_allocated and memory_allocated;
* max |actions - fp32 eager's| for the same inputs and noise (random weights: a smoke check;
  accuracy on real weights is in docs/policy.md).

With a LeRobot venv (--lerobot-python PATH or $SMOLVLA_LEROBOT_PYTHON; docs/policy.md, "The
LeRobot column") the table gains a `lerobot-fp32` row: LeRobot 0.6.1's own SmolVLAPolicy built at
the same geometry from a stand-in SmolVLM directory (bench/_lerobot_column.py), in its own process
(bench/_lerobot_child.py), timed by `predict_action_chunk` on the same inputs and noise, one
LeRobot chunk after each round of our modes; its floor uses its own torch's GEMM rate and its
memory is measured in that process as for ours. `vs LeRobot` = LeRobot's p50 / the mode's p50;
`paired` = the median over the rounds of LeRobot's chunk / the mode's chunk in the same round
(load that comes and goes within a run cancels out of each pair).

    python bench/policy_latency.py                        # CPU, 2 cameras, the four modes
    python bench/policy_latency.py --device cuda --modes fp32 bf16 compiled-bf16 --iters 30
    python bench/policy_latency.py --lerobot-python /path/to/lerobot_venv/bin/python
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
from pathlib import Path
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from _machine import cpu_model

LEROBOT_MODE = 'lerobot-fp32'

RESULTS = Path(__file__).resolve().parent / 'results' / 'policy_latency.json'
IMAGE_SHAPE = (3, 480, 640)  # a typical camera frame; resized with padding to 512x512
MODES = {  # name: (dtype, compiled, use_cache)
    'fp32': ('float32', False, True),
    'bf16': ('bfloat16', False, True),
    'compiled-fp32': ('float32', True, True),
    'compiled-bf16': ('bfloat16', True, True),
    'naive-fp32': ('float32', False, False),
}
DEFAULT_MODES = ('fp32', 'bf16', 'compiled-fp32', 'compiled-bf16')
GEMM_N = 1024


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a small sample."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def paired_speedup(reference: list[float], times: list[float]) -> float | None:
    """Median over rounds of reference[i] / times[i] (round i of both: chunks that ran back to
    back, under the same load); None unless both ran every round."""
    if not times or len(reference) != len(times):
        return None
    return statistics.median(ref / t for ref, t in zip(reference, times, strict=True))


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0: '5' > /proc/self/clear_refs)."""
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
# child: one camera count, every mode


def shared_weights_view(policy: Any) -> Any:
    """A second SmolVLAPolicy object over the same parameters (so that compiling its sampler
    leaves the eager one eager, without a second copy of the weights)."""
    view = copy.copy(policy)
    view.__dict__['_modules'] = dict(policy._modules)
    model = copy.copy(policy.model)
    model.__dict__['_modules'] = dict(policy.model._modules)
    view._modules['model'] = model
    return view


def count_flops(policy: Any, batch: dict[str, Any], noise: Any, use_cache: bool) -> dict:
    """FLOPs of one chunk (matmuls, convolutions, attention) and the vision tower's part."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        policy.predict_chunk(batch, noise=noise, use_cache=use_cache)
    by_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    # FlopCounterMode names modules from their class: the tower and its connector.
    vision = by_module.get('SmolVLMVisionTransformer', 0) + by_module.get('SmolVLMConnector', 0)
    return {'total': counter.get_total_flops(), 'vision': vision}


def setup(spec: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any], Any]:
    """(torch, device, fp32 policy, batch, noise) for the spec's geometry and camera count."""
    import dataclasses

    import torch

    from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy

    device = torch.device(spec['device'])
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch reports no CUDA device')
    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    torch.manual_seed(0)
    base = SmolVLAConfig.preset(spec['preset'])
    cams = list(base.image_features)[: spec['cameras']]
    features = {k: v for k, v in base.input_features.items() if k in cams or v.type != 'VISUAL'}
    config = dataclasses.replace(base, input_features=features, num_steps=spec['num_steps'])
    fp32 = SmolVLAPolicy(config).to(device).eval()

    g = torch.Generator().manual_seed(0)
    batch: dict[str, Any] = {k: torch.rand(1, *IMAGE_SHAPE, generator=g).to(device) for k in cams}
    batch['observation.state'] = torch.randn(1, 6, generator=g).to(device)
    # The SmolVLM2 tokenizer is not available offline: feed 48 token ids as the preprocessor
    # would produce them (a 20-token task, right padded to tokenizer_max_length).
    length = config.tokenizer_max_length
    vocab = fp32.model.vlm_with_expert.vlm.config.text_config.vocab_size  # 49280 for base
    tokens = torch.randint(0, min(vocab, 49152), (1, length), generator=g)
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[:, :20] = True
    batch['observation.language.tokens'] = tokens.to(device)
    batch['observation.language.attention_mask'] = mask.to(device)
    noise = torch.randn(1, config.chunk_size, config.max_action_dim, generator=g).to(device)
    return torch, device, fp32, batch, noise


def run_memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of a process serving one mode: the RSS high-water mark (CUDA: allocated) over
    a chunk that follows a warm-up chunk, reset after the model was built and cast (and, for a
    compiled mode, compiled); a dtype the device only emulates gets no warm-up chunk."""
    from smolvla_ros.policy.precision import is_native

    torch, device, policy, batch, noise = setup(spec)
    dtype, compiled, use_cache = MODES[spec['mode']]
    if dtype != 'float32':
        policy.set_dtype(getattr(torch, dtype))
    if compiled:
        policy.compile_sampler(spec['compile_mode'])
    emulated = not is_native(getattr(torch, dtype), device)
    built = (torch.cuda.memory_allocated() / 2**20 if device.type == 'cuda'
             else current_rss_mib())
    if compiled or not emulated:
        policy.predict_chunk(batch, noise=noise, use_cache=use_cache)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_rss()
    policy.predict_chunk(batch, noise=noise, use_cache=use_cache)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == 'cuda'
            else peak_rss_mib())
    return {'mode': spec['mode'], 'built_mib': built, 'peak_mib': peak,
            'inference_mib': peak - built}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    torch, device, fp32, batch, noise = setup(spec)
    peer: Any = contextlib.nullcontext()
    if spec.get('lerobot'):
        from _lerobot_column import StartedPeer

        # SIGTERM as an exit, so that closing the peer removes its temporary directory.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        peer = StartedPeer(spec['lerobot'], fp32.config, {**batch, 'noise': noise},
                           spec['threads'], spec['device'])
    with peer as opened:
        return run_modes(spec, torch, device, fp32, batch, noise, opened)


def run_modes(spec: dict[str, Any], torch: Any, device: Any, fp32: Any, batch: dict[str, Any],
              noise: Any, peer: Any) -> dict[str, Any]:
    """Every mode of spec['modes'] (and LeRobot's chunk through `peer`, when given), alternating
    chunk by chunk; one result row per mode."""
    from smolvla_ros.policy.precision import is_native

    config = fp32.config
    length = config.tokenizer_max_length
    eager = {'float32': fp32}
    if any(MODES[m][0] == 'bfloat16' for m in spec['modes']):
        # set_dtype casts as asked: the bench measures bf16 whether or not it is native here.
        eager['bfloat16'] = copy.deepcopy(fp32).set_dtype(torch.bfloat16).eval()
    policies = {}
    for mode in spec['modes']:
        dtype, compiled, _ = MODES[mode]
        policies[mode] = (shared_weights_view(eager[dtype]).compile_sampler(spec['compile_mode'])
                          if compiled else eager[dtype])

    def sync() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()

    reference = fp32.predict_chunk(batch, noise=noise)
    flops = {True: count_flops(fp32, batch, noise, use_cache=True)}
    if any(not MODES[m][2] for m in spec['modes']):
        flops[False] = count_flops(fp32, batch, noise, use_cache=False)

    gemm_rates: dict[str, list[float]] = {d: [] for d in eager}
    mats = {d: (torch.randn(GEMM_N, GEMM_N, device=device).to(getattr(torch, d)),
                torch.randn(GEMM_N, GEMM_N, device=device).to(getattr(torch, d))) for d in eager}

    def gemm_rate(dtype: str, reps: int = 3) -> float:
        a, b = mats[dtype]  # F.linear, as the model's Linear layers (bf16 a @ b is slower)
        torch.nn.functional.linear(a, b)
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.nn.functional.linear(a, b)
        sync()
        return 2 * GEMM_N ** 3 * reps / (time.perf_counter() - t0) / 1e9

    diffs: dict[str, float] = {}

    def timed(mode: str) -> float:
        policy, use_cache = policies[mode], MODES[mode][2]
        sync()
        t0 = time.perf_counter()
        actions = policy.predict_chunk(batch, noise=noise, use_cache=use_cache)
        sync()
        elapsed = (time.perf_counter() - t0) * 1000.0
        if not torch.isfinite(actions).all() or tuple(actions.shape) != (1, config.chunk_size, 6):
            raise SystemExit(f'{mode}: bad output {tuple(actions.shape)}')
        diffs[mode] = max(diffs.get(mode, 0.0), float((actions - reference).abs().max()))
        return elapsed

    def log(text: str) -> None:  # progress on stderr (the parent passes it through)
        print(f'    [{spec["cameras"]} cams] {text} (load {os.getloadavg()[0]:.1f})',
              file=sys.stderr, flush=True)

    log(f'{flops[True]["total"] / 1e9:.0f} GFLOP per chunk')
    # A dtype the device only emulates (bf16 on a CPU without AVX512-BF16/AMX: 10-60x slower
    # GEMMs) gets --emulated-iters chunks (default 1): its first, or a compiled mode's first
    # after compilation.
    emulated = {m for m in spec['modes'] if not is_native(getattr(torch, MODES[m][0]), device)}
    wanted = {m: spec['emulated_iters'] if m in emulated else spec['iters']
              for m in spec['modes']}
    times: dict[str, list[float]] = {m: [] for m in spec['modes']}
    first: dict[str, float] = {}
    for mode in spec['modes']:  # warm-up; the compiled modes compile here
        first[mode] = timed(mode)
        log(f'{mode}: first chunk {first[mode] / 1e3:.1f} s')
        if mode in emulated and not MODES[mode][1]:
            times[mode].append(first[mode])
        else:
            for _ in range(spec['warmup'] - 1):
                timed(mode)
    lerobot = lerobot_warmup(peer, fp32, spec, log) if peer is not None else None

    def lerobot_wanted() -> bool:
        return lerobot is not None and len(lerobot['times']) < spec['iters']

    while any(len(times[m]) < wanted[m] for m in spec['modes']) or lerobot_wanted():
        for mode in spec['modes']:  # alternate, with the GEMM rates measured between
            if len(times[mode]) < wanted[mode]:
                times[mode].append(timed(mode))
                log(f'{mode}: {times[mode][-1]:.0f} ms')
        if lerobot is not None and lerobot_wanted():
            lerobot['times'].append(lerobot_chunk(peer, fp32.config))
            log(f'{LEROBOT_MODE}: {lerobot["times"][-1]:.0f} ms')
        for dtype in gemm_rates:
            gemm_rates[dtype].append(gemm_rate(dtype))
        if lerobot is not None:
            lerobot['gemm'].append(peer.request('gemm')['gflops'])

    for dtype in gemm_rates:  # at least one round, even when every mode is done already
        if not gemm_rates[dtype]:
            gemm_rates[dtype].append(gemm_rate(dtype))

    def weights_mib(policy: Any) -> float:
        tensors = [*policy.parameters(), *policy.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20

    rows = []
    for mode in spec['modes']:
        dtype, compiled, use_cache = MODES[mode]
        ts = times[mode]
        p50 = percentile(ts, 50)
        gemm = statistics.median(gemm_rates[dtype])
        total = flops[use_cache]['total']
        floor_ms = total / (gemm * 1e9) * 1e3
        rows.append({
            'mode': mode, 'dtype': dtype, 'compiled': compiled and spec['compile_mode'],
            'use_cache': use_cache, 'cameras': spec['cameras'], 'iters': len(ts),
            'first_ms': first[mode], 'p50_ms': p50, 'p95_ms': percentile(ts, 95),
            'min_ms': min(ts), 'mean_ms': statistics.fmean(ts), 'times_ms': ts,
            'gflop': total / 1e9, 'vision_gflop': flops[use_cache]['vision'] / 1e9,
            'achieved_gflops': total / 1e9 / (p50 / 1e3), 'gemm_gflops': gemm,
            'gemm_gflops_samples': gemm_rates[dtype], 'floor_ms': floor_ms,
            'of_floor': floor_ms / p50, 'weights_mib': weights_mib(policies[mode]),
            'max_abs_diff_vs_fp32': diffs.get(mode, 0.0),
            'native_dtype': mode not in emulated,
        })
    if lerobot is not None:
        rows.append(lerobot_row(lerobot, flops[True], spec))
    result = {'rows': rows, 'prefix_tokens': spec['cameras'] * 64 + length + 1,
              'params': sum(p.numel() for p in fp32.parameters()),
              'threads': torch.get_num_threads(), 'load_avg': os.getloadavg()}
    if lerobot is not None:
        result['lerobot'] = peer.ready
    return result


def lerobot_chunk(peer: Any, config: Any) -> float:
    """One LeRobot chunk, checked like ours (finite, chunk_size x action dim); its ms."""
    reply = peer.request('chunk')
    if not reply['finite'] or reply['shape'] != [1, config.chunk_size, 6]:
        raise SystemExit(f'{LEROBOT_MODE}: bad output {reply["shape"]} (finite: '
                         f'{reply["finite"]})')
    return float(reply['ms'])


def lerobot_warmup(peer: Any, fp32: Any, spec: dict[str, Any], log: Any) -> dict[str, Any]:
    """Check LeRobot built our geometry (parameter count), count its FLOPs, run its warm-up
    chunks and measure its memory (reset after the warm-up, over one chunk: as our memory
    processes do); the dict the timing loop fills."""
    ready = peer.ready
    ours = sum(p.numel() for p in fp32.parameters())
    if ready['params'] != ours:
        raise SystemExit(f'{LEROBOT_MODE}: LeRobot built {ready["params"]:,} parameters from the '
                         f'stand-in, ours {ours:,}: not the same geometry')
    log(f'{LEROBOT_MODE}: lerobot {ready["lerobot"]}, torch {ready["torch"]}, Python '
        f'{ready["python"]}, {ready["params"]:,} parameters ({ready["dtype"]}), '
        f'{ready["threads"]} threads')
    flops = peer.request('flops')
    log(f'{LEROBOT_MODE}: {flops["total"] / 1e9:.0f} GFLOP per chunk (counted in LeRobot)')
    first = lerobot_chunk(peer, fp32.config)
    log(f'{LEROBOT_MODE}: first chunk {first / 1e3:.1f} s')
    for _ in range(spec['warmup'] - 1):
        lerobot_chunk(peer, fp32.config)
    memory = peer.request('memory')
    log(f'{LEROBOT_MODE}: peak {memory["peak_mib"]:.0f} MiB')
    return {'ready': ready, 'flops': flops, 'first_ms': first, 'memory': memory,
            'times': [], 'gemm': []}


def lerobot_row(lerobot: dict[str, Any], flops: dict[str, int],
                spec: dict[str, Any]) -> dict[str, Any]:
    """The LeRobot row: our FLOP count (the same matrix products; LeRobot's own count is kept
    beside it), its own torch's GEMM rate for the floor."""
    ts = lerobot['times']
    p50 = percentile(ts, 50)
    gemm = statistics.median(lerobot['gemm'])
    total = flops['total']
    floor_ms = total / (gemm * 1e9) * 1e3
    ready = lerobot['ready']
    return {
        'mode': LEROBOT_MODE, 'dtype': 'float32', 'compiled': False, 'use_cache': True,
        'cameras': spec['cameras'], 'iters': len(ts), 'first_ms': lerobot['first_ms'],
        'p50_ms': p50, 'p95_ms': percentile(ts, 95), 'min_ms': min(ts),
        'mean_ms': statistics.fmean(ts), 'times_ms': ts, 'gflop': total / 1e9,
        'vision_gflop': flops['vision'] / 1e9,
        'lerobot_gflop': lerobot['flops']['total'] / 1e9,
        'lerobot_vision_gflop': lerobot['flops']['vision'] / 1e9,
        'achieved_gflops': total / 1e9 / (p50 / 1e3), 'gemm_gflops': gemm,
        'gemm_gflops_samples': lerobot['gemm'], 'floor_ms': floor_ms, 'of_floor': floor_ms / p50,
        'weights_mib': ready['weights_mib'], 'peak_mib': lerobot['memory']['peak_mib'],
        'inference_mib': lerobot['memory']['inference_mib'], 'max_abs_diff_vs_fp32': None,
        'native_dtype': True, 'lerobot': ready['lerobot'], 'torch': ready['torch'],
        'python': ready['python'], 'threads': ready['threads'],
    }


# ------------------------------------------------------------------------------------------------
# parent: the table


def run_config(args: argparse.Namespace, cameras: int) -> dict[str, Any]:
    """Every mode for one camera count, in a fresh subprocess (its own memory and build)."""
    spec = {'device': args.device, 'modes': args.modes, 'compile_mode': args.compile_mode,
            'preset': args.preset,
            'cameras': cameras, 'num_steps': args.num_steps, 'threads': args.threads,
            'warmup': args.warmup, 'iters': args.iters, 'emulated_iters': args.emulated_iters,
            'lerobot': args.lerobot_python}
    result = child(spec)
    if not args.no_memory:
        for row in result['rows']:  # memory: one process per mode, holding only that mode
            if row['mode'] == LEROBOT_MODE:  # measured in LeRobot's own process
                continue
            memory = child({**spec, 'mode': row['mode']}, memory=True)
            row.update(peak_mib=memory['peak_mib'], inference_mib=memory['inference_mib'])
            print(f'    [{cameras} cams] {row["mode"]}: peak {memory["peak_mib"]:.0f} MiB',
                  file=sys.stderr, flush=True)
    return result


def lerobot_column(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str]:
    """(the LeRobot interpreter's versions, '') when the column can run, else (None, why not);
    sets args.lerobot_python to the interpreter found ($SMOLVLA_LEROBOT_PYTHON included)."""
    from _lerobot_column import LeRobotUnavailable, probe, resolve_python

    if args.no_lerobot:
        args.lerobot_python = None
        return None, 'turned off by --no-lerobot'
    try:
        python, _ = resolve_python(args.lerobot_python)
        info = probe(python)
    except LeRobotUnavailable as exc:
        return None, str(exc)
    args.lerobot_python = python
    return info, ''


def child(spec: dict[str, Any], memory: bool = False) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, '--memory-child' if memory else '--child',
                           json.dumps(spec)], stdout=subprocess.PIPE, text=True)  # stderr: progress
    if proc.returncode != 0:
        raise RuntimeError(f'configuration {spec} failed (exit {proc.returncode})')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument('--modes', nargs='+', default=list(DEFAULT_MODES), choices=list(MODES))
    parser.add_argument('--compile-mode', default='default',
                        help="torch.compile mode ('reduce-overhead' uses CUDA graphs)")
    parser.add_argument('--cameras', type=int, nargs='+', default=[2])
    parser.add_argument('--num-steps', type=int, default=10, help='flow-matching Euler steps')
    parser.add_argument('--iters', type=int, default=None,
                        help='timed chunks per mode (default 3 on CPU, 30 on CUDA)')
    parser.add_argument('--emulated-iters', type=int, default=1,
                        help='timed chunks of a dtype the device only emulates (default 1: the '
                        'first, or for a compiled mode the first after compilation)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='untimed chunks per mode first (default 1 on CPU, 5 on CUDA)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--preset', default='smolvla_base',
                        help="geometry (default smolvla_base; 'tiny' for a smoke run)")
    parser.add_argument('--out', type=Path, default=RESULTS)
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the per-mode memory processes')
    parser.add_argument('--lerobot-python', default=None, metavar='PATH',
                        help='Python of a LeRobot 0.6.1 venv: adds the lerobot-fp32 row '
                        '(default $SMOLVLA_LEROBOT_PYTHON; without either the row is skipped)')
    parser.add_argument('--no-lerobot', action='store_true',
                        help='skip the LeRobot row even when $SMOLVLA_LEROBOT_PYTHON is set')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--memory-child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    if args.memory_child:
        print(json.dumps(run_memory_child(json.loads(args.memory_child))))
        return 0
    cpu = args.device == 'cpu'
    args.iters = args.iters or (3 if cpu else 30)
    lerobot_info, lerobot_note = lerobot_column(args)
    if lerobot_info is None:
        if args.lerobot_python:  # asked for by the flag: an error, not a silent skip
            print(f'policy_latency: {lerobot_note}', file=sys.stderr)
            return 2
        args.lerobot_python = None
    args.warmup = max(1, args.warmup if args.warmup is not None else (1 if cpu else 5))

    import torch

    from smolvla_ros.policy.precision import cpu_flags, native_cpu_flags

    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'torch': torch.__version__,
               'python': platform.python_version(), 'device': args.device,
               'bf16_flags': native_cpu_flags(torch.bfloat16),
               'cpu_capability': torch.backends.cpu.get_cpu_capability(),
               'avx512': 'avx512f' in cpu_flags()}
    if not cpu:
        if not args.device.startswith('cuda') or not torch.cuda.is_available():
            print(f'policy_latency: device {args.device!r} is not available here (torch '
                  f'{torch.__version__}, CUDA available: {torch.cuda.is_available()})',
                  file=sys.stderr)
            return 2
        machine['gpu'] = torch.cuda.get_device_name(0)
    print(f'SmolVLA ({args.preset} geometry, random init) per-chunk latency: {args.num_steps} flow '
          f'steps, 50 actions, batch 1, {args.device}, modes {" ".join(args.modes)} '
          f'(compiled: torch.compile {args.compile_mode!r})')
    print(f'machine: {machine["nproc"]} cores, {machine["cpu"]}, torch {machine["torch"]}, '
          f'native bf16: {machine["bf16_flags"] or "no"}'
          + (f', {machine.get("gpu")}' if 'gpu' in machine else ''))
    if lerobot_info is not None:
        machine['lerobot'] = lerobot_info
        print(f'LeRobot column: lerobot {lerobot_info["lerobot"]}, torch {lerobot_info["torch"]}, '
              f'transformers {lerobot_info["transformers"]}, Python {lerobot_info["python"]} '
              f'({args.lerobot_python}); its own process, one chunk after each round of ours')
    else:
        machine['lerobot_skipped'] = lerobot_note
        print(f'LeRobot column skipped: {lerobot_note}')
    print(f'iterations: {args.iters} per mode, alternating, after {args.warmup} warm-up each; '
          f'load average at start {os.getloadavg()[0]:.1f}', flush=True)
    results = []
    for cams in args.cameras:
        t0 = time.monotonic()
        result = run_config(args, cams)
        results.append(result)
        print(f'  {cams} cameras done in {time.monotonic() - t0:.0f} s (load average '
              f'{result["load_avg"][0]:.1f})', flush=True)

    header = (f'{"cams":>4} {"mode":>14} {"p50 ms":>8} {"p95 ms":>8} {"min ms":>8} '
              f'{"1st s":>6} {"GFLOP":>6} {"GFLOP/s":>7} {"GEMM":>6} {"floor":>7} {"of":>5} '
              f'{"wts MiB":>7} {"peak MiB":>8} {"+inf MiB":>8} {"vs fp32":>8} '
              f'{"vs fp32 p50":>11}'
              + (f' {"vs LeRobot":>10} {"paired":>6}' if lerobot_info else ''))
    print(header)
    print('-' * len(header))
    for result in results:
        fp32 = next((r for r in result['rows'] if r['mode'] == 'fp32'), None)
        lerobot = next((r for r in result['rows'] if r['mode'] == LEROBOT_MODE), None)
        for r in result['rows']:
            speed = f'{fp32["p50_ms"] / r["p50_ms"]:.2f}x' if fp32 else ''
            versus = ''
            if lerobot:
                r['vs_lerobot_p50'] = lerobot['p50_ms'] / r['p50_ms']
                r['vs_lerobot_paired'] = paired_speedup(lerobot['times_ms'], r['times_ms'])
                paired = r['vs_lerobot_paired']
                versus = (f' {r["vs_lerobot_p50"]:>9.2f}x '
                          + (f'{paired:>5.2f}x' if paired is not None else f'{"-":>6}'))
            diff = r['max_abs_diff_vs_fp32']
            diff_text = f'{diff:>8.4f}' if diff is not None else f'{"-":>8}'
            label = r['mode'] + ('' if r['native_dtype'] else '*')
            print(f'{r["cameras"]:>4} {label:>14} {r["p50_ms"]:>8.0f} {r["p95_ms"]:>8.0f} '
                  f'{r["min_ms"]:>8.0f} {r["first_ms"] / 1e3:>6.1f} {r["gflop"]:>6.0f} '
                  f'{r["achieved_gflops"]:>7.1f} {r["gemm_gflops"]:>6.1f} '
                  f'{r["floor_ms"]:>7.0f} {r["of_floor"]:>5.0%} {r["weights_mib"]:>7.0f} '
                  f'{r.get("peak_mib", float("nan")):>8.0f} '
                  f'{r.get("inference_mib", float("nan")):>8.0f} '
                  f'{diff_text} {speed:>11}{versus}')
        vision = result['rows'][0]['vision_gflop']
        print(f'     {result["prefix_tokens"]} prefix tokens, vision tower {vision:.0f} GFLOP '
              f'of {result["rows"][0]["gflop"]:.0f} (cached path), {result["threads"]} threads')
        if lerobot:
            print(f'     {LEROBOT_MODE}: lerobot {lerobot["lerobot"]} on torch {lerobot["torch"]} '
                  f'(ours: torch {machine["torch"]}), {lerobot["threads"]} threads, '
                  f'{lerobot["lerobot_gflop"]:.0f} GFLOP counted in LeRobot; vs LeRobot = its '
                  'p50 / the mode\'s p50; paired = median over rounds of its chunk / the mode\'s')
    print('GFLOP/s = GFLOP / p50; GEMM = the 1024^3 matmul rate in the mode\'s dtype (median of '
          'the rounds); floor = GFLOP / GEMM; of = floor / p50; peak MiB = RSS high-water mark of '
          'a process serving only that mode (CUDA: allocated), +inf = peak - RSS once built; '
          'vs fp32 = max |actions - fp32 '
          'eager| (random weights); * a dtype this device only emulates '
          f'({args.emulated_iters} timed chunk)' + ('; lerobot-fp32: LeRobot\'s own policy '
          '(other random weights: no action difference), its memory in its own process, its '
          'GEMM rate with its torch' if lerobot_info else ''))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'benchmark': 'policy_latency', 'machine': machine,
                                    'preset': args.preset, 'num_steps': args.num_steps,
                                    'results': results},
                                   indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
