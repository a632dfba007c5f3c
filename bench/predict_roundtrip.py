"""PredictChunk round trip over DDS between two processes: raw vs JPEG x default vs LARGE_DATA.

What it measures: a client process sends a PredictChunk request carrying one Observation (3 camera
frames of 512x512 plus a 6-joint state) to the ``null_policy_server`` node in another process on
the same machine (loopback, localhost-only discovery) and waits for the 50x6 chunk. The server
decodes every image as a real policy server would (JPEG decode, or an rgb8 view), but runs no
model, so the figure is "what the link costs before any inference". Timed: call_async ->
response received (request serialization, DDS both ways, server decode, response deserialization).
The request is encoded once per configuration, so client-side JPEG encoding is not in the round
trip; it is reported on its own ("client encode": building the Observation message). "server"
is the server's own time per request (image decode + answer), from ActionChunk.inference_ms.

Configurations: images as JPEG (q90, ``images``) or raw rgb8 (``raw_images``), crossed with
Fast DDS' default builtin transports (UDP + shared memory) and ``FASTDDS_BUILTIN_TRANSPORTS=
LARGE_DATA`` set in both processes (any other FASTDDS_BUILTIN_TRANSPORTS value can be given).
Each transport gets its own server and client processes; within one, the formats alternate
request by request so that a change in machine load hits them alike.

Image content: ``smolvla_ros.ros.synthetic.synthetic_scene``, a synthetic scene with a two-axis
colour gradient, a striped table plane, 4-7 filled and outlined shapes, thin lines and Gaussian
sensor noise (sigma 3), so JPEG sizes are those of a textured frame, not a flat test image.

Run: ``python bench/predict_roundtrip.py`` (or ``smolvla-ros bench predict_roundtrip``); prints a
markdown table and writes bench/results/predict_roundtrip.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import subprocess
import sys
import time

from _machine import machine

from smolvla_ros.bringup.processes import isolated_ros_env

RESULTS = Path(__file__).resolve().parent / 'results'
TRANSPORTS = {'default': None, 'LARGE_DATA': 'LARGE_DATA'}
FORMATS = ('jpeg', 'raw')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=200, help='timed requests per config')
    parser.add_argument('--warmup', type=int, default=20, help='untimed requests first')
    parser.add_argument('--cameras', type=int, default=3)
    parser.add_argument('--image-size', type=int, default=512)
    parser.add_argument('--jpeg-quality', type=int, default=90)
    parser.add_argument('--chunk-size', type=int, default=50)
    parser.add_argument('--decode-threads', type=int, default=1,
                        help='server threads decoding JPEG frames in parallel (1: inline)')
    parser.add_argument('--no-decode', action='store_true',
                        help='server skips image decoding (network cost only)')
    parser.add_argument('--transports', default=','.join(TRANSPORTS),
                        help="comma-separated FASTDDS_BUILTIN_TRANSPORTS values ('default': "
                             "unset), e.g. 'LARGE_DATA?max_msg_size=4MB&sockets_size=4MB'")
    parser.add_argument('--formats', default=','.join(FORMATS),
                        help=f'comma-separated subset of {list(FORMATS)}')
    parser.add_argument('--out', type=Path, default=RESULTS / 'predict_roundtrip.json')
    parser.add_argument('--client', help=argparse.SUPPRESS)  # internal: JSON config of a client
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- client process


def run_client(config: dict) -> dict:
    """Inside the client process: time ``requests`` round trips per image format."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.serialization import serialize_message
    from smolvla_msgs.srv import PredictChunk

    from smolvla_ros.ros.predict import AnswerError, check_answer, stamp_request
    from smolvla_ros.ros.synthetic import synthetic_observation

    rclpy.init()
    node = rclpy.create_node('predict_roundtrip_client')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    client = node.create_client(PredictChunk, config['service'])
    try:
        if not client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError('null_policy_server did not appear within 30 s')
        servers = node.count_services(client.srv_name)
        if servers != 1:  # another session on the same domain would answer some requests
            raise RuntimeError(f'{servers} servers offer {client.srv_name}, expected exactly 1')
        obs = synthetic_observation(num_cameras=config['cameras'],
                                    image_size=config['image_size'])
        runs = {fmt: _FormatRun(fmt, obs, config) for fmt in config['formats']}
        request_id = 0
        # Formats alternate request by request, so a change in machine load hits all alike.
        for i in range(config['warmup'] + config['requests']):
            for run in runs.values():
                request_id += 1
                stamp_ns = node.get_clock().now().nanoseconds
                stamp_request(run.request, request_id, stamp_ns)
                start = time.perf_counter()
                future = client.call_async(run.request)
                executor.spin_until_future_complete(future, timeout_sec=10.0)
                elapsed_ms = (time.perf_counter() - start) * 1e3
                if not future.done():
                    client.remove_pending_request(future)
                    run.failures.append(f'request {request_id}: timeout')
                    continue
                try:
                    chunk = check_answer(
                        future.result(), request_id=request_id, stamp_ns=stamp_ns,
                        joint_names=obs.joint_names, chunk_size=config['chunk_size'])
                except AnswerError as exc:
                    run.failures.append(str(exc))
                    continue
                if i >= config['warmup']:
                    run.round_trip.add(elapsed_ms)
                    run.server_ms.add(chunk.inference_ms)
                run.response_bytes = len(serialize_message(future.result()))
        results = {fmt: run.result() for fmt, run in runs.items()}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return results


class _FormatRun:
    """One image format's request (encoded once, timed while encoding) and its measurements."""

    def __init__(self, fmt: str, obs, config: dict) -> None:
        from rclpy.serialization import serialize_message
        from smolvla_msgs.srv import PredictChunk

        from smolvla_ros.core.stats import LatencyRecorder
        from smolvla_ros.ros.observation import ImageEncoding, observation_to_msg

        encoding = ImageEncoding(fmt, config['jpeg_quality'])
        self.encode = LatencyRecorder(window=10)
        for _ in range(10):  # what the executor pays per request to build the message
            start = time.perf_counter()
            message = observation_to_msg(obs, encoding)
            self.encode.add((time.perf_counter() - start) * 1e3)
        self.request = PredictChunk.Request(observation=message)
        self.request_bytes = len(serialize_message(self.request))
        self.response_bytes = 0
        self.round_trip = LatencyRecorder(window=config['requests'])
        self.server_ms = LatencyRecorder(window=config['requests'])
        self.failures: list[str] = []

    def result(self) -> dict:
        return {
            'request_bytes': self.request_bytes, 'response_bytes': self.response_bytes,
            'client_encode': self.encode.summary().as_dict(),
            'round_trip': self.round_trip.summary().as_dict(),
            'server': self.server_ms.summary().as_dict(),
            'failures': len(self.failures), 'first_failures': self.failures[:3],
        }


# --------------------------------------------------------------------------- orchestration


def _env(transport: str | None) -> dict[str, str]:
    env = isolated_ros_env()
    env.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
    if transport:
        env['FASTDDS_BUILTIN_TRANSPORTS'] = transport
    return env


def run_transport(name: str, args: argparse.Namespace, formats: list[str]) -> dict:
    """Start a server and a client process with the transport's environment; the client's JSON."""
    env = _env(TRANSPORTS.get(name, name))
    # A service name of its own: other sessions' policy servers may share the random domain.
    service = f'predict_roundtrip_{os.getpid()}_{random.randrange(10**6)}'
    server_cmd = [sys.executable, '-m', 'smolvla_ros.nodes.null_policy_server', '--ros-args',
                  '-r', f'predict_chunk:={service}',
                  '-p', f'chunk_size:={args.chunk_size}',
                  '-p', f'decode_images:={"false" if args.no_decode else "true"}',
                  '-p', f'decode_threads:={args.decode_threads}']
    server = subprocess.Popen(server_cmd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    config = {'service': service, 'formats': formats, 'requests': args.requests,
              'warmup': args.warmup,
              'cameras': args.cameras, 'image_size': args.image_size,
              'jpeg_quality': args.jpeg_quality, 'chunk_size': args.chunk_size}
    try:
        client = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), '--client', json.dumps(config)],
            env=env, capture_output=True, text=True, timeout=600)
    finally:
        server_exit, server_log = _stop(server)
    if client.returncode != 0:
        raise RuntimeError(f'client for transport {name} failed (exit {client.returncode}):\n'
                           f'{client.stderr[-3000:]}\nserver log:\n{server_log[-2000:]}')
    results = json.loads(client.stdout.strip().splitlines()[-1])
    for row in results.values():
        row['server_exit'] = server_exit
    return results


def _stop(server: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM the server (as a process manager would); SIGKILL it if it ignores that for 10 s."""
    server.terminate()
    try:
        log, _ = server.communicate(timeout=10)
        return f'exit {server.returncode} on SIGTERM', log
    except subprocess.TimeoutExpired:
        server.kill()
        log, _ = server.communicate(timeout=10)
        return 'ignored SIGTERM for 10 s, killed', log



def table(rows: list[dict]) -> str:
    head = ('| transport | images | request KiB | round trip p50 ms | p95 ms | max ms '
            '| server p50 ms | client encode p50 ms | failures |\n'
            '|---|---|---:|---:|---:|---:|---:|---:|---:|')
    lines = [head]
    for r in rows:
        rt, srv = r['round_trip'], r['server']
        lines.append(
            f"| {r['transport']} | {r['images']} | {r['request_bytes'] / 1024:.1f} "
            f"| {rt['p50_ms']:.2f} | {rt['p95_ms']:.2f} | {rt['max_ms']:.2f} "
            f"| {srv['p50_ms']:.2f} | {r['client_encode']['p50_ms']:.2f} | {r['failures']} |")
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        print(json.dumps(run_client(json.loads(args.client))))
        return 0
    transports = [t for t in args.transports.split(',') if t]
    formats = [f for f in args.formats.split(',') if f]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        print(f'unknown image formats: {unknown}; use {list(FORMATS)}', file=sys.stderr)
        return 2
    rows = []
    for transport in transports:
        for fmt, res in run_transport(transport, args, formats).items():
            label = f'{args.cameras}x{args.image_size}px ' + (
                f'JPEG q{args.jpeg_quality}' if fmt == 'jpeg' else 'raw rgb8')
            rows.append({'transport': transport, 'format': fmt, 'images': label, **res})
    report = {
        'benchmark': 'predict_roundtrip',
        'time': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'machine': machine(),
        'settings': {k: v for k, v in vars(args).items() if k not in ('client', 'out')},
        'server_decodes_images': not args.no_decode,
        'rows': rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    m = report['machine']
    print(f"PredictChunk round trip, 2 processes on loopback; {m['nproc']} CPUs, {m['cpu']}; "
          f"{args.requests} requests after {args.warmup} warm-up; chunk {args.chunk_size}x6; "
          f"server decode {'off' if args.no_decode else f'on, {args.decode_threads} threads'}; "
          f"load average {m['loadavg_1m']}")
    print(table(rows))
    print(f'wrote {args.out}')
    for r in rows:
        if not r['server_exit'].startswith('exit 0'):
            print(f"note: {r['transport']} server {r['server_exit']}", file=sys.stderr)
    return 0 if all(r['failures'] == 0 for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
