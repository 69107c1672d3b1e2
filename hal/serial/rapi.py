"""OpenEVSE RAPI: framing and codec of the text protocol (docs/serial-mcu-protocol.md, part 2).

A frame is `$` + tokens separated by single spaces + optional ` :SS` sequence id (2 hex digits)
+ `^XX` (XOR of every byte from `$` up to the `^`, 2 upper-case hex digits) + `\\r`.
Firmware also accepts `*XX` (8-bit sum) or no checksum; we always send `^XX` and, receiving,
insist on a valid checksum of either kind, so line noise cannot pass for a frame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

SOC, EOC = ord("$"), ord("\r")
MAX_FRAME = 80  # firmware buffers are ~32 characters; replies stay well under this

# Async notifications and replies we understand.
EVSE_STATE_UNKNOWN = 0x00
EVSE_STATE_A, EVSE_STATE_B, EVSE_STATE_C, EVSE_STATE_D = 0x01, 0x02, 0x03, 0x04
EVSE_STATE_DIODE_CHK_FAILED = 0x05
EVSE_STATE_GFCI_FAULT = 0x06
EVSE_STATE_NO_GROUND = 0x07
EVSE_STATE_STUCK_RELAY = 0x08
EVSE_STATE_GFI_TEST_FAILED = 0x09
EVSE_STATE_OVER_TEMPERATURE = 0x0A
EVSE_STATE_OVER_CURRENT = 0x0B
EVSE_STATE_SLEEPING = 0xFE
EVSE_STATE_DISABLED = 0xFF

ECVF_CHARGING_ON = 0x0040  # relay closed
ECVF_EV_CONNECTED = 0x0100

HS_ACK_COOKIE = 0xA5  # `$SY 165` acknowledges a missed heartbeat
HS_MISSEDPULSE_NOACK = 2

_HEX2 = re.compile(r"[0-9A-Fa-f]{1,2}\Z")
_HEX4 = re.compile(r"[0-9A-Fa-f]{1,4}\Z")
_DEC = re.compile(r"-?[0-9]{1,10}\Z")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*\Z")


class DecodeError(ValueError):
    """`reason` is the counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def xor_checksum(data: bytes) -> int:
    chk = 0
    for byte in data:
        chk ^= byte
    return chk


def build(tokens: list[str] | tuple[str, ...], seq: int | None = None) -> bytes:
    """A complete frame: `build(["SC", "16", "V"], 0x1A)` -> b"$SC 16 V :1A^XX\\r"."""
    text = "$" + " ".join(tokens) + (f" :{seq:02X}" if seq is not None else "")
    raw = text.encode("ascii")
    return raw + f"^{xor_checksum(raw):02X}\r".encode("ascii")


@dataclass(frozen=True)
class Frame:
    tokens: tuple[str, ...]  # tokens[0] is the command / reply / notification name
    seq: int | None = None

    @property
    def name(self) -> str:
        return self.tokens[0]

    @property
    def args(self) -> tuple[str, ...]:
        return self.tokens[1:]


def parse_frame(body: bytes) -> Frame:
    """`body` is what lies between `$` and `\\r`. Raises DecodeError."""
    if not _PRINTABLE.match(body):
        raise DecodeError("bad_char")
    if len(body) < 3 or body[-3] not in b"^*":
        raise DecodeError("no_checksum")
    text, given = body[:-3], body[-2:]
    if not _HEX2.match(given.decode("ascii")):
        raise DecodeError("bad_checksum", "not hex")
    want = xor_checksum(b"$" + text) if body[-3] == ord("^") else (SOC + sum(text)) & 0xFF
    if int(given, 16) != want:
        raise DecodeError("bad_checksum")
    tokens = text.decode("ascii").split(" ")
    if not tokens[0] or "" in tokens:
        raise DecodeError("bad_frame", "empty token")
    seq = None
    if len(tokens) > 1 and tokens[-1].startswith(":"):
        if not _HEX2.match(tokens[-1][1:]):
            raise DecodeError("bad_value", f"sequence id {tokens[-1]!r}")
        seq = int(tokens.pop()[1:], 16)
    return Frame(tuple(tokens), seq)


class FrameDecoder:
    """Splits a byte stream into RAPI frames. Never raises; bad frames are counted and dropped.

    Like the firmware, a `$` always starts a new frame (what came before it is dropped).
    """

    def __init__(self, count: Callable[[str], None], max_frame: int = MAX_FRAME) -> None:
        self._count = count
        self._max = max_frame
        self._buf = b""  # an unfinished frame, starting with `$`

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        frames: list[Frame] = []
        pos = buf.find(b"$")
        while pos >= 0:
            end = buf.find(b"\r", pos + 1)
            restart = buf.find(b"$", pos + 1, end if end >= 0 else len(buf))
            if restart >= 0:  # a new frame began before this one ended
                self._count("truncated")
                pos = restart
                continue
            if end < 0:
                if len(buf) - pos <= self._max:
                    self._buf = buf[pos:]
                else:
                    self._count("oversize")  # discard up to the next `$`
                break
            if end - pos > self._max:
                self._count("oversize")
            else:
                try:
                    frames.append(parse_frame(buf[pos + 1:end]))
                except DecodeError as exc:
                    self._count(exc.reason)
            pos = buf.find(b"$", end + 1)
        return frames


# --- messages ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateReport:
    """`$AT evsestate pilotstate currentcapacity vflags` (or the same facts from a `$GS` reply)."""

    evse_state: int
    pilot_state: int
    current_a: int | None
    vflags: int


@dataclass(frozen=True)
class BootNotice:
    """`$AB evsestate version`: the EVSE (re)booted."""

    evse_state: int
    version: str


def hex_field(value: str, pattern: re.Pattern[str] = _HEX2) -> int:
    if not pattern.match(value):
        raise DecodeError("bad_value", repr(value))
    return int(value, 16)


def dec_field(value: str) -> int:
    if not _DEC.match(value):
        raise DecodeError("bad_value", repr(value))
    return int(value)


def want_args(frame: Frame, *counts: int) -> None:
    if len(frame.args) not in counts:
        raise DecodeError("bad_length", f"{frame.name} with {len(frame.args)} arguments")


def parse_async(frame: Frame) -> StateReport | BootNotice | None:
    """An asynchronous notification; None for ones we ignore ($WF, $AN). DecodeError otherwise."""
    if frame.name == "AT":
        want_args(frame, 4)
        a = frame.args
        return StateReport(hex_field(a[0]), hex_field(a[1]), dec_field(a[2]), hex_field(a[3], _HEX4))
    if frame.name == "AB":
        want_args(frame, 2)
        return BootNotice(hex_field(frame.args[0]), frame.args[1])
    if frame.name == "ST":  # RAPI before 4.0: `$ST evsestate`
        want_args(frame, 1)
        return StateReport(hex_field(frame.args[0]), 0, None, 0)
    if frame.name in ("WF", "AN"):
        return None
    raise DecodeError("unknown_type", frame.name)


def parse_gs_reply(args: tuple[str, ...]) -> StateReport:
    """`$OK evsestate elapsed pilotstate vflags` (vflags absent on old firmware)."""
    if len(args) not in (3, 4):
        raise DecodeError("bad_length", f"GS reply with {len(args)} fields")
    vflags = hex_field(args[3], _HEX4) if len(args) == 4 else 0
    dec_field(args[1])
    return StateReport(hex_field(args[0]), hex_field(args[2]), None, vflags)
