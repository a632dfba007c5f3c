"""The process supervisor with tiny Python children: prefixes, exit rules, signal forwarding."""
from __future__ import annotations

import io
from pathlib import Path
import signal
import threading

import pytest

from smolvla_ros.bringup.supervisor import (
    ProcessSpec,
    Supervisor,
    SupervisorConfig,
    describe_returncode,
)

# Children end as soon as they get SIGINT, so the supervisor never waits these out unless a
# test fails; generous, so that a loaded machine cannot turn a slow exit into an escalation.
GENEROUS = SupervisorConfig(sigint_timeout_s=30.0, sigterm_timeout_s=30.0)


def _run(specs, config=GENEROUS, stop_after: str | None = None):
    """Run a supervisor in this thread; request SIGINT once every child printed `stop_after`."""
    out = _Watched(stop_after, len(specs))
    supervisor = Supervisor(specs, config, out)
    out.supervisor = supervisor
    outcome = supervisor.run(handle_signals=False)
    return outcome, out.getvalue().splitlines()


class _Watched(io.StringIO):
    def __init__(self, trigger: str | None, count: int) -> None:
        super().__init__()
        self.trigger, self.count, self.supervisor, self.seen = trigger, count, None, set()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            if self.trigger is not None and self.trigger in text and self.supervisor:
                self.seen.add(text)
                if len(self.seen) == self.count:
                    self.supervisor.request_stop(signal.SIGINT)
            return super().write(text)


def test_output_is_prefixed_and_shutdown_on_exit_stops_the_others(child_argv, tmp_path) -> None:
    specs = [ProcessSpec('server', child_argv('server', ticks=100000)),
             ProcessSpec('probe', child_argv('probe', code=0, after='server'),
                         shutdown_on_exit=True)]
    outcome, lines = _run(specs)
    assert outcome.exit_code == 0
    assert 'probe finished successfully' in outcome.reason
    assert '[server] server hello' in lines and '[probe] probe hello' in lines
    assert '[server] server got SIGINT' in lines
    assert (tmp_path / 'server.sig').read_text() == 'SIGINT'
    assert outcome.returncodes == {'server': 0, 'probe': 0}


def test_failing_shutdown_on_exit_process_fails_the_bringup(child_argv) -> None:
    specs = [ProcessSpec('server', child_argv('server', ticks=100000)),
             ProcessSpec('probe', child_argv('probe', code=1), shutdown_on_exit=True)]
    outcome, _ = _run(specs)
    assert outcome.exit_code == 1
    assert outcome.reason == 'probe failed with exit code 1 (shutdown_on_exit)'


def test_required_process_dying_fails_and_names_it(child_argv, tmp_path) -> None:
    specs = [ProcessSpec('driver', child_argv('driver', code=3, after='camera')),
             ProcessSpec('camera', child_argv('camera', ticks=100000))]
    outcome, lines = _run(specs)
    assert outcome.exit_code == 1
    assert outcome.reason == 'required process driver exited with exit code 3'
    assert (tmp_path / 'camera.sig').read_text() == 'SIGINT'
    assert outcome.returncodes['driver'] == 3


def test_optional_process_exit_keeps_the_others(child_argv) -> None:
    specs = [ProcessSpec('viewer', child_argv('viewer', code=5), required=False),
             ProcessSpec('probe', child_argv('probe', ticks=10, after='viewer'),
                         shutdown_on_exit=True)]
    outcome, _ = _run(specs)
    assert outcome.exit_code == 0
    assert outcome.returncodes == {'viewer': 5, 'probe': 0}


def test_all_optional_processes_ending_is_success(child_argv) -> None:
    specs = [ProcessSpec('a', child_argv('a'), required=False),
             ProcessSpec('b', child_argv('b', ticks=2), required=False)]
    outcome, _ = _run(specs)
    assert (outcome.exit_code, outcome.reason) == (0, 'all processes exited')


def test_stop_request_forwards_sigint_to_every_child(child_argv, tmp_path) -> None:
    specs = [ProcessSpec('a', child_argv('a', ticks=100000)),
             ProcessSpec('b', child_argv('b', ticks=100000))]
    outcome, lines = _run(specs, stop_after='ready')
    assert outcome.exit_code == 128 + signal.SIGINT
    assert outcome.reason == 'stopped by SIGINT'
    assert (tmp_path / 'a.sig').read_text() == 'SIGINT'
    assert (tmp_path / 'b.sig').read_text() == 'SIGINT'
    assert outcome.returncodes == {'a': 0, 'b': 0}


# A long SIGTERM window costs nothing (the supervisor returns once the child ended) and leaves a
# loaded machine time to run the child's SIGTERM handler before SIGKILL would hit it.
@pytest.mark.parametrize('mode, sigterm_timeout_s, caught, returncode', [
    ('ignore-int', 60.0, 'SIGTERM', 0),  # ignores SIGINT, exits on SIGTERM
    ('ignore-all', 0.5, None, -signal.SIGKILL),  # ignores both: killed
])
def test_escalation(child_argv, tmp_path, mode: str, sigterm_timeout_s: float,
                    caught: str | None, returncode: int) -> None:
    config = SupervisorConfig(sigint_timeout_s=0.5, sigterm_timeout_s=sigterm_timeout_s)
    specs = [ProcessSpec('child', child_argv('child', ticks=100000, mode=mode)),
             ProcessSpec('probe', child_argv('probe', after='child'), shutdown_on_exit=True)]
    outcome, _ = _run(specs, config)
    assert outcome.exit_code == 0
    assert outcome.returncodes['child'] == returncode
    sig = tmp_path / 'child.sig'
    assert (sig.read_text() if sig.exists() else None) == caught


def test_repeated_signals_never_skip_the_wait_before_sigkill(child_argv, tmp_path) -> None:
    """Ctrl-C three times: SIGTERM at once, but SIGKILL only after sigterm_timeout_s, so a child
    still cleaning up (deaf to both for 1.5 s, like a driver releasing the arm) ends on its own."""
    specs = [ProcessSpec('cleaner', child_argv('cleaner', ticks=30, mode='ignore-all'))]
    supervisor = Supervisor(specs, GENEROUS, io.StringIO())

    def press_ctrl_c_thrice() -> None:
        while not (tmp_path / 'cleaner.ready').exists():
            threading.Event().wait(0.01)
        for _ in range(3):
            supervisor.request_stop(signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_thrice, daemon=True)
    presser.start()
    outcome = supervisor.run(handle_signals=False)
    presser.join(timeout=5.0)
    assert outcome.exit_code == 128 + signal.SIGINT
    assert outcome.returncodes == {'cleaner': 0}


def test_unstartable_program_fails_and_stops_the_started_ones(child_argv, tmp_path) -> None:
    specs = [ProcessSpec('a', child_argv('a', ticks=100000)),
             ProcessSpec('b', (str(tmp_path / 'does-not-exist'),))]
    outcome, _ = _run(specs)
    assert outcome.exit_code == 1
    assert outcome.reason.startswith("cannot start 'b'")
    assert outcome.returncodes['a'] is not None and outcome.returncodes['b'] is None


def test_partial_last_line_and_non_utf8_output_are_kept(tmp_path: Path) -> None:
    import sys
    code = "import sys; sys.stdout.buffer.write(b'caf\\xe9 ok\\nno newline'); sys.exit(0)"
    outcome, lines = _run([ProcessSpec('w', (sys.executable, '-c', code),
                                       shutdown_on_exit=True)])
    assert outcome.exit_code == 0
    assert lines == ['[w] caf\ufffd ok', '[w] no newline']


def test_colour_prefix_only_when_asked(child_argv) -> None:
    specs = [ProcessSpec('p', child_argv('p'), shutdown_on_exit=True)]
    _, lines = _run(specs, SupervisorConfig(color=True))
    assert lines[0].startswith('\x1b[') and '[p]\x1b[0m p hello' in lines[0]


@pytest.mark.parametrize(('kwargs', 'fragment'), [
    ({'sigint_timeout_s': 0}, 'sigint_timeout_s must be > 0'),
    ({'sigterm_timeout_s': -1}, 'sigterm_timeout_s must be > 0'),
])
def test_config_validation(kwargs, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        SupervisorConfig(**kwargs)


def test_spec_and_supervisor_validation() -> None:
    with pytest.raises(ValueError, match='argv must be non-empty'):
        ProcessSpec('x', ())
    with pytest.raises(ValueError, match='unique'):
        Supervisor([ProcessSpec('x', ('a',)), ProcessSpec('x', ('b',))])
    with pytest.raises(ValueError, match='nothing to supervise'):
        Supervisor([])


def test_describe_returncode() -> None:
    assert describe_returncode(3) == 'exit code 3'
    assert describe_returncode(-9) == 'killed by SIGKILL'
    assert describe_returncode(None) == 'still running'
