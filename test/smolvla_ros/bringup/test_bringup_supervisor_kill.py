"""`smolvla-ros up` (or what started it) killed with SIGKILL: nothing outlives it, arm let go.

The supervisor cannot stop anything once it is SIGKILLed (or taken by the OOM killer); the
children must notice on their own (supervisor.py: PR_SET_PDEATHSIG) and run their normal stop,
which for the driver means torque off. The servo bus is emulated in this test process, so it
outlives the bringup and its servos can be inspected afterwards.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading

import pytest
from waiting import pid_alive, wait_until
import yaml

from smolvla_ros.bringup.processes import up_command
from smolvla_ros.hardware.emulator.cli import add_arguments, build_emulator
from smolvla_ros.paths import share_dir

pytestmark = [pytest.mark.integration, pytest.mark.ros]

CALIBRATION = share_dir() / 'config' / 'calibration' / 'so101_follower_example.json'


def _emulator(link: Path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return build_emulator(parser.parse_args(['--link', str(link),
                                             '--calibration', str(CALIBRATION)]))


def test_sigkill_of_up_ends_every_process_and_releases_the_arm(
        write_profile, child_argv, ros_env, tmp_path) -> None:
    link = tmp_path / 'bus'
    plain = yaml.safe_dump(list(child_argv('plain', ticks=100000)), default_flow_style=True)
    profile = write_profile(f'''
        description: a follower driver on the test's emulated bus, and a plain process
        processes:
          - {{name: plain, cmd: {plain.strip()}}}
        nodes:
          - name: follower_driver
            executable: feetech_driver
            parameters:
              - port: {link}
                calibration_file: {CALIBRATION}
                enable_torque_on_start: true
        ''')
    lines: list[str] = []
    with _emulator(link) as emu:
        up = subprocess.Popen(up_command(str(profile)), env=ros_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        reader = threading.Thread(target=lambda: lines.extend(up.stdout), daemon=True)
        reader.start()
        pids: list[int] = []
        try:
            assert wait_until(lambda: all(emu.get_torque_enabled().values()), 60), lines
            pids = [int(line.split('(pid ')[1].split(')')[0]) for line in list(lines)
                    if '(pid ' in line]
            assert len(pids) == 2, lines
            up.kill()  # SIGKILL: the supervisor gets no chance to stop anything
            assert up.wait(10) == -signal.SIGKILL
            assert wait_until(lambda: not any(pid_alive(p) for p in pids), 30), (
                f'still running after up was killed: {[p for p in pids if pid_alive(p)]}\n'
                + ''.join(lines))
            assert not any(emu.get_torque_enabled().values()), (
                f'torque left on: {emu.get_torque_enabled()}\n' + ''.join(lines))
        finally:
            if up.poll() is None:
                up.kill()
            for pid in pids:  # this test's own processes, if the fix is broken
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_up_stops_its_stack_when_the_program_that_started_it_is_killed(
        write_profile, child_argv, tmp_path) -> None:
    # A test runner or benchmark that starts `up` (bringup/processes.up_command) and is SIGKILLed:
    # `up` gets SIGTERM from the kernel (--parent-pid) and stops its processes in order (SIGINT).
    plain = yaml.safe_dump(list(child_argv('plain', ticks=100000)), default_flow_style=True)
    profile = write_profile(f'''
        description: one plain process
        processes:
          - {{name: plain, cmd: {plain.strip()}}}
        ''')
    starter_code = (
        'import subprocess, time\n'
        'from smolvla_ros.bringup.processes import up_command\n'
        f'up = subprocess.Popen(up_command({str(profile)!r}, "--color", "never"))\n'
        'print("up pid", up.pid, flush=True)\n'
        'time.sleep(120)\n')
    starter = subprocess.Popen([sys.executable, '-c', starter_code], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(starter.stdout), daemon=True)
    reader.start()
    pids: list[int] = []
    try:
        assert wait_until(lambda: any('(pid ' in line for line in list(lines)), 60), lines
        pids = [int(line.split()[-1]) for line in list(lines) if line.startswith('up pid')]
        pids += [int(line.split('(pid ')[1].split(')')[0]) for line in list(lines)
                 if '(pid ' in line]
        assert len(pids) == 2, lines
        # Its signal handlers are in place once it wrote this (before, SIGINT just ends it).
        assert wait_until((tmp_path / 'plain.ready').exists, 60), lines
        starter.kill()
        assert starter.wait(10) == -signal.SIGKILL
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), 30), (
            f'still running after the starter was killed: {[p for p in pids if pid_alive(p)]}\n'
            + ''.join(lines))
        assert (tmp_path / 'plain.sig').read_text() == 'SIGINT'  # up's orderly stop
    finally:
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_parent_pid_that_is_not_the_parent_is_refused() -> None:
    # up_command passes this process's pid; the last --parent-pid given wins.
    result = subprocess.run(up_command('--parent-pid', '1', '--dry-run', 'probe'),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert '--parent-pid 1: the parent of this process is' in result.stderr
