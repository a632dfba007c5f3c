"""`smolvla-ros calibrate` end to end against the servo emulator on a real pty.

The test plays the human: while the CLI records ranges (``--sweep-seconds``), a thread sweeps the
emulated servos through known ranges; the file must then describe exactly those ranges, the servos
must hold the offsets, and ``--check`` must pass, then fail once something is off.
"""
from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path
import threading
import time

import pytest

from smolvla_ros.cli import calibrate as calibrate_cli
from smolvla_ros.cli.calibrate import EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_OK
from smolvla_ros.cli.main import main as cli_main
from smolvla_ros.core.robot.calibration import load_calibration
from smolvla_ros.hardware.emulator import ServoConfig, ServoEmulator
from smolvla_ros.hardware.feetech.tables import SO101_MOTOR_IDS

# Mid pose (Actual ticks) per id, and how far each joint is swept either side of it.
MID = {1: 1800, 2: 2100, 3: 2500, 4: 1900, 5: 2047, 6: 1600}
HALF_SPAN = {1: 600, 2: 500, 3: 700, 4: 400, 5: 100, 6: 300}


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    return calibrate_cli.run(parser.parse_args(argv), out=out, stdin=io.StringIO()), out.getvalue()


@pytest.fixture
def emulator():
    servos = {i: ServoConfig(position=float(MID[i])) for i in SO101_MOTOR_IDS.values()}
    with ServoEmulator(servos) as emu:
        yield emu


def _homed(emu: ServoEmulator) -> bool:
    return all(emu.read_register(i, 'Homing_Offset') == MID[i] - 2047 for i in MID)


def _sweep(emu: ServoEmulator, stop: threading.Event) -> None:
    """Once the CLI has homed at the mid pose, move every joint through mid +- HALF_SPAN
    (touching both ends), like a hand would."""
    while not _homed(emu):
        if stop.is_set():
            return
        time.sleep(0.005)
    t0 = time.monotonic()
    while not stop.is_set():
        phase = 2 * math.pi * (time.monotonic() - t0) / 0.6
        emu.set_actual_positions(
            {i: MID[i] + HALF_SPAN[i] * max(-1.0, min(1.0, 1.3 * math.sin(phase))) for i in MID})
        time.sleep(0.005)


def _calibrate(emu: ServoEmulator, out_file: Path) -> tuple[int, str]:
    stop = threading.Event()
    mover = threading.Thread(target=_sweep, args=(emu, stop))
    mover.start()
    try:
        return _run(['--port', emu.port_path, '--role', 'follower', '--out', str(out_file),
                     '--sweep-seconds', '1.5'])
    finally:
        stop.set()
        mover.join()


def test_calibrate_then_check(emulator: ServoEmulator, tmp_path: Path) -> None:
    out_file = tmp_path / 'follower.json'
    rc, text = _calibrate(emulator, out_file)
    assert rc == EXIT_OK, text
    data = json.loads(out_file.read_text())
    assert list(data) == list(SO101_MOTOR_IDS)  # LeRobot's format: name -> fields
    cal = load_calibration(out_file)
    for name, motor_id in SO101_MOTOR_IDS.items():
        c = cal[name]
        assert c.id == motor_id and c.drive_mode == 0
        assert c.homing_offset == MID[motor_id] - 2047  # half-turn homing at the mid pose
        if name == 'wrist_roll':
            assert (c.range_min, c.range_max) == (0, 4095)
        else:
            # Present = Actual - offset: the swept ends read 2047 +- HALF_SPAN (+-1 tick rounding)
            assert c.range_min == pytest.approx(2047 - HALF_SPAN[motor_id], abs=1)
            assert c.range_max == pytest.approx(2047 + HALF_SPAN[motor_id], abs=1)
        # ...and the servo's EEPROM holds them.
        assert emulator.read_register(motor_id, 'Homing_Offset') == c.homing_offset
        assert emulator.read_register(motor_id, 'Min_Position_Limit') == c.range_min
        assert emulator.read_register(motor_id, 'Max_Position_Limit') == c.range_max

    emulator.set_actual_positions(MID)
    rc, text = _run(['--check', '--port', emulator.port_path, '--calibration', str(out_file)])
    assert rc == EXIT_OK, text
    assert 'calibration OK' in text and text.count(' ok\n') == 6

    # A joint outside its range is reported by name.
    emulator.set_actual_positions({3: MID[3] + HALF_SPAN[3] + 300})
    rc, text = _run(['--check', '--port', emulator.port_path, '--calibration', str(out_file)])
    assert rc == EXIT_CHECK_FAILED
    assert 'elbow_flex: reads' in text

    # A file whose offset differs from the servo is reported too.
    emulator.set_actual_positions(MID)
    data['gripper']['homing_offset'] += 5
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(data))
    rc, text = _run(['--check', '--port', emulator.port_path, '--calibration', str(other)])
    assert rc == EXIT_CHECK_FAILED
    assert 'gripper: Homing_Offset' in text


def test_joint_that_never_moves_is_an_error(emulator: ServoEmulator, tmp_path: Path) -> None:
    rc, text = _run(['--port', emulator.port_path, '--out', str(tmp_path / 'c.json'),
                     '--sweep-seconds', '0.2'])
    assert rc == EXIT_ERROR
    assert 'did not move' in text and 'shoulder_pan' in text
    assert not (tmp_path / 'c.json').exists()


def test_argument_errors(tmp_path: Path) -> None:
    existing = tmp_path / 'x.json'
    existing.write_text('{}')
    rc, text = _run(['--port', '/nonexistent', '--out', str(existing)])
    assert rc == EXIT_ERROR and '--force' in text
    rc, text = _run(['--port', '/nonexistent', '--check'])
    assert rc == EXIT_ERROR and '--calibration' in text
    rc, text = _run(['--port', '/nonexistent/tty', '--out', str(tmp_path / 'y.json'),
                     '--sweep-seconds', '1'])
    assert rc == EXIT_ERROR and 'cannot open' in text


def test_subcommand_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(['calibrate', '--help'])
    assert exc.value.code == 0
    assert '--sweep-seconds' in capsys.readouterr().out
