"""The LeRobot column of bench/policy_latency.py: LeRobot's own SmolVLA in a second process.

LeRobot 0.6.1 needs Python >= 3.12 and its own torch, so it cannot share our venv: it runs in a
LeRobot venv (docs/policy.md, "The LeRobot column") as bench/_lerobot_child.py, and this module,
in our process, finds that interpreter, checks it, writes what the child builds from, and talks
to it by JSON lines. Our process asks for one LeRobot chunk between its own chunks and waits for
the answer, so the two never compute at the same time and load from other processes hits both.

Nothing is downloaded: LeRobot's `SmolVLAPolicy` reads the VLM geometry from `vlm_model_name`
(`AutoConfig.from_pretrained`) and loads a processor and tokenizer from the same directory
(`AutoProcessor.from_pretrained`; SmolVLA reads the tokenizer's `fake_image_token_id`). The
stand-in directory holds our config's VLM geometry as config.json and the tiny tokenizer files of
test/data/lerobot_golden/tiny_vlm_061 (written by LeRobot's transformers; the token ids come
from the bench, not from this tokenizer). With `load_vlm_weights=False` both sides build random
weights from the same geometry; `ready['params']` lets the bench check that they match.

Importable without torch and without lerobot (the tests use a fake child).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
import shutil
import subprocess
import tempfile
from typing import Any, TextIO

ENV_VAR = 'SMOLVLA_LEROBOT_PYTHON'
LEROBOT_VERSION = '0.6.1'
MIN_PYTHON = (3, 12)
CHILD = Path(__file__).resolve().with_name('_lerobot_child.py')
STANDIN_SOURCE = (Path(__file__).resolve().parent.parent / 'test' / 'data' / 'lerobot_golden'
                  / 'tiny_vlm_061')
STANDIN_FILES = ('tokenizer.json', 'tokenizer_config.json', 'processor_config.json')
INSTALL_HINT = (f"a venv with Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} and "
                f"`pip install 'lerobot[smolvla]=={LEROBOT_VERSION}'` (docs/policy.md)")

# Run by the candidate interpreter: its versions as one JSON line.
_PROBE = """
import importlib.metadata as m, json, platform, sys
out = {'python': platform.python_version(), 'executable': sys.executable}
for name in ('lerobot', 'torch', 'transformers'):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


class LeRobotUnavailable(RuntimeError):
    """No usable LeRobot interpreter; the message says why (the column is skipped)."""


class LeRobotError(RuntimeError):
    """The LeRobot child answered with an error, sent something unreadable, or died."""


def resolve_python(flag: str | None, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(interpreter, where it came from): `--lerobot-python` first, then $SMOLVLA_LEROBOT_PYTHON.
    Raises LeRobotUnavailable when neither names one."""
    environ = os.environ if environ is None else environ
    if flag:
        return flag, '--lerobot-python'
    if environ.get(ENV_VAR):
        return environ[ENV_VAR], f'${ENV_VAR}'
    raise LeRobotUnavailable(f'no LeRobot interpreter given (--lerobot-python PATH or '
                             f'{ENV_VAR}); it needs {INSTALL_HINT}')


def probe(python: str, timeout: float = 120.0) -> dict[str, Any]:
    """The interpreter's Python, lerobot, torch and transformers versions; LeRobotUnavailable
    when it does not run, is older than Python 3.12 or has no lerobot and torch."""
    if not (Path(python).is_file() and os.access(python, os.X_OK)) and shutil.which(python) is None:
        raise LeRobotUnavailable(f'LeRobot interpreter {python!r} does not exist or is not '
                                 f'executable; it needs {INSTALL_HINT}')
    try:
        proc = subprocess.run([python, '-c', _PROBE], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LeRobotUnavailable(f'LeRobot interpreter {python!r} did not run: {exc}') from exc
    try:
        info = parse_reply(proc.stdout.strip().splitlines()[-1])
    except (IndexError, LeRobotError) as exc:
        raise LeRobotUnavailable(f'LeRobot interpreter {python!r} failed (exit '
                                 f'{proc.returncode}): {proc.stderr.strip()[-500:]}') from exc
    version = tuple(int(p) for p in info['python'].split('.')[:2])
    if version < MIN_PYTHON:
        raise LeRobotUnavailable(f'{python} is Python {info["python"]}; lerobot '
                                 f'{LEROBOT_VERSION} needs {INSTALL_HINT}')
    missing = [name for name in ('lerobot', 'torch', 'transformers') if not info.get(name)]
    if missing:
        raise LeRobotUnavailable(f'{python} (Python {info["python"]}) has no '
                                 f'{", ".join(missing)}; it needs {INSTALL_HINT}')
    return info


def parse_reply(line: str) -> dict[str, Any]:
    """One protocol line as a dict; LeRobotError for an error reply or a line that is not a JSON
    object."""
    try:
        reply = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LeRobotError(f'LeRobot child sent a line that is not JSON: {line[:200]!r}') from exc
    if not isinstance(reply, dict):
        raise LeRobotError(f'LeRobot child sent {type(reply).__name__}, not an object: '
                           f'{line[:200]!r}')
    if 'error' in reply:
        raise LeRobotError(f'LeRobot child: {reply["error"]}')
    return reply


def write_standin(config: Any, out_dir: Path) -> Path:
    """Write the stand-in SmolVLM directory and a LeRobot policy directory for `config` (our
    SmolVLAConfig) under out_dir; returns the policy directory."""
    vlm = out_dir / 'vlm'
    policy = out_dir / 'policy'
    vlm.mkdir(parents=True, exist_ok=True)
    policy.mkdir(parents=True, exist_ok=True)
    for name in STANDIN_FILES:
        shutil.copyfile(STANDIN_SOURCE / name, vlm / name)
    config.vlm_config().to_json_file(str(vlm / 'config.json'))
    dataclasses.replace(config, vlm_model_name=str(vlm), load_vlm_weights=False).save_json(
        policy / 'config.json')
    return policy


class LeRobotPeer:
    """The running child: `request(cmd)` sends one command and returns its reply."""

    def __init__(self, python: str, spec: dict[str, Any], script: Path = CHILD,
                 timeout: float = 1800.0) -> None:
        self.timeout = timeout
        self.proc = subprocess.Popen([python, str(script), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)  # stderr: LeRobot's messages pass through
        try:
            self.ready = self._read('ready')
        except BaseException:
            self.close()
            raise

    def _read(self, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=self.timeout)
            raise LeRobotError(f'LeRobot child exited (code {code}) before answering {what!r}')
        return parse_reply(line)

    def request(self, cmd: str) -> dict[str, Any]:
        stdin: TextIO | None = self.proc.stdin
        if stdin is None or self.proc.poll() is not None:
            raise LeRobotError(f'LeRobot child is not running (code {self.proc.returncode})')
        try:
            stdin.write(json.dumps({'cmd': cmd}) + '\n')
            stdin.flush()
        except BrokenPipeError as exc:
            raise LeRobotError('LeRobot child closed its input') from exc
        return self._read(cmd)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request('quit')
                self.proc.wait(timeout=30)
            except (LeRobotError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LeRobotPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StartedPeer(LeRobotPeer):
    """A LeRobotPeer over a temporary directory (stand-in, policy config, inputs), removed on
    close. `train=True` starts the child in train mode (bench/train_step.py); `weights` (a
    state dict in LeRobot's `model.*` names) are then loaded into LeRobot's policy."""

    def __init__(self, python: str, config: Any, inputs: dict[str, Any], threads: int,
                 device: str = 'cpu', *, train: bool = False,
                 weights: dict[str, Any] | None = None, script: Path = CHILD) -> None:
        from safetensors.torch import save_file

        def save(tensors: dict[str, Any], name: str) -> str:
            path = self.workdir / name
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
            return str(path)

        self.workdir = Path(tempfile.mkdtemp(prefix='smolvla_lerobot_'))
        try:
            policy_dir = write_standin(config, self.workdir)
            spec: dict[str, Any] = {'policy_dir': str(policy_dir),
                                    'inputs': save(inputs, 'inputs.safetensors'),
                                    'threads': threads, 'device': device}
            if train:
                spec['train'] = {'weights': save(weights, 'weights.safetensors')
                                 if weights is not None else None}
            super().__init__(python, spec, script=script)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
