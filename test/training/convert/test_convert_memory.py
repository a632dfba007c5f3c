"""Memory of a conversion and of its check stays bounded in the amount of data (issue 14: a run
over 50 bags of 640x480 cameras reached 8.2 GB RSS because the check kept every decoded frame).

Decoded frames live in FFmpeg's buffers, which tracemalloc does not see, so each step runs in a
fresh child process that reports its peak RSS (ru_maxrss); a short and a four times longer input
are compared, and what grows must be far less than the decoded frames. Figures at the real
frame size are in BENCHMARKS.md (bench/convert_memory.py).
"""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag

W, H = 320, 240
FRAME = W * H * 3  # bytes of one decoded RGB frame
_CHILD = '''
import json, resource, sys
from pathlib import Path
from smolvla_training.convert.check import check_dataset
from smolvla_training.convert.converter import ConvertConfig, convert
from smolvla_training.convert.synthetic_bag import small_contract
args = json.loads(sys.argv[1])
if args['step'] == 'convert':
    convert([Path(b) for b in args['bags']], small_contract(width=args['w'], height=args['h']),
            Path(args['out']), ConvertConfig(vcodec='h264', progress=False))
    frames = None
else:
    frames = check_dataset(args['out'])['frames']
print(json.dumps({'peak': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  'frames': frames}))
'''


def _run(step: str, out: Path, bags: list[Path] = ()) -> dict:
    arg = json.dumps({'step': step, 'out': str(out), 'bags': [str(b) for b in bags], 'w': W,
                      'h': H})
    proc = subprocess.run([sys.executable, '-c', _CHILD, arg], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bag(path: Path, seconds: float) -> Path:
    return write_bag(path, jittery_spec(seconds, width=W, height=H))


def test_check_does_not_keep_decoded_frames(tmp_path) -> None:
    rows = []
    for seconds in (2.0, 8.0):
        out = tmp_path / f'ds_{seconds}'
        _run('convert', out, [_bag(tmp_path / f'bag_{seconds}', seconds)])
        rows.append(_run('check', out))
    extra = (rows[1]['frames'] - rows[0]['frames']) * 2 * FRAME  # two cameras
    assert extra > 50e6
    # Keeping the decoded frames costs `extra`; a few hundred bytes per row are the tables.
    assert rows[1]['peak'] - rows[0]['peak'] < extra / 4, (rows, extra)


def test_conversion_memory_does_not_grow_with_the_number_of_bags(tmp_path) -> None:
    bags = [_bag(tmp_path / f'bag{i}', 2.0) for i in range(8)]
    peaks = [_run('convert', tmp_path / f'ds_{n}', bags[:n])['peak'] for n in (2, 8)]
    per_bag = 60 * 2 * FRAME  # one bag's frames of both cameras, decoded
    assert peaks[1] - peaks[0] < 6 * per_bag / 4, peaks
