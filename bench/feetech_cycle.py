"""Feetech driver cycle on the servo emulator: cycles/s and bytes on the wire vs the minimum.

One cycle is what the feetech_driver does every tick: a sync read of Present_Position from 6 servos
followed by a sync write of 6 Goal_Position values, through the real `scservo_sdk` on a real pty.

Configurations, side by side in one run:
  bus/process   FeetechBus (our select()-waiting PortHandler) with the emulator in another process
                (`smolvla-ros servo-emulator`, as in a bringup profile): the realistic setup.
  bus/thread    the same bus with the emulator as a thread of this process (as in the tests); bytes
                are counted at the emulator's end of the wire here.
  sdk/process   the bare SDK loop (stock PortHandler that busy-polls, GroupSyncRead.txRxPacket +
                GroupSyncWrite.txPacket), no retries or counters: the floor our bus adds to.
  bus/process+wire  bus/process with the emulator's wire timing on (1 Mbaud, 10 bit times per
                byte, Return_Delay_Time 0): roughly what a real 1 Mbaud bus allows.
CPU ms/cycle is this process's CPU time (for bus/thread it includes the emulator thread).

Protocol minimum per cycle (derived in smolvla_ros.hardware.feetech.protocol):
  sync read request  FF FF FE LEN 82 addr len id*6 CHK      = 8 + 6           = 14 bytes
  6 status replies   FF FF id LEN err d0 d1 CHK             = 6 x (6 + 2)     = 48 bytes
  sync write         FF FF FE LEN 83 addr len (id d0 d1)*6 CHK = 8 + 6 x 3    = 26 bytes
  total                                                                       = 88 bytes
At 1 Mbaud (10 bits per byte) 88 bytes take 0.88 ms, so a real bus tops out near 1100 cycles/s
before servo return delays; a pty has no baud-rate limit, so these figures measure software cost.

Run: `python bench/feetech_cycle.py` (or `smolvla-ros bench feetech_cycle`); prints a markdown
table and writes bench/results/feetech_cycle.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import machine
import scservo_sdk as scs

from smolvla_ros.hardware.emulator import ServoEmulator
from smolvla_ros.hardware.feetech import FeetechBus, so101_motors
from smolvla_ros.hardware.feetech.bus import WaitingPortHandler
from smolvla_ros.hardware.feetech.protocol import sync_read_bytes, sync_write_bytes
from smolvla_ros.hardware.feetech.tables import register

RESULTS = Path(__file__).resolve().parent / 'results'
N_MOTORS = 6
POS = register('Present_Position')
GOAL = register('Goal_Position')
TARGET_HZ = 200.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cycles', type=int, default=3000, help='timed cycles per config')
    parser.add_argument('--warmup', type=int, default=200, help='untimed cycles first')
    parser.add_argument('--configs',
                        default='bus/process,bus/thread,sdk/process,bus/process+wire')
    parser.add_argument('--out', type=Path, default=RESULTS / 'feetech_cycle.json')
    return parser.parse_args(argv)



def minimum_bytes() -> dict[str, int]:
    req, replies = sync_read_bytes(N_MOTORS, POS.size)
    write = sync_write_bytes(N_MOTORS, GOAL.size)
    return {'sync_read_request': req, 'sync_read_replies': replies, 'sync_write': write,
            'host_to_servo': req + write, 'servo_to_host': replies,
            'total': req + replies + write}


def summarize(durations: list[float], cpu_s: float) -> dict[str, float]:
    ms = sorted(d * 1e3 for d in durations)
    total = sum(durations)
    return {
        'cycles': len(ms),
        'cycles_per_s': len(ms) / total,
        'p50_ms': statistics.median(ms),
        'p95_ms': ms[int(0.95 * (len(ms) - 1))],
        'max_ms': ms[-1],
        'cpu_ms_per_cycle': cpu_s * 1e3 / len(ms),
    }


def open_bus(port: str, warmup: int) -> tuple[FeetechBus, dict[str, int]]:
    """Connected bus (handshake done) after `warmup` untimed cycles; returns it and the goals."""
    bus = FeetechBus(port, so101_motors(), timeout_ms=50.0)
    bus.connect()
    goals = bus.sync_read('Present_Position')
    for _ in range(warmup):
        bus.sync_read('Present_Position')
        bus.sync_write('Goal_Position', goals)
    return bus, goals


def bus_cycles(bus: FeetechBus, goals: dict[str, int], cycles: int) -> dict[str, float]:
    before = bus.stats
    durations = []
    cpu0 = time.process_time()
    for _ in range(cycles):
        t0 = time.perf_counter()
        bus.sync_read('Present_Position')
        bus.sync_write('Goal_Position', goals)
        durations.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    after = bus.stats
    result = summarize(durations, cpu)
    result['bus_tx_bytes_per_cycle'] = (after.tx_bytes - before.tx_bytes) / cycles
    result['bus_rx_bytes_per_cycle'] = (after.rx_bytes - before.rx_bytes) / cycles
    result['retries'] = after.retries - before.retries
    return result


def sdk_loop(port: str, cycles: int, warmup: int) -> dict[str, float]:
    handler = scs.PortHandler(port)
    if not handler.openPort():
        raise RuntimeError(f'cannot open {port}')
    ph = scs.PacketHandler(0)
    reader = scs.GroupSyncRead(handler, ph, POS.address, POS.size)
    writer = scs.GroupSyncWrite(handler, ph, GOAL.address, GOAL.size)
    for motor_id in range(1, N_MOTORS + 1):
        reader.addParam(motor_id)
        writer.addParam(motor_id, [0xFF, 0x07])
    failures = 0
    durations = []
    try:
        for i in range(warmup + cycles):
            t0 = time.perf_counter()
            if i == warmup:
                cpu0 = time.process_time()
            if reader.txRxPacket() != scs.COMM_SUCCESS:
                failures += 1
            writer.txPacket()
            if i >= warmup:
                durations.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
    finally:
        handler.closePort()
    result = summarize(durations, cpu)
    result['failed_reads'] = failures
    return result


def run_process_config(kind: str, args: argparse.Namespace, wire: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix='feetech_bench_') as tmp:
        link = Path(tmp) / 'bus'
        proc = subprocess.Popen(
            [sys.executable, '-m', 'smolvla_ros.cli', 'servo-emulator', '--link', str(link),
             *(['--wire-timing'] if wire else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not link.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f'emulator did not start: {proc.stderr.read()}')
                time.sleep(0.05)
            if kind == 'sdk':
                return sdk_loop(str(link), args.cycles, args.warmup)
            bus, goals = open_bus(str(link), args.warmup)
            result = bus_cycles(bus, goals, args.cycles)
            bus.ping('gripper')  # a round trip: the emulator has taken every byte sent before it
            total = bus.stats
            bus.close()
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        # The emulator process logs its byte counts at exit: they must equal the bus's totals.
        m = re.search(r'(\d+) bytes in, (\d+) out', err)
        if m is None:
            raise RuntimeError(f'emulator did not report its byte counts: {err}')
        result['session_bytes'] = {'bus_tx': total.tx_bytes, 'bus_rx': total.rx_bytes,
                                   'emulator_rx': int(m.group(1)),
                                   'emulator_tx': int(m.group(2))}
        result['emulator_matches_bus_bytes'] = (
            int(m.group(1)) == total.tx_bytes and int(m.group(2)) == total.rx_bytes)
        return result


def lost_reply_cost(reads: int = 10) -> dict[str, dict[str, float]]:
    """Wall and CPU time of a READ that gets no reply: the stock PortHandler polls until the SDK's
    34 ms deadline; ours sleeps in select() until the same deadline."""
    out = {}
    with ServoEmulator([1]) as emu:
        emu.inject('missing', 1)
        for name, handler in (('stock', scs.PortHandler(emu.port_path)),
                              ('waiting', WaitingPortHandler(emu.port_path, timeout_ms=34.0))):
            handler.openPort()
            ph = scs.PacketHandler(0)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(reads):
                _, result, _ = ph.read2ByteTxRx(handler, 1, POS.address)
                if result != scs.COMM_RX_TIMEOUT:
                    raise RuntimeError(f'expected a timeout, got {result}')
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            handler.closePort()
            out[name] = {'wall_ms': wall * 1e3 / reads, 'cpu_ms': cpu * 1e3 / reads}
    return out


def run_thread_config(args: argparse.Namespace) -> dict[str, object]:
    with ServoEmulator(range(1, N_MOTORS + 1)) as emu:
        bus, goals = open_bus(emu.port_path, args.warmup)
        time.sleep(0.05)  # the last warm-up sync write has no reply: let it arrive
        emu.reset_stats()
        result = bus_cycles(bus, goals, args.cycles)
        time.sleep(0.05)
        stats = emu.stats()
        bus.close()
    result['emulator_rx_bytes_per_cycle'] = stats.rx_bytes / args.cycles
    result['emulator_tx_bytes_per_cycle'] = stats.tx_bytes / args.cycles
    result['emulator_bytes_per_cycle'] = (stats.rx_bytes + stats.tx_bytes) / args.cycles
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    minimum = minimum_bytes()
    results: dict[str, dict[str, object]] = {}
    for config in args.configs.split(','):
        kind, where = config.split('/')
        if where in ('process', 'process+wire'):
            results[config] = run_process_config(kind, args, wire=where.endswith('+wire'))
        elif kind == 'bus' and where == 'thread':
            results[config] = run_thread_config(args)
        else:
            raise SystemExit(f'unknown config {config!r}')
    lost = lost_reply_cost()
    info = machine()
    print(f"\nFeetech cycle (sync read 6 positions + sync write 6 goals), {args.cycles} cycles, "
          f"{info['nproc']} CPUs, {info['cpu']}\n")
    print('| config | cycles/s | p50 ms | p95 ms | max ms | CPU ms/cycle | bytes/cycle |')
    print('|---|---|---|---|---|---|---|')
    for name, r in results.items():
        if 'emulator_bytes_per_cycle' in r:
            nbytes = f"{r['emulator_bytes_per_cycle']:.1f} (at emulator)"
        elif 'bus_tx_bytes_per_cycle' in r:
            agree = 'emulator agrees' if r.get('emulator_matches_bus_bytes') else 'emulator DIFFERS'
            nbytes = (f"{r['bus_tx_bytes_per_cycle'] + r['bus_rx_bytes_per_cycle']:.1f} "
                      f'(at bus; {agree})')
        else:
            nbytes = 'n/a'
        print(f"| {name} | {r['cycles_per_s']:.0f} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | "
              f"{r['max_ms']:.3f} | {r['cpu_ms_per_cycle']:.3f} | {nbytes} |")
    print(f"\nProtocol minimum: sync read {minimum['sync_read_request']} + replies "
          f"{minimum['sync_read_replies']} + sync write {minimum['sync_write']} = "
          f"{minimum['total']} bytes/cycle; target >= {TARGET_HZ:.0f} cycles/s.")
    print('\nA READ that gets no reply (missing servo), SDK deadline 34 ms:\n')
    print('| port handler | wall ms | CPU ms |')
    print('|---|---|---|')
    for name, r in lost.items():
        print(f"| {name} | {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({'machine': info, 'minimum_bytes': minimum,
                                    'target_cycles_per_s': TARGET_HZ, 'cycles': args.cycles,
                                    'results': results, 'lost_reply': lost}, indent=2))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
