"""One emulated STS3215: register memory with EEPROM/SRAM semantics and a first-order motion model.

Model (what a driver can rely on, and what tests check):
- Memory is the STS control table (tables.py). Read-only registers ignore writes. EEPROM registers
  (address < 40) change only while Lock = 0; a write to them with Lock = 1 is acknowledged but not
  applied (counted in `eeprom_writes_rejected`), so a driver that forgets to unlock is caught.
  `power_cycle()` resets SRAM to defaults and keeps EEPROM.
- Present_Position = (Actual - Homing_Offset) mod 4096. Goal_Position is in the same frame and is
  clamped to [Min_Position_Limit, Max_Position_Limit] (no clamp when both are 0).
- With torque on, Actual approaches Goal + Homing_Offset as a first-order lag (`time_constant_s`)
  whose speed is capped at Goal_Velocity (ticks/s) or `max_speed` when Goal_Velocity is 0. The
  motion is integrated in closed form from the elapsed time, so it is exact at any polling rate.
  With torque off it stays where it is, or where `set_actual()` puts it (a hand, a simulator).
- Present_Velocity, Present_Load (0.1 %, sign bit 10), Present_Current, Moving, Present_Voltage
  (0.1 V), Present_Temperature (deg C) and Status (error bits) are computed on every read.
- Overheat/overload/voltage faults set Status bits and the status-packet error byte; when the
  matching bit is in Unloading_Condition (default 44 = overheat | overcurrent | overload) torque
  is released, as the real servo does.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

from smolvla_ros.hardware.feetech.encoding import (
    decode_value,
    encode_sign_magnitude,
    encode_value,
    from_bytes,
    to_bytes,
)
from smolvla_ros.hardware.feetech.tables import (
    MODEL_NUMBERS,
    SRAM_START,
    STATUS_BITS,
    TABLES,
    Register,
)

MEMORY_SIZE = 128
_RESOLUTION = 4096
_VELOCITY_HOLD_S = 0.1  # a hand-moved (torque-off) joint reads 0 velocity this long after a move


@dataclass(frozen=True)
class ServoConfig:
    """Static properties of an emulated servo (initial pose and physics)."""

    model: str = 'sts3215'
    position: float = 2047.0  # initial Actual (encoder) position, ticks
    max_speed: float = 3000.0  # ticks/s when Goal_Velocity is 0 (~44 rpm, an STS3215 at 7.4 V)
    time_constant_s: float = 0.02  # first-order lag of the position loop
    voltage: float = 12.0  # V
    temperature: float = 30.0  # deg C
    firmware: tuple[int, int] = (3, 10)

    def __post_init__(self) -> None:
        if self.model not in TABLES:
            raise ValueError(f'unknown servo model {self.model!r}; known: {sorted(TABLES)}')
        if not 0 <= self.position <= _RESOLUTION - 1:
            raise ValueError(f'position must be in 0..4095, got {self.position}')
        if self.max_speed <= 0 or self.time_constant_s <= 0:
            raise ValueError('max_speed and time_constant_s must be > 0')


# Factory defaults of the registers that are not 0 (the rest of memory starts at 0).
_DEFAULTS: dict[str, int] = {
    'Baud_Rate': 0,
    'Return_Delay_Time': 0,
    'Response_Status_Level': 1,
    'Min_Position_Limit': 0,
    'Max_Position_Limit': 4095,
    'Max_Temperature_Limit': 70,
    'Max_Voltage_Limit': 140,
    'Min_Voltage_Limit': 40,
    'Max_Torque_Limit': 1000,
    'Unloading_Condition': 44,
    'LED_Alarm_Condition': 47,
    'P_Coefficient': 32,
    'D_Coefficient': 32,
    'I_Coefficient': 0,
    'Protection_Current': 500,
    'Angular_Resolution': 1,
    'Protective_Torque': 20,
    'Protection_Time': 200,
    'Overload_Torque': 80,
    'Torque_Limit': 1000,
    'Lock': 1,
}


class EmulatedServo:
    """Register memory + motion of one servo. Not thread-safe: the emulator holds a lock."""

    def __init__(self, motor_id: int, config: ServoConfig | None = None, now: float = 0.0) -> None:
        self.config = config or ServoConfig()
        self.table = TABLES[self.config.model]
        self._by_address = {r.address: r for r in self.table.values()}
        self.mem = bytearray(MEMORY_SIZE)
        self.actual = float(self.config.position)
        self.velocity = 0.0  # ticks/s, Actual frame
        self.fault_status = 0  # error bits forced by fault injection
        self.temperature = self.config.temperature
        self.voltage = self.config.voltage
        self.load_override: int | None = None
        self.eeprom_writes_rejected = 0
        self._t = now
        self._last_set = -math.inf
        self._reg_write: tuple[int, bytes] | None = None
        self._set('Firmware_Major_Version', self.config.firmware[0])
        self._set('Firmware_Minor_Version', self.config.firmware[1])
        self._set('Model_Number', MODEL_NUMBERS[self.config.model])
        self._set('ID', motor_id)
        for name, value in _DEFAULTS.items():
            self._set(name, value)
        self.power_cycle(now)

    # -- raw memory ----------------------------------------------------------------------------

    def _reg(self, name: str) -> Register:
        return self.table[name]

    def _set(self, name: str, value: int) -> None:
        reg = self._reg(name)
        self.mem[reg.address:reg.address + reg.size] = to_bytes(encode_value(reg, value), reg.size)

    def set_register(self, name: str, value: int) -> None:
        """Set a register directly, bypassing Lock and read-only rules (factory setup, tests)."""
        self._set(name, value)

    def get(self, name: str) -> int:
        """Decoded value of a register as stored (feedback registers are refreshed by `read`)."""
        reg = self._reg(name)
        return decode_value(reg, from_bytes(self.mem[reg.address:reg.address + reg.size]))

    @property
    def id(self) -> int:
        return self.mem[self._reg('ID').address]

    @property
    def torque_enabled(self) -> bool:
        return bool(self.get('Torque_Enable'))

    def power_cycle(self, now: float) -> None:
        """SRAM back to power-on values (torque off, goal = present, Lock = 1); EEPROM kept."""
        self.advance(now)
        for addr in range(SRAM_START, MEMORY_SIZE):
            self.mem[addr] = 0
        self._set('Torque_Limit', _DEFAULTS['Torque_Limit'])
        self._set('Lock', 1)
        self._set('Goal_Position', self.present_position())
        self.velocity = 0.0

    # -- motion ----------------------------------------------------------------------------------

    def present_position(self) -> int:
        return int(round(self.actual - self.get('Homing_Offset'))) % _RESOLUTION

    def goal_actual(self) -> float:
        """Goal_Position (clamped to the limits) expressed in the Actual frame."""
        goal = self.get('Goal_Position')
        lo, hi = self.get('Min_Position_Limit'), self.get('Max_Position_Limit')
        if lo or hi:
            goal = min(max(goal, lo), hi)
        return float((goal + self.get('Homing_Offset')) % _RESOLUTION)

    def speed_limit(self) -> float:
        v = abs(self.get('Goal_Velocity'))
        return float(v) if v else self.config.max_speed

    def advance(self, now: float, internal_motion: bool = True) -> None:
        """Integrate the motion model from the last update to `now` (monotonic seconds)."""
        dt = now - self._t
        self._t = now
        if dt <= 0:
            return
        if not (internal_motion and self.torque_enabled):
            if now - self._last_set > _VELOCITY_HOLD_S:
                self.velocity = 0.0  # nobody moved the joint lately: it is at rest
            return
        err = self.goal_actual() - self.actual
        tau, vmax = self.config.time_constant_s, self.speed_limit()
        mag = abs(err)
        sat = vmax * tau  # below this error the lag is linear, above it speed-limited
        if mag > sat:
            t_sat = (mag - sat) / vmax
            if dt <= t_sat:
                new_mag = mag - vmax * dt
                self.velocity = math.copysign(vmax, err)
            else:
                new_mag = sat * math.exp(-(dt - t_sat) / tau)
                self.velocity = math.copysign(new_mag / tau, err)
        else:
            new_mag = mag * math.exp(-dt / tau)
            self.velocity = math.copysign(new_mag / tau, err)
        self.actual = self.goal_actual() - math.copysign(new_mag, err)

    def set_actual(self, position: float, now: float) -> None:
        """Place the encoder (a hand or a simulator moved the joint); velocity from the step."""
        dt = now - self._t
        if dt > 0:
            self.velocity = (float(position) - self.actual) / dt
        self._t = self._last_set = now
        self.actual = float(position)

    # -- feedback --------------------------------------------------------------------------------

    def status_bits(self) -> int:
        bits = self.fault_status
        if self.temperature >= self.get('Max_Temperature_Limit'):
            bits |= STATUS_BITS['overheat']
        volts10 = round(self.voltage * 10)
        if not self.get('Min_Voltage_Limit') <= volts10 <= self.get('Max_Voltage_Limit'):
            bits |= STATUS_BITS['voltage']
        return bits & 0x7F

    def apply_protection(self) -> int:
        """Unload (torque off) when a status bit is in Unloading_Condition; the status bits."""
        status = self.status_bits()
        if status & self.get('Unloading_Condition') and self.torque_enabled:
            self._set('Torque_Enable', 0)
        return status

    def _refresh_feedback(self) -> None:
        status = self.apply_protection()
        torque = self.torque_enabled
        if self.load_override is not None:
            load = self.load_override
        elif torque:
            # 0.1 % units; saturates at 100 % for errors of ~100 ticks.
            load = int(max(-1000, min(1000, (self.goal_actual() - self.actual) * 10)))
        else:
            load = 0
        speed = int(max(-32767, min(32767, round(self.velocity))))
        values = {
            'Present_Position': self.present_position(),
            'Present_Velocity': speed,
            'Present_Load': load,
            'Present_Voltage': max(0, min(255, round(self.voltage * 10))),
            'Present_Temperature': max(0, min(255, round(self.temperature))),
            'Status': status,
            'Moving': int(abs(speed) > 10),
            'Present_Current': abs(load) // 2,
            'Goal_Position_2': self.get('Goal_Position') & 0x7FFF,
        }
        for name, value in values.items():
            reg = self._reg(name)
            raw = encode_sign_magnitude(value, reg.sign_bit) if reg.sign_bit else value
            self.mem[reg.address:reg.address + reg.size] = to_bytes(raw, reg.size)

    # -- instructions ----------------------------------------------------------------------------

    def read(self, address: int, length: int) -> bytes:
        self._refresh_feedback()
        end = min(address + length, MEMORY_SIZE)
        return bytes(self.mem[address:end]).ljust(length, b'\x00')

    def write(self, address: int, data: bytes) -> None:
        """Apply a WRITE: per byte, skip read-only registers and locked EEPROM."""
        locked = self.mem[self._reg('Lock').address] != 0
        touched_eeprom = False
        for i, byte in enumerate(data):
            addr = address + i
            if addr >= MEMORY_SIZE or self._read_only(addr):
                continue
            if addr < SRAM_START and addr != self._reg('Lock').address:
                touched_eeprom = True
                if locked:
                    continue
            self.mem[addr] = byte
        if touched_eeprom and locked:
            self.eeprom_writes_rejected += 1
        self._refresh_feedback()

    def reg_write(self, address: int, data: bytes) -> None:
        self._reg_write = (address, bytes(data))

    def action(self) -> None:
        if self._reg_write is not None:
            self.write(*self._reg_write)
            self._reg_write = None

    def _read_only(self, addr: int) -> bool:
        for start in range(addr, max(addr - 2, -1), -1):
            reg = self._by_address.get(start)
            if reg is not None and start + reg.size > addr:
                return reg.read_only
        return False
