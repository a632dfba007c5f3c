"""Fixtures: an emulated SO-101 bus on a real pty and a FeetechBus (real scservo_sdk) on it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from smolvla_ros.hardware.emulator import ServoEmulator
from smolvla_ros.hardware.feetech import FeetechBus, so101_motors

# Reply margin per transfer. The emulator answers from a thread of this process: on a loaded
# 2-core machine its replies were measured 30-70 ms late, and over 100 ms at three times more
# runnable threads than cores. One spurious timeout breaks the exact error counts asserted here;
# only tests that drop or delay a reply on purpose pay the margin.
TIMEOUT_MS = 200.0


@pytest.fixture
def emulator() -> Iterator[ServoEmulator]:
    with ServoEmulator(range(1, 7)) as emu:
        yield emu


@pytest.fixture
def bus(emulator: ServoEmulator) -> Iterator[FeetechBus]:
    with FeetechBus(emulator.port_path, so101_motors(), timeout_ms=TIMEOUT_MS) as b:
        yield b


@pytest.fixture
def timeout_ms() -> float:
    return TIMEOUT_MS
