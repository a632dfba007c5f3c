"""The STS3215 (STS/SMS series, protocol 0) control table as data.

Everything the bus, the calibration code and the emulator need to know about the servo's memory
lives here, so that there is exactly one place to check against the datasheet. Addresses and sizes
follow the Feetech STS memory map (little-endian 2-byte words on protocol 0).
"""
from __future__ import annotations

from dataclasses import dataclass

from smolvla_ros.hardware.feetech.errors import UnknownRegisterError

# Packet-level constants.
HEADER = b'\xff\xff'
BROADCAST_ID = 0xFE
MAX_ID = 0xFC

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REG_WRITE = 0x04
INST_ACTION = 0x05
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

# Status-packet error bits (the byte after LEN in a reply; mirrored in the Status register).
STATUS_BITS: dict[str, int] = {
    'voltage': 0x01,
    'angle': 0x02,
    'overheat': 0x04,
    'overcurrent': 0x08,
    'overload': 0x20,
}

# Sync read/write and single transfers use the same default rate as LeRobot.
DEFAULT_BAUDRATE = 1_000_000
# Baud_Rate register code -> bits per second.
BAUD_RATE_CODES: dict[int, int] = {
    0: 1_000_000,
    1: 500_000,
    2: 250_000,
    3: 128_000,
    4: 115_200,
    5: 57_600,
    6: 38_400,
    7: 19_200,
}

MODEL_NUMBERS: dict[str, int] = {'sts3215': 777}
RESOLUTION: dict[str, int] = {'sts3215': 4096}

# First SRAM address: everything below it is EEPROM (persists, written only with Lock = 0).
SRAM_START = 40


@dataclass(frozen=True)
class Register:
    """One control-table entry.

    `sign_bit` is the bit that carries the sign of a sign-magnitude value (None for unsigned);
    `read_only` registers are measured by the servo and ignore writes.
    """

    name: str
    address: int
    size: int
    read_only: bool = False
    sign_bit: int | None = None

    @property
    def eeprom(self) -> bool:
        return self.address < SRAM_START


def _table(*rows: Register) -> dict[str, Register]:
    return {r.name: r for r in rows}


STS3215_TABLE: dict[str, Register] = _table(
    # EEPROM, identity.
    Register('Firmware_Major_Version', 0, 1, read_only=True),
    Register('Firmware_Minor_Version', 1, 1, read_only=True),
    Register('Model_Number', 3, 2, read_only=True),
    Register('ID', 5, 1),
    Register('Baud_Rate', 6, 1),
    Register('Return_Delay_Time', 7, 1),
    Register('Response_Status_Level', 8, 1),
    # EEPROM, limits.
    Register('Min_Position_Limit', 9, 2),
    Register('Max_Position_Limit', 11, 2),
    Register('Max_Temperature_Limit', 13, 1),
    Register('Max_Voltage_Limit', 14, 1),
    Register('Min_Voltage_Limit', 15, 1),
    Register('Max_Torque_Limit', 16, 2),
    # EEPROM, behaviour.
    Register('Phase', 18, 1),
    Register('Unloading_Condition', 19, 1),
    Register('LED_Alarm_Condition', 20, 1),
    Register('P_Coefficient', 21, 1),
    Register('D_Coefficient', 22, 1),
    Register('I_Coefficient', 23, 1),
    Register('Minimum_Startup_Force', 24, 2),
    Register('CW_Dead_Zone', 26, 1),
    Register('CCW_Dead_Zone', 27, 1),
    Register('Protection_Current', 28, 2),
    Register('Angular_Resolution', 30, 1),
    Register('Homing_Offset', 31, 2, sign_bit=11),
    Register('Operating_Mode', 33, 1),
    Register('Protective_Torque', 34, 1),
    Register('Protection_Time', 35, 1),
    Register('Overload_Torque', 36, 1),
    Register('Velocity_closed_loop_P_proportional_coefficient', 37, 1),
    Register('Over_Current_Protection_Time', 38, 1),
    Register('Velocity_closed_loop_I_integral_coefficient', 39, 1),
    # SRAM, control.
    Register('Torque_Enable', 40, 1),
    Register('Acceleration', 41, 1),
    Register('Goal_Position', 42, 2, sign_bit=15),
    Register('Goal_Time', 44, 2),
    Register('Goal_Velocity', 46, 2, sign_bit=15),
    Register('Torque_Limit', 48, 2),
    Register('Lock', 55, 1),
    # SRAM, feedback (read-only).
    Register('Present_Position', 56, 2, read_only=True, sign_bit=15),
    Register('Present_Velocity', 58, 2, read_only=True, sign_bit=15),
    Register('Present_Load', 60, 2, read_only=True, sign_bit=10),
    Register('Present_Voltage', 62, 1, read_only=True),
    Register('Present_Temperature', 63, 1, read_only=True),
    Register('Status', 65, 1, read_only=True),
    Register('Moving', 66, 1, read_only=True),
    Register('Present_Current', 69, 2, read_only=True),
    Register('Goal_Position_2', 71, 2, read_only=True),
    # Factory registers.
    Register('Moving_Velocity', 80, 1),
    Register('DTs', 81, 1),
    Register('Velocity_Unit_factor', 82, 1),
    Register('Hts', 83, 1),
    Register('Maximum_Velocity_Limit', 84, 1),
    Register('Maximum_Acceleration', 85, 1),
    Register('Acceleration_Multiplier', 86, 1),
)

TABLES: dict[str, dict[str, Register]] = {'sts3215': STS3215_TABLE}

# Registers the calibration writes; all EEPROM, so Lock must be 0 while writing them.
CALIBRATION_REGISTERS = ('Homing_Offset', 'Min_Position_Limit', 'Max_Position_Limit')


def register(name: str, model: str = 'sts3215') -> Register:
    """Look up a register by name, with an error that lists what exists."""
    try:
        table = TABLES[model]
    except KeyError:
        raise UnknownRegisterError(
            f'unknown servo model {model!r}; known: {sorted(TABLES)}') from None
    try:
        return table[name]
    except KeyError:
        raise UnknownRegisterError(
            f'unknown register {name!r} for {model}; known: {", ".join(table)}') from None


def status_flags(status: int) -> tuple[str, ...]:
    """Names of the error bits set in a status byte, in bit order."""
    return tuple(name for name, bit in STATUS_BITS.items() if status & bit)


# SO-100 / SO-101 follower and leader: motor name -> id, all STS3215, in LeRobot's joint order.
SO101_MOTOR_IDS: dict[str, int] = {
    'shoulder_pan': 1,
    'shoulder_lift': 2,
    'elbow_flex': 3,
    'wrist_flex': 4,
    'wrist_roll': 5,
    'gripper': 6,
}
