"""Soak and fault test: the simulated async stack with a faulty servo bus and a policy that dies.

What runs (issue 14's soak test): ``smolvla-ros up`` of the so101_async profile with sim:=true --
so101_sim (MuJoCo behind the emulated Feetech bus on a pty), the real feetech_driver and
chunk_executor -- and, as a process of its own, the policy server (the oracle by default,
``--policy learned`` for the shipped SmolVLA), started by a second ``smolvla-ros up`` with only that
node. Two changes against the shipped profile, written to a derived profile in the work directory
(nothing else differs: same parameter files, same arguments):

- the servo replies pass through a fault proxy (this script, ``_proxy`` mode, a process of its
  own): the simulator's emulator sits on one pty (``sim_port``), the driver opens another
  (``port``), and the proxy forwards the bytes, corrupting the checksum of ``--corrupt`` (1 %) of
  the servo replies and dropping ``--drop`` (1 %) of them -- the same two faults as the emulator's
  own ``corrupt_checksum`` and ``drop_reply`` (hardware/emulator/faults.py), which the simulator
  node does not expose. At most one reply per request is faulted: the driver stops reading a
  request's replies at the first bad one (drains them and retries from that servo,
  hardware/feetech/bus.py), so a second fault in the same request would never reach it and could
  not be counted on both sides;
- the policy server is not in the stack's profile: every ``--kill-every`` s (60) its node gets
  SIGKILL (a crash, no cleanup), its ``up`` ends, and after ``--down-s`` (0) a new one starts. A
  server that has not served a chunk yet is killed as soon as it has (``--kill-unserved`` kills
  it on schedule anyway): on a loaded 2-core machine the oracle's start-up alone took 2-48 s,
  and killing servers that never served measured nothing but the load.

Measured over ``--duration`` s (600) from the first accepted chunk:

- crashes: the stack's ``up`` and every node of it must live to the end with the same pid, and no
  Python traceback may appear in the logs;
- flow: the executor's counters from ``/diagnostics`` (1 s period): commands from a plan (not
  holds) per second, in each second outside the policy's down windows (kill -> first chunk
  accepted from the new server) and inside them; the longest stretch without a planned command
  outside the down windows; the driver's commands received and control cycles per second;
- faults: what the proxy injected against the driver's per-servo attempt counters
  (``bus_errors_corrupt``, ``bus_errors_timeout``: every failed attempt, retried or not),
  read after the proxy stopped injecting and the driver published twice more; cycles that failed
  after all retries and driver faults;
- memory: RSS of every process (the stack's ``up``, each node, the proxy, each policy server
  incarnation) every ``--sample-s`` s from /proc; a least-squares slope (MiB/min) over the samples
  after ``--warmup-s``, for the long-lived ones.

The driver's own state changes are listed: 10 failed cycles in a row (a stalled bus) put it in
FAULT, which a follower keeps until `enable_torque` is called (the soak does not), and then nothing
moves for the rest of the run.

Run: ``python bench/soak.py`` (10 min + start-up) or ``--duration 60`` for a quick check
(``--arg NAME:=VALUE`` passes so101_async arguments, e.g. a longer camera_max_age_s); prints a
markdown table and writes bench/results/soak.json (logs with ``--keep DIR``). The machine's load
is recorded: on a loaded 2-core machine the driver's own timeouts (replies late because the
emulator's or the proxy's thread was not scheduled in time) add to the injected drops, so the
timeout count can exceed the injected one; corrupt checksums can only come from the proxy.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time
import tty

from _machine import machine

from smolvla_ros.bringup.processes import isolated_ros_env, random_domain_id, stop, up_command
from smolvla_ros.bringup.watcher import StackWatcher
from smolvla_ros.hardware.feetech.protocol import PacketParser
from smolvla_ros.hardware.feetech.tables import BROADCAST_ID, INST_SYNC_READ, INST_SYNC_WRITE

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / 'results'
PROFILE = REPO / 'config' / 'profiles' / 'so101_async.yaml'
POLICY_NODES = ('oracle_policy_server', 'policy_server')
STARTUP_S = 240.0
MIB = 1024.0


# -- the fault proxy (its own process) -------------------------------------------------------

def _write_all(fd: int, data: bytes) -> int:
    """Write to a non-blocking fd; bytes that do not fit are lost (a full line). Returns lost."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            return len(view)
        view = view[n:]
    return 0


class _Requests:
    """What the host asked for, so that the proxy can tell which requests it gave up on.

    A request the host abandons (it sends the next one) before all its replies came back, without
    a fault injected into it, is one the driver timed out on by itself: replies late because the
    emulator's or the proxy's thread was not scheduled in time on a loaded machine. The replies
    still in flight then arrive after the next request went out, where the proxy (and the driver)
    cannot tell them from that request's own: no fault is injected into a request that follows
    an abandoned one, so that every injected fault lands in a reply the driver reads as current.
    """

    def __init__(self) -> None:
        self.expected = 0  # replies the current request asks for
        self.received = 0  # including the dropped one
        self.faulted = False  # one fault per request (see the module docstring)
        self.clean = True  # the request before it got all its replies
        self.sent_at = 0.0
        self.abandoned = 0  # requests left before all their replies came, no fault injected
        self.latencies_ms: list[float] = []  # request -> first reply, as the proxy sees them

    def may_fault(self) -> bool:
        return self.clean and not self.faulted

    def new(self, packet: bytes, now: float) -> None:
        complete = self.received >= self.expected
        if not complete and not self.faulted:
            self.abandoned += 1
        self.clean = complete
        motor_id, instruction, params = packet[2], packet[4], packet[5:-1]
        if instruction == INST_SYNC_READ:
            self.expected = max(0, len(params) - 2)
        elif instruction == INST_SYNC_WRITE or motor_id == BROADCAST_ID:
            self.expected = 0
        else:
            self.expected = 1
        self.received, self.faulted, self.sent_at = 0, False, now

    def reply(self, now: float) -> None:
        if self.received == 0 and self.expected:
            self.latencies_ms.append((now - self.sent_at) * 1e3)
        self.received += 1


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proxy_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='soak.py _proxy')
    parser.add_argument('upstream', help="the emulator's port (link to its pty)")
    parser.add_argument('downstream', help='the port the driver opens (made here)')
    parser.add_argument('state', help='JSON file the counters are written to')
    parser.add_argument('--corrupt', type=float, required=True)
    parser.add_argument('--drop', type=float, required=True)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    import select

    rng = random.Random(args.seed)
    stats = {'replies': 0, 'corrupted': 0, 'dropped': 0, 'requests': 0, 'abandoned': 0,
             'lost_bytes': 0, 'upstream_opens': 0, 'faulting': True, 'pid': os.getpid()}
    stop = {'now': False}

    def on_signal(signum, frame) -> None:
        if signum == signal.SIGUSR1:
            stats['faulting'] = False
        else:
            stop['now'] = True

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(s, on_signal)

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    link = Path(args.downstream)

    def plug() -> None:  # the driver's port appears once the emulator is there
        tmp = link.with_name(f'.{link.name}.{os.getpid()}.tmp')
        tmp.unlink(missing_ok=True)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, link)

    state = Path(args.state)
    requests = _Requests()

    def save() -> None:
        lat = requests.latencies_ms
        stats.update(abandoned=requests.abandoned, first_reply_ms={
            'p50': _percentile(lat, 0.5), 'p99': _percentile(lat, 0.99),
            'max': max(lat) if lat else None, 'over_40': sum(1 for v in lat if v > 40.0)})
        part = state.with_suffix('.tmp')
        part.write_text(json.dumps(stats))
        os.replace(part, state)

    up = -1
    replies, host = PacketParser(), PacketParser()
    next_save = 0.0
    while not stop['now']:
        if up < 0:
            try:
                up = os.open(args.upstream, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                tty.setraw(up)
                stats['upstream_opens'] += 1
                replies = PacketParser()
                if not link.is_symlink():
                    plug()
            except OSError:
                up = -1
        try:
            readable, _, _ = select.select([master] + ([up] if up >= 0 else []), [], [], 0.2)
        except InterruptedError:
            readable = []
        if master in readable:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b''
            now = time.monotonic()
            for piece in host.split(data):
                if piece.is_packet:
                    stats['requests'] += 1
                    requests.new(piece.data, now)
            if data and up >= 0:
                stats['lost_bytes'] += _write_all(up, data)
        if up >= 0 and up in readable:
            try:
                data = os.read(up, 4096)
            except OSError as exc:  # the emulator went away (EIO): reopen its link later
                if exc.errno not in (errno.EAGAIN, errno.EINTR):
                    os.close(up)
                    up = -1
                data = b''
            now = time.monotonic()
            out = bytearray()
            for piece in replies.split(data):
                chunk = piece.data
                if piece.is_packet:
                    stats['replies'] += 1
                    requests.reply(now)
                    r = rng.random()
                    if stats['faulting'] and requests.may_fault() and r < args.corrupt:
                        requests.faulted = True
                        stats['corrupted'] += 1
                        bad = (chunk[-1] + 1) & 0xFF  # as the emulator's corrupt_checksum
                        chunk = chunk[:-1] + bytes((bad if bad != 0xFF else 0x00,))
                    elif (stats['faulting'] and requests.may_fault()
                          and r < args.corrupt + args.drop):
                        requests.faulted = True
                        stats['dropped'] += 1
                        continue
                out += chunk
            if out:
                stats['lost_bytes'] += _write_all(master, bytes(out))
        now = time.monotonic()
        if now >= next_save or not stats['faulting'] and not stats.get('stopped_faulting'):
            stats['stopped_faulting'] = not stats['faulting']
            save()
            next_save = now + 1.0
    save()
    with contextlib.suppress(OSError):
        link.unlink()
    return 0


# -- profiles -------------------------------------------------------------------------------

def _absolute_dirname(value, dirname: str):
    if isinstance(value, str):
        return value.replace('$(dirname)', dirname)
    if isinstance(value, list):
        return [_absolute_dirname(v, dirname) for v in value]
    if isinstance(value, dict):
        return {k: _absolute_dirname(v, dirname) for k, v in value.items()}
    return value


def write_profiles(workdir: Path, policy: str) -> tuple[Path, Path]:
    """The stack without its policy server (sim on `sim_port`), and the policy server alone."""
    import yaml

    base = _absolute_dirname(yaml.safe_load(PROFILE.read_text()), str(PROFILE.parent))
    stack = dict(base, description='so101_async sim:=true for bench/soak.py: the emulator on '
                 'sim_port behind the fault proxy, no policy server')
    stack['arguments'] = dict(base['arguments'], sim_port={
        'default': '/tmp/smolvla_soak_sim', 'description': "the emulator's port (the proxy's "
        'upstream); the driver opens port'})
    nodes = []
    for node in base['nodes']:
        if node['name'] in POLICY_NODES:
            continue
        if node['name'] == 'so101_sim':
            node = dict(node, parameters=[
                dict(p, port='$(arg sim_port)') if isinstance(p, dict) and 'port' in p else p
                for p in node['parameters']])
        nodes.append(node)
    stack['nodes'] = nodes
    stack.pop('processes', None)
    wanted = 'oracle_policy_server' if policy == 'oracle' else 'policy_server'
    node = next(n for n in base['nodes'] if n['name'] == wanted)
    node = {k: v for k, v in node.items() if k != 'condition'}
    used = {k: base['arguments'][k] for k in ('namespace', 'checkpoint', 'rename_map',
                                                'extra_latency_ms')}
    alone = {'description': f'{wanted} alone, for bench/soak.py', 'arguments': used,
             'namespace': base.get('namespace', ''), 'nodes': [node]}
    paths = workdir / 'soak_stack.yaml', workdir / 'soak_policy.yaml'
    paths[0].write_text(yaml.safe_dump(stack, sort_keys=False))
    paths[1].write_text(yaml.safe_dump(alone, sort_keys=False))
    return paths


# -- processes ------------------------------------------------------------------------------

def _up_command(profile: Path, args: list[str]) -> list[str]:
    return up_command(str(profile), '--color', 'never', *args)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc's stat files; survives missing CONFIG_PROC_CHILDREN)."""
    out = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / MIB
    except OSError:
        return None
    return None


def proc_name(pid: int) -> str:
    """The node's executable (argv[0] or the console script after python)."""
    try:
        argv = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')
    except OSError:
        return '?'
    words = [Path(a.decode(errors='replace')).name for a in argv if a]
    if words and words[0].startswith('python') and len(words) > 1:
        words = words[1:]
    return words[0] if words else '?'


class PolicyServer:
    """The policy server's own `up`, killed (SIGKILL to the node) and restarted."""

    def __init__(self, profile: Path, env: dict[str, str], workdir: Path) -> None:
        self.profile, self.env, self.workdir = profile, env, workdir
        self.proc: subprocess.Popen | None = None
        self.incarnations: list[dict] = []

    def start(self, t: float) -> None:
        n = len(self.incarnations)
        log = self.workdir / f'policy_{n}.log'
        with log.open('w') as out:
            self.proc = subprocess.Popen(_up_command(self.profile, []), env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.incarnations.append({'started_t': t, 'log': str(log), 'node_pid': None,
                                  'killed_t': None, 'up_exit': None, 'rss_mib': []})

    def node_pid(self) -> int | None:
        cur = self.incarnations[-1]
        if cur['node_pid'] is None and self.proc is not None and self.proc.poll() is None:
            kids = children(self.proc.pid)
            cur['node_pid'] = kids[0] if kids else None
        return cur['node_pid']

    def kill(self, t: float) -> bool:
        """SIGKILL the node; wait for its `up` to end. False when there was no node to kill."""
        pid = self.node_pid()
        cur = self.incarnations[-1]
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        cur['killed_t'] = t
        assert self.proc is not None
        try:
            cur['up_exit'] = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(self.proc)
            cur['up_exit'] = self.proc.returncode
        return True

    def alive_unexpectedly_dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None \
            and self.incarnations[-1]['killed_t'] is None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.incarnations[-1]['up_exit'] = self.proc.returncode


# -- watching -------------------------------------------------------------------------------

class Watcher(StackWatcher):
    """Executor and driver diagnostics, accepted chunks and sim episodes, time-stamped."""

    def __init__(self, domain_id: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from smolvla_msgs.msg import ActionChunk
        from std_msgs.msg import String

        super().__init__(domain_id, 'soak_watcher')
        self.executor_diag: list[tuple[float, dict[str, str]]] = []
        self.driver_diag: list[tuple[float, dict[str, dict[str, str]]]] = []
        self.chunks: list[float] = []
        self.events: list[tuple[float, dict]] = []
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(
            String, 'sim/episode',
            lambda m: self.events.append((time.monotonic(), json.loads(m.data))), latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 50)
        self.node.create_subscription(ActionChunk, 'predicted_chunk',
                                      lambda m: self.chunks.append(time.monotonic()), 10)

    def _on_diag(self, msg) -> None:
        now = time.monotonic()
        driver: dict[str, dict[str, str]] = {}
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith('chunk_executor: execution'):
                self.executor_diag.append((now, values))
            elif status.name.startswith('/follower_driver'):
                part = status.name.rsplit(': ', 1)[1]
                driver[part] = dict(values, _level=str(status.level[0]
                                                       if isinstance(status.level, bytes)
                                                       else status.level),
                                    _message=status.message)
        if driver:
            self.driver_diag.append((now, driver))

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.1, max(0.0, end - time.monotonic())))


# -- analysis -------------------------------------------------------------------------------

def slope_mib_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t s, MiB) samples, in MiB/min."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return 60.0 * sum((t - mt) * (v - mv) for t, v in samples) / var


def flow(executor_diag, t0: float, t_end: float, down: list[tuple[float, float]]) -> dict:
    """Planned commands per second inside and outside the policy's down windows."""
    snaps = [(t, d) for t, d in executor_diag if t0 <= t <= t_end]
    up_rates, down_rates = [], []
    gap, longest_gap, gap_at = 0.0, 0.0, None
    zero_up = 0
    for (ta, a), (tb, b) in zip(snaps, snaps[1:], strict=False):
        dt = tb - ta
        planned = (int(b['commands']) - int(a['commands'])) \
            - (int(b['starvation_ticks']) - int(a['starvation_ticks']))
        in_down = any(ta < e and tb > s for s, e in down)
        (down_rates if in_down else up_rates).append(planned / dt)
        if in_down:
            gap = 0.0
            continue
        if planned <= 0:
            zero_up += 1
            gap += dt
            if gap > longest_gap:
                longest_gap, gap_at = gap, round(tb - t0, 1)
        else:
            gap = 0.0

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float('nan')

    return {'up_seconds': len(up_rates), 'up_planned_per_s': mean(up_rates),
            'up_min_planned_per_s': min(up_rates) if up_rates else float('nan'),
            'up_intervals_without_planned': zero_up,
            'longest_gap_outside_down_s': round(longest_gap, 2), 'longest_gap_at_s': gap_at,
            'down_seconds': len(down_rates), 'down_planned_per_s': mean(down_rates)}


EXECUTOR_COUNTERS = ('ticks', 'commands', 'starvation_ticks', 'requests', 'answers', 'failures',
                     'timeouts', 'chunks_accepted', 'stale_observations', 'service_unavailable',
                     'clears')


def counter_deltas(executor_diag, t0: float, t1: float) -> dict[str, int]:
    """The executor's counters over [t0, t1] (first and last snapshot in it)."""
    snaps = [d for t, d in executor_diag if t0 <= t <= t1]
    if len(snaps) < 2:
        return {}
    return {k: int(snaps[-1][k]) - int(snaps[0][k]) for k in EXECUTOR_COUNTERS
            if k in snaps[0] and k in snaps[-1]}


def driver_states(driver_diag, t0: float) -> list[tuple[float, str]]:
    """The driver's state changes (s since t0, state), e.g. a FAULT after failed cycles."""
    out: list[tuple[float, str]] = []
    for t, d in driver_diag:
        state = d.get('bus', {}).get('state')
        if state and (not out or out[-1][1] != state):
            out.append((round(t - t0, 1), state))
    return out


def driver_totals(last: dict[str, dict[str, str]]) -> dict:
    joints = {k: v for k, v in last.items() if k != 'bus'}
    kinds: dict[str, int] = {}
    failures: dict[str, int] = {}
    for values in joints.values():
        for key, value in values.items():
            if key.startswith('bus_errors_'):
                kind = key[len('bus_errors_'):]
                kinds[kind] = kinds.get(kind, 0) + int(value)
            elif key.startswith('errors_') and key != 'errors_total':
                kind = key[len('errors_'):]
                failures[kind] = failures.get(kind, 0) + int(value)
    bus = last.get('bus', {})
    return {'attempt_errors': kinds, 'failed_transfers': failures,
            'per_joint_attempt_errors': {j: {k[len('bus_errors_'):]: int(v)
                                             for k, v in vals.items()
                                             if k.startswith('bus_errors_')}
                                         for j, vals in joints.items()},
            'bus': {k: bus.get(k) for k in ('state', 'good_cycles', 'failed_cycles', 'reconnects',
                                            'faults', 'torque_losses', 'commands_received',
                                            'commands_rejected', 'mean_cycle_ms',
                                            'stale_bytes')}}


def _rate(series, key_fn, t0: float, t1: float) -> float:
    pts = [(t, key_fn(d)) for t, d in series if t0 <= t <= t1]
    if len(pts) < 2:
        return float('nan')
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


# -- the run --------------------------------------------------------------------------------

def run(args: argparse.Namespace, workdir: Path) -> dict:
    domain = args.domain if args.domain is not None else random_domain_id()
    env = isolated_ros_env(domain)
    stack_profile, policy_profile = write_profiles(workdir, args.policy)
    port, sim_port, state = workdir / 'bus', workdir / 'bus_sim', workdir / 'proxy.json'
    proxy_log = (workdir / 'proxy.log').open('w')
    proxy = subprocess.Popen([sys.executable, __file__, '_proxy', str(sim_port), str(port),
                              str(state), '--corrupt', str(args.corrupt), '--drop', str(args.drop),
                              '--seed', str(args.seed)], stdout=proxy_log, stderr=subprocess.STDOUT)
    stack_log = workdir / 'stack.log'
    with stack_log.open('w') as out:
        stack = subprocess.Popen(_up_command(stack_profile, [
            'sim:=true', f'port:={port}', f'sim_port:={sim_port}', f'seed:={args.seed}',
            *args.arg]),
            env=env, stdout=out, stderr=subprocess.STDOUT)
    policy = PolicyServer(policy_profile, env, workdir)
    policy.start(time.monotonic())
    watcher = Watcher(domain)
    result: dict = {'domain': domain, 'policy': args.policy, 'crashes': []}
    rss: dict[str, list[tuple[float, float]]] = {}
    load: list[float] = []
    stack_nodes: dict[int, str] = {}
    try:
        deadline = time.monotonic() + STARTUP_S
        while not watcher.chunks:
            watcher.spin_for(0.2)
            if stack.poll() is not None or proxy.poll() is not None:
                raise RuntimeError(f'the stack or the proxy died during start-up '
                                   f'(logs in {workdir})')
            if time.monotonic() > deadline:
                raise RuntimeError(f'no chunk accepted within {STARTUP_S:g} s (logs in {workdir})')
        t0 = time.monotonic()
        result['startup_s'] = round(t0 - policy.incarnations[0]['started_t'], 1)
        stack_nodes = {pid: proc_name(pid) for pid in children(stack.pid)}
        stack_nodes[stack.pid] = 'up (stack)'
        stack_nodes[proxy.pid] = 'fault proxy'
        next_kill = t0 + args.kill_every
        next_sample = t0
        t_end = t0 + args.duration
        while time.monotonic() < t_end:
            watcher.spin_for(0.1)
            now = time.monotonic()
            if stack.poll() is not None:
                result['crashes'].append(f'stack up exited {stack.returncode} at '
                                         f'{now - t0:.1f} s')
                break
            for pid, name in stack_nodes.items():
                if pid != stack.pid and not Path(f'/proc/{pid}').exists():
                    result['crashes'].append(f'{name} (pid {pid}) gone at {now - t0:.1f} s')
            if result['crashes']:
                break
            if policy.alive_unexpectedly_dead():
                result['crashes'].append(f'policy server up exited {policy.proc.returncode} '
                                         f'unasked at {now - t0:.1f} s')
                policy.incarnations[-1]['killed_t'] = now  # count it as down; restart below
                policy.start(now + args.down_s)
            if now >= next_kill and now < t_end - 10.0:  # none just before the end
                started = policy.incarnations[-1]['started_t']
                served = any(c > started for c in watcher.chunks)
                if not served and not args.kill_unserved:
                    # A server still starting (a loaded machine can take a minute) is killed
                    # once it has served: killing it in its start-up measures only the load.
                    policy.incarnations[-1]['kill_postponed'] = True
                elif policy.kill(now):
                    if args.down_s:
                        watcher.spin_for(args.down_s)
                    policy.start(time.monotonic())
                    next_kill = now + args.kill_every
                else:
                    result['crashes'].append(f'no policy node to kill at {now - t0:.1f} s')
                    next_kill = now + args.kill_every
            if now >= next_sample:
                t = now - t0
                for pid, name in stack_nodes.items():
                    v = rss_mib(pid)
                    if v is not None:
                        rss.setdefault(f'{name}', []).append((t, v))
                pid = policy.node_pid()
                if pid is not None:
                    v = rss_mib(pid)
                    if v is not None:
                        policy.incarnations[-1]['rss_mib'].append((round(t, 1), round(v, 1)))
                load.append(os.getloadavg()[0])
                next_sample += args.sample_s
        # Stop injecting, then let the driver publish its counters twice more.
        proxy.send_signal(signal.SIGUSR1)
        t_stop = time.monotonic()
        watcher.spin_for(0.5)
        while (not watcher.driver_diag or watcher.driver_diag[-1][0] < t_stop + 1.5) \
                and time.monotonic() < t_stop + 10:
            watcher.spin_for(0.2)
        t_last = time.monotonic()
    finally:
        watcher.close()
        policy.stop()
        stop(stack)
        stop(proxy, 10, signum=signal.SIGTERM)
        proxy_log.close()
    injected = json.loads(state.read_text())
    tracebacks = {p.name: p.read_text(errors='replace').count('Traceback')
                  for p in workdir.glob('*.log')}
    down, outages = [], []
    for inc, nxt in zip(policy.incarnations, policy.incarnations[1:], strict=False):
        if inc['killed_t'] is None:
            continue
        back = next((c for c in watcher.chunks if c > nxt['started_t']), t_last)
        down.append((inc['killed_t'], back))
        outages.append({'killed_at_s': round(inc['killed_t'] - t0, 1),
                        'restart_to_first_chunk_s': round(back - nxt['started_t'], 2),
                        'down_s': round(back - inc['killed_t'], 2)})
    # the counters over the run: everything the driver counted since it started
    last_driver = watcher.driver_diag[-1][1] if watcher.driver_diag else {}
    totals = driver_totals(last_driver)
    t_run_end = t_stop
    memory = {}
    for name, samples in rss.items():
        after = [(t, v) for t, v in samples if t >= args.warmup_s]
        # A leak grows at the same rate to the end; a heap that settles slows down: the slope
        # over the last half tells them apart. The series itself goes to the JSON.
        memory[name] = {'first_mib': round(samples[0][1], 1), 'last_mib': round(samples[-1][1], 1),
                        'max_mib': round(max(v for _, v in samples), 1),
                        'slope_mib_per_min': slope_mib_per_min(after),
                        'slope_last_half_mib_per_min': slope_mib_per_min(
                            after[len(after) // 2:]),
                        'samples': len(samples),
                        'series': [(round(t, 1), round(v, 2)) for t, v in samples]}
    policy_rss = [max((v for _, v in inc['rss_mib']), default=None)
                  for inc in policy.incarnations]
    result.update({
        'duration_s': round(t_run_end - t0, 1),
        'faults_injected': {k: injected[k] for k in ('replies', 'requests', 'corrupted',
                                                     'dropped', 'abandoned', 'first_reply_ms',
                                                     'lost_bytes', 'upstream_opens')},
        'driver': totals,
        'driver_cycles_per_s': _rate(watcher.driver_diag,
                                     lambda d: int(d['bus']['good_cycles'])
                                     + int(d['bus']['failed_cycles']), t0, t_run_end),
        'driver_commands_per_s': _rate(watcher.driver_diag,
                                       lambda d: int(d['bus']['commands_received']), t0,
                                       t_run_end),
        'executor_ticks_per_s': _rate(watcher.executor_diag, lambda d: int(d['ticks']), t0,
                                      t_run_end),
        'flow': flow(watcher.executor_diag, t0, t_run_end, down),
        'executor_counts': counter_deltas(watcher.executor_diag, t0, t_run_end),
        'outages': outages,
        'policy_kills': sum(1 for i in policy.incarnations if i['killed_t'] is not None),
        'policy_kills_postponed': sum(1 for i in policy.incarnations
                                      if i.get('kill_postponed')),
        'policy_startup_s': [round(next((c for c in watcher.chunks if c > i['started_t']),
                                        t_last) - i['started_t'], 1)
                             for i in policy.incarnations],
        'driver_states': driver_states(watcher.driver_diag, t0),
        'policy_up_exits': [i['up_exit'] for i in policy.incarnations],
        'policy_rss_max_mib': policy_rss,
        'memory': memory,
        'episodes': {kind: sum(1 for t, e in watcher.events
                               if e.get('event') == kind and t0 <= t <= t_run_end)
                     for kind in ('reset', 'success', 'failure')},
        'episode_failures': [e.get('reason', '') for t, e in watcher.events
                             if e.get('event') == 'failure' and t0 <= t <= t_run_end],
        'tracebacks_in_logs': tracebacks,
        'loadavg_1m_mean': round(sum(load) / len(load), 2) if load else None,
        'executor_last': watcher.executor_diag[-1][1] if watcher.executor_diag else {},
    })
    return result


def report(r: dict) -> None:
    inj, drv = r['faults_injected'], r['driver']
    errs = drv['attempt_errors']
    f = r['flow']
    print(f"soak: {r['duration_s']:.0f} s, policy {r['policy']} killed {r['policy_kills']}x, "
          f"load avg {r['loadavg_1m_mean']}")
    print()
    print('| check | result |')
    print('|---|---|')
    print(f"| crashes (stack up, nodes) | {'; '.join(r['crashes']) or 'none'} |")
    print(f"| tracebacks in logs | {sum(r['tracebacks_in_logs'].values())} |")
    print(f"| servo replies / corrupted / dropped (proxy) | {inj['replies']} / {inj['corrupted']} "
          f"/ {inj['dropped']} |")
    print(f"| driver attempt errors corrupt / timeout | {errs.get('corrupt', 0)} / "
          f"{errs.get('timeout', 0)} (other: "
          f"{ {k: v for k, v in errs.items() if k not in ('corrupt', 'timeout')} }) |")
    lat = inj['first_reply_ms']
    print(f"| requests the driver gave up on by itself (no fault injected) | {inj['abandoned']} "
          f"of {inj['requests']}; first reply p50/p99/max {lat['p50']:.1f} / {lat['p99']:.1f} / "
          f"{lat['max']:.0f} ms at the proxy |")
    print(f"| transfers failed after retries | {drv['failed_transfers']} "
          f"(failed cycles {drv['bus']['failed_cycles']}, faults {drv['bus']['faults']}, "
          f"reconnects {drv['bus']['reconnects']}; late-reply bytes dropped before a "
          f"request {drv['bus'].get('stale_bytes')}) |")
    print(f"| driver states (s: state) | "
          f"{', '.join(f'{t:g}: {st}' for t, st in r['driver_states']) or '-'} |")
    print(f"| driver cycles/s, commands received/s | {r['driver_cycles_per_s']:.1f}, "
          f"{r['driver_commands_per_s']:.1f} |")
    print(f"| planned commands/s, policy up (min 1 s bin) | {f['up_planned_per_s']:.1f} "
          f"({f['up_min_planned_per_s']:.1f}), {f['up_intervals_without_planned']} of "
          f"{f['up_seconds']} s without |")
    print(f"| longest gap outside down windows | {f['longest_gap_outside_down_s']} s "
          f"(at {f['longest_gap_at_s']} s) |")
    downs = [o['down_s'] for o in r['outages']]
    back = [o['restart_to_first_chunk_s'] for o in r['outages']]
    print(f"| policy start -> first chunk, each incarnation (s) | {r['policy_startup_s']}; "
          f"kills postponed until serving: {r['policy_kills_postponed']} |")
    if downs:
        print(f"| policy down (kill -> first chunk), restart -> first chunk | "
              f"{min(downs):.1f}-{max(downs):.1f} s, {min(back):.1f}-{max(back):.1f} s; "
              f"planned/s while down {f['down_planned_per_s']:.1f} |")
    c = r['executor_counts']
    if c:
        print(f"| executor over the run | {c.get('requests')} requests, {c.get('answers')} "
              f"answers, {c.get('failures')} failures, {c.get('timeouts')} timeouts, "
              f"{c.get('chunks_accepted')} chunks accepted; {c.get('stale_observations')} "
              f"stale observations, {c.get('service_unavailable')} ticks without the service |")
    print(f"| sim episodes (reset / success / failure) | {r['episodes']['reset']} / "
          f"{r['episodes']['success']} / {r['episodes']['failure']} |")
    print()
    print('| process | RSS first / last / max (MiB) | slope (MiB/min): after warm-up; last half |')
    print('|---|---|---|')
    for name, m in r['memory'].items():
        s, h = m['slope_mib_per_min'], m['slope_last_half_mib_per_min']
        print(f"| {name} | {m['first_mib']} / {m['last_mib']} / {m['max_mib']} | "
              f"{'n/a' if s is None else f'{s:+.3f}'}; {'n/a' if h is None else f'{h:+.3f}'} |")
    pr = [v for v in r['policy_rss_max_mib'] if v is not None]
    if pr:
        print(f"| policy server (each incarnation's max) | {min(pr):.1f}-{max(pr):.1f} | - |")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['_proxy']:
        return proxy_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--duration', type=float, default=600.0, help='seconds measured')
    parser.add_argument('--kill-every', type=float, default=60.0,
                        help='SIGKILL the policy server every this many seconds')
    parser.add_argument('--kill-unserved', action='store_true',
                        help='kill on schedule even a server that has not served a chunk yet '
                             '(default: wait until it has)')
    parser.add_argument('--down-s', type=float, default=0.0,
                        help='wait this long after a kill before restarting it')
    parser.add_argument('--corrupt', type=float, default=0.01,
                        help='fraction of servo replies with a corrupt checksum')
    parser.add_argument('--drop', type=float, default=0.01,
                        help='fraction of servo replies dropped')
    parser.add_argument('--policy', choices=('oracle', 'learned'), default='oracle',
                        help='oracle_policy_server, or policy_server with the shipped SmolVLA')
    parser.add_argument('--sample-s', type=float, default=5.0, help='RSS sampling period')
    parser.add_argument('--warmup-s', type=float, default=60.0,
                        help='RSS samples before this are left out of the slope')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--arg', action='append', default=[], metavar='NAME:=VALUE',
                        help="more so101_async arguments (repeatable), e.g. camera_max_age_s:=1.0")
    parser.add_argument('--domain', type=int, default=None, help='ROS_DOMAIN_ID (default random)')
    parser.add_argument('--keep', type=Path, default=None,
                        help='keep the logs and profiles in this directory')
    parser.add_argument('--out', type=Path, default=RESULTS / 'soak.json')
    args = parser.parse_args(argv)
    args.warmup_s = min(args.warmup_s, args.duration / 3)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix='soak-') as tmp:
            result = run(args, Path(tmp))
    result['machine'] = machine()
    result['args'] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nmachine: {result['machine']}; wrote {args.out}")
    ok = not result['crashes'] and not sum(result['tracebacks_in_logs'].values())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
