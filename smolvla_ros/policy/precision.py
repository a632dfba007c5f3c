"""Which reduced precisions the machine computes natively, and the dtype a policy is served in.

bfloat16 halves the weights' memory and, where the hardware has bf16 arithmetic, speeds the
matrix products up: on x86 CPUs with AVX512-BF16 or AMX (cpuinfo flags `avx512_bf16`,
`amx_bf16`), on aarch64 CPUs with the BF16 extension (`bf16`), on CUDA GPUs from Ampere on. On a
CPU without them torch emulates bf16 (converting around fp32 kernels), which is no faster and
often slower than float32, while still paying bf16's rounding. So `from_pretrained` (and with it
the policy server and `smolvla-ros eval`) keeps float32 there, with a warning, unless forced
(docs/policy.md, "dtype, device, compile"). float16 is treated the same way (`avx512_fp16`,
`amx_fp16`, aarch64 `asimdhp`).
"""
from __future__ import annotations

from collections.abc import Iterable
import functools
import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

FORCE_ENV = 'SMOLVLA_ROS_FORCE_DTYPE'  # '1': use the requested dtype even when emulated
CPUINFO = Path('/proc/cpuinfo')
NATIVE_CPU_FLAGS = {
    torch.bfloat16: ('avx512_bf16', 'amx_bf16', 'bf16'),
    torch.float16: ('avx512_fp16', 'amx_fp16', 'asimdhp'),
}


@functools.lru_cache(maxsize=4)
def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU feature flags of the first processor in /proc/cpuinfo (x86 `flags`, aarch64
    `Features`); empty where there is no such file (macOS, Windows)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features'):
            return frozenset(value.split())
    return frozenset()


def native_cpu_flags(dtype: torch.dtype, flags: Iterable[str] | None = None) -> list[str]:
    """The flags among `flags` (default: this CPU's) that give `dtype` native arithmetic."""
    have = set(cpu_flags() if flags is None else flags)
    return [f for f in NATIVE_CPU_FLAGS.get(dtype, ()) if f in have]


def is_native(dtype: torch.dtype, device: str | torch.device = 'cpu',
              flags: Iterable[str] | None = None) -> bool:
    """Whether `device` computes `dtype` in hardware (float32/float64 always do).

    CUDA: bf16 where `torch.cuda.is_bf16_supported()` (compute capability >= 8.0), fp16
    always. Other devices (mps, xpu, ...) are trusted.
    """
    if dtype not in NATIVE_CPU_FLAGS:
        return True
    kind = torch.device(device).type
    if kind == 'cpu':
        return bool(native_cpu_flags(dtype, flags))
    if kind == 'cuda' and dtype == torch.bfloat16:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return True


def force_requested() -> bool:
    """Whether the environment forces the requested dtype (SMOLVLA_ROS_FORCE_DTYPE=1)."""
    return os.environ.get(FORCE_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def resolve_dtype(dtype: torch.dtype, device: str | torch.device = 'cpu', force: bool = False,
                  flags: Iterable[str] | None = None) -> torch.dtype:
    """The dtype to serve in: `dtype`, or float32 when `device` would only emulate it.

    Emulated bf16/fp16 is kept when `force` or SMOLVLA_ROS_FORCE_DTYPE=1 (e.g. to measure the
    accuracy of a bf16 deployment on a machine without bf16); either way a warning says so.
    """
    if is_native(dtype, device, flags):
        return dtype
    name = str(dtype).removeprefix('torch.')
    wanted = ' or '.join(NATIVE_CPU_FLAGS[dtype])
    if force or force_requested():
        logger.warning('%s on %s is emulated (no %s): forced, as asked, but expect it to be '
                       'slower than float32', name, device, wanted)
        return dtype
    logger.warning('%s requested, but %s has no native %s (no %s): keeping float32, which is '
                   'as fast or faster there. Force it with force_dtype / %s=1', name, device,
                   name, wanted, FORCE_ENV)
    return torch.float32
