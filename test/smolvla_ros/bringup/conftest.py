"""Helpers for the bringup tests: profiles and tiny child programs written into tmp_path."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import sys
import textwrap

import pytest

# A child that installs its signal handlers, writes <dir>/<name>.ready, prints a greeting and
# 'ready', optionally waits until <dir>/<other>.ready exists for each name in `after` (comma list),
# then sleeps `ticks` x 0.05 s and exits with `code`. On SIGINT (or SIGTERM in mode 'ignore-int')
# it prints 'got SIG...', writes the signal name to <dir>/<name>.sig and exits 0.
CHILD = '''
import os, signal, sys, time
name, ticks, code, mode, marker, after = sys.argv[1:7]
ticks, code = int(ticks), int(code)
folder = os.path.dirname(marker)

def on_signal(signum, frame):
    print(name, 'got', signal.Signals(signum).name, flush=True)
    open(marker, 'w').write(signal.Signals(signum).name)
    sys.exit(0)

if mode == 'ignore-int':
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_signal)
elif mode == 'ignore-all':
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, on_signal)
open(os.path.join(folder, name + '.ready'), 'w').close()
print(name, 'hello', flush=True)
print(name, 'ready', flush=True)
for other in filter(None, after.split(',')):
    while not os.path.exists(os.path.join(folder, other + '.ready')):
        time.sleep(0.01)
for i in range(ticks):
    time.sleep(0.05)
sys.exit(code)
'''


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / 'child.py'
    path.write_text(CHILD)
    return path


@pytest.fixture
def child_argv(child_script: Path, tmp_path: Path) -> Callable[..., tuple[str, ...]]:
    """argv of a tiny child (see CHILD); its signal marker is tmp_path/<name>.sig."""
    def make(name: str, ticks: int = 0, code: int = 0, mode: str = 'normal',
             after: str = '') -> tuple[str, ...]:
        return (sys.executable, str(child_script), name, str(ticks), str(code), mode,
                str(tmp_path / f'{name}.sig'), after)
    return make


@pytest.fixture
def write_profile(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text (dedented) to tmp_path/<name>.yaml and return the path."""
    def write(text: str, name: str = 'test_profile') -> Path:
        path = tmp_path / f'{name}.yaml'
        path.write_text(textwrap.dedent(text))
        return path
    return write
