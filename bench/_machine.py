"""What every benchmark records about the machine it ran on (BENCHMARKS.md quotes it).

Not a benchmark itself (the leading underscore keeps it out of `smolvla-ros bench`); the scripts
import it as a sibling module, since they run as `python bench/NAME.py`.
"""
from __future__ import annotations

import os
from pathlib import Path
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what `platform` knows."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def machine() -> dict[str, object]:
    """nproc, CPU model, Python, platform and the 1-minute load average at the time of the call."""
    return {'nproc': os.cpu_count() or 0, 'cpu': cpu_model(), 'python': platform.python_version(),
            'platform': platform.platform(), 'loadavg_1m': round(os.getloadavg()[0], 2)}
