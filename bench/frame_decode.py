"""What bounded decoding costs per camera frame: header check, scan check, decode.

Why: every frame the executor sends and every frame a policy server receives is now checked
before and during decoding (ros/compressed.py): the JPEG/PNG header's size against the contract
(no decoding), and the JPEG scan's completeness by FFmpeg's decoder (a second decode, without the
colour conversion), because libjpeg accepts a scan cut short with its end marker re-appended.
This measures each step against a plain OpenCV decode, side by side in one run, at the contract's
camera size (640x480) and policy size (512x384), on a synthetic scene at JPEG quality 90.

Run: ``python bench/frame_decode.py`` (or ``smolvla-ros bench frame_decode``); prints a markdown
table and writes bench/results/frame_decode.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

from _machine import machine
import numpy as np

from smolvla_ros.opencv import cv2
from smolvla_ros.ros.compressed import (
    _IMREAD_RGB,
    _check_jpeg_scan,
    check_frame_size,
    decode_to_rgb,
    encode_jpeg,
)
from smolvla_ros.ros.synthetic import synthetic_scene

RESULTS = Path(__file__).resolve().parent / 'results'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=200, help='decodes per measurement')
    parser.add_argument('--out', type=Path, default=RESULTS / 'frame_decode.json')
    return parser.parse_args(argv)


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def measure(width: int, height: int, repeats: int) -> dict[str, object]:
    """Median times of each step for one synthetic frame of width x height."""
    jpeg = encode_jpeg(synthetic_scene(height, width, seed=1), 90)
    buf = np.frombuffer(jpeg, np.uint8)
    return {
        'size': f'{width}x{height}', 'bytes': len(jpeg),
        'header_check_ms': median_ms(lambda: check_frame_size(buf, 'jpeg', (width, height)),
                                     repeats),
        'scan_check_ms': median_ms(lambda: _check_jpeg_scan(buf), repeats),
        'opencv_decode_ms': median_ms(
            lambda: cv2.imdecode(buf, _IMREAD_RGB or cv2.IMREAD_COLOR), repeats),
        'bounded_decode_ms': median_ms(lambda: decode_to_rgb(buf, max_size=(width, height)),
                                       repeats),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [measure(width, height, args.repeats) for width, height in ((640, 480), (512, 384))]
    print(f'machine: {machine()}\n')
    print('| frame | JPEG bytes | header check ms | scan check ms | OpenCV decode ms '
          '| bounded decode (all) ms |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['size']} | {r['bytes']} | {r['header_check_ms']:.3f} | "
              f"{r['scan_check_ms']:.2f} | {r['opencv_decode_ms']:.2f} | "
              f"{r['bounded_decode_ms']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'machine': machine(), 'rows': rows}, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
