"""A conversion stopped by a signal leaves no work directory behind, and what a SIGKILL leaves is
removed by the next run (issue 14 item 6); a full or unwritable output ends with one line, not a
traceback (item 8). The CLI runs in a child process, as a user runs it."""
from __future__ import annotations

import os
from pathlib import Path
import resource
import signal
import subprocess
import sys
import time

import pytest
from smolvla_training.convert.synthetic_bag import jittery_spec, write_bag


def _cli(bag: Path, out: Path, contract_file: Path, **kw) -> subprocess.Popen:
    cmd = [sys.executable, '-m', 'smolvla_training.convert.cli', str(bag), '--out', str(out),
           '--contract', str(contract_file), '--vcodec', 'h264', '--no-progress']
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _partials(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if '.partial-' in p.name]


def _stop_mid_conversion(proc: subprocess.Popen, parent: Path, out: Path) -> None:
    """Freeze ``proc`` (SIGSTOP) once its work directory holds a video file, i.e. in pass 2,
    well before the final rename; fails if it finished first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.is_dir() and any(p.rglob('*.mp4')) for p in _partials(parent)):
            os.kill(proc.pid, signal.SIGSTOP)
            assert not out.exists(), 'the conversion finished before it could be stopped'
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    raise AssertionError('the conversion never started writing videos')


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_removes_the_work_directory(tmp_path, contract_file, sig) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(8.0))
    out = tmp_path / 'ds'
    proc = _cli(bag, out, contract_file)
    try:
        _stop_mid_conversion(proc, tmp_path, out)
        os.kill(proc.pid, sig)
        os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f'stopped by {signal.Signals(sig).name}' in err and 'Traceback' not in err
    assert not out.exists() and not _partials(tmp_path)


def test_sigkill_leftover_is_swept_by_the_next_run(tmp_path, contract_file) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(8.0))
    proc = _cli(bag, tmp_path / 'ds', contract_file)
    try:
        _stop_mid_conversion(proc, tmp_path, tmp_path / 'ds')
        proc.kill()  # SIGKILL: no cleanup can run
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _partials(tmp_path)
    assert len(left) == 1 and left[0].name.startswith('.ds.partial-')
    # A run still going (this process) keeps its work directory; another host's is not ours.
    parts = left[0].name.split('-')  # .ds.partial-<host>-<pid>-<random>
    host = parts[1] if len(parts) == 4 else 'no_host_in_the_name'
    live = tmp_path / f'.other.partial-{host}-{os.getpid()}-abc'
    foreign = tmp_path / f'.other.partial-someotherhost-{proc.pid}-abc'
    live.mkdir()
    foreign.mkdir()

    small = write_bag(tmp_path / 'small', jittery_spec(0.5))
    again = _cli(small, tmp_path / 'ds2', contract_file)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert not left[0].exists(), 'the dead run\'s work directory is still there'
    assert live.is_dir() and foreign.is_dir()
    assert sorted(_partials(tmp_path)) == sorted([live, foreign])


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (3_000, 3_000))


def test_write_error_is_one_line(tmp_path, contract_file) -> None:
    # RLIMIT_FSIZE makes the real writers (PyAV, pyarrow) fail as on a full disk.
    bag = write_bag(tmp_path / 'bag', jittery_spec(2.0))
    out = tmp_path / 'ds'
    proc = _cli(bag, out, contract_file, preexec_fn=_limit_file_size)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert 'Traceback' not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith('smolvla-convert:')]
    assert len(lines) == 1 and 'File too large' in lines[0], err
    assert f'nothing was written to {out}' in lines[0]
    assert not out.exists() and not _partials(tmp_path)


def test_unwritable_output_is_one_line(tmp_path, contract_file) -> None:
    bag = write_bag(tmp_path / 'bag', jittery_spec(0.5))
    (tmp_path / 'afile').write_text('')
    proc = _cli(bag, tmp_path / 'afile' / 'ds', contract_file)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in err, err
    assert err.strip().startswith('smolvla-convert: error: ') and 'afile' in err, err
    assert len(err.strip().splitlines()) == 1, err
