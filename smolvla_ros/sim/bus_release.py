"""How the simulated arm's bus ends: wait (bounded) for the driver to release the arm, report it.

When a bringup stops, every node gets SIGINT at the same moment: the simulator would close its
emulated bus while the driver is still turning torque off on it, and the driver's release would
fail with "port gone". A real arm's servos do not vanish when the driver stops, so the simulator
keeps the bus served until every servo reads torque off, or ``grace_s`` has passed (a driver with
``torque_off_on_shutdown: false``, or none at all, never releases it), and then until the bus
has been quiet for ``quiet_s``: the driver's broadcast turns torque off everywhere before its
acknowledged per-servo writes, which would otherwise find the bus gone. The final register state
is what a check of the stop looks at (so101_sim's ``bus_report_file``), not a log line.
ROS-free: used by nodes/so101_sim.py, tested against the emulator alone.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import json
import os
from pathlib import Path
import time

from smolvla_ros.hardware.emulator.server import ServoEmulator


@dataclass(frozen=True)
class ServoFinalState:
    """One servo as the bus left it: torque flag and positions in ticks (Actual frame)."""

    torque_enabled: bool
    goal: float
    position: float


@dataclass(frozen=True)
class BusRelease:
    """The outcome of :func:`wait_for_release`."""

    servos: dict[int, ServoFinalState]
    waited_s: float  # from the call until torque was off everywhere, or the grace ran out
    grace_s: float

    @property
    def torque_on(self) -> list[int]:
        """Servo ids that still hold torque."""
        return sorted(i for i, s in self.servos.items() if s.torque_enabled)

    @property
    def released(self) -> bool:
        return not self.torque_on

    def to_json(self) -> dict:
        return {
            'released': self.released,
            'torque_on': self.torque_on,
            'waited_s': round(self.waited_s, 4),
            'grace_s': self.grace_s,
            'servos': {str(i): {'torque_enabled': s.torque_enabled, 'goal': s.goal,
                                'position': s.position} for i, s in sorted(self.servos.items())},
        }


def wait_for_release(emulator: ServoEmulator, grace_s: float, *, quiet_s: float = 0.2,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep,
                     poll_s: float = 0.01) -> BusRelease:
    """Poll the (running) emulator until no servo holds torque and no packet has arrived for
    ``quiet_s``, or ``grace_s`` has passed."""
    if grace_s < 0 or quiet_s < 0:
        raise ValueError(f'grace_s and quiet_s must be >= 0, got {grace_s} and {quiet_s}')
    start = last_packet = clock()
    packets = emulator.stats().rx_packets
    while clock() - start < grace_s:
        now, seen = clock(), emulator.stats().rx_packets
        if seen != packets:
            packets, last_packet = seen, now
        elif now - last_packet >= quiet_s and not any(emulator.get_torque_enabled().values()):
            break
        sleep(poll_s)
    waited = clock() - start
    torque = emulator.get_torque_enabled()
    goals = emulator.get_goal_positions()
    positions = emulator.get_actual_positions()
    servos = {i: ServoFinalState(bool(torque[i]), float(goals[i]), float(positions[i]))
              for i in emulator.ids}
    return BusRelease(servos, waited, grace_s)


def write_report(path: str | os.PathLike[str], release: BusRelease) -> None:
    """Write the release as JSON, atomically (a reader never sees half a file)."""
    target = Path(path)
    tmp = target.with_name(f'.{target.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(release.to_json(), indent=2) + '\n')
    os.replace(tmp, target)
