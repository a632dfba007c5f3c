"""The servo driver's control logic, free of ROS: one :meth:`ArmController.cycle` per timer tick.

State machine::

    DISCONNECTED --connect ok--> IDLE (torque off, goal tracks present)
    IDLE --enable_torque (follower; readings inside range; goal := present first)--> ENABLED
    ENABLED --disable_torque--> IDLE
    ENABLED --a servo reads Torque_Enable = 0 (its own protection unloaded it)--> TORQUE_LOST
    ENABLED --a watched joint stalls (stall_load > 0; goal := present for it)--> STALLED
    STALLED --a servo reads Torque_Enable = 0--> TORQUE_LOST
    TORQUE_LOST/STALLED --enable_torque (goal := present, every joint)--> ENABLED;
        --disable_torque--> IDLE
    IDLE/ENABLED/STALLED/TORQUE_LOST --max_consecutive_errors failed cycles--> FAULT (torque off,
        best effort)
    FAULT --a good cycle (leader) / enable_torque (follower)--> IDLE / ENABLED
    any --port gone (PortError, BusNotConnectedError, OSError)--> DISCONNECTED --retry every
        reconnect_interval_s--> IDLE (torque stays off: a human re-enables it)

Safety, in the order a goal is built each ENABLED cycle: the target of a joint is its latest command
while that command is fresh (watchdog), else the goal it already has (hold); the goal moves toward
the target by at most ``max_step_rad``; it is clamped to the calibrated range; it is written as
Goal_Position. A failed cycle writes nothing: the servos keep their last goal.

A lost torque (docs/driver.md, "Safety behaviour"): an STS3215 whose Unloading_Condition trips
(overheat, overcurrent, overload) switches its own torque off and stays limp after the condition
clears, while the bus keeps answering normally. The periodic health read therefore reads
Torque_Enable back (one 1-byte sync read per ``health_period_s``, only while ENABLED); a joint
that reads 0 puts the arm in TORQUE_LOST: the joint is reported ERROR with the servo's status
flags, the other joints hold their last goal (nothing is written, so they stay where they are;
dropping the whole arm could be worse than one limp joint), commands are no longer applied, and
nothing is re-enabled automatically (the protection may still be active). ``enable_torque``
(goal := present first, as always) is the explicit way back; ``disable_torque`` releases the arm.

A stall (docs/driver.md, "Stall protection"; detection in stall_guard.py): while torque is held
(ENABLED, STALLED, TORQUE_LOST) a watched joint that keeps a high Present_Load without reaching its
goal for ``stall_timeout_s`` gets goal := present (that one joint is written, so it stops pushing
but still holds against gravity; torque stays on, since a released shoulder would fall). The arm
then behaves as in TORQUE_LOST: the other joints hold, commands are not applied, the stall is
latched until ``enable_torque``/``disable_torque``. Detection goes on in STALLED, so a second joint
pushing against the same obstruction is released too. A stall found in TORQUE_LOST is reacted to
the same way but leaves the state TORQUE_LOST (the graver finding).

The bus is anything with :class:`ServoBus`'s methods (``FeetechBus`` in production, fakes in tests).
The same bus object is closed and reopened across a lost port, so its counters survive.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
import enum
import logging
import time

import numpy as np

from smolvla_ros.core.safety_clamps import clamp_to_limits, limit_step, outside_range
from smolvla_ros.hardware.arm.arm_config import ArmConfig, ArmJoints, MotorCalibrationLike, Role
from smolvla_ros.hardware.arm.arm_status import ArmStatus, JointHealth
from smolvla_ros.hardware.arm.command_watchdog import CommandWatchdog
from smolvla_ros.hardware.arm.servo_bus import (
    PORT_ERRORS,
    TRANSFER_ERRORS,
    CalibrationMismatchError,
    ServoBus,
    apply_servo_setup,
    verify_calibration,
)
from smolvla_ros.hardware.arm.stall_guard import Stall, StallDetector

logger = logging.getLogger(__name__)

_MOTION_REGISTERS = ('Present_Position', 'Present_Velocity', 'Present_Load')
_HEALTH_REGISTERS = ('Present_Voltage', 'Present_Temperature', 'Status')


class ArmState(str, enum.Enum):
    DISCONNECTED = 'disconnected'
    IDLE = 'idle'
    ENABLED = 'enabled'
    TORQUE_LOST = 'torque_lost'
    STALLED = 'stalled'
    FAULT = 'fault'


# States in which the follower holds torque and its goals are the driver's: stall detection runs.
_HOLDING = (ArmState.ENABLED, ArmState.STALLED, ArmState.TORQUE_LOST)


class TorqueRequestError(RuntimeError):
    """Enabling torque was refused (leader role, no bus, readings outside the calibrated range)."""


class ArmController:
    """Reads the arm, applies commands safely, and keeps the counters diagnostics need.

    No lock: the driver node's timer, subscriptions and services all call it from its one
    executor thread (docs/ARCHITECTURE.md, "Threading").
    """

    def __init__(
        self,
        bus: ServoBus,
        calibration: Mapping[str, MotorCalibrationLike],
        config: ArmConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.joints = ArmJoints.from_calibration(calibration)
        self.bus = bus
        self._clock = clock
        self._bus: ServoBus | None = None  # set while connected
        self.watchdog = CommandWatchdog(self.joints.names, config.command_timeout_s)
        self.state = ArmState.DISCONNECTED
        self.fault_reason = ''
        self._next_connect = -np.inf
        self._next_health = -np.inf
        self._consecutive_errors = 0
        n = len(self.joints)
        self.goal: np.ndarray | None = None  # (J,) rad, last goal written (or present when idle)
        self.position: np.ndarray | None = None  # (J,) rad, last good reading
        self.velocity: np.ndarray | None = None  # (J,) rad/s
        self.effort: np.ndarray | None = None  # (J,) N m
        self.load: np.ndarray | None = None  # (J,) signed fraction of full load
        self.stall = StallDetector(self.joints.names, config.stall_joints, config.stall_load,
                                   config.stall_position_tolerance_rad, config.stall_timeout_s)
        # Stall protection needs the load every cycle: the same one sync read as velocity/effort.
        self._read_motion = config.read_velocity_effort or config.stall_protection
        self.health = {name: JointHealth() for name in self.joints.names}
        self.clip_counts = np.zeros(n, dtype=np.int64)  # (J,) cycles in which a goal was changed
        self.failed_cycles = 0
        self.good_cycles = 0
        self.reconnects = 0
        self.faults = 0
        self.torque_losses = 0  # times a servo was found limp while ENABLED
        self.last_cycle_s = 0.0
        self._cycle_sum_s = 0.0

    # ----------------------------------------------------------------------------- connection
    @property
    def connected(self) -> bool:
        return self._bus is not None

    def connect(self) -> bool:
        """Open the bus and prepare the servos; False (and retried later) if the port is absent.

        Raises :class:`CalibrationMismatchError` when the servos disagree with the calibration
        file and ``write_calibration`` is off: that is a configuration error, not a glitch.
        """
        self._next_connect = self._clock() + self.config.reconnect_interval_s
        bus = self.bus
        try:
            bus.connect()  # pings every motor: a missing one raises CommunicationError
            bus.disable_torque()
            verify_calibration(bus, self.joints.calibration, self.config.write_calibration)
            if self.config.configure_servos:
                apply_servo_setup(bus, self.joints.names, self.config.role)
        except CalibrationMismatchError:
            _close_quietly(bus)
            raise
        except (*PORT_ERRORS, *TRANSFER_ERRORS) as exc:
            _close_quietly(bus)
            self._set_disconnected(f'connect failed: {exc}')
            return False
        self._bus = bus
        self.state = ArmState.IDLE
        self.fault_reason = ''
        self._clear_latches()
        self._consecutive_errors = 0
        self.goal = None
        self.watchdog.clear()
        logger.info('connected to %d servos', len(self.joints))
        return True

    def close(self) -> None:
        """Turn torque off if configured (always for a fault) and close the port."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        # A leader's torque is never on; a follower's goes off if configured or after a fault.
        if self.config.role is Role.FOLLOWER and (
                self.config.torque_off_on_shutdown or self.state is ArmState.FAULT):
            self._torque_off_best_effort(bus)
        _close_quietly(bus)
        self.state = ArmState.DISCONNECTED

    def _set_disconnected(self, reason: str) -> None:
        self.state = ArmState.DISCONNECTED
        self.fault_reason = reason

    def _lose_port(self, exc: BaseException) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            _close_quietly(bus)
        self._set_disconnected(f'port lost: {exc}')
        self._next_connect = self._clock() + self.config.reconnect_interval_s
        self.goal = None
        logger.warning('bus lost (%s); retrying every %.1f s', exc,
                       self.config.reconnect_interval_s)

    # ------------------------------------------------------------------------------- commands
    def command(self, positions: Mapping[str, float]) -> None:
        """Accept a (partial) position command by joint name (rad); applied by the next cycles.

        Raises ``UnknownJointError``/``InvalidCommandError`` (ValueError) for bad commands and
        :class:`TorqueRequestError` for a leader, which takes no commands.
        """
        if self.config.role is Role.LEADER:
            raise TorqueRequestError('a leader arm takes no joint commands')
        self.watchdog.set(positions, self._clock())

    def enable_torque(self) -> None:
        """goal := present, then Torque_Enable; refuses on a leader or out-of-range readings."""
        if self.config.role is Role.LEADER:
            raise TorqueRequestError('the leader arm never enables torque')
        if self._bus is None:
            raise TorqueRequestError(f'bus not connected ({self.fault_reason})')
        bus = self._bus
        try:
            present = self.joints.to_radians(bus.sync_read('Present_Position'))  # (J,)
            bad = outside_range(present, self.joints.lower, self.joints.upper,
                                self.config.range_tolerance_rad)
            if bad.any():
                names = [self.joints.names[i] for i in np.flatnonzero(bad)]
                raise TorqueRequestError(
                    f'joint(s) {names} read outside their calibrated range '
                    f'(check the calibration file); torque stays off'
                )
            goal = clamp_to_limits(present, self.joints.lower, self.joints.upper).value
            bus.sync_write('Goal_Position', self.joints.to_ticks(goal))
            bus.enable_torque()
        except (*PORT_ERRORS, *TRANSFER_ERRORS) as exc:
            raise TorqueRequestError(f'enabling torque failed: {exc}') from exc
        self.goal = goal
        self.position = present
        self.watchdog.clear()  # commands sent while limp must not yank the arm now
        self._consecutive_errors = 0
        self.state = ArmState.ENABLED
        self.fault_reason = ''
        self._clear_latches()

    def disable_torque(self) -> None:
        if self._bus is None:
            raise TorqueRequestError(f'bus not connected ({self.fault_reason})')
        try:
            self._bus.disable_torque()
        except (*PORT_ERRORS, *TRANSFER_ERRORS) as exc:
            raise TorqueRequestError(f'disabling torque failed: {exc}') from exc
        self.watchdog.clear()
        if self.state in (*_HOLDING, ArmState.FAULT):
            self.state = ArmState.IDLE  # also acknowledges a fault, a lost torque or a stall
            self.fault_reason = ''
            self._clear_latches()

    # ---------------------------------------------------------------------------------- cycle
    def cycle(self) -> bool:
        """One control cycle: read, (if enabled) write goals, maybe read health. Never raises on
        bus trouble. Returns True when fresh positions were read this cycle."""
        start = time.perf_counter()
        now = self._clock()
        if self._bus is None:
            if now >= self._next_connect and self.state is not ArmState.FAULT:
                self._reconnect()
            return False
        ok = self._cycle(self._bus, now)
        self.last_cycle_s = time.perf_counter() - start
        self._cycle_sum_s += self.last_cycle_s
        return ok

    def _reconnect(self) -> None:
        try:
            if self.connect():
                self.reconnects += 1
        except CalibrationMismatchError as exc:
            # Another arm (or a re-flashed one) came back on this port: never drive it.
            self.state = ArmState.FAULT
            self.fault_reason = str(exc)
            self.faults += 1
            logger.error('after reconnect: %s', exc)

    def _cycle(self, bus: ServoBus, now: float) -> bool:
        try:
            if self._read_motion:
                # One sync read of the 6-byte span Present_Position..Present_Load per motor.
                block = bus.sync_read_registers(_MOTION_REGISTERS)
                raw_pos = {n: r['Present_Position'] for n, r in block.items()}
                self.velocity = self.joints.velocity_to_rad_s(
                    {n: r['Present_Velocity'] for n, r in block.items()})
                self._store_load({n: r['Present_Load'] for n, r in block.items()})
            else:
                raw_pos = bus.sync_read('Present_Position')
            present = self.joints.to_radians(raw_pos)  # (J,)
            if self.state in _HOLDING and self.config.stall_protection:
                self._check_stall(bus, now, present)
            if self.state is ArmState.ENABLED:
                self._write_goal(bus, now)
            elif self.state not in _HOLDING:  # STALLED, TORQUE_LOST: hold, write nothing
                self.goal = present
            if now >= self._next_health:
                self._next_health = now + self.config.health_period_s
                self._read_health(bus)
        except PORT_ERRORS as exc:
            self._lose_port(exc)
            return False
        except TRANSFER_ERRORS as exc:
            self._count_error(exc)
            return False
        self.position = present
        self.good_cycles += 1
        self._consecutive_errors = 0
        if self.state is ArmState.FAULT and self.config.role is Role.LEADER:
            self.state = ArmState.IDLE
            self.fault_reason = ''
        return True

    def _write_goal(self, bus: ServoBus, now: float) -> None:
        assert self.goal is not None
        target, fresh = self.watchdog.fresh(now)  # (J,), (J,) bool
        desired = np.where(fresh, target, self.goal)  # stale joints hold their goal
        stepped = limit_step(desired, self.goal, self.config.max_step_rad)
        clamped = clamp_to_limits(stepped.value, self.joints.lower, self.joints.upper)
        self.clip_counts += (stepped.clipped | clamped.clipped) & fresh
        bus.sync_write('Goal_Position', self.joints.to_ticks(clamped.value))
        self.goal = clamped.value

    def _check_stall(self, bus: ServoBus, now: float, present: np.ndarray) -> None:
        assert self.goal is not None and self.load is not None
        stalls = self.stall.update(now, self.load, self.goal, present)
        if not stalls:
            return
        idx = [s.index for s in stalls]
        goal = self.goal.copy()
        goal[idx] = clamp_to_limits(present, self.joints.lower, self.joints.upper).value[idx]
        ticks = self.joints.to_ticks(goal)
        # Only the stalled joints: the others keep the goal their servo already has. A failed
        # write raises before anything is latched, so the next cycle trips and writes again.
        bus.sync_write('Goal_Position', {s.joint: ticks[s.joint] for s in stalls})
        self.goal = goal
        self.stall.latch(stalls)
        self._on_stalls(stalls)

    def _on_stalls(self, stalls: list[Stall]) -> None:
        for s in stalls:
            self.health[s.joint].stalled = s.describe()
        logger.error('STALL: %s', '; '.join(f'{s.joint}: {s.describe()}' for s in stalls))
        self.watchdog.clear()
        if self.state is ArmState.TORQUE_LOST:
            return  # the graver finding keeps the state; the joint entries show the stall
        self.state = ArmState.STALLED
        names = [n for n, on in zip(self.joints.names, self.stall.stalled, strict=True) if on]
        self.fault_reason = (
            f'stall on {", ".join(names)} (pushing without reaching the goal; goal set to '
            'present); the other joints hold, commands are not applied until enable_torque '
            '(true re-enables every joint from where it is, false releases the arm)')

    def _store_load(self, raw: Mapping[str, int]) -> None:
        load = np.array([raw[n] for n in self.joints.names], dtype=np.float64) / 1000.0  # (J,)
        self.load = load
        for name, value in zip(self.joints.names, load.tolist(), strict=True):
            self.health[name].load = value
        if self.config.effort_scale_nm > 0.0:
            sign = np.array([-1.0 if self.joints.calibration[n].drive_mode else 1.0
                             for n in self.joints.names])
            self.effort = load * sign * self.config.effort_scale_nm

    def _read_health(self, bus: ServoBus) -> None:
        regs = _HEALTH_REGISTERS + (() if self._read_motion else ('Present_Load',))
        block = bus.sync_read_registers(regs)
        if not self._read_motion:
            self._store_load({n: r['Present_Load'] for n, r in block.items()})
        for name in self.joints.names:
            h = self.health[name]
            h.temperature_c = float(block[name]['Present_Temperature'])
            h.voltage_v = block[name]['Present_Voltage'] / 10.0  # register unit: 0.1 V
            h.status = int(block[name]['Status'])
        if self.state in (ArmState.ENABLED, ArmState.STALLED):
            torque = bus.sync_read('Torque_Enable')  # one byte per servo
            limp = [n for n in self.joints.names if not torque[n]]
            if limp:
                self._lose_torque(limp)

    def _lose_torque(self, limp: list[str]) -> None:
        """Some servos switched their torque off themselves: report them and hold the rest."""
        for name in limp:
            flags = self.health[name].status_flags
            cause = (f'servo reports {", ".join(flags)}' if flags else
                     'no error bits now: its protection tripped and cleared, or another program '
                     'wrote Torque_Enable')
            self.health[name].torque_lost = f'torque off by the servo itself ({cause})'
        self.torque_losses += 1
        self.state = ArmState.TORQUE_LOST
        self.fault_reason = (
            f'torque lost on {", ".join(limp)}; the other joints hold, commands are not applied '
            'until enable_torque (true re-enables every joint from where it is, false releases '
            'the arm)')
        self.watchdog.clear()
        logger.error('TORQUE LOST: %s', '; '.join(
            f'{n}: {self.health[n].torque_lost}' for n in limp))

    def _clear_latches(self) -> None:
        for h in self.health.values():
            h.torque_lost = ''
            h.stalled = ''
        self.stall.reset()

    def _count_error(self, exc: BaseException) -> None:
        self.failed_cycles += 1
        self._consecutive_errors += 1
        motor = getattr(exc, 'motor', None)
        reason = getattr(exc, 'reason', type(exc).__name__)
        if motor in self.health:
            self.health[motor].errors[reason] = self.health[motor].errors.get(reason, 0) + 1
        limit = self.config.max_consecutive_errors
        if self._consecutive_errors >= limit and self.state is not ArmState.FAULT:
            self._fault(f'{limit} consecutive failed cycles, last: {exc}')

    def _fault(self, reason: str) -> None:
        self.faults += 1
        self.state = ArmState.FAULT
        self.fault_reason = reason
        self.watchdog.clear()
        logger.error('FAULT: %s; turning torque off', reason)
        if self._bus is not None:
            self._torque_off_best_effort(self._bus)

    def _torque_off_best_effort(self, bus: ServoBus) -> bool:
        """Torque off on every servo that still listens; True if all of them confirmed.

        A broadcast sync write first (one packet, no reply: it reaches every live servo even when
        one of them is gone), then the acknowledged per-motor writes, each on its own so a dead
        servo does not stop the others from being released.
        """
        try:
            bus.sync_write('Torque_Enable', dict.fromkeys(self.joints.names, 0))
        except PORT_ERRORS as exc:
            logger.warning('torque off impossible, the port is gone: %s', exc)
            return False
        except TRANSFER_ERRORS as exc:
            logger.error('broadcast torque off failed: %s', exc)
        ok = True
        for name in self.joints.names:
            try:
                bus.disable_torque([name])
            except PORT_ERRORS as exc:
                logger.warning('torque off impossible, the port is gone: %s', exc)
                return False
            except TRANSFER_ERRORS as exc:
                ok = False
                logger.error('torque off on %s failed: %s', name, exc)
        return ok

    # --------------------------------------------------------------------------------- status
    def status(self) -> ArmStatus:
        """A snapshot for diagnostics (plain data; the node turns it into messages)."""
        cycles = self.good_cycles + self.failed_cycles
        return ArmStatus(
            state=self.state.value,
            role=self.config.role.value,
            reason=self.fault_reason,
            joint_names=self.joints.names,
            health={n: h.copy() for n, h in self.health.items()},
            clip_counts=dict(zip(self.joints.names, self.clip_counts.tolist(), strict=True)),
            good_cycles=self.good_cycles,
            failed_cycles=self.failed_cycles,
            consecutive_errors=self._consecutive_errors,
            reconnects=self.reconnects,
            faults=self.faults,
            torque_losses=self.torque_losses,
            stalls=self.stall.stalls,
            commands_received=self.watchdog.commands_received,
            commands_rejected=self.watchdog.commands_rejected,
            last_cycle_ms=self.last_cycle_s * 1e3,
            mean_cycle_ms=(self._cycle_sum_s / cycles * 1e3) if cycles else 0.0,
            bus_stats=self._bus.stats if self._bus is not None else None,
        )


def _close_quietly(bus: ServoBus) -> None:
    try:
        bus.close()
    except (*PORT_ERRORS, *TRANSFER_ERRORS) as exc:
        logger.debug('closing the bus failed: %s', exc)
