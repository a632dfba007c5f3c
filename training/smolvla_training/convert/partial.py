"""Hidden work directories beside an output, and the sweep of those that dead runs left behind.

The converter and ``--recover`` write into ``.<out>.partial-<host>-<pid>-<random>`` and rename it
into place at the end; an error or a signal (SIGINT, SIGTERM, SIGHUP: ``convert/cli.py``) removes
it. Only SIGKILL, an OOM kill or a power cut can still leave one. Naming the writer's host and
pid lets any later run on the same host tell such a leftover from the work of a run still going
(the pid is gone) and remove it. A directory of another host (a shared disk) or whose pid is
alive is left alone; so are leftovers of versions that did not put the pid in the name (named in
the log, to be removed by hand).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
import re
import shutil
import socket
import tempfile

logger = logging.getLogger(__name__)
_MARK = '.partial-'
_NAME = re.compile(r'^\.(?P<out>.+)\.partial-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[^-/]+$')


def _host() -> str:
    """This machine's name, reduced to characters that cannot clash with the name's dashes."""
    return re.sub(r'[^A-Za-z0-9_.]', '_', socket.gethostname()) or 'host'


def make_partial_dir(out: Path) -> Path:
    """A new empty work directory for ``out``, beside it (same file system, so the final rename
    is atomic). Sweeps dead runs' leftovers in the same parent first."""
    sweep_stale_partials(out.parent)
    return Path(tempfile.mkdtemp(prefix=f'.{out.name}{_MARK}{_host()}-{os.getpid()}-',
                                 dir=out.parent))


def _started_at(pid: int) -> float | None:
    """Start time of process ``pid`` (s since the epoch) from /proc, or None where unknown."""
    try:
        btime = next(float(line.split()[1]) for line in Path('/proc/stat').read_text().splitlines()
                     if line.startswith('btime '))
        stat = Path(f'/proc/{pid}/stat').read_text()
        ticks = float(stat[stat.rindex(')') + 2:].split()[19])  # field 22: starttime
        return btime + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _writer_alive(pid: int, path: Path) -> bool:
    """Whether the process that made ``path`` may still be running: pid ``pid`` exists and did
    not start after ``path`` was last modified (a later process with a reused pid is not it)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    started = _started_at(pid)
    try:
        # 2 s: /proc/stat's btime is whole seconds, starttime is in clock ticks
        return started is None or started <= path.stat().st_mtime + 2.0
    except OSError:
        return True


def sweep_stale_partials(parent: Path) -> list[Path]:
    """Remove the work directories in ``parent`` whose writer (this host, that pid) is dead.

    Returns what was removed. Never raises for a directory it cannot inspect or remove: the
    sweep is housekeeping and must not fail a conversion.
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    host = _host()
    for path in entries:
        if _MARK not in path.name or not path.name.startswith('.'):
            continue
        m = _NAME.match(path.name)
        try:
            if not path.is_dir() or path.is_symlink():
                continue
        except OSError:
            continue
        if m is None:
            logger.warning('%s looks like the work directory of an older smolvla-convert that '
                           'was killed; remove it by hand if no conversion is running', path)
            continue
        if m['host'] != host or _writer_alive(int(m['pid']), path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            logger.info('removed %s, left by a conversion (pid %s) that was killed', path,
                        m['pid'])
            removed.append(path)
    return removed
