"""The "mcu-cobs" message set: 1 type byte + fixed little-endian fields (docs/serial-mcu-protocol.md).

Frame on the wire: COBS(payload + CRC-32 little-endian(payload)) + 0x00.
Each message is a frozen dataclass; `encode(msg)` gives the payload, `decode_*` parses one and
raises DecodeError(reason) with the counter name for anything that is not exactly right.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar

from hal.board import BoardCapabilities, CPState, ErrorFlag, LockState, Telemetry
from hal.serial import cobs
from hal.serial.crc import append_crc

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 64
#: Longest COBS-encoded frame (without delimiter) a receiver accepts: payload + CRC + overhead.
MAX_ENCODED = MAX_PAYLOAD + 4 + 2

PWM_F = 0  # duty value meaning "steady -12 V" (state F)
PWM_X1 = 10000  # duty value meaning "steady +12 V" (X1)
RESET_MAGIC = 0xA5  # a reset request must carry this byte, so one flipped type byte cannot reset the MCU
NOT_AVAILABLE_I16 = -0x8000  # telemetry field with no sensor fitted


class DecodeError(ValueError):
    """`reason` is the counter name: unknown_type, bad_length or bad_value."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RcdAction(enum.IntEnum):
    SELF_TEST = 1
    RESET = 2


class ResetReason(enum.IntEnum):
    POWER_ON = 0
    WATCHDOG = 1
    HOST_REQUEST = 2
    BROWN_OUT = 3
    FAULT = 4
    OTHER = 5


CP_WIRE = [CPState.A, CPState.B, CPState.C, CPState.D, CPState.E, CPState.F, CPState.INVALID]
CP_CODE = {state: code for code, state in enumerate(CP_WIRE)}
LOCK_WIRE = [LockState.UNLOCKED, LockState.LOCKED, LockState.FAULT]
LOCK_CODE = {state: code for code, state in enumerate(LOCK_WIRE)}

#: Wire bit -> ErrorFlag. The wire numbering is fixed here, independent of the enum's order.
ERROR_BITS: dict[int, ErrorFlag] = {
    0: ErrorFlag.DIODE_FAULT,
    1: ErrorFlag.RCD_TRIPPED,
    2: ErrorFlag.RCD_SELFTEST_FAILED,
    3: ErrorFlag.LOCK_FAULT,
    4: ErrorFlag.CP_FAULT,
    5: ErrorFlag.PP_FAULT,
    6: ErrorFlag.CONTACTOR_FAULT,
    7: ErrorFlag.CONTACTOR_WELDED,
    8: ErrorFlag.VENTILATION_FAULT,
    9: ErrorFlag.OVER_TEMPERATURE,
    10: ErrorFlag.OVER_CURRENT,
    11: ErrorFlag.HEARTBEAT_TIMEOUT,
    12: ErrorFlag.EMERGENCY_STOP,
    13: ErrorFlag.MCU_FAULT,
}
KNOWN_ERROR_MASK = sum(1 << bit for bit in ERROR_BITS)

CAP_LOCK, CAP_RCD_TEST, CAP_PHASE_SWITCH, CAP_VENTILATION, CAP_PP, CAP_BAY_SENSOR = (1 << i for i in range(6))


def errors_from_wire(bits: int) -> ErrorFlag:
    flags = ErrorFlag.NONE
    for bit, flag in ERROR_BITS.items():
        if bits & (1 << bit):
            flags |= flag
    if bits & ~KNOWN_ERROR_MASK:
        flags |= ErrorFlag.MCU_FAULT  # a fault we do not know is still a fault
    return flags


def errors_to_wire(flags: ErrorFlag) -> int:
    return sum(1 << bit for bit, flag in ERROR_BITS.items() if flag in flags)


def _bool(value: int, name: str) -> bool:
    if value not in (0, 1):
        raise DecodeError("bad_value", f"{name}={value}")
    return bool(value)


def _opt_i16(value: int, scale: float) -> float | None:
    return None if value == NOT_AVAILABLE_I16 else value / scale


def _to_i16(value: float | None, scale: float) -> int:
    if value is None:
        return NOT_AVAILABLE_I16
    return max(-0x7FFF, min(0x7FFF, round(value * scale)))


class Message:
    TYPE: ClassVar[int]
    FMT: ClassVar[struct.Struct]

    def fields(self) -> tuple[int, ...]:
        raise NotImplementedError

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "Message":
        raise NotImplementedError


# --- host -> MCU ------------------------------------------------------------------------

@dataclass(frozen=True)
class SetPwm(Message):
    duty_cc: int  # 0.01 % units: 0 = F, 1..9999 = PWM, 10000 = X1
    TYPE = 0x01
    FMT = struct.Struct("<H")

    def fields(self) -> tuple[int, ...]:
        return (self.duty_cc,)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "SetPwm":
        if values[0] > PWM_X1:
            raise DecodeError("bad_value", f"duty={values[0]}")
        return cls(values[0])


@dataclass(frozen=True)
class AllowPowerOn(Message):
    allowed: bool
    TYPE = 0x02
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (int(self.allowed),)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "AllowPowerOn":
        return cls(_bool(values[0], "allowed"))


@dataclass(frozen=True)
class SetLock(Message):
    locked: bool
    TYPE = 0x03
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (int(self.locked),)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "SetLock":
        return cls(_bool(values[0], "locked"))


@dataclass(frozen=True)
class RcdCommand(Message):
    action: RcdAction
    TYPE = 0x04
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (int(self.action),)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "RcdCommand":
        try:
            return cls(RcdAction(values[0]))
        except ValueError:
            raise DecodeError("bad_value", f"rcd action={values[0]}") from None


@dataclass(frozen=True)
class ResetRequest(Message):
    TYPE = 0x05
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (RESET_MAGIC,)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "ResetRequest":
        if values[0] != RESET_MAGIC:
            raise DecodeError("bad_value", f"reset magic={values[0]:#x}")
        return cls()


@dataclass(frozen=True)
class HostKeepAlive(Message):
    seq: int
    protocol: int = PROTOCOL_VERSION
    TYPE = 0x06
    FMT = struct.Struct("<IB")

    def fields(self) -> tuple[int, ...]:
        return (self.seq & 0xFFFFFFFF, self.protocol)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "HostKeepAlive":
        return cls(*values)


# --- MCU -> host ------------------------------------------------------------------------

@dataclass(frozen=True)
class CpStateMsg(Message):
    state: CPState
    TYPE = 0x81
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (CP_CODE[self.state],)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "CpStateMsg":
        if values[0] >= len(CP_WIRE):
            raise DecodeError("bad_value", f"cp={values[0]}")
        return cls(CP_WIRE[values[0]])


@dataclass(frozen=True)
class PpStateMsg(Message):
    rating_a: int  # cable rating in A; 0 = no cable / no PP
    TYPE = 0x82
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (self.rating_a,)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "PpStateMsg":
        return cls(values[0])


@dataclass(frozen=True)
class ContactorMsg(Message):
    closed: bool  # feedback (mirror contact)
    coil: bool  # what the MCU drives
    TYPE = 0x83
    FMT = struct.Struct("<BB")

    def fields(self) -> tuple[int, ...]:
        return (int(self.closed), int(self.coil))

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "ContactorMsg":
        return cls(_bool(values[0], "closed"), _bool(values[1], "coil"))


@dataclass(frozen=True)
class ErrorFlagsMsg(Message):
    bits: int  # wire bits, see ERROR_BITS
    TYPE = 0x84
    FMT = struct.Struct("<I")

    @property
    def errors(self) -> ErrorFlag:
        return errors_from_wire(self.bits)

    def fields(self) -> tuple[int, ...]:
        return (self.bits,)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "ErrorFlagsMsg":
        return cls(values[0])


@dataclass(frozen=True)
class TelemetryMsg(Message):
    cp_high_v: float | None
    cp_low_v: float | None
    temp_board_c: float | None
    temp_plug_c: float | None
    TYPE = 0x85
    FMT = struct.Struct("<hhhh")  # cV, cV, 0.1 degC, 0.1 degC; -32768 = not available

    def fields(self) -> tuple[int, ...]:
        return (
            _to_i16(self.cp_high_v, 100),
            _to_i16(self.cp_low_v, 100),
            _to_i16(self.temp_board_c, 10),
            _to_i16(self.temp_plug_c, 10),
        )

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "TelemetryMsg":
        hi, lo, tb, tp = values
        return cls(_opt_i16(hi, 100), _opt_i16(lo, 100), _opt_i16(tb, 10), _opt_i16(tp, 10))

    def telemetry(self) -> Telemetry:
        temps = {name: t for name, t in (("board", self.temp_board_c), ("plug", self.temp_plug_c)) if t is not None}
        return Telemetry(cp_high_v=self.cp_high_v, cp_low_v=self.cp_low_v, temperatures_c=temps)


@dataclass(frozen=True)
class LockStateMsg(Message):
    state: LockState
    TYPE = 0x86
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (LOCK_CODE[self.state],)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "LockStateMsg":
        if values[0] >= len(LOCK_WIRE):
            raise DecodeError("bad_value", f"lock={values[0]}")
        return cls(LOCK_WIRE[values[0]])


@dataclass(frozen=True)
class McuKeepAlive(Message):
    uptime_ms: int
    protocol: int
    cap_flags: int
    phases: int
    min_current_da: int  # 0.1 A
    max_current_da: int
    power_allowed: bool  # the permission as the MCU holds it
    TYPE = 0x87
    FMT = struct.Struct("<IBBBHHB")

    def fields(self) -> tuple[int, ...]:
        return (
            self.uptime_ms & 0xFFFFFFFF, self.protocol, self.cap_flags, self.phases,
            self.min_current_da, self.max_current_da, int(self.power_allowed),
        )

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "McuKeepAlive":
        uptime, proto, caps, phases, min_da, max_da, allowed = values
        if phases not in (1, 2, 3) or min_da > max_da:
            raise DecodeError("bad_value", f"phases={phases} current={min_da}..{max_da}")
        return cls(uptime, proto, caps, phases, min_da, max_da, _bool(allowed, "power_allowed"))

    def capabilities(self) -> BoardCapabilities:
        return BoardCapabilities(
            min_current_a=self.min_current_da / 10,
            max_current_a=self.max_current_da / 10,
            phases=self.phases,
            supports_lock=bool(self.cap_flags & CAP_LOCK),
            supports_rcd_test=bool(self.cap_flags & CAP_RCD_TEST),
            supports_phase_switch=bool(self.cap_flags & CAP_PHASE_SWITCH),
            supports_ventilation=bool(self.cap_flags & CAP_VENTILATION),
            has_pp=bool(self.cap_flags & CAP_PP),
            has_bay_sensor=bool(self.cap_flags & CAP_BAY_SENSOR),
        )


@dataclass(frozen=True)
class ResetReasonMsg(Message):
    reason: ResetReason
    TYPE = 0x88
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (int(self.reason),)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "ResetReasonMsg":
        try:
            return cls(ResetReason(values[0]))
        except ValueError:
            raise DecodeError("bad_value", f"reset reason={values[0]}") from None


@dataclass(frozen=True)
class MeterMsg(Message):
    energy_wh: int
    power_w: int
    voltage_dv: tuple[int, int, int]  # 0.1 V per phase
    current_ca: tuple[int, int, int]  # 0.01 A per phase
    TYPE = 0x89
    FMT = struct.Struct("<Ii3H3H")

    def fields(self) -> tuple[int, ...]:
        return (self.energy_wh, self.power_w, *self.voltage_dv, *self.current_ca)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "MeterMsg":
        return cls(values[0], values[1], tuple(values[2:5]), tuple(values[5:8]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class BayStateMsg(Message):
    occupied: bool  # the parking bay sensor sees a car (boards with CAP_BAY_SENSOR)
    TYPE = 0x8A
    FMT = struct.Struct("<B")

    def fields(self) -> tuple[int, ...]:
        return (int(self.occupied),)

    @classmethod
    def from_fields(cls, values: tuple[int, ...]) -> "BayStateMsg":
        return cls(_bool(values[0], "occupied"))


HOST_MESSAGES: dict[int, type[Message]] = {
    m.TYPE: m for m in (SetPwm, AllowPowerOn, SetLock, RcdCommand, ResetRequest, HostKeepAlive)
}
MCU_MESSAGES: dict[int, type[Message]] = {
    m.TYPE: m
    for m in (CpStateMsg, PpStateMsg, ContactorMsg, ErrorFlagsMsg, TelemetryMsg, LockStateMsg,
              McuKeepAlive, ResetReasonMsg, MeterMsg, BayStateMsg)
}


def encode(msg: Message) -> bytes:
    """The payload of `msg` (type byte + fields)."""
    return bytes((msg.TYPE,)) + msg.FMT.pack(*msg.fields())


def frame(msg: Message) -> bytes:
    """`msg` ready for the wire: COBS(payload + CRC-32) + 0x00."""
    return cobs.encode(append_crc(encode(msg))) + b"\x00"


def _decode(payload: bytes, table: dict[int, type[Message]]) -> Message:
    cls = table.get(payload[0]) if payload else None
    if cls is None:
        raise DecodeError("unknown_type", f"type={payload[:1].hex()}")
    body = payload[1:]
    if len(body) != cls.FMT.size:
        raise DecodeError("bad_length", f"{cls.__name__}: {len(body)} bytes, want {cls.FMT.size}")
    return cls.from_fields(cls.FMT.unpack(body))


def decode_from_mcu(payload: bytes) -> Message:
    return _decode(payload, MCU_MESSAGES)


def decode_from_host(payload: bytes) -> Message:
    return _decode(payload, HOST_MESSAGES)


def duty_to_wire(duty_pct: float) -> int:
    """PWM duty % -> 0.01 % units, rounded down (never offer more current than asked) and kept
    inside 1..9999 so a PWM command can never turn into F (0) or X1 (10000)."""
    return max(1, min(PWM_X1 - 1, int(duty_pct * 100 + 1e-9)))
