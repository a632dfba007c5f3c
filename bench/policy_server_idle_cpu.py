"""CPU time of policy_server (tiny) and oracle_policy_server: idle, and while answering requests.

Why: a ROS executor that polls instead of waiting steals a core from the driver and the chunk
executor on the robot computer (the Kilted rclpy wheels' MultiThreadedExecutor did, see
smolvla_ros/nodes/chunk_executor.py). This measures the servers as separate processes, the way
`smolvla-ros up` runs them.

What it measures, per server: the process's user+system CPU time (all threads, from
/proc/<pid>/stat) over (1) ``--idle`` seconds after the server logged that it is serving, with no
client, and (2) the time ``predict_probe`` takes to send ``--requests`` requests one after the
other, each answered after at least ``--extra-latency-ms`` (the server's extra_latency_ms), so
that most of the serving window is spent waiting on a pending request. Reported as CPU seconds
and as CPU/wall (1.0 = one core busy). policy_server's serving CPU includes the tiny model's
inference (torch, ``--torch-threads`` 1 by default: with torch's default of one thread per core,
its OpenMP threads spin after every request, 0.2-0.8 s of CPU per tiny request on 2 cores
against ~0.02 s with one thread, which would hide the executor); the oracle's is almost only the
executor. For the oracle the script publishes ``sim/cube_pose`` itself (no simulator).

Run: ``python bench/policy_server_idle_cpu.py`` (or ``smolvla-ros bench policy_server_idle_cpu``);
prints a markdown table and writes bench/results/policy_server_idle_cpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time

from _machine import machine

from smolvla_ros.bringup.processes import isolated_ros_env
from smolvla_ros.bringup.processes import stop as stop_process

RESULTS = Path(__file__).resolve().parent / 'results'
TICKS = os.sysconf('SC_CLK_TCK')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--idle', type=float, default=5.0, help='idle window (s)')
    parser.add_argument('--requests', type=int, default=10, help='requests in the serving window')
    parser.add_argument('--extra-latency-ms', type=float, default=300.0,
                        help="the servers' extra_latency_ms (time a request stays pending)")
    parser.add_argument('--torch-threads', type=int, default=1,
                        help="policy_server's torch_threads (0: torch's default; its OpenMP "
                             'threads spin between requests and bury the executor in noise)')
    parser.add_argument('--servers', default='policy_server,oracle_policy_server')
    parser.add_argument('--start-timeout', type=float, default=180.0)
    parser.add_argument('--out', type=Path, default=RESULTS / 'policy_server_idle_cpu.json')
    return parser.parse_args(argv)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    text = Path(f'/proc/{pid}/stat').read_text()
    fields = text[text.rindex(')') + 2:].split()  # after "pid (comm) "; fields[0] is state
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


class Server:
    """A server subprocess whose log is read in a thread (so a full pipe never blocks it)."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.serving = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if 'serving' in line:
                self.serving.set()
        self.serving.set()  # the process ended: stop waiting (checked with poll())

    def stop(self) -> None:
        stop_process(self.proc, 10.0)


def start_cube_publisher() -> tuple[threading.Event, threading.Thread]:
    """Publish a fixed ``sim/cube_pose`` at 20 Hz in this process (the oracle needs one)."""
    from geometry_msgs.msg import PoseStamped
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    node = rclpy.create_node('bench_cube_pose')
    pub = node.create_publisher(PoseStamped, 'sim/cube_pose', 10)
    msg = PoseStamped()
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.25, 0.0, 0.015
    msg.pose.orientation.w = 1.0
    node.create_timer(0.05, lambda: pub.publish(msg))
    stop = threading.Event()

    def spin() -> None:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
        rclpy.try_shutdown()
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return stop, thread


def measure(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    params = [f'extra_latency_ms:={args.extra_latency_ms}']
    if name == 'policy_server':
        params += ['checkpoint:=tiny', 'warmup_runs:=1', 'num_steps:=2',
                   'rename_map:=front=camera1,wrist=camera2',
                   f'torch_threads:={args.torch_threads}']
    cmd = [sys.executable, '-m', f'smolvla_ros.nodes.{name}', '--ros-args',
           *[a for p in params for a in ('-p', p)]]
    server = Server(cmd, env)
    try:
        if not server.serving.wait(args.start_timeout) or server.proc.poll() is not None:
            raise RuntimeError(f'{name} did not start:\n' + '\n'.join(server.lines[-20:]))
        time.sleep(1.0)  # let discovery traffic of the start settle
        c0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(server.proc.pid), time.monotonic()
        probe = [sys.executable, '-m', 'smolvla_ros.nodes.predict_probe', '--ros-args',
                 '-p', f'count:={args.requests}', '-p', 'num_cameras:=2', '-p',
                 'image_size:=256', '-p', 'request_timeout_s:=60.0', '-p', 'wait_timeout_s:=30.0']
        c2, t2 = cpu_seconds(server.proc.pid), time.monotonic()
        result = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=600)
        c3, t3 = cpu_seconds(server.proc.pid), time.monotonic()
    finally:
        server.stop()
    summary = [line for line in result.stdout.splitlines() + result.stderr.splitlines()
               if 'valid answers' in line]
    return {'server': name, 'idle_wall_s': t1 - t0, 'idle_cpu_s': c1 - c0,
            'serving_wall_s': t3 - t2, 'serving_cpu_s': c3 - c2, 'requests': args.requests,
            'probe_exit': result.returncode, 'probe_summary': summary[-1] if summary else ''}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = isolated_ros_env()
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'], ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    stop, thread = start_cube_publisher()
    rows = []
    try:
        for name in args.servers.split(','):
            rows.append(measure(name, args, env))
    finally:
        stop.set()
        thread.join(5)
    print(f'| server | idle CPU s / wall s | idle CPU/wall | serving CPU s / wall s '
          f'({args.requests} req, +{args.extra_latency_ms:g} ms) | serving CPU/wall | probe |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['server']} | {r['idle_cpu_s']:.2f} / {r['idle_wall_s']:.1f} | "
              f"{r['idle_cpu_s'] / r['idle_wall_s']:.2f} | {r['serving_cpu_s']:.2f} / "
              f"{r['serving_wall_s']:.1f} | {r['serving_cpu_s'] / r['serving_wall_s']:.2f} | "
              f"exit {r['probe_exit']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'machine': machine(), 'args': {
        k: str(v) for k, v in vars(args).items()}, 'rows': rows}, indent=2))
    return 0 if all(r['probe_exit'] == 0 for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
