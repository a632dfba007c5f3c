"""Bag -> LeRobot v3.0 conversion throughput, and the recorder's CPU and loss at teleop rates.

1. Conversion: a synthetic bag of ``--seconds`` (default 60) with two 640x480 JPEG cameras at
   30 Hz, 100 Hz joint states and 30 Hz joint commands (jittered stamps) is converted with
   libsvtav1 (LeRobot's default) and with h264; reported: dataset frames/s, x real time (bag
   seconds per wall second) and the time of ``--check``. One process, side by side.
2. Recorder (``--recorder``, needs rclpy): the ``recorder`` node in its own process records the
   same rates published from this process for ``--record-seconds``; reported: messages
   published vs written per topic (loss) and the recorder process's CPU (user+sys over wall,
   one core = 100 %).

Run: ``python bench/convert_throughput.py [--seconds 60] [--recorder]``; prints a markdown table
and writes bench/results/convert_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import shutil
import tempfile
import time

from _machine import cpu_model
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert
from smolvla_training.convert.synthetic_bag import jittery_spec, small_contract, write_bag

RESULTS = Path(__file__).resolve().parent / 'results'



def bench_convert(seconds: float, workdir: Path) -> list[dict]:
    contract = small_contract(width=640, height=480)
    t = time.perf_counter()
    bag = write_bag(workdir / 'bag', jittery_spec(seconds, width=640, height=480))
    made = time.perf_counter() - t
    size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
    rows = []
    for vcodec in ('libsvtav1', 'h264'):
        out = workdir / f'ds_{vcodec}'
        t = time.perf_counter()
        result = convert([bag], contract, out, ConvertConfig(vcodec=vcodec, progress=False))
        wall = time.perf_counter() - t
        t = time.perf_counter()
        check_dataset(out)
        check = time.perf_counter() - t
        video_mb = sum(p.stat().st_size for p in (out / 'videos').rglob('*.mp4')) / 1e6
        rows.append({'vcodec': vcodec, 'bag_s': seconds, 'bag_mb': round(size_mb, 1),
                     'bag_write_s': round(made, 2), 'frames': result.frames,
                     'convert_s': round(wall, 2), 'frames_per_s': round(result.frames / wall, 1),
                     'x_real_time': round(seconds / wall, 2), 'check_s': round(check, 2),
                     'video_mb': round(video_mb, 2)})
    return rows


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime


def bench_recorder(seconds: float, workdir: Path) -> dict:
    import subprocess
    import sys

    import numpy as np
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import CompressedImage, JointState
    from smolvla_training.convert.synthetic_bag import JOINTS, camera_image

    from smolvla_ros.ros.compressed import rgb_to_compressed
    from smolvla_ros.ros.joint_state import numpy_to_joint_state

    env = dict(os.environ, ROS_DOMAIN_ID=str(np.random.default_rng().integers(100, 200)),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', SVT_LOG='1')
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE')})
    exe = shutil.which('recorder') or str(Path(sys.executable).parent / 'recorder')
    proc = subprocess.Popen([exe, '--ros-args', '-p', f'output_dir:={workdir}', '-p',
                             'bag_name:=rec'], env=env)
    rclpy.init()
    node = Node('bench_publisher')
    js = node.create_publisher(JointState, 'joint_states', 100)
    cmd = node.create_publisher(JointState, 'joint_commands', 100)
    cams = [node.create_publisher(CompressedImage, f'cameras/{c}/image_raw/compressed', 100)
            for c in ('front', 'wrist')]
    end = time.monotonic() + 30
    while any(p.get_subscription_count() == 0 for p in (js, cmd, *cams)) and \
            time.monotonic() < end:
        time.sleep(0.1)
    jpegs = [rgb_to_compressed(camera_image(k, 0, 640, 480)) for k in range(10)]
    cpu0, wall0 = _proc_cpu_s(proc.pid), time.monotonic()
    sent = {'js': 0, 'cam': 0}
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        now = node.get_clock().now().nanoseconds
        js.publish(numpy_to_joint_state(JOINTS, np.full(6, 0.001 * k), stamp_ns=now))
        sent['js'] += 1
        if k % 3 == 0:
            cmd.publish(numpy_to_joint_state(JOINTS, np.full(6, 0.001 * k), stamp_ns=now))
            for pub in cams:
                msg = jpegs[k % 10]
                msg.header.stamp = node.get_clock().now().to_msg()
                pub.publish(msg)
            sent['cam'] += 1
        k += 1
        time.sleep(max(0.0, start + k * 0.01 - time.monotonic()))
    time.sleep(1.0)  # let the recorder drain its queues
    cpu = _proc_cpu_s(proc.pid) - cpu0
    wall = time.monotonic() - wall0
    proc.send_signal(2)
    proc.wait(30)
    node.destroy_node()
    rclpy.shutdown()
    from rosbags.highlevel import AnyReader
    with AnyReader([workdir / 'rec']) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    return {'record_s': seconds, 'published_joint_states': sent['js'],
            'written_joint_states': counts.get('/joint_states', 0),
            'published_frames_per_camera': sent['cam'],
            'written_front': counts.get('/cameras/front/image_raw/compressed', 0),
            'written_wrist': counts.get('/cameras/wrist/image_raw/compressed', 0),
            'recorder_cpu_percent': round(100 * cpu / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--recorder', action='store_true')
    parser.add_argument('--record-seconds', type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault('SVT_LOG', '1')
    machine = {'nproc': os.cpu_count(), 'cpu': cpu_model(), 'python': platform.python_version()}
    workdir = Path(tempfile.mkdtemp(prefix='convert_bench_'))
    try:
        rows = bench_convert(args.seconds, workdir)
        recorder = bench_recorder(args.record_seconds, workdir) if args.recorder else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f'machine: {machine}')
    print('| vcodec | bag s | bag MB | frames | convert s | frames/s | x real time | check s '
          '| video MB |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["vcodec"]} | {r["bag_s"]} | {r["bag_mb"]} | {r["frames"]} | '
              f'{r["convert_s"]} | {r["frames_per_s"]} | {r["x_real_time"]} | {r["check_s"]} | '
              f'{r["video_mb"]} |')
    if recorder:
        print('\n| recorder | value |\n|---|---|')
        for k, v in recorder.items():
            print(f'| {k} | {v} |')
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'convert_throughput.json').write_text(json.dumps(
        {'machine': machine, 'convert': rows, 'recorder': recorder}, indent=2))


if __name__ == '__main__':
    main()
