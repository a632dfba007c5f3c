"""The launch files under the real `ros2 launch` (launch 3.7, launch_ros 0.28; `make ros2-launch`).

- `--show-args` of every launch file lists the profile's arguments and defaults;
- `probe.launch.py` end to end: the probe's answers, its shutdown_on_exit ending the launch, and
  the server stopped by launch without an on_exit line of ours (docs/bringup.md, "Stopping");
- the on_exit rules with tiny child programs: a required process that dies on its own ends the
  launch with one line naming it; a Ctrl-C ends it with none;
- `so101_demo.launch.py` (simulator, real driver on the emulated bus, policy server, executor)
  stopped the way a person does, Ctrl-C to the whole process group, once from a terminal (the
  shipped checkpoint's policy_server) and twice 50 ms apart (non-interactive, so launch forwards a
  SIGINT of its own as well; the oracle), and
  `smolvla-ros up so101_demo` stopped with three Ctrl-C: every node exits 0 without a traceback
  and the emulated servos end with torque off, read from the simulator's bus report (the
  emulator's registers when the bus stopped), after the driver had torque on and the executor
  had executed commands from a chunk.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import re
import signal
import subprocess
import textwrap
import time

import pytest
from real_launch import (
    launch_env,
    launch_files,
    make_ament_prefix,
    require_real_launch,
    ros2_executable,
)
from up_process import spin_or_fail
from waiting import wait_until

from smolvla_ros.bringup.processes import stop, up_command
from smolvla_ros.bringup.profile import load_profile
from smolvla_ros.bringup.resolve import resolve_profile
from smolvla_ros.bringup.watcher import StackWatcher

pytestmark = [pytest.mark.ros]

RUN_S = 120.0  # wall bound of a short ros2 launch run (failure only; a loaded 2-core machine)
# Wall bound: the demo stack started and executing chunks (~10 s on an idle 2-core machine; a
# shared one at load 14 took 85 s to start the oracle alone).
DEMO_READY_S = 240.0
STOP_S = 30.0  # wall bound: everything exited after the Ctrl-C
_CLEAN = re.compile(r'\[INFO\] \[(\w+)-\d+\]: process has finished cleanly')


@pytest.fixture(autouse=True)
def _real_launch() -> None:
    require_real_launch()


@pytest.fixture(scope='module')
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ament_prefix(tmp_path_factory.mktemp('prefix'))


def _ros2_launch(*args: str) -> list[str]:
    return [str(ros2_executable()), 'launch', *args]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_S)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        out, _ = proc.communicate()
        pytest.fail(f'{cmd} did not end within {RUN_S:g} s:\n{out[-6000:]}')
    return subprocess.CompletedProcess(cmd, proc.returncode, out, '')


def _stop_group(proc: subprocess.Popen) -> None:
    """End a launch and its nodes (one process group): SIGINT, then SIGKILL."""
    stop(proc, 20.0, group=True)


def _assert_quiet(out: str) -> None:
    """No traceback, no Ctrl-C exception, no on_exit line of ours for an asked-for stop."""
    for text in ('Traceback', 'KeyboardInterrupt', '[bringup] required process'):
        assert text not in out, f'{text!r} in the output:\n{out[-6000:]}'


# -- --show-args ------------------------------------------------------------------------------

@pytest.mark.parametrize('launch_file', launch_files(), ids=lambda p: p.name)
def test_show_args_lists_the_profile_arguments(launch_file: Path, prefix: Path, ros_env) -> None:
    result = _run(_ros2_launch('--show-args', 'smolvla_ros', launch_file.name),
                  launch_env(ros_env, prefix))
    assert result.returncode == 0, result.stdout
    shown = re.findall(r"^    '(\w+)':$", result.stdout, flags=re.MULTILINE)
    profile = load_profile(launch_file.name.removesuffix('.launch.py'))
    assert shown == profile.argument_names(), result.stdout
    for arg in profile.arguments:
        if arg.default is not None:
            assert f"(default: '{arg.default}')" in result.stdout, (arg.name, result.stdout)


# -- probe end to end -------------------------------------------------------------------------

@pytest.mark.integration
def test_probe_launch_end_to_end(prefix: Path, ros_env) -> None:
    result = _run(_ros2_launch('smolvla_ros', 'probe.launch.py', 'count:=5'),
                  launch_env(ros_env, prefix))
    out = result.stdout
    assert result.returncode == 0, out
    assert '5/5 valid answers' in out, out
    assert out.count('[bringup] predict_probe finished successfully (shutdown_on_exit)') == 1, out
    assert set(_CLEAN.findall(out)) == {'null_policy_server', 'predict_probe'}, out
    assert 'process has died' not in out, out
    _assert_quiet(out)


# -- on_exit: a real death versus an asked-for stop --------------------------------------------

def _child_launch(tmp_path: Path, write_profile, child_argv, crasher: bool) -> Path:
    worker = list(child_argv('worker', ticks=2400))  # 2 min unless signalled
    processes = [{'name': 'worker', 'cmd': worker}]
    if crasher:  # exits 3 on its own 0.5 s after the worker is up
        processes.append({'name': 'crasher',
                          'cmd': list(child_argv('crasher', ticks=10, code=3, after='worker'))})
    profile = write_profile(json.dumps({'description': 'on_exit check', 'processes': processes}))
    launch_file = tmp_path / 'children.launch.py'
    launch_file.write_text(textwrap.dedent(f'''\
        from smolvla_ros.bringup.launch_support import profile_launch_description


        def generate_launch_description():
            return profile_launch_description({str(profile)!r})
        '''))
    return launch_file


def test_a_required_process_that_dies_ends_the_launch_with_one_line(
        tmp_path: Path, write_profile, child_argv, ros_env) -> None:
    launch_file = _child_launch(tmp_path, write_profile, child_argv, crasher=True)
    result = _run(_ros2_launch(str(launch_file)), ros_env)
    out = result.stdout
    reason = '[bringup] required process crasher exited with exit code 3'
    assert out.count(reason) == 1, out
    assert out.count('[bringup]') == 1, out  # nothing for the worker launch then stopped
    assert (tmp_path / 'worker.sig').read_text() == 'SIGINT'
    assert 'Traceback' not in out, out


def test_a_ctrl_c_ends_the_launch_without_on_exit_lines(
        tmp_path: Path, write_profile, child_argv, ros_env) -> None:
    launch_file = _child_launch(tmp_path, write_profile, child_argv, crasher=False)
    proc = subprocess.Popen(_ros2_launch(str(launch_file)), env=ros_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until((tmp_path / 'worker.ready').exists, RUN_S), 'worker never started'
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=STOP_S)
    finally:
        _stop_group(proc)
    assert (tmp_path / 'worker.sig').read_text() == 'SIGINT'
    assert 'user interrupted with ctrl-c' in out, out
    # Not even for the worker's death by launch's forwarded SIGINT (this toy child, unlike our
    # nodes, does not survive a second one): it was asked to stop.
    assert '[bringup]' not in out, out


# -- so101_demo stopped with Ctrl-C -----------------------------------------------------------

class _Watcher(StackWatcher):
    """Executed commands and the driver's state on the stack's domain."""

    def __init__(self, domain_id: int) -> None:
        super().__init__(domain_id, 'launch_stop_watcher')
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        self.executed = 0
        self.driver_states: set[str] = set()
        self.node.create_subscription(JointState, 'executed_action', self._on_executed, 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _on_executed(self, _msg) -> None:
        self.executed += 1

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if 'driver' in status.name and status.name.endswith(': bus'):
                self.driver_states.update(kv.value for kv in status.values if kv.key == 'state')


@pytest.fixture
def demo_stack_available() -> None:
    pytest.importorskip('mujoco')
    pytest.importorskip('smolvla_ros.nodes.so101_sim')
    pytest.importorskip('smolvla_ros.nodes.oracle_policy_server')


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(DEMO_READY_S + 2 * STOP_S + 60)
@pytest.mark.parametrize(('front_end', 'interactive', 'repeats', 'policy'), [
    # one Ctrl-C in a terminal, with the profile's default policy (the shipped checkpoint)
    ('ros2 launch', True, (), []),
    # Ctrl-C twice, 50 ms apart; launch forwards one more (the oracle: a lighter start)
    ('ros2 launch', False, (0.05,), ['oracle:=true']),
    ('up', False, (0.05, 0.05), ['oracle:=true']),  # Ctrl-C three times
], ids=['launch-ctrl-c', 'launch-ctrl-c-twice', 'up-ctrl-c-thrice'])
def test_demo_ctrl_c_releases_the_arm_and_every_node_exits_0(
        front_end: str, interactive: bool, repeats: tuple[float, ...], policy: list[str],
        prefix: Path, demo_stack_available, ros_env, tmp_path: Path) -> None:
    report = tmp_path / 'bus_report.json'
    args = [f'port:={tmp_path / "bus"}', f'bus_report:={report}', *policy]
    resolved = resolve_profile(load_profile('so101_demo'),
                               dict(a.split(':=', 1) for a in args))
    nodes = resolved.enabled_entries()  # launch names a process by its executable, up by name
    assert {n.executable for n in nodes} >= {'so101_sim', 'feetech_driver', 'chunk_executor'}
    if front_end == 'up':
        cmd, env = up_command('so101_demo', *args), ros_env
    else:
        cmd = _ros2_launch('smolvla_ros', 'so101_demo.launch.py', *args)
        env = launch_env(ros_env, prefix)
    log = tmp_path / 'stack.log'
    terminal = os.openpty() if interactive else None  # stdin a tty: launch is interactive
    with log.open('w') as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                stdin=terminal[1] if terminal else subprocess.DEVNULL,
                                start_new_session=True)
    watcher = None
    try:
        watcher = _Watcher(int(ros_env['ROS_DOMAIN_ID']))
        ready = spin_or_fail(
            watcher, lambda: watcher.executed >= 10 and 'enabled' in watcher.driver_states,
            DEMO_READY_S, proc, log)
        assert ready, (f'executed {watcher.executed}, driver {watcher.driver_states}:\n'
                       f'{log.read_text()[-6000:]}')
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
        for delay in repeats:
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f'not stopped within {STOP_S:g} s:\n{log.read_text()[-6000:]}')
    finally:
        if watcher is not None:
            watcher.close()
        _stop_group(proc)
        if terminal:
            for fd in terminal:
                os.close(fd)
    out = log.read_text()
    _assert_quiet(out)
    if front_end == 'up':
        assert code == 128 + signal.SIGINT, out
        stopped = dict(re.findall(r'^\[up\] (\w+) stopped \((.+)\)$', out, flags=re.MULTILINE))
        assert stopped == {n.name: 'exit code 0' for n in nodes}, out
        assert 'sending SIGKILL' not in out, out
    else:
        assert sorted(_CLEAN.findall(out)) == sorted(n.executable for n in nodes), out
        assert 'process has died' not in out and 'escalating' not in out, out
    # The emulated servos as the simulator's bus left them: the driver released the arm.
    assert report.is_file(), f'no bus report from so101_sim:\n{out[-6000:]}'
    final = json.loads(report.read_text())
    assert final['released'] and final['torque_on'] == [], final
    assert len(final['servos']) == 6 and not any(
        s['torque_enabled'] for s in final['servos'].values()), final
    assert 'torque off impossible' not in out, out
