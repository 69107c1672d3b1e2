"""The "mcu-cobs" serial board driver: codec, framing, link supervision, and a full AC session
against the MCU simulator running as its own process behind a pty."""
from __future__ import annotations

import asyncio
import os
import time
import tty

import pytest
from pydantic.v1 import ValidationError

from hal import registry
from hal.board import (
    ContactorChanged,
    CPChanged,
    CPState,
    ErrorFlag,
    ErrorsChanged,
    LinkChanged,
    LockChanged,
    LockState,
    PilotCommand,
    PPChanged,
    Telemetry,
    TelemetryUpdated,
)
from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.serial import cobs
from hal.serial import mcu_codec as codec
from hal.serial.cobs import FrameDecoder
from hal.serial.crc import append_crc, strip_crc
from hal.serial.mcu_board import McuBoard
from tests.serial_sim_client import EventRecorder, SimProcess

SIM = "sim_mcu_board.py"


# --- codec and framing ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, encoded",
    [  # the examples of Cheshire & Baker's COBS paper / Wikipedia
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs.encode(raw) == encoded
    assert cobs.decode(encoded) == raw


def test_crc_is_ieee_crc32_little_endian() -> None:
    framed = append_crc(b"123456789")
    assert framed[-4:] == bytes.fromhex("2639f4cb")  # CRC-32 check value 0xCBF43926, LE
    assert strip_crc(framed) == b"123456789"
    assert strip_crc(framed[:-1] + b"\x00") is None


ALL_MESSAGES = [
    codec.SetPwm(2666), codec.SetPwm(codec.PWM_X1), codec.AllowPowerOn(True), codec.SetLock(False),
    codec.RcdCommand(codec.RcdAction.RESET), codec.ResetRequest(), codec.HostKeepAlive(7),
    codec.CpStateMsg(CPState.C), codec.PpStateMsg(20), codec.ContactorMsg(True, True),
    codec.ErrorFlagsMsg(codec.errors_to_wire(ErrorFlag.RCD_TRIPPED | ErrorFlag.DIODE_FAULT)),
    codec.TelemetryMsg(6.0, -12.0, 35.5, None), codec.LockStateMsg(LockState.FAULT),
    codec.McuKeepAlive(123456, 1, 0b10011, 3, 60, 320, False),
    codec.ResetReasonMsg(codec.ResetReason.WATCHDOG),
    codec.MeterMsg(1234, 11040, (2300, 2301, 2299), (1600, 1600, 1600)), codec.BayStateMsg(True),
]


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_a_frame(msg: codec.Message) -> None:
    wire = codec.frame(msg)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    dec = FrameDecoder(codec.MAX_ENCODED, strip_crc, lambda reason: pytest.fail(reason))
    (payload,) = dec.feed(wire)
    decode = codec.decode_from_host if msg.TYPE < 0x80 else codec.decode_from_mcu
    assert decode(payload) == msg


def test_documented_bytes_of_a_set_pwm_frame() -> None:
    # docs/serial-mcu-protocol.md, worked example: SetPwm 26.66 % (16 A)
    assert codec.encode(codec.SetPwm(2666)) == bytes.fromhex("01 6a 0a")
    assert codec.frame(codec.SetPwm(2666)) == bytes.fromhex("08 01 6a 0a 16 d9 44 81 00")
    # HostKeepAlive seq 1: the zero bytes of the sequence number are stuffed away
    assert codec.frame(codec.HostKeepAlive(1)) == bytes.fromhex("03 06 01 01 01 06 01 98 5b fc 2d 00")


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x7f", "unknown_type"),
        (b"\x01\x00\x00", "unknown_type"),  # a host message arriving at the host
        (b"\x81", "bad_length"),
        (b"\x81\x02\x00", "bad_length"),
        (b"\x81\x09", "bad_value"),  # CP code out of range
        (b"\x83\x02\x00", "bad_value"),  # contactor bool not 0/1
        (b"\x87" + bytes(12), "bad_value"),  # phases 0
    ],
)
def test_decode_rejects_with_a_counter_name(payload: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeError) as err:
        codec.decode_from_mcu(payload)
    assert err.value.reason == reason


def test_unknown_error_bits_still_mean_a_fault() -> None:
    assert codec.errors_from_wire(1 << 30) == ErrorFlag.MCU_FAULT
    assert codec.errors_from_wire(codec.errors_to_wire(ErrorFlag.CONTACTOR_WELDED)) == ErrorFlag.CONTACTOR_WELDED


@pytest.mark.parametrize("duty, wire", [(26.67, 2667), (26.666, 2666), (10.0, 1000), (5.0, 500), (99.999, 9999), (0.001, 1)])
def test_pwm_duty_rounds_down_and_never_becomes_x1_or_f(duty: float, wire: int) -> None:
    assert codec.duty_to_wire(duty) == wire


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError) as err:
        McuBoard.Settings.parse_obj({"port": "/dev/ttyS0", "baud": 9600})
    assert err.value.errors()[0]["type"] == "value_error.extra"
    with pytest.raises(ValidationError):
        McuBoard.Settings.parse_obj({"port": "/dev/ttyS0", "link_timeout_s": 1.0, "keepalive_interval_s": 2.0})
    s = McuBoard.Settings.parse_obj({"port": "/dev/ttyS0"})
    assert (s.baudrate, s.link_timeout_s, s.keepalive_interval_s) == (115200, 5.0, 1.0)


def test_registered_by_name() -> None:
    assert registry.load("board", "mcu-cobs") is McuBoard


# --- link supervision against a hand-driven pty (in-process, ManualClock) ------------------

class PtyPeer:
    """The far end of a pty, driven by the test: writes MCU frames, reads host frames."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self._slave)
        self._decoder = FrameDecoder(codec.MAX_ENCODED, strip_crc, lambda reason: None)

    def send(self, *msgs: codec.Message) -> None:
        os.write(self.master, b"".join(codec.frame(m) for m in msgs))

    def received(self) -> list[codec.Message]:
        out = []
        while True:
            try:
                data = os.read(self.master, 4096)
            except BlockingIOError:
                return out
            out += [codec.decode_from_host(p) for p in self._decoder.feed(data)]

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


def safe_hello(contactor: bool = False, allowed: bool = False) -> list[codec.Message]:
    return [
        codec.McuKeepAlive(1000, 1, 0b10011, 3, 60, 320, allowed),
        codec.CpStateMsg(CPState.A),
        codec.ContactorMsg(contactor, contactor),
    ]


async def until(pred, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
async def peer_board():
    peer = PtyPeer()
    clock = ManualClock()
    board = McuBoard(McuBoard.Settings(port=peer.name), DriverContext(clock=clock))
    await board.start()
    yield peer, board, clock
    await board.stop()
    peer.close()


async def test_link_timeout_is_exact_on_the_clock(peer_board) -> None:
    peer, board, clock = peer_board
    rec = EventRecorder(board)
    peer.send(*safe_hello())
    await until(lambda: board.link_up)
    await clock.advance(4.9)
    peer.send(codec.McuKeepAlive(5900, 1, 0, 3, 60, 320, False))  # a sign of life at t = 4.9
    frames = board.counters["frames_rx"]
    await until(lambda: board.counters["frames_rx"] > frames)
    await clock.advance(4.9)  # t = 9.8: 4.9 s of silence
    assert board.link_up
    await clock.advance(0.1)  # t = 9.9: 5.0 s of silence
    rec.drain()
    assert not board.link_up
    lost = [e for e in rec.events if isinstance(e, LinkChanged) and not e.up]
    assert len(lost) == 1 and "no valid frame" in lost[0].reason
    assert board.counters["timeouts"] == 1
    # The host withdrew power permission when the link went down.
    assert codec.AllowPowerOn(False) in peer.received()


async def test_host_sends_keepalive_every_interval(peer_board) -> None:
    peer, board, clock = peer_board
    await until(lambda: any(isinstance(m, codec.HostKeepAlive) for m in peer.received()))
    await clock.advance(3.0)
    await asyncio.sleep(0.05)
    seqs = [m.seq for m in peer.received() if isinstance(m, codec.HostKeepAlive)]
    assert seqs == [2, 3, 4]


async def test_link_comes_up_only_when_the_mcu_is_safe(peer_board) -> None:
    peer, board, clock = peer_board
    rec = EventRecorder(board)
    peer.send(*safe_hello(contactor=True))
    await asyncio.sleep(0.1)
    assert not board.link_up  # contactor still closed
    peer.send(*safe_hello(contactor=False, allowed=True))
    await asyncio.sleep(0.1)
    assert not board.link_up  # the MCU still holds a power permission
    peer.send(*safe_hello())
    await until(lambda: board.link_up)
    rec.drain()
    # LinkChanged(True) then every input, once.
    assert rec.events[0] == LinkChanged(True)
    assert {type(e) for e in rec.events[1:]} == {
        CPChanged, PPChanged, ContactorChanged, ErrorsChanged, LockChanged, TelemetryUpdated}
    assert len(rec.events) == 7
    # Repeating the same state emits nothing; a real change emits exactly one event.
    peer.send(*safe_hello())
    peer.send(codec.CpStateMsg(CPState.B))
    await until(lambda: board.inputs.cp is CPState.B)
    await asyncio.sleep(0.05)
    assert rec.drain() == [CPChanged(CPState.B)]


async def test_mcu_reset_bounces_the_link_and_drops_power_permission(peer_board) -> None:
    peer, board, clock = peer_board
    rec = EventRecorder(board)
    peer.send(*safe_hello())
    await until(lambda: board.link_up)
    await board.allow_power_on(True)
    peer.received()
    rec.skip()
    peer.send(codec.ResetReasonMsg(codec.ResetReason.BROWN_OUT), *safe_hello())
    await rec.wait_for(lambda e: e == LinkChanged(True))
    down = [e for e in rec.events if isinstance(e, LinkChanged) and not e.up]
    assert len(down) == 1 and "brown_out" in down[0].reason
    assert board.counters["board_resets"] == 1
    assert codec.AllowPowerOn(False) in peer.received()


# --- against the simulator process ---------------------------------------------------------

@pytest.fixture
async def sim_board():
    sim = await SimProcess.start(SIM, "--period", "0.2", "--host-timeout", "1.0")
    board = McuBoard(
        McuBoard.Settings(port=sim.pty, link_timeout_s=1.0, keepalive_interval_s=0.2), DriverContext()
    )
    rec = EventRecorder(board)
    await board.start()
    await rec.wait_for(lambda e: e == LinkChanged(True))
    yield sim, board, rec
    await board.stop()
    await sim.close()


async def test_full_ac_session(sim_board) -> None:
    sim, board, rec = sim_board
    assert board.inputs.cp is CPState.F  # the MCU boots with pilot F
    assert board.capabilities.max_current_a == 32.0 and board.capabilities.phases == 3
    await board.set_pilot(PilotCommand.x1())
    await rec.wait_for(lambda e: e == CPChanged(CPState.A))

    await sim.cmd("ev", state="B")  # plug in
    await rec.wait_for(lambda e: e == CPChanged(CPState.B))
    await rec.wait_for(lambda e: e == PPChanged(32.0))
    await board.set_lock(True)
    await rec.wait_for(lambda e: e == LockChanged(LockState.LOCKED))
    await board.set_pilot(PilotCommand.pwm(16 / 0.6))  # 16 A
    await sim.wait_status(lambda s: s["duty"] == 2666)

    await sim.cmd("ev", state="C")  # EV requests charge
    await rec.wait_for(lambda e: e == CPChanged(CPState.C))
    assert (await sim.status())["contactor"] is False  # not without permission
    await board.allow_power_on(True)
    await rec.wait_for(lambda e: e == ContactorChanged(True))
    rec.drain()
    assert TelemetryUpdated(Telemetry(6.0, -12.0, {"board": 35.0, "plug": 25.0})) in rec.events  # C2
    await until(lambda: board.last_meter is not None and board.last_meter.power_w > 0)
    assert board.last_meter.current_a == (16.0, 16.0, 16.0)

    await sim.cmd("ev", state="B")  # EV stops
    await rec.wait_for(lambda e: e == CPChanged(CPState.B))
    await board.allow_power_on(False)
    await rec.wait_for(lambda e: e == ContactorChanged(False))
    await board.set_pilot(PilotCommand.x1())
    await board.set_lock(False)
    await sim.cmd("ev", state="A")  # unplug
    await rec.wait_for(lambda e: e == CPChanged(CPState.A))
    await rec.wait_for(lambda e: e == PPChanged(None))

    rec.drain()
    assert not [e for e in rec.events if isinstance(e, LinkChanged) and not e.up]
    assert [e.state for e in rec.events if isinstance(e, CPChanged)] == ["F", "A", "B", "C", "B", "A"]
    assert [e.closed for e in rec.events if isinstance(e, ContactorChanged)] == [False, True, False]
    errors = board.counters
    assert errors["frames_rx"] > 20 and errors["bad_crc"] == errors["bad_cobs"] == errors["internal_errors"] == 0
    await board.stop()
    status = await sim.status()
    assert status["duty"] == 0 and status["allowed"] is False  # stop() leaves it safe
    assert status["rx_errors"] == 0  # every frame we sent was valid for an independent decoder


async def test_link_lost_when_the_mcu_goes_silent_and_recovers(sim_board) -> None:
    sim, board, rec = sim_board
    await sim.cmd("mute", on=True)
    t0 = time.monotonic()
    lost = await rec.wait_for(lambda e: isinstance(e, LinkChanged), timeout=2.0)
    assert not lost.up and time.monotonic() - t0 < 1.0 + 0.3
    await sim.cmd("ev", state="B")
    await sim.cmd("mute", on=False)
    await rec.wait_for(lambda e: e == LinkChanged(True))
    # All inputs are re-emitted after recovery, including what changed meanwhile.
    await rec.wait_for(lambda e: e == CPChanged(CPState.F))  # the MCU went safe: pilot F
    assert board.counters["timeouts"] == 1


async def test_link_lost_when_the_mcu_process_dies(sim_board) -> None:
    sim, board, rec = sim_board
    t0 = time.monotonic()
    sim.kill()
    lost = await rec.wait_for(lambda e: isinstance(e, LinkChanged), timeout=2.0)
    assert not lost.up and time.monotonic() - t0 < 1.0 + 0.3
    assert board.counters["link_losses"] == 1


async def test_mcu_opens_the_contactor_on_its_own_without_host_keepalive() -> None:
    sim = await SimProcess.start(SIM, "--period", "0.1", "--host-timeout", "0.5")
    clock = ManualClock()  # host keep-alives only go out when the test moves this clock
    board = McuBoard(McuBoard.Settings(port=sim.pty, keepalive_interval_s=0.1), DriverContext(clock=clock))
    rec = EventRecorder(board)
    pumping = True

    async def pump() -> None:
        while pumping:
            await clock.advance(0.1)
            await asyncio.sleep(0.05)

    pump_task = asyncio.create_task(pump())
    try:
        await board.start()
        await rec.wait_for(lambda e: e == LinkChanged(True))
        await board.set_pilot(PilotCommand.pwm(26.67))
        await sim.cmd("ev", state="C")
        await board.allow_power_on(True)
        await rec.wait_for(lambda e: e == ContactorChanged(True))

        pumping = False  # the host falls silent (but keeps listening)
        await pump_task
        t0 = time.monotonic()
        await rec.wait_for(lambda e: e == ContactorChanged(False), timeout=2.0)
        assert time.monotonic() - t0 < 0.5 + 0.4
        await rec.wait_for(lambda e: isinstance(e, ErrorsChanged) and ErrorFlag.HEARTBEAT_TIMEOUT in e.errors)
        status = await sim.status()
        assert (status["contactor"], status["allowed"], status["duty"]) == (False, False, 0)
        assert board.link_up  # the MCU kept talking; only our keep-alive stopped

        pumping = True  # keep-alives return: the flag clears, the contactor stays open
        pump_task = asyncio.create_task(pump())
        await rec.wait_for(lambda e: e == ErrorsChanged(ErrorFlag.NONE))
        assert (await sim.status())["contactor"] is False
    finally:
        pumping = False
        await pump_task
        await board.stop()
        await sim.close()


# --- transport ------------------------------------------------------------------------------

async def test_transport_thread_mode_on_a_pyserial_url() -> None:
    from hal.serial.transport import SerialTransport

    got = bytearray()
    lost: list[str] = []
    transport = SerialTransport("loop://", 115200, got.extend, lost.append)
    await transport.open()
    try:
        payload = codec.frame(codec.HostKeepAlive(1)) * 50
        assert transport.write(payload)
        await until(lambda: len(got) >= len(payload))
        assert bytes(got) == payload and not lost
    finally:
        await transport.close()
    assert not transport.is_open and not transport.write(b"x")


async def test_missing_port_is_retried_without_raising() -> None:
    clock = ManualClock()
    board = McuBoard(McuBoard.Settings(port="/dev/does-not-exist"), DriverContext(clock=clock))
    await board.start()
    await clock.advance(2.5)
    await asyncio.sleep(0.05)
    assert board.counters["port_errors"] >= 2 and not board.link_up
    await board.stop()


async def test_a_port_is_opened_exclusively(peer_board) -> None:
    peer, board, clock = peer_board
    other = McuBoard(McuBoard.Settings(port=peer.name), DriverContext(clock=ManualClock()))
    await other.start()
    assert other.counters["port_errors"] == 1  # the first board holds the lock
    await other.stop()
