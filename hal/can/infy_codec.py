"""Infypower-style DC power-module protocol (V1.x, as used by Infypower REG/BEG modules and the
UUGreen/Winline-compatible families): CAN 2.0B, 29-bit ids, 8-byte payloads, big-endian.

    id = error (3 bits, 28-26) | device (4 bits, 25-22) | command (6 bits, 21-16)
         | destination (8 bits, 15-8) | source (8 bits, 7-0)

The controller (default address 0xF0) asks, the module answers with the same command number and
the addresses swapped. Frame layouts and what is inferred: docs/can-power-modules.md.
Pure functions, no I/O: every decode error is a CodecError naming its counter.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

DEVICE_SINGLE = 0x0A  # a frame to/from one module
DEVICE_GROUP = 0x0B  # a frame to a module group
BROADCAST = 0x3F  # destination: every module
CONTROLLER_DEFAULT = 0xF0

ERROR_NORMAL = 0x00
ERROR_NAMES = {0x02: "command invalid", 0x03: "data invalid", 0x07: "in start processing"}

CMD_READ_MODULE_VI = 0x03  # reply: f32 voltage V, f32 current A
CMD_READ_MODULE_STATUS = 0x04  # reply: byte 4 temperature degC (i8), bytes 5..7 alarm bits
CMD_READ_CAPABILITIES = 0x0A  # reply: u16 Vmax V, u16 Vmin V, u16 Imax 0.1 A, u16 Prated 10 W
CMD_SET_ON_OFF = 0x1A  # byte 0: 0x00 = on, 0x01 = off
CMD_SET_MODULE_VI = 0x1C  # u32 voltage mV, u32 current mA

PAYLOAD_LEN = 8
MAX_ADDRESS = 0x3E  # module addresses 0..62; 0x3F is broadcast

#: Alarm bits of the status reply: (byte index, bit) -> name. Fatal ones trip the supply.
STATUS_BITS: dict[tuple[int, int], str] = {
    (7, 0): "output_short_circuit", (7, 4): "sleeping", (7, 5): "discharge_abnormal",
    (6, 0): "dc_side_off", (6, 1): "fault_alarm", (6, 2): "protection_alarm", (6, 3): "fan_fault",
    (6, 4): "over_temperature", (6, 5): "output_over_voltage", (6, 6): "walk_in_enabled",
    (6, 7): "communication_interrupted", (5, 0): "power_limited", (5, 1): "address_conflict",
    (5, 2): "load_sharing_alarm", (5, 3): "input_phase_lost", (5, 4): "input_unbalanced",
    (5, 5): "input_under_voltage", (5, 6): "input_over_voltage", (5, 7): "pfc_side_off",
}
FATAL_ALARMS = frozenset({
    "output_short_circuit", "fault_alarm", "protection_alarm", "over_temperature", "output_over_voltage",
    "address_conflict", "input_phase_lost", "input_under_voltage", "input_over_voltage",
})


class CodecError(ValueError):
    def __init__(self, counter: str, message: str) -> None:
        self.counter = counter
        super().__init__(message)


@dataclass(frozen=True)
class FrameId:
    error: int
    device: int
    command: int
    destination: int
    source: int

    def encode(self) -> int:
        return ((self.error & 0x7) << 26 | (self.device & 0xF) << 22 | (self.command & 0x3F) << 16
                | (self.destination & 0xFF) << 8 | (self.source & 0xFF))

    @staticmethod
    def decode(arbitration_id: int) -> "FrameId":
        return FrameId((arbitration_id >> 26) & 0x7, (arbitration_id >> 22) & 0xF, (arbitration_id >> 16) & 0x3F,
                       (arbitration_id >> 8) & 0xFF, arbitration_id & 0xFF)


@dataclass(frozen=True)
class ModuleVI:
    voltage_v: float
    current_a: float


@dataclass(frozen=True)
class ModuleStatus:
    temperature_c: int
    alarms: frozenset[str]

    @property
    def fatal(self) -> frozenset[str]:
        return self.alarms & FATAL_ALARMS


@dataclass(frozen=True)
class ModuleCapabilities:
    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    rated_power_w: float


# --- controller -> module ------------------------------------------------------------------

def request_id(command: int, module: int, controller: int = CONTROLLER_DEFAULT, device: int = DEVICE_SINGLE) -> int:
    return FrameId(ERROR_NORMAL, device, command, module, controller).encode()


def read_request() -> bytes:
    return bytes(PAYLOAD_LEN)


def set_on_off(on: bool) -> bytes:
    return bytes([0x00 if on else 0x01]) + bytes(PAYLOAD_LEN - 1)


def set_module_vi(voltage_v: float, current_a: float) -> bytes:
    if not (math.isfinite(voltage_v) and math.isfinite(current_a)) or voltage_v < 0 or current_a < 0:
        raise ValueError(f"setpoint out of range: {voltage_v} V, {current_a} A")
    return struct.pack(">II", round(voltage_v * 1000), round(current_a * 1000))


# --- module -> controller ------------------------------------------------------------------

def payload(data: bytes) -> bytes:
    if len(data) != PAYLOAD_LEN:
        raise CodecError("bad_length", f"{len(data)} data bytes, expected {PAYLOAD_LEN}")
    return bytes(data)


def decode_vi(data: bytes) -> ModuleVI:
    voltage, current = struct.unpack(">ff", payload(data))
    if not (math.isfinite(voltage) and math.isfinite(current)) or not (0 <= voltage < 2000) or not (-1 < current < 1000):
        raise CodecError("bad_value", f"implausible reading {voltage} V, {current} A")
    return ModuleVI(voltage, max(0.0, current))


def decode_status(data: bytes) -> ModuleStatus:
    raw = payload(data)
    alarms = frozenset(name for (byte, bit), name in STATUS_BITS.items() if raw[byte] & (1 << bit))
    return ModuleStatus(struct.unpack(">b", raw[4:5])[0], alarms)


def decode_capabilities(data: bytes) -> ModuleCapabilities:
    vmax, vmin, imax, power = struct.unpack(">HHHH", payload(data))
    if not (0 < vmin <= vmax) or imax == 0 or power == 0:
        raise CodecError("bad_value", f"implausible capabilities {vmax}/{vmin} V, {imax / 10} A, {power * 10} W")
    return ModuleCapabilities(float(vmax), float(vmin), imax / 10, power * 10.0)


def encode_vi(vi: ModuleVI) -> bytes:
    return struct.pack(">ff", vi.voltage_v, vi.current_a)


def encode_status(status: ModuleStatus) -> bytes:
    raw = bytearray(PAYLOAD_LEN)
    raw[4] = status.temperature_c & 0xFF
    for (byte, bit), name in STATUS_BITS.items():
        if name in status.alarms:
            raw[byte] |= 1 << bit
    return bytes(raw)


def encode_capabilities(caps: ModuleCapabilities) -> bytes:
    return struct.pack(">HHHH", round(caps.max_voltage_v), round(caps.min_voltage_v), round(caps.max_current_a * 10),
                       round(caps.rated_power_w / 10))
