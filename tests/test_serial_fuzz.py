"""Robustness of both serial drivers' receive paths.

In-process: >= 100,000 random, truncated and corrupted frames interleaved with valid ones go
through framing -> codec -> board mapping in random-sized chunks. The events must equal those
of the valid frames alone (no spurious change), nothing may raise, and the error counters rise.
Over a pty: the simulators put garbage before every frame they send during a short session.
"""
from __future__ import annotations

import asyncio
import random
import time

import pytest

from hal.board import ContactorChanged, CPChanged, CPState, LinkChanged, LockState, PilotCommand
from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.serial import cobs, rapi
from hal.serial import mcu_codec as codec
from hal.serial.crc import append_crc
from hal.serial.link import SerialBoard
from hal.serial.mcu_board import McuBoard
from hal.serial.rapi_board import RapiBoard
from tests.serial_sim_client import EventRecorder, SimProcess

GARBAGE_FRAMES = 100_000


def run(board: SerialBoard, stream: bytes, rng: random.Random) -> list:
    pos = 0
    while pos < len(stream):
        step = rng.randint(1, 512)
        board.feed(stream[pos:pos + step])
        pos += step
    rec = EventRecorder(board)
    rec.drain()
    return rec.events


# --- mcu-cobs ------------------------------------------------------------------------------------

def random_mcu_message(rng: random.Random) -> codec.Message:
    kind = rng.randrange(10)
    if kind == 0:
        return codec.McuKeepAlive(rng.getrandbits(32), 1, 0b10011, 3, 60, 320, rng.random() < 0.2)
    if kind == 1:
        return codec.ContactorMsg(*(rng.random() < 0.3,) * 2)
    if kind == 2:
        return codec.PpStateMsg(rng.choice((0, 13, 20, 32, 63)))
    if kind == 3:
        return codec.ErrorFlagsMsg(rng.choice((0, 0, 0, 1 << 1, 1 << 11, 1 << 20)))
    if kind == 4:
        return codec.TelemetryMsg(rng.choice((12.0, 9.0, 6.0)), -12.0, 35.0, None)
    if kind == 5:
        return codec.LockStateMsg(rng.choice(list(LockState)))
    if kind == 6:
        return codec.MeterMsg(rng.getrandbits(20), 1000, (2300,) * 3, (1600,) * 3)
    if kind == 7 and rng.random() < 0.05:
        return codec.ResetReasonMsg(codec.ResetReason.WATCHDOG)
    return codec.CpStateMsg(rng.choice(list(CPState)))


def mcu_garbage(rng: random.Random, good: bytes) -> bytes:
    """One bad frame, always ending in the delimiter (so the next valid frame stays intact)."""
    kind = rng.randrange(7)
    if kind == 0:  # line noise
        return rng.randbytes(rng.randint(1, 40)) + b"\x00"
    if kind == 1:  # truncated
        return good[:rng.randint(1, len(good) - 2)] + b"\x00"
    if kind == 2:  # corrupted byte (a new 0x00 splits it into two bad pieces)
        i = rng.randrange(len(good) - 1)
        bad = bytearray(good)
        bad[i] ^= rng.randint(1, 255)
        return bytes(bad[:-1]) + b"\x00"
    if kind == 3:  # a frame that never ends within the size limit
        return rng.randbytes(rng.randint(80, 300)).replace(b"\x00", b"\x01") + b"\x00"
    if kind == 4:  # CRC fine, type unknown (or a host message)
        payload = bytes([rng.choice((0x00, 0x01, 0x06, 0x7F, 0x8B, 0xFF))]) + rng.randbytes(rng.randint(0, 8))
    elif kind == 5:  # CRC fine, wrong length
        payload = bytes([rng.choice(list(codec.MCU_MESSAGES))]) + rng.randbytes(rng.choice((0, 30)))
    else:  # CRC fine, value out of range
        payload = bytes([codec.CpStateMsg.TYPE, rng.randint(7, 255)])
    return cobs.encode(append_crc(payload)) + b"\x00"


def new_board(cls: type[SerialBoard]) -> SerialBoard:
    # Never started: the receive path alone, no port, and a clock that does not move.
    return cls(cls.Settings(port="/dev/null"), DriverContext(clock=ManualClock()))


async def test_mcu_receive_path_survives_100k_bad_frames() -> None:
    rng = random.Random(61851)
    clean, dirty = bytearray(), bytearray()
    valid = 0
    for _ in range(GARBAGE_FRAMES):
        frame = codec.frame(random_mcu_message(rng))
        dirty += mcu_garbage(rng, frame)
        if rng.random() < 0.4:
            clean += frame
            dirty += frame
            valid += 1
    t0 = time.perf_counter()
    reference = run(new_board(McuBoard), bytes(clean), rng)
    board = new_board(McuBoard)
    events = run(board, bytes(dirty), rng)
    elapsed = time.perf_counter() - t0

    assert len(reference) > 1000 and any(e == LinkChanged(True) for e in reference)
    assert events == reference  # exactly the valid frames' effect, nothing spurious
    c = board.counters
    assert c["frames_rx"] == valid and c["internal_errors"] == 0
    for reason in ("bad_cobs", "bad_crc", "oversize", "runt", "unknown_type", "bad_length", "bad_value"):
        assert c[reason] > 100, (reason, c)
    assert sum(c[r] for r in McuBoard.PROTOCOL_COUNTERS) >= GARBAGE_FRAMES * 0.9
    assert elapsed < 15, elapsed


# --- openevse-rapi -------------------------------------------------------------------------------

PRINTABLE_NO_SOC = bytes(0x20 + b % 0x5F for b in range(256)).replace(b"$", b"#")
RAPI_STATES = (0x01, 0x02, 0x03, 0x04, 0xFE, 0xFF, 0x06, 0x08)


def random_rapi_frame(rng: random.Random) -> bytes:
    kind = rng.randrange(20)
    if kind == 0:
        return rapi.build(["AB", "00", "8.2.1"])
    if kind == 1:
        return rapi.build(["OK", "16"], rng.randint(1, 255))  # a reply nobody asked for
    if kind == 2:
        return rapi.build(["WF", "02"])
    vflags = rng.choice((0x0000, 0x0040, 0x0100, 0x0140))
    return rapi.build(["AT", f"{rng.choice(RAPI_STATES):02x}", f"{rng.randint(1, 4):02x}",
                       str(rng.randint(6, 32)), f"{vflags:04x}"])


def rapi_garbage(rng: random.Random, good: bytes) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:  # line noise, `$` and `\r` included
        return rng.randbytes(rng.randint(1, 40))
    if kind == 1:  # truncated inside the body (the next `$` starts over); cut any later and
        # the next noise could complete it into a valid frame, which would be no garbage at all
        return good[:rng.randint(1, good.index(b"^"))]
    if kind == 2:  # a corrupted body byte: the XOR checksum catches every single-byte change
        i = rng.randrange(1, good.index(b"^"))
        bad = bytearray(good)
        bad[i] = (good[i] + rng.randint(1, 255)) % 256
        return bytes(bad)
    if kind == 3:  # a checksum digit replaced by a different hex value
        i = len(good) - rng.choice((2, 3))
        digit = good[i:i + 1].decode().upper()
        return good[:i] + rng.choice([d for d in "0123456789ABCDEF" if d != digit]).encode() + good[i + 1:]
    if kind == 4:  # too long
        return b"$" + rng.randbytes(rng.randint(81, 200)).translate(PRINTABLE_NO_SOC) + b"\r"
    if kind == 5:  # checksum fine, meaning not
        return rapi.build(rng.choice((["AT", "03", "03"], ["AT", "zz", "03", "16", "0140"], ["QQ", "1"],
                                      ["AT", "03", "03", "-", "0140"])))
    return good[:-1].replace(b"^", b"") + b"\r"  # no checksum at all


async def test_rapi_receive_path_survives_100k_bad_frames() -> None:
    rng = random.Random(1772)
    clean, dirty = bytearray(), bytearray()
    for _ in range(GARBAGE_FRAMES):
        frame = random_rapi_frame(rng)
        dirty += rapi_garbage(rng, frame)
        if rng.random() < 0.4:
            clean += frame
            dirty += frame
    t0 = time.perf_counter()
    reference = run(new_board(RapiBoard), bytes(clean), rng)
    board = new_board(RapiBoard)
    events = run(board, bytes(dirty), rng)
    elapsed = time.perf_counter() - t0

    assert len(reference) > 1000 and any(e == LinkChanged(True) for e in reference)
    assert events == reference
    c = board.counters
    assert c["internal_errors"] == 0 and c["board_resets"] > 100
    for reason in ("bad_char", "no_checksum", "bad_checksum", "truncated", "oversize", "unknown_type",
                   "bad_length", "bad_value", "unexpected_replies"):
        assert c[reason] > 100, (reason, c)
    assert elapsed < 15, elapsed


# --- garbage on a real pty during a session ---------------------------------------------------

@pytest.mark.parametrize("driver", ["mcu", "rapi"])
async def test_session_over_a_noisy_pty(driver: str) -> None:
    if driver == "mcu":
        sim = await SimProcess.start("sim_mcu_board.py", "--period", "0.05", "--host-timeout", "1.0")
        board: SerialBoard = McuBoard(McuBoard.Settings(port=sim.pty, link_timeout_s=1.0, keepalive_interval_s=0.1),
                                      DriverContext())
        first = ["F", "A"]
    else:
        sim = await SimProcess.start("sim_rapi_board.py")
        board = RapiBoard(RapiBoard.Settings(port=sim.pty, link_timeout_s=1.0, keepalive_interval_s=0.05,
                                             telemetry_interval_s=0.1, heartbeat_interval_s=1), DriverContext())
        first = ["A"]
    rec = EventRecorder(board)
    try:
        await board.start()
        await rec.wait_for(lambda e: e == LinkChanged(True))
        await sim.cmd("noise", bytes=150)
        await board.set_pilot(PilotCommand.x1())
        # The pilot must be seen at +12 V (A) before the EV plugs in, or a busy MCU reports F then B.
        await rec.wait_for(lambda e: e == CPChanged(CPState.A), timeout=5.0)
        for state in "BCBA":
            if state == "C":
                await board.set_pilot(PilotCommand.pwm(26.67))
                await board.allow_power_on(True)
            if state == "A":
                await board.allow_power_on(False)
            await sim.cmd("ev", state=state)
            await rec.wait_for(lambda e, s=state: e == CPChanged(CPState(s)))
            if state == "C":
                await rec.wait_for(lambda e: e == ContactorChanged(True))
            await asyncio.sleep(0.25)  # let noisy traffic flow in each state
        rec.skip()
        c = board.counters
        noise = sum(c[r] for r in type(board).PROTOCOL_COUNTERS if r not in ("nak", "reply_timeouts"))
        # Random noise holds a `$` (and so breaks into a counted bad frame) about 45 % of the time.
        assert c["bytes_rx"] > 5000 and noise > 5, c
        assert c["internal_errors"] == 0
        assert [e.state.value for e in rec.events if isinstance(e, CPChanged)] == first + list("BCBA")
        assert not [e for e in rec.events if isinstance(e, LinkChanged) and not e.up]
        assert (await sim.status())["rx_errors"] == 0
    finally:
        await board.stop()
        await sim.close()
