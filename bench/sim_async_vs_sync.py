"""SmolVLA's sync-vs-async experiment, on the simulated SO-101 pick task with the oracle policy.

For each injected inference latency (default 100, 300, 600 ms) and each executor mode (sync:
the arm waits for every chunk; async: the next chunk is requested at chunk_threshold and
computed while the arm moves), N seeded episodes are run with the real ExecutorCore on
simulated time (smolvla_ros.sim.episode_runner): success rate and mean completion time. Then,
for throughput, episodes are run back to back (reset, next seed) in a fixed window of simulated
time and the cubes picked are counted. The same seeds are used by both modes.

The paper (SmolVLA, Shukor et al. 2025, real SO-100 pick-and-place) reports at equal success
~30 % faster completion with async (9.7 s vs 13.75 s) and 2x throughput (19 vs 9 cubes in a
fixed window). The oracle is a scripted expert, not a learned policy, and our task is a shorter
lift, so only the ratios compare.

Run: `python bench/sim_async_vs_sync.py [--episodes N --window S --latencies 0.1,0.3,0.6]`
(or `smolvla-ros bench sim_async_vs_sync`); prints a markdown table and writes
bench/results/sim_async_vs_sync.json and bench/results/sim_async_vs_sync.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import time

from _machine import machine

from smolvla_ros.sim.episode_runner import RunConfig, run_episode
from smolvla_ros.sim.expert import ExpertConfig
from smolvla_ros.sim.oracle import OraclePolicy
from smolvla_ros.sim.world import SimWorld

RESULTS = Path(__file__).resolve().parent / 'results'
PAPER = {'sync_completion_s': 13.75, 'async_completion_s': 9.7, 'sync_cubes': 9,
         'async_cubes': 19}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=10, help='seeded episodes per setting')
    parser.add_argument('--window', type=float, default=60.0,
                        help='throughput window in simulated seconds')
    parser.add_argument('--latencies', default='0.1,0.3,0.6', help='inference latencies (s)')
    parser.add_argument('--joint-speed', type=float, default=ExpertConfig.joint_speed,
                        help='expert joint speed (rad/s)')
    parser.add_argument('--timeout', type=float, default=30.0, help='episode timeout (s)')
    return parser.parse_args(argv)



def window_count(world: SimWorld, oracle: OraclePolicy, config: RunConfig, window_s: float,
                 first_seed: int) -> int:
    """Cubes picked in `window_s` of simulated time, one episode after another."""
    used, picked, seed = 0.0, 0, first_seed
    while used < window_s:
        result = run_episode(world, oracle, config, seed, max_duration_s=window_s - used)
        used += result.completion_s if result.success else result.duration_s
        picked += int(result.success)
        seed += 1
    return picked


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    latencies = [float(v) for v in args.latencies.split(',') if v]
    world = SimWorld()
    oracle = OraclePolicy(model=world.model, expert=ExpertConfig(joint_speed=args.joint_speed))
    rows = []
    start = time.monotonic()
    for latency in latencies:
        for mode in ('sync', 'async'):
            config = RunConfig(mode=mode, latency_s=latency, timeout_s=args.timeout)
            results = [run_episode(world, oracle, config, seed) for seed in range(args.episodes)]
            done = [r.completion_s for r in results if r.success]
            rows.append({
                'latency_ms': round(latency * 1e3), 'mode': mode,
                'success_rate': len(done) / len(results),
                'completion_mean_s': statistics.fmean(done) if done else None,
                'completion_std_s': statistics.pstdev(done) if len(done) > 1 else 0.0,
                'cubes_in_window': window_count(world, oracle, config, args.window, 1000),
                'chunks_mean': statistics.fmean(r.chunks for r in results),
                'starvation_ticks_mean': statistics.fmean(r.starvation_ticks for r in results),
                'seam_jump_max_rad': max(r.seam_jump_max for r in results),
            })
    elapsed = time.monotonic() - start
    print(f'| latency | mode | success | completion (s) | cubes / {args.window:g} s | chunks | '
          'starved ticks | max seam (rad) |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        comp = (f"{r['completion_mean_s']:.2f} ± {r['completion_std_s']:.2f}"
                if r['completion_mean_s'] is not None else '-')
        print(f"| {r['latency_ms']} ms | {r['mode']} | {r['success_rate']:.0%} | {comp} | "
              f"{r['cubes_in_window']} | {r['chunks_mean']:.1f} | "
              f"{r['starvation_ticks_mean']:.1f} | {r['seam_jump_max_rad']:.3f} |")
    ratios = []
    for latency in latencies:
        ms = round(latency * 1e3)
        s, a = (next(r for r in rows if r['latency_ms'] == ms and r['mode'] == m)
                for m in ('sync', 'async'))
        if s['completion_mean_s'] and a['completion_mean_s']:
            ratios.append({'latency_ms': ms,
                           'completion_async_over_sync': a['completion_mean_s']
                           / s['completion_mean_s'],
                           'cubes_async_over_sync': a['cubes_in_window']
                           / max(1, s['cubes_in_window'])})
    paper_ratio = PAPER['async_completion_s'] / PAPER['sync_completion_s']
    print(f"\npaper (real SO-100): completion async/sync {paper_ratio:.2f} "
          f"({PAPER['async_completion_s']} s vs {PAPER['sync_completion_s']} s), cubes "
          f"{PAPER['async_cubes']} vs {PAPER['sync_cubes']} "
          f"({PAPER['async_cubes'] / PAPER['sync_cubes']:.2f}x)")
    for r in ratios:
        print(f"ours at {r['latency_ms']} ms: completion async/sync "
              f"{r['completion_async_over_sync']:.2f}, cubes {r['cubes_async_over_sync']:.2f}x")
    print(f'({args.episodes} episodes per setting, {elapsed:.0f} s wall)')
    RESULTS.mkdir(exist_ok=True)
    out = {'machine': machine(), 'args': vars(args), 'rows': rows, 'ratios': ratios,
           'paper': PAPER, 'wall_s': elapsed}
    (RESULTS / 'sim_async_vs_sync.json').write_text(json.dumps(out, indent=2))
    _plot(rows, latencies, args.window, RESULTS / 'sim_async_vs_sync.png')
    return 0


def _plot(rows: list[dict], latencies: list[float], window: float, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ms = [round(v * 1e3) for v in latencies]
    for mode, colour in (('sync', 'tab:red'), ('async', 'tab:blue')):
        sel = [next(r for r in rows if r['latency_ms'] == m and r['mode'] == mode) for m in ms]
        axes[0].errorbar(ms, [r['completion_mean_s'] or float('nan') for r in sel],
                         yerr=[r['completion_std_s'] for r in sel], marker='o', label=mode,
                         color=colour, capsize=3)
        axes[1].plot(ms, [r['cubes_in_window'] for r in sel], marker='o', label=mode,
                     color=colour)
    axes[0].set(xlabel='inference latency (ms)', ylabel='task completion (s)',
                title='mean completion time (successes)')
    axes[1].set(xlabel='inference latency (ms)', ylabel=f'cubes in {window:g} s',
                title='throughput in a fixed window')
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle('SO-101 sim, oracle policy: sync vs async chunk execution')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == '__main__':
    raise SystemExit(main())
