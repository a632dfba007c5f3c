"""`smolvla-ros up`: listing, dry runs, argument errors, missing executables, exit statuses."""
from __future__ import annotations

from pathlib import Path
import signal
import subprocess
import time

from waiting import pid_alive
import yaml

from smolvla_ros.bringup.processes import up_command
from smolvla_ros.cli.main import main

ROOT = Path(__file__).resolve().parents[3]  # the source checkout: config/ lives here


def _profile_with_processes(write_profile, child_argv, entries: str) -> Path:
    """A profile whose processes are tiny children; `entries` is YAML with {name}-argv markers."""
    return write_profile(entries.format(
        **{name: yaml.safe_dump(list(child_argv(name, **kw)), default_flow_style=True).strip()
           for name, kw in {'a': {'ticks': 100000}, 'b': {'ticks': 100000},
                            'dies': {'code': 3, 'after': 'a'}}.items()}))


def test_list_and_show_args(capsys) -> None:
    assert main(['up', '--list']) == 0
    assert 'probe' in capsys.readouterr().out
    assert main(['up', '--show-args', 'probe']) == 0
    out = capsys.readouterr().out
    assert "count (default '20'): number of PredictChunk requests" in out


def test_dry_run_prints_the_resolved_command_lines(capsys) -> None:
    assert main(['up', '--dry-run', 'probe', 'count:=7', 'namespace:=so101']) == 0
    lines = capsys.readouterr().out.splitlines()
    server = next(line for line in lines if line.startswith('[null_policy_server]'))
    probe = next(line for line in lines if line.startswith('[predict_probe]'))
    assert '(required)' in server and '(required, shutdown_on_exit)' in probe
    assert server.endswith('null_policy_server --ros-args -r __node:=null_policy_server -r '
                           '__ns:=/so101 --params-file '
                           f'{ROOT / "config/params/probe.yaml"}')
    assert "'count': 7" in '\n'.join(lines)
    assert main(['up', '--dry-run', 'probe', 'server:=false']) == 0
    out = capsys.readouterr().out
    assert "# skipped null_policy_server: condition if 'false'" in out
    assert '[null_policy_server]' not in out


def test_argument_errors_exit_2_and_list_the_arguments(capsys) -> None:
    assert main(['up', 'probe', 'cuont:=3']) == 2
    err = capsys.readouterr().err
    assert "[up] ERROR: unknown argument 'cuont' for profile 'probe'" in err
    assert "count (default '20')" in err and "server (default 'true'" in err
    assert main(['up', 'probe', 'server:=maybe']) == 2
    assert "'server': 'maybe' is not one of ['true', 'false']" in capsys.readouterr().err
    assert main(['up']) == 2
    assert 'no PROFILE given' in capsys.readouterr().err
    assert main(['up', 'no_such_profile']) == 2
    assert "no profile named 'no_such_profile'" in capsys.readouterr().err


def test_missing_executable_starts_nothing(write_profile, child_argv, tmp_path, capsys) -> None:
    path = _profile_with_processes(write_profile, child_argv, '''
        description: one good process, two missing node executables
        processes:
          - {{name: a, cmd: {a}}}
        nodes:
          - {{name: ghost, executable: no_such_node_xyz}}
          - {{name: other, executable: no_such_node_abc, package: some_pkg}}
        ''')
    assert main(['up', str(path)]) == 2
    err = capsys.readouterr().err
    assert "profile 'test_profile': nothing was started because 2 executables are missing" in err
    assert "node ghost: executable 'no_such_node_xyz' not found" in err
    assert "node other: executable 'no_such_node_abc' not found" in err
    assert '<prefix>/lib/some_pkg/' in err
    time.sleep(0.2)
    assert not (tmp_path / 'a.ready').exists(), 'a process was started although one was missing'


def test_required_process_death_exits_1_naming_it(write_profile, child_argv, capsys) -> None:
    path = _profile_with_processes(write_profile, child_argv, '''
        description: a dies
        processes:
          - {{name: a, cmd: {a}}}
          - {{name: dies, cmd: {dies}}}
        ''')
    assert main(['up', '--sigint-timeout', '3', str(path)]) == 1
    captured = capsys.readouterr()
    assert '[up] ERROR: bringup failed: required process dies exited with exit code 3' in (
        captured.err)


def test_sigint_to_up_is_forwarded_and_everything_ends(write_profile, child_argv,
                                                       tmp_path) -> None:
    path = _profile_with_processes(write_profile, child_argv, '''
        description: two long-running processes
        processes:
          - {{name: a, cmd: {a}}}
          - {{name: b, cmd: {b}}}
        ''')
    # A generous SIGINT window: the children must end on SIGINT itself, however slowly a loaded
    # machine runs their handlers, and never be escalated to SIGTERM (which they do not handle).
    proc = subprocess.Popen(up_command('--sigint-timeout', '30', str(path)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        ready = set()
        for line in proc.stdout:
            lines.append(line.rstrip('\n'))
            if line.strip() in ('[a] a ready', '[b] b ready'):
                ready.add(line.strip())
            if len(ready) == 2:
                break
        assert len(ready) == 2, lines
        pids = [int(line.split('(pid ')[1].rstrip(')')) for line in lines if '(pid ' in line]
        assert len(pids) == 2, lines
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = '\n'.join(lines) + rest
    assert proc.returncode == 130, output
    assert '[a] a got SIGINT' in output and '[b] b got SIGINT' in output
    assert '[up] stopped by SIGINT' in output
    assert (tmp_path / 'a.sig').read_text() == 'SIGINT'
    for pid in pids:
        assert not pid_alive(pid), f'child {pid} still runs'
