"""The "openevse-rapi" serial board driver: framing, codec, mapping, link supervision, and a full AC
session against the OpenEVSE simulator running as its own process behind a pty."""
from __future__ import annotations

import asyncio
import time

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
    PilotCommand,
)
from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.serial import rapi
from hal.serial.rapi_board import RapiBoard, duty_to_amps
from tests.serial_sim_client import EventRecorder, SimProcess

SIM = "sim_rapi_board.py"


# --- framing and codec --------------------------------------------------------------------

def test_checksums_match_the_openevse_documentation() -> None:
    assert rapi.build(["GS"]) == b"$GS^30\r"
    assert rapi.build(["FE"]) == b"$FE^27\r"
    assert rapi.parse_frame(b"GS*BE") == rapi.Frame(("GS",))  # additive checksum, also accepted
    assert rapi.build(["SC", "16", "V"], 0x1A) == b"$SC 16 V :1A^" + b"%02X\r" % rapi.xor_checksum(b"$SC 16 V :1A")


def test_reply_with_sequence_id() -> None:
    frame = rapi.parse_frame(rapi.build(["OK", "16"], 0x1A)[1:-1])
    assert frame == rapi.Frame(("OK", "16"), 0x1A)


def decode_all(data: bytes, chunk: int | None = None) -> tuple[list[rapi.Frame], dict[str, int]]:
    counts: dict[str, int] = {}
    dec = rapi.FrameDecoder(lambda r: counts.__setitem__(r, counts.get(r, 0) + 1))
    frames: list[rapi.Frame] = []
    step = chunk or len(data)
    for i in range(0, len(data), step):
        frames += dec.feed(data[i:i + step])
    return frames, counts


def test_decoder_resynchronises_after_each_kind_of_damage() -> None:
    good = rapi.build(["AT", "03", "03", "16", "0140"])
    stream = (
        b"\x00\xffnoise\r\n" + good
        + b"$AT 03 03" + good  # truncated: a new `$` starts over
        + good[:-3] + b"00\r"  # wrong checksum
        + b"$AT 03 03 16 0140\r"  # no checksum
        + b"$AT \x01 03^00\r"  # control character
        + b"$" + b"A" * 200 + b"\r" + good  # oversize
    )
    for chunk in (None, 1, 7):
        frames, counts = decode_all(stream, chunk)
        assert frames == [rapi.Frame(("AT", "03", "03", "16", "0140"))] * 3
        assert counts == {"truncated": 1, "bad_checksum": 1, "no_checksum": 1, "bad_char": 1, "oversize": 1}


@pytest.mark.parametrize(
    "tokens, reason",
    [(("AT", "03", "03", "16"), "bad_length"), (("AT", "0x", "03", "16", "0140"), "bad_value"),
     (("XX", "1"), "unknown_type"), (("AT", "03", "03", "sixteen", "0140"), "bad_value")],
)
def test_async_notifications_are_validated(tokens: tuple[str, ...], reason: str) -> None:
    with pytest.raises(rapi.DecodeError) as err:
        rapi.parse_async(rapi.Frame(tokens))
    assert err.value.reason == reason


@pytest.mark.parametrize("duty, amps", [(10.0, 6), (26.67, 16), (26.6, 15), (53.34, 32), (90.0, 65), (96.0, 80)])
def test_duty_to_amps_rounds_down(duty: float, amps: int) -> None:
    assert duty_to_amps(duty) == amps


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError) as err:
        RapiBoard.Settings.parse_obj({"port": "/dev/ttyUSB0", "phase": 3})
    assert err.value.errors()[0]["type"] == "value_error.extra"
    s = RapiBoard.Settings.parse_obj({"port": "/dev/ttyUSB0"})
    assert (s.heartbeat_interval_s, s.heartbeat_fallback_a, s.phases, s.link_timeout_s) == (5, 6, 1, 5.0)
    assert registry.load("board", "openevse-rapi") is RapiBoard


async def test_unsupported_commands_say_so_and_change_nothing() -> None:
    board = RapiBoard(RapiBoard.Settings(port="/dev/null"), DriverContext(clock=ManualClock()))
    with pytest.raises(ValueError, match="5 %"):
        await board.set_pilot(PilotCommand.pwm(5.0))
    assert board._pilot is None
    for call in (board.set_lock(True), board.rcd_self_test(), board.rcd_reset()):
        with pytest.raises(NotImplementedError):
            await call
    assert board.capabilities.supports_lock is False and board.capabilities.has_pp is False


# --- against the simulator process ----------------------------------------------------------

FAST = dict(link_timeout_s=1.0, keepalive_interval_s=0.2, telemetry_interval_s=0.2, heartbeat_interval_s=1)


@pytest.fixture
async def sim_board():
    sim = await SimProcess.start(SIM)  # boots enabled, like the real firmware
    board = RapiBoard(RapiBoard.Settings(port=sim.pty, **FAST), DriverContext())
    rec = EventRecorder(board)
    await board.start()
    await rec.wait_for(lambda e: e == LinkChanged(True))
    yield sim, board, rec
    await board.stop()
    await sim.close()


async def test_full_ac_session(sim_board) -> None:
    sim, board, rec = sim_board
    status = await sim.status()
    # The driver put the EVSE to sleep before declaring the link up, and set up the heartbeat.
    assert status["mode"] == "sleeping" and status["hs_interval"] == 1
    assert board.firmware_version == "8.2.1.SIM 5.2.1"
    assert (board.capabilities.min_current_a, board.capabilities.max_current_a) == (6.0, 32.0)

    await sim.cmd("ev", state="B")  # plug in
    await rec.wait_for(lambda e: e == CPChanged(CPState.B))
    await board.set_pilot(PilotCommand.pwm(16 / 0.6))  # 16 A
    await sim.wait_status(lambda s: s["capacity"] == 16)
    # The firmware emits PWM only while enabled: offering PWM in B enables it (relay still open in B).
    status = await sim.wait_status(lambda s: s["mode"] == "enabled")
    assert status["relay"] is False and board.capabilities.relay_follows_pilot

    await sim.cmd("ev", state="C")  # EV requests charge: the firmware closes its own relay
    await rec.wait_for(lambda e: e == CPChanged(CPState.C))
    await board.allow_power_on(True)
    await rec.wait_for(lambda e: e == ContactorChanged(True))
    assert (await sim.status())["mode"] == "enabled"
    await rec.wait_for(lambda e: e.__class__.__name__ == "TelemetryUpdated" and e.telemetry.temperatures_c)
    deadline = time.monotonic() + 2
    while not (board.last_meter and board.last_meter.power_w > 0):
        assert time.monotonic() < deadline, "no meter reading"
        await asyncio.sleep(0.02)
    assert board.last_meter.current_a == (16.0,) and board.last_meter.voltage_v == (230.0,)

    await sim.cmd("ev", state="B")  # EV stops: the firmware opens the relay itself
    await rec.wait_for(lambda e: e == CPChanged(CPState.B))
    await rec.wait_for(lambda e: e == ContactorChanged(False))
    await board.allow_power_on(False)
    await board.set_pilot(PilotCommand.x1())  # PWM withdrawn: sleep
    await sim.wait_status(lambda s: s["mode"] == "sleeping")
    await sim.cmd("ev", state="A")  # unplug
    await rec.wait_for(lambda e: e == CPChanged(CPState.A))

    rec.drain()
    assert not [e for e in rec.events if isinstance(e, LinkChanged) and not e.up]
    assert [e.state for e in rec.events if isinstance(e, CPChanged)] == ["A", "B", "C", "B", "A"]
    assert [e.closed for e in rec.events if isinstance(e, ContactorChanged)] == [False, True, False]
    counters = board.counters
    assert counters["frames_rx"] > 20 and counters["bad_checksum"] == counters["nak"] == 0
    assert counters["internal_errors"] == counters["reply_timeouts"] == 0
    await board.stop()
    status = await sim.wait_status(lambda s: s["mode"] == "disabled")  # stop() leaves it at F
    assert status["rx_errors"] == 0 and status["commands"][-1] == "FD"


async def test_pilot_f_disables_and_shows_as_cp_f(sim_board) -> None:
    sim, board, rec = sim_board
    await board.set_pilot(PilotCommand.f())
    await rec.wait_for(lambda e: e == CPChanged(CPState.F))
    assert (await sim.status())["mode"] == "disabled"


async def test_fault_state_maps_to_error_flags(sim_board) -> None:
    sim, board, rec = sim_board
    await sim.cmd("fault", state=rapi.EVSE_STATE_GFCI_FAULT)
    await rec.wait_for(lambda e: e == ErrorsChanged(ErrorFlag.RCD_TRIPPED))
    await sim.cmd("fault", state=0)
    await rec.wait_for(lambda e: e == ErrorsChanged(ErrorFlag.NONE))


async def test_link_lost_when_the_evse_goes_silent_and_recovers(sim_board) -> None:
    sim, board, rec = sim_board
    await sim.cmd("mute", on=True)
    t0 = time.monotonic()
    lost = await rec.wait_for(lambda e: isinstance(e, LinkChanged), timeout=2.0)
    assert not lost.up and time.monotonic() - t0 < 1.0 + 0.3
    await sim.cmd("mute", on=False)
    await rec.wait_for(lambda e: e == LinkChanged(True))
    await rec.wait_for(lambda e: isinstance(e, CPChanged))  # inputs re-emitted after recovery
    assert board.counters["timeouts"] == 1


async def test_link_lost_when_the_evse_process_dies(sim_board) -> None:
    sim, board, rec = sim_board
    t0 = time.monotonic()
    sim.kill()
    lost = await rec.wait_for(lambda e: isinstance(e, LinkChanged), timeout=2.0)
    assert not lost.up and time.monotonic() - t0 < 1.0 + 0.3


async def test_evse_reboot_bounces_the_link_and_makes_it_safe_again(sim_board) -> None:
    sim, board, rec = sim_board
    await board.set_pilot(PilotCommand.pwm(26.67))
    await board.allow_power_on(True)
    await sim.wait_status(lambda s: s["mode"] == "enabled")
    rec.skip()
    await sim.cmd("reboot")  # comes back enabled (firmware default)
    lost = await rec.wait_for(lambda e: isinstance(e, LinkChanged))
    assert not lost.up and "rebooted" in lost.reason
    await rec.wait_for(lambda e: e == LinkChanged(True))
    assert (await sim.status())["mode"] == "sleeping"  # permission did not survive the reboot
    assert board.counters["board_resets"] == 1


async def test_missed_heartbeat_is_reported_acknowledged_and_current_restored() -> None:
    sim = await SimProcess.start(SIM)
    clock = ManualClock()  # heartbeat pulses only go out when the test moves this clock
    board = RapiBoard(RapiBoard.Settings(port=sim.pty, **FAST), DriverContext(clock=clock))
    rec = EventRecorder(board)
    pumping = True

    async def pump() -> None:
        while pumping:
            await clock.advance(0.2)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(pump())
    try:
        await board.start()
        await rec.wait_for(lambda e: e == LinkChanged(True))
        await board.set_pilot(PilotCommand.pwm(16 / 0.6))
        await sim.wait_status(lambda s: s["capacity"] == 16)
        pumping = False
        await task
        # The firmware cuts the current to the fallback after a missed pulse (1 s).
        await sim.wait_status(lambda s: s["hs_triggered"] == 2 and s["capacity"] == 6, timeout=3)
        pumping = True
        task = asyncio.create_task(pump())
        await rec.wait_for(lambda e: isinstance(e, ErrorsChanged) and ErrorFlag.HEARTBEAT_TIMEOUT in e.errors)
        await rec.wait_for(lambda e: e == ErrorsChanged(ErrorFlag.NONE))
        await sim.wait_status(lambda s: s["hs_triggered"] == 1 and s["capacity"] == 16)
    finally:
        pumping = False
        await task
        await board.stop()
        await sim.close()


async def test_withdrawing_permission_in_c_cuts_at_once(sim_board) -> None:
    sim, board, rec = sim_board
    await sim.cmd("ev", state="B")
    await rec.wait_for(lambda e: e == CPChanged(CPState.B))
    await board.set_pilot(PilotCommand.pwm(53.33))
    await sim.cmd("ev", state="C")
    await board.allow_power_on(True)
    await rec.wait_for(lambda e: e == ContactorChanged(True))
    t0 = time.monotonic()
    await board.allow_power_on(False)  # a fault: PWM is still set, the EV still requests
    await rec.wait_for(lambda e: e == ContactorChanged(False))
    assert time.monotonic() - t0 < 0.5
    await sim.wait_status(lambda s: s["mode"] == "sleeping")  # pilot back to +12 V: the EV is visible
