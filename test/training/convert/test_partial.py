"""Work directories are named after their writer, and only those of dead writers are swept."""
from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import time

from smolvla_training.convert.partial import make_partial_dir, sweep_stale_partials


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_name_carries_host_and_pid(tmp_path) -> None:
    work = make_partial_dir(tmp_path / 'ds')
    assert work.parent == tmp_path and work.is_dir()
    _, host, pid, _rand = work.name.split('-')
    assert work.name.startswith('.ds.partial-') and int(pid) == os.getpid() and host
    assert sweep_stale_partials(tmp_path) == [] and work.is_dir()  # ours: alive


def test_sweep_removes_only_dead_writers_of_this_host(tmp_path) -> None:
    mine = make_partial_dir(tmp_path / 'ds')
    host = mine.name.split('-')[1]
    dead = tmp_path / f'.ds.partial-{host}-{_dead_pid()}-x1'
    (dead / 'videos').mkdir(parents=True)
    (dead / 'videos' / 'f.mp4').write_bytes(b'1234')
    other_host = tmp_path / f'.ds.partial-elsewhere-{_dead_pid()}-x2'
    old_style = tmp_path / '.ds.partial-k2j4_9zz'  # an older converter's name: unknown writer
    a_file = tmp_path / f'.ds.partial-{host}-{_dead_pid()}-x3'
    visible = tmp_path / f'ds.partial-{host}-{_dead_pid()}-x4'  # not hidden: not ours
    for d in (other_host, old_style, visible):
        d.mkdir()
    a_file.write_text('')
    assert sweep_stale_partials(tmp_path) == [dead]
    assert not dead.exists()
    assert all(p.exists() for p in (mine, other_host, old_style, a_file, visible))


def test_pid_reused_by_a_later_process_is_not_the_writer(tmp_path) -> None:
    mine = make_partial_dir(tmp_path / 'ds')
    host = mine.name.split('-')[1]
    # pid 1 is alive but started long before this directory was last modified: its writer may
    # be running. A process started after the directory's mtime cannot have made it.
    kept = tmp_path / f'.ds.partial-{host}-1-x1'
    kept.mkdir()
    later = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        reused = tmp_path / f'.ds.partial-{host}-{later.pid}-x2'
        reused.mkdir()
        old = time.time() - 3600
        os.utime(reused, (old, old))
        assert sweep_stale_partials(tmp_path) == [reused]
        assert kept.is_dir() and mine.is_dir()
    finally:
        later.kill()
        later.wait()


def test_sweep_of_a_missing_parent_is_quiet(tmp_path) -> None:
    assert sweep_stale_partials(Path(tmp_path / 'nope')) == []
