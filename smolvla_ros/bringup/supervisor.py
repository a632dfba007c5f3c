"""Run a bringup's processes: one process group each, prefixed output, forwarded signals.

The rules are those of ``ros2 launch`` with ``on_exit=Shutdown`` on required nodes:

- a *required* process that exits while the bringup runs ends the bringup with a failure that
  names it and its exit code (a long-running node that exits, even with 0, is a failure);
- a *shutdown_on_exit* process that exits ends the bringup: success if it exited with 0, failure
  otherwise (probes and tests use this);
- any other process that exits is reported and the rest keep running; when none is left the
  bringup ends successfully;
- SIGINT/SIGTERM/SIGHUP to the supervisor stop everything: SIGINT to each process group, then
  SIGTERM after ``sigint_timeout_s``, then SIGKILL after ``sigterm_timeout_s``. A second signal
  sends SIGTERM at once, but no signal skips the wait before SIGKILL: a node's cleanup (the driver
  turning torque off) must not be cut short by a third Ctrl-C, and our nodes bound their own
  cleanup (nodes/node_main.py). The exit status is then 128 + the signal number, as a shell
  reports.

Each child runs in its own session (its own process group), so a terminal's Ctrl-C reaches only
the supervisor, which forwards it in a defined order, and a child's own children are signalled
with it.

Children die with their supervisor. A supervisor that is itself killed without a chance to stop
them (SIGKILL, the OOM killer) would otherwise leave every node running under PID 1, an executor
still commanding the arm with nothing watching it. Each child therefore asks the kernel, between
fork and exec, for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux): the same
signal a service manager sends, on which every node runs its normal cleanup (the driver turns
torque off). Chosen over a watchdog process on the supervisor's pid because the kernel delivers it
even when every user process of the bringup is gone, costs nothing while running, and needs no
polling. Its one subtlety: the "parent" is the *thread* that forked the child. The children are
started by the thread that runs :meth:`Supervisor.run`, which returns only after they stopped, so
the signal comes exactly when the supervisor process dies early. It reaches the direct child only
(a node's own subprocesses are its business; our nodes have none). Where prctl is missing (not
Linux) children start without it and a warning says so.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import contextlib
import ctypes
from dataclasses import dataclass, field
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO

logger = logging.getLogger(__name__)

_COLORS = ('\x1b[32m', '\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[34m', '\x1b[92m', '\x1b[96m')
_RESET = '\x1b[0m'
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_KILL_WAIT_S = 5.0
_READER_JOIN_S = 2.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_DEATH_SIGNAL = signal.SIGTERM
_ORPHAN_EXIT = 125  # a child whose supervisor died before it could ask for the signal


def parent_death_hook(parent_pid: int,
                      signum: int = PARENT_DEATH_SIGNAL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``signum`` when its parent dies (Linux).

    Runs in the child between fork and exec, so it does as little as possible: one prctl call
    through a function resolved here, in the parent. If the parent already died between fork and
    prctl (then the signal would never come), the child exits at once instead of exec'ing. Returns
    None where prctl does not exist.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def hook() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')
        if os.getppid() != parent_pid:
            os._exit(_ORPHAN_EXIT)
    return hook


@dataclass(frozen=True)
class ProcessSpec:
    """One process to supervise; ``env`` is the child's full environment (None: inherit)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    required: bool = True
    shutdown_on_exit: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError('ProcessSpec.name must be non-empty')
        if not self.argv:
            raise ValueError(f'ProcessSpec {self.name!r}: argv must be non-empty')


@dataclass(frozen=True)
class SupervisorConfig:
    """How long each stop step waits, and whether prefixes are coloured."""

    sigint_timeout_s: float = 5.0
    sigterm_timeout_s: float = 5.0
    color: bool = False

    def __post_init__(self) -> None:
        for name in ('sigint_timeout_s', 'sigterm_timeout_s'):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f'{name} must be > 0, got {value!r}')


@dataclass(frozen=True)
class Outcome:
    """How the bringup ended: the exit status for the CLI, why, and each child's return code."""

    exit_code: int
    reason: str
    returncodes: dict[str, int | None] = field(default_factory=dict)


def describe_returncode(code: int | None) -> str:
    """'exit code 3' or 'killed by SIGKILL' (Popen reports a signal as a negative code)."""
    if code is None:
        return 'still running'
    if code < 0:
        try:
            return f'killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'killed by signal {-code}'
    return f'exit code {code}'


class Supervisor:
    """Start processes, prefix their output lines, and stop them all by the rules above."""

    def __init__(self, specs: Sequence[ProcessSpec], config: SupervisorConfig | None = None,
                 out: IO[str] | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f'process names must be unique, got {names}')
        if not specs:
            raise ValueError('nothing to supervise: no process specs')
        self._specs = {s.name: s for s in specs}
        self._config = config or SupervisorConfig()
        self._out = sys.stdout if out is None else out
        self._out_lock = threading.Lock()
        self._events: queue.Queue[tuple] = queue.Queue()
        self._procs: dict[str, subprocess.Popen] = {}
        self._returncodes: dict[str, int | None] = {name: None for name in names}
        self._threads: list[threading.Thread] = []

    # -- public -----------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Stop the bringup as if ``signum`` had been received (thread- and signal-safe)."""
        self._events.put(('signal', signum))

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the started children, by name."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def run(self, handle_signals: bool = True) -> Outcome:
        """Start everything, wait for an ending event, stop everything; return the outcome.

        ``handle_signals`` installs SIGINT/SIGTERM/SIGHUP handlers while running (main thread
        only); the previous handlers are restored on return.
        """
        previous = self._install_handlers() if handle_signals else {}
        try:
            outcome = self._start_all()
            if outcome is None:
                outcome = self._wait_for_end()
            self._stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        for thread in self._threads:
            thread.join(timeout=_READER_JOIN_S)
        return Outcome(outcome.exit_code, outcome.reason, dict(self._returncodes))

    # -- starting and watching ----------------------------------------------------------------

    def _install_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in _FORWARDED:
            previous[signum] = signal.signal(signum, lambda s, _f: self.request_stop(s))
        return previous

    def _start_all(self) -> Outcome | None:
        die_with_us = parent_death_hook(os.getpid())
        if die_with_us is None:
            logger.warning('prctl(PR_SET_PDEATHSIG) is not available here: if this supervisor '
                           'is killed (SIGKILL), its processes keep running')
        for index, spec in enumerate(self._specs.values()):
            try:
                proc = subprocess.Popen(
                    list(spec.argv), env=None if spec.env is None else dict(spec.env),
                    cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_us)
            except (OSError, subprocess.SubprocessError) as exc:
                return Outcome(1, f'cannot start {spec.name!r} ({spec.argv[0]}): {exc}')
            self._procs[spec.name] = proc
            logger.info('started %s (pid %d)', spec.name, proc.pid)
            reader = threading.Thread(target=self._pump, args=(spec.name, index, proc),
                                      name=f'out-{spec.name}', daemon=True)
            reader.start()
            waiter = threading.Thread(target=self._wait, args=(spec.name, proc, reader),
                                      name=f'wait-{spec.name}', daemon=True)
            waiter.start()
            self._threads += [reader, waiter]
        return None

    def _pump(self, name: str, index: int, proc: subprocess.Popen) -> None:
        prefix = f'[{name}] '
        if self._config.color:
            prefix = f'{_COLORS[index % len(_COLORS)]}[{name}]{_RESET} '
        assert proc.stdout is not None
        with proc.stdout:
            for raw in iter(proc.stdout.readline, b''):
                line = raw.decode('utf-8', errors='replace').rstrip('\r\n')
                with self._out_lock:
                    self._out.write(f'{prefix}{line}\n')
                    self._out.flush()

    def _wait(self, name: str, proc: subprocess.Popen, reader: threading.Thread) -> None:
        code = proc.wait()
        reader.join(timeout=_READER_JOIN_S)  # its last lines come before the exit report
        self._events.put(('exit', name, code))

    def _record_exit(self, name: str, code: int) -> None:
        self._returncodes[name] = code

    def _running(self) -> list[str]:
        return [n for n in self._procs if self._returncodes[n] is None]

    def _wait_for_end(self) -> Outcome:
        while True:
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event[0] == 'signal':
                name = signal.Signals(event[1]).name
                logger.info('received %s: stopping all processes', name)
                return Outcome(128 + event[1], f'stopped by {name}')
            _, name, code = event
            self._record_exit(name, code)
            spec = self._specs[name]
            what = describe_returncode(code)
            logger.info('%s exited (%s)', name, what)
            if spec.shutdown_on_exit:
                if code == 0:
                    return Outcome(0, f'{name} finished successfully (shutdown_on_exit)')
                return Outcome(1, f'{name} failed with {what} (shutdown_on_exit)')
            if spec.required:
                return Outcome(1, f'required process {name} exited with {what}')
            logger.warning('%s is not required: the others keep running', name)
            if not self._running():
                return Outcome(0, 'all processes exited')

    # -- stopping -------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        steps = ((signal.SIGINT, self._config.sigint_timeout_s),
                 (signal.SIGTERM, self._config.sigterm_timeout_s),
                 (signal.SIGKILL, _KILL_WAIT_S))
        for signum, timeout in steps:
            running = self._running()
            if not running:
                return
            if signum != signal.SIGINT:
                logger.warning('still running after the previous step: %s; sending %s',
                               ', '.join(running), signum.name)
            for name in running:
                self._signal(name, signum)
            # Only the SIGINT step can be cut short by another signal (docstring).
            self._drain_until_stopped(time.monotonic() + timeout,
                                      interruptible=signum is signal.SIGINT)
        for name in self._running():  # pragma: no cover - only if SIGKILL itself failed
            logger.error('%s (pid %d) did not end even after SIGKILL', name, self._procs[name].pid)

    def _signal(self, name: str, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone: its exit event is queued
            os.killpg(self._procs[name].pid, signum)

    def _drain_until_stopped(self, deadline: float, interruptible: bool = True) -> None:
        """Collect exit events until all stopped, the deadline passes or (``interruptible``) a
        new signal arrives."""
        while self._running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                event = self._events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if event[0] == 'signal':
                received = signal.Signals(event[1]).name
                if interruptible:
                    logger.warning('received %s while stopping: escalating', received)
                    return
                logger.warning('received %s while stopping: letting %s finish their cleanup '
                               '(SIGKILL in %.1f s)', received, ', '.join(self._running()),
                               max(0.0, deadline - time.monotonic()))
                continue
            _, name, code = event
            self._record_exit(name, code)
            logger.info('%s stopped (%s)', name, describe_returncode(code))
