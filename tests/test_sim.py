"""The simulator's physics through the Board / Meter / TokenReader contracts, on a ManualClock."""
from __future__ import annotations

from typing import Any

import pytest

from hal.board import (
    BoardEvent, ContactorChanged, CPChanged, CPState, ErrorFlag, ErrorsChanged, LinkChanged, LockChanged,
    LockState, PilotCommand, PPChanged, TelemetryUpdated,
)
from hal.clock import ManualClock
from hal.driver import DriverContext
from hal.meter import MeterError
from hal.sim.board import SimBoard
from hal.sim.ev import PROFILES, read_pilot
from hal.sim.meter import SimMeter
from hal.sim.token_reader import NoTokenReader, SimTokenReader
from hal.sim.world import SimWorld

DUTY_16A = 16 / 0.6  # 26.67 %
DUTY_10A = 10 / 0.6


class Rig:
    """One simulated EVSE: board, meter and the world behind them."""

    def __init__(self, clock: ManualClock, shared: dict[str, Any], evse_id: int = 1, **board_settings: Any) -> None:
        info = {"max_current_a": 32.0, "phases": 3}
        ctx = DriverContext(evse_id=evse_id, clock=clock, shared=shared, evse_info=info)
        self.clock = clock
        self.board = SimBoard(SimBoard.Settings(**board_settings), ctx)
        self.meter = SimMeter(SimMeter.Settings(), ctx)
        self.world: SimWorld = shared["sim.world"]
        self.port = self.world.ports[evse_id]

    def drain(self) -> list[BoardEvent]:
        events = []
        while (ev := self.board.next_event_nowait()) is not None:
            events.append(ev)
        return events

    async def cmd(self, name: str, **args: Any) -> Any:
        return await self.world.control_handlers()[name](args)

    async def charging(self, duty: float = DUTY_16A, profile: str = "ac-3ph-16a", **options: Any) -> None:
        """Plug in, run PWM, allow power and let the EV and contactor react."""
        await self.cmd("sim.plug", evse=self.port.evse_id, profile=profile, options=options)
        await self.board.set_pilot(PilotCommand.pwm(duty))
        await self.board.allow_power_on(True)
        await self.clock.advance(1.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def rig(clock: ManualClock) -> Rig:
    r = Rig(clock, {})
    await r.board.start()
    return r


def cp_states(events: list[BoardEvent]) -> list[CPState]:
    return [e.state for e in events if isinstance(e, CPChanged)]


def contactor(events: list[BoardEvent]) -> list[bool]:
    return [e.closed for e in events if isinstance(e, ContactorChanged)]


async def test_start_reports_link_then_initial_inputs(clock: ManualClock) -> None:
    r = Rig(clock, {})
    await r.board.start()
    events = r.drain()
    assert isinstance(events[0], LinkChanged) and events[0].up
    kinds = [type(e) for e in events]
    for kind in (CPChanged, ContactorChanged, PPChanged, LockChanged):
        assert kind in kinds
    assert r.board.inputs.cp is CPState.A and r.board.inputs.link_up
    assert all(e.t_ns > 0 for e in events)


async def test_ev_closes_s2_after_reaction_time_only_with_pwm(rig: Rig) -> None:
    rig.drain()
    await rig.cmd("sim.plug", evse=1, profile="ac-3ph-16a")
    assert cp_states(rig.drain()) == [CPState.B]
    await rig.clock.advance(5.0)  # X1: the EV may not charge
    assert rig.board.inputs.cp is CPState.B
    await rig.board.set_pilot(PilotCommand.pwm(DUTY_16A))
    await rig.clock.advance(0.19)
    assert rig.board.inputs.cp is CPState.B
    await rig.clock.advance(0.02)
    assert cp_states(rig.drain()) == [CPState.C]


async def test_contactor_needs_allowance_and_c_then_opens_on_b(rig: Rig) -> None:
    await rig.cmd("sim.plug", evse=1)
    await rig.board.set_pilot(PilotCommand.pwm(DUTY_16A))
    await rig.clock.advance(1.0)
    assert not rig.board.inputs.contactor_closed  # C but power not allowed
    rig.drain()
    await rig.board.allow_power_on(True)
    await rig.clock.advance(0.04)
    assert not rig.board.inputs.contactor_closed  # contactor_delay_s 0.05
    await rig.clock.advance(0.02)
    assert contactor(rig.drain()) == [True]
    await rig.cmd("sim.ev", evse=1, action="pause")
    events = rig.drain()
    assert cp_states(events) == [CPState.B] and contactor(events) == [False]  # hardware opens at once


async def test_draw_follows_duty_and_never_exceeds_it(rig: Rig) -> None:
    await rig.charging(DUTY_10A, profile="ac-3ph-32a")
    reading = await rig.meter.read()
    assert reading.current_a == pytest.approx((10.0, 10.0, 10.0))  # the duty allows 10 A of the EV's 32
    await rig.board.set_pilot(PilotCommand.pwm(DUTY_16A))
    await rig.clock.advance(0.1)
    assert max((await rig.meter.read()).current_a) == pytest.approx(10.0)  # not yet reacted
    await rig.clock.advance(0.2)
    assert (await rig.meter.read()).current_a == pytest.approx((16.0, 16.0, 16.0))
    await rig.board.set_pilot(PilotCommand.pwm(50.0))  # 30 A allowed, the 16 A EV stays at 16
    await rig.cmd("sim.unplug", evse=1)
    await rig.charging(50.0, profile="ac-1ph-16a")
    reading = await rig.meter.read()
    assert reading.current_a == pytest.approx((16.0, 0.0, 0.0))  # one-phase EV on a 3-phase EVSE
    assert reading.power_w == pytest.approx(230 * 16)


@pytest.mark.parametrize("duty,amps", [(5.0, 0.0), (9.0, 6.0), (50.0, 30.0), (90.0, 65.0), (97.5, 0.0), (2.0, 0.0)])
def test_ev_reads_duty_per_table_a8(duty: float, amps: float) -> None:
    assert read_pilot(PilotCommand.pwm(duty)).allowed_a == pytest.approx(amps)
    assert read_pilot(PilotCommand.pwm(5.0)).hlc


async def test_pwm_stop_opens_s2_after_reaction(rig: Rig) -> None:
    await rig.charging()
    rig.drain()
    await rig.board.set_pilot(PilotCommand.x1())
    await rig.clock.advance(0.1)
    assert rig.board.inputs.cp is CPState.C
    await rig.clock.advance(0.2)
    events = rig.drain()
    assert cp_states(events) == [CPState.B] and contactor(events) == [False]
    assert (await rig.meter.read()).power_w == 0


async def test_ignore_pwm_stop_keeps_requesting_and_drawing(rig: Rig) -> None:
    await rig.charging()
    await rig.cmd("sim.fault", evse=1, fault="ignore-pwm-stop")
    await rig.board.set_pilot(PilotCommand.x1())
    await rig.clock.advance(10.0)
    assert rig.board.inputs.cp is CPState.C and rig.board.inputs.contactor_closed
    assert (await rig.meter.read()).current_a[0] == pytest.approx(16.0)
    rig.drain()
    await rig.board.allow_power_on(False)  # the controller's forced power-off still works
    assert contactor(rig.drain()) == [False]
    await rig.cmd("sim.fault", evse=1, fault="ignore-pwm-stop", active=False)
    await rig.clock.advance(0.3)
    assert rig.board.inputs.cp is CPState.B


async def test_weld_keeps_contactor_closed_after_open_command(rig: Rig) -> None:
    await rig.charging()
    await rig.cmd("sim.fault", evse=1, fault="weld")
    rig.drain()
    await rig.board.allow_power_on(False)
    await rig.clock.advance(1.0)
    assert contactor(rig.drain()) == [] and rig.board.inputs.contactor_closed
    await rig.cmd("sim.fault", evse=1, fault="weld", active=False)
    assert contactor(rig.drain()) == [False]


async def test_stuck_open_contactor_never_closes(rig: Rig) -> None:
    await rig.cmd("sim.fault", evse=1, fault="contactor-stuck-open")
    await rig.charging()
    assert rig.board.inputs.cp is CPState.C and not rig.board.inputs.contactor_closed


async def test_rcd_trips_in_hardware_and_latches_until_reset(rig: Rig) -> None:
    await rig.charging()
    rig.drain()
    await rig.cmd("sim.fault", evse=1, fault="rcd")
    events = rig.drain()
    assert contactor(events) == [False]
    assert any(isinstance(e, ErrorsChanged) and ErrorFlag.RCD_TRIPPED in e.errors for e in events)
    await rig.board.rcd_reset()  # residual current still flowing: stays tripped
    assert ErrorFlag.RCD_TRIPPED in rig.board.inputs.errors
    await rig.cmd("sim.fault", evse=1, fault="rcd", active=False)
    assert ErrorFlag.RCD_TRIPPED in rig.board.inputs.errors  # latched
    await rig.board.rcd_reset()
    assert rig.board.inputs.errors == ErrorFlag.NONE
    await rig.clock.advance(0.1)
    assert rig.board.inputs.contactor_closed  # allowance still given, EV still in C


async def test_rcd_self_test(rig: Rig) -> None:
    await rig.board.rcd_self_test()
    assert rig.board.inputs.errors == ErrorFlag.NONE
    await rig.cmd("sim.fault", evse=1, fault="rcd-selftest-fail")
    await rig.board.rcd_self_test()
    assert ErrorFlag.RCD_SELFTEST_FAILED in rig.board.inputs.errors


async def test_link_loss_goes_safe_ignores_commands_and_resyncs(rig: Rig) -> None:
    await rig.charging()
    rig.drain()
    await rig.cmd("sim.fault", evse=1, fault="link-loss")
    events = rig.drain()
    assert len(events) == 1 and isinstance(events[0], LinkChanged) and not events[0].up
    assert events[0].reason
    assert rig.port.contactor_closed is False and rig.port.power_allowed is False
    await rig.board.allow_power_on(True)  # never reaches the MCU
    await rig.cmd("sim.unplug", evse=1)  # happens while nobody hears it
    await rig.clock.advance(1.0)
    assert rig.drain() == [] and rig.port.power_allowed is False
    assert rig.board.command_log[-1][1:] == ("allow_power_on", True)
    await rig.cmd("sim.fault", evse=1, fault="link-loss", active=False)
    events = rig.drain()
    assert isinstance(events[0], LinkChanged) and events[0].up
    kinds = {type(e) for e in events[1:]}
    assert {CPChanged, ContactorChanged, PPChanged, ErrorsChanged, LockChanged, TelemetryUpdated} <= kinds
    assert rig.board.inputs.cp is CPState.A and not rig.board.inputs.contactor_closed


async def test_diode_fault_while_pwm(rig: Rig) -> None:
    await rig.cmd("sim.plug", evse=1)
    await rig.cmd("sim.fault", evse=1, fault="diode")
    assert ErrorFlag.DIODE_FAULT not in rig.board.inputs.errors  # no PWM yet
    await rig.board.set_pilot(PilotCommand.pwm(DUTY_16A))
    assert ErrorFlag.DIODE_FAULT in rig.board.inputs.errors
    tele = rig.board.inputs.telemetry
    assert tele.cp_low_v == -tele.cp_high_v == -9.0
    await rig.board.set_pilot(PilotCommand.x1())
    assert ErrorFlag.DIODE_FAULT not in rig.board.inputs.errors


async def test_telemetry_voltages(rig: Rig) -> None:
    assert rig.board.inputs.telemetry.cp_high_v == 12.0
    await rig.charging()
    assert (rig.board.inputs.telemetry.cp_high_v, rig.board.inputs.telemetry.cp_low_v) == (6.0, -12.0)
    await rig.board.set_pilot(PilotCommand.f())
    assert rig.board.inputs.cp is CPState.F and rig.board.inputs.telemetry.cp_high_v == -12.0


async def test_energy_integrates_over_clock_time_and_soc_rises(rig: Rig) -> None:
    await rig.charging(battery_wh=11_040.0, soc_start=10.0)  # 3 x 16 A x 230 V = 11.04 kW
    before = (await rig.meter.read()).energy_import_wh
    state_before = await rig.cmd("sim.state", evse=1)
    await rig.clock.advance(360.0)  # 0.1 h
    after = (await rig.meter.read()).energy_import_wh
    assert after - before == pytest.approx(1104.0)
    state = await rig.cmd("sim.state", evse=1)
    assert state["ev"]["soc"] - state_before["ev"]["soc"] == pytest.approx(10.0)


async def test_ev_stops_at_soc_target(rig: Rig) -> None:
    await rig.charging(battery_wh=11_040.0, soc_start=75.0, soc_target=80.0)  # 552 Wh: 180 s
    rig.drain()
    await rig.clock.advance(170.0)
    assert rig.board.inputs.cp is CPState.C
    await rig.clock.advance(20.0)
    assert cp_states(rig.drain()) == [CPState.B]
    state = await rig.cmd("sim.state", evse=1)
    assert state["ev"]["soc"] == pytest.approx(80.0) and state["ev"]["s2"] == "open"
    assert state["meter_wh"] == pytest.approx(552.0)  # every Wh since plug-in went into the battery
    await rig.clock.advance(60.0)
    assert (await rig.meter.read()).energy_import_wh == pytest.approx(552.0)


async def test_pp_rating_on_plug_and_unplug(rig: Rig) -> None:
    rig.drain()
    await rig.cmd("sim.plug", evse=1)
    assert [e.rating_a for e in rig.drain() if isinstance(e, PPChanged)] == [32.0]
    await rig.cmd("sim.unplug", evse=1)
    assert [e.rating_a for e in rig.drain() if isinstance(e, PPChanged)] == [None]
    await rig.cmd("sim.fault", evse=1, fault="pp-invalid")
    await rig.cmd("sim.plug", evse=1)
    assert rig.board.inputs.pp_rating_a is None and ErrorFlag.PP_FAULT in rig.board.inputs.errors


async def test_tethered_cable_has_no_pp(clock: ManualClock) -> None:
    r = Rig(clock, {}, cable_rating_a=None)
    await r.board.start()
    await r.cmd("sim.plug", evse=1)
    assert r.board.inputs.pp_rating_a is None and not r.board.capabilities.has_pp


def test_board_settings_reject_unknown_rating_and_keys() -> None:
    with pytest.raises(ValueError, match="13, 20, 32, 63, 70"):
        SimBoard.Settings(cable_rating_a=16)
    with pytest.raises(ValueError):
        SimBoard.Settings(colour="red")


async def test_lock_and_lock_fault(rig: Rig) -> None:
    await rig.board.set_lock(True)
    assert rig.board.inputs.lock is LockState.LOCKED
    await rig.cmd("sim.fault", evse=1, fault="lock")
    await rig.board.set_lock(False)
    assert rig.board.inputs.lock is LockState.FAULT and ErrorFlag.LOCK_FAULT in rig.board.inputs.errors


async def test_no_duplicate_events(rig: Rig) -> None:
    rig.drain()
    await rig.board.set_pilot(PilotCommand.x1())
    await rig.board.allow_power_on(False)
    await rig.clock.advance(1.0)
    assert rig.drain() == []
    assert [c[1] for c in rig.board.command_log][-2:] == ["set_pilot", "allow_power_on"]


async def test_stop_leaves_board_safe(rig: Rig) -> None:
    await rig.charging()
    await rig.board.stop()
    assert rig.port.pilot == PilotCommand.f() and not rig.port.power_allowed and not rig.port.contactor_closed


async def test_dc_profile_waits_at_hlc(rig: Rig) -> None:
    await rig.charging(5.0, profile="dc-ccs")
    assert rig.board.inputs.cp is CPState.B and (await rig.meter.read()).power_w == 0


async def test_ventilation_gives_d(rig: Rig) -> None:
    await rig.charging(profile="ac-3ph-16a-vent")
    assert rig.board.inputs.cp is CPState.D and rig.board.inputs.contactor_closed
    await rig.cmd("sim.ev", evse=1, action="ventilation-off")
    assert rig.board.inputs.cp is CPState.C


async def test_pause_and_resume(rig: Rig) -> None:
    await rig.charging()
    await rig.cmd("sim.ev", evse=1, action="pause")
    await rig.clock.advance(2.0)
    assert rig.board.inputs.cp is CPState.B
    await rig.cmd("sim.ev", evse=1, action="resume")
    await rig.clock.advance(0.3)
    assert rig.board.inputs.cp is CPState.C and rig.board.inputs.contactor_closed


async def test_cp_short_and_lost(rig: Rig) -> None:
    await rig.charging()
    await rig.cmd("sim.fault", evse=1, fault="cp-short")
    assert rig.board.inputs.cp is CPState.E and not rig.board.inputs.contactor_closed
    await rig.cmd("sim.fault", evse=1, fault="cp-short", active=False)
    await rig.cmd("sim.fault", evse=1, fault="cp-lost")
    assert rig.board.inputs.cp is CPState.INVALID


async def test_meter_fail(rig: Rig) -> None:
    await rig.cmd("sim.fault", evse=1, fault="meter-fail")
    with pytest.raises(MeterError):
        await rig.meter.read()


async def test_two_evses_share_one_world(clock: ManualClock) -> None:
    shared: dict[str, Any] = {}
    one, two = Rig(clock, shared, 1), Rig(clock, shared, 2)
    assert one.world is two.world and set(one.world.ports) == {1, 2}
    await one.board.start()
    await two.board.start()
    await one.charging()
    assert one.board.inputs.cp is CPState.C and two.board.inputs.cp is CPState.A


async def test_tokens(clock: ManualClock) -> None:
    shared: dict[str, Any] = {}
    r = Rig(clock, shared)
    with pytest.raises(ValueError, match="no simulated token reader"):
        await r.cmd("sim.token", id_token="AB12")
    reader = SimTokenReader(SimTokenReader.Settings(), DriverContext(clock=clock, shared=shared))
    await reader.start()
    await r.cmd("sim.token", id_token="AB12", evse=1, token_type="KeyCode")
    token = reader._queue.get_nowait()
    assert (token.id_token, token.evse_id, token.token_type) == ("AB12", 1, "KeyCode")
    await reader.stop()
    none = NoTokenReader(NoTokenReader.Settings(), DriverContext(clock=clock, shared=shared))
    await none.start()
    assert none._queue.empty()


@pytest.mark.parametrize(
    "cmd,args,match",
    [
        ("sim.plug", {"evse": 9}, "no simulated EVSE 9; simulated EVSEs: 1"),
        ("sim.plug", {"evse": 1, "profile": "tesla"}, "unknown EV profile 'tesla'; available: ac-3ph-16a"),
        ("sim.plug", {"evse": 1, "options": {"soc_start": 150}}, "soc_start=150"),
        ("sim.plug", {"evse": 1, "options": {"colour": 1}}, "unknown plug option"),
        ("sim.fault", {"evse": 1, "fault": "fire"}, "unknown fault 'fire'; available: rcd"),
        ("sim.ev", {"evse": 1, "action": "honk"}, "unknown EV action 'honk'"),
        ("sim.unplug", {"evse": 1}, "nothing is plugged into EVSE 1"),
        ("sim.state", {"evse": "one"}, "integer EVSE id"),
        ("sim.plug", {"evse": 1, "speed": 3}, "unknown argument"),
        ("sim.fault", {"evse": 1}, "missing argument"),
    ],
)
async def test_bad_commands_raise_clear_errors(rig: Rig, cmd: str, args: dict, match: str) -> None:
    before = await rig.cmd("sim.state", evse=1)
    with pytest.raises(ValueError, match=match):
        await rig.cmd(cmd, **args)
    assert await rig.cmd("sim.state", evse=1) == before  # nothing changed


async def test_plug_twice_is_refused(rig: Rig) -> None:
    await rig.cmd("sim.plug", evse=1)
    with pytest.raises(ValueError, match="already has 'ac-3ph-16a' plugged in"):
        await rig.cmd("sim.plug", evse=1, profile="ac-1ph-32a")


async def test_profiles_command_lists_everything(rig: Rig) -> None:
    result = await rig.cmd("sim.profiles")
    names = [p["name"] for p in result["profiles"]]
    assert {"ac-3ph-16a", "ac-1ph-32a", "ac-3ph-32a", "ac-1ph-16a", "dc-ccs"} <= set(names) == set(PROFILES)
    assert "weld" in result["faults"] and "pause" in result["ev_actions"]


async def test_cable_connector_type_means_tethered(clock: ManualClock) -> None:
    ctx = DriverContext(evse_id=1, clock=clock, shared={}, evse_info={"connector_type": "cType2", "phases": 1})
    board = SimBoard(SimBoard.Settings(), ctx)
    assert not board.capabilities.has_pp and board.capabilities.phases == 1
    socket_ctx = DriverContext(evse_id=2, clock=clock, shared={}, evse_info={"connector_type": "sType2"})
    assert SimBoard(SimBoard.Settings(), socket_ctx).capabilities.has_pp
    assert not SimBoard(SimBoard.Settings(tethered=True), DriverContext(evse_id=3, clock=clock)).capabilities.has_pp


async def test_overdraw_fault_exceeds_the_duty(rig: Rig) -> None:
    await rig.charging(DUTY_10A, profile="ac-3ph-32a")
    await rig.cmd("sim.fault", evse=1, fault="overdraw")
    assert (await rig.meter.read()).current_a[0] == pytest.approx(12.5)
    await rig.cmd("sim.fault", evse=1, fault="overdraw", active=False)
    assert (await rig.meter.read()).current_a[0] == pytest.approx(10.0)
