"""IEC 61851-1 behaviour of the EVSE state machine, through the simulator, on a hand-driven clock.

Timing assertions count simulated seconds: "within 100 ms" means the command is already in the
board's log when the triggering event has been processed and the clock has not moved."""
from __future__ import annotations

import pytest

from hal.board import CPState, PilotCommand
from hal.iec61851 import current_for_duty, duty_for_current
from tests.rig import Rig, config



# ---------------------------------------------------------------------------- PWM formula
@pytest.mark.parametrize("amps, duty", [(6, 10.0), (16, 26.66), (32, 53.33), (51, 85.0), (63, 89.2), (80, 96.0)])
def test_duty_formula(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == duty
    # The EV reading that duty may never draw more than the limit.
    assert current_for_duty(duty) <= amps + 1e-9


@pytest.mark.parametrize("amps", [0, 5.9])
def test_below_6a_means_no_pwm(amps: float) -> None:
    assert duty_for_current(amps) is None


def test_duty_never_offers_more_than_the_limit() -> None:
    for tenth in range(60, 1001):
        amps = tenth / 10
        duty = duty_for_current(amps)
        assert duty is not None and current_for_duty(duty) <= min(amps, 80) + 1e-9, amps


@pytest.mark.parametrize("amps, duty", [(6, 10.0), (16, 26.66), (32, 53.33), (51, 85.0), (63, 89.2), (80, 96.0)])
async def test_pwm_on_the_pilot_follows_the_limit(tmp_path, amps: float, duty: float) -> None:
    cfg = config(tmp_path, evse={"max_current_a": 80}, board={"cable_rating_a": None},
                 connector={"type": "cType2", "lock": False}, timing={"pwm_min_change_interval_s": 0})
    async with Rig(cfg, tmp_path) as rig:
        rig.evse().set_limit("test", amps)
        await rig.charging(profile="ac-3ph-32a")
        assert rig.board().port.pilot == PilotCommand.pwm(duty)
        await rig.advance(1.0)
        # The simulated EV draws what the duty allows and never more than the limit.
        assert rig.world.ports[1].draw_a() == pytest.approx(min(32.0, current_for_duty(duty)), abs=0.01)
        assert rig.world.ports[1].draw_a() <= amps


# ---------------------------------------------------------------------------- state transitions
STATE_TABLE = [
    # (name, steps, expected IEC state, connector status, power allowed)
    ("unplugged", [], "A", "Available", False),
    ("plugged, EV not ready", [("plug", "ac-3ph-16a"), ("ev", "pause"), ("advance", 0.01)], "B2", "Occupied", False),
    ("charging", [("plug", "ac-3ph-16a"), ("advance", 1.0)], "C2", "Occupied", True),
    ("EV paused", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("ev", "pause"), ("advance", 0.3)], "B2", "Occupied", False),
    ("EV resumed", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("ev", "pause"), ("advance", 0.3), ("ev", "resume"),
                    ("advance", 0.5)], "C2", "Occupied", True),
    ("unplugged after charging", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("unplug",), ("advance", 0.1)], "A",
     "Available", False),
    ("ventilation requested, not offered", [("plug", "ac-3ph-16a-vent"), ("advance", 1.0)], "D2", "Occupied", False),
    ("CP shorted (E)", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("fault", "cp-short")], "E", "Faulted", False),
    ("CP reading lost", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("fault", "cp-lost")], "E", "Faulted", False),
    ("disabled (F)", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("disable",)], "F", "Unavailable", False),
    ("re-enabled", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("disable",), ("advance", 1.0), ("enable",),
                    ("advance", 1.0)], "C2", "Occupied", True),
    ("deauthorized, EV follows", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("stop",), ("advance", 0.5)], "B1",
     "Occupied", False),
    ("limit below 6 A pauses", [("plug", "ac-3ph-16a"), ("advance", 1.0), ("limit", 5.0), ("advance", 0.5)], "B1",
     "Occupied", False),
]


@pytest.mark.parametrize("name, steps, state, status, power", STATE_TABLE, ids=[row[0] for row in STATE_TABLE])
async def test_state_table(tmp_path, name, steps, state, status, power) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        for step in steps:
            await _do(rig, step)
        await rig.clock.settle()
        assert rig.evse().state == state
        assert rig.evse().connector_status.value == status
        assert rig.power_allowed() is power
        if not power:
            await rig.advance(0.2)
            assert not rig.board().inputs.contactor_closed


async def _do(rig: Rig, step: tuple) -> None:
    kind, *args = step
    evse = rig.evse()
    if kind == "plug":
        await rig.sim("sim.plug", evse=1, profile=args[0])
    elif kind == "unplug":
        await rig.sim("sim.unplug", evse=1)
    elif kind == "ev":
        await rig.sim("sim.ev", evse=1, action=args[0])
    elif kind == "fault":
        await rig.sim("sim.fault", evse=1, fault=args[0], active=args[1] if len(args) > 1 else True)
    elif kind == "advance":
        await rig.advance(args[0])
    elif kind == "disable":
        evse.set_enabled(False)
    elif kind == "enable":
        evse.set_enabled(True)
    elif kind == "stop":
        evse.deauthorize("Remote")
    elif kind == "limit":
        evse.set_limit("test", args[0])
    await rig.clock.settle()


# ---------------------------------------------------------------------------- timing
async def test_c_to_b_opens_at_once(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.ev", evse=1, action="pause")
        await rig.advance(0.2)  # the simulated EV's reaction time: S2 opens now
        assert rig.board().inputs.cp is CPState.B
        # No simulated time passed since CP B arrived, and the power is already withdrawn.
        assert ("allow_power_on", False) in rig.commands_since(0)[-3:]
        assert rig.board().port.power_allowed is False


async def test_b_to_c_closes_at_once_when_allowed(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(0.1)
        assert rig.evse().state == "B2" and not rig.power_allowed()
        mark = rig.mark()
        await rig.advance(0.1)  # S2 closes at 0.2 s
        assert rig.evse().state == "C2"
        assert ("allow_power_on", True) in rig.commands_since(mark)
        await rig.advance(0.1)
        assert rig.board().inputs.contactor_closed
        assert rig.evse().charging_state.value in ("Charging", "SuspendedEV")


async def test_pwm_stop_forces_power_off_after_6_s(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="ignore-pwm-stop")
        rig.evse().deauthorize("Remote")
        await rig.advance(5.9)
        assert rig.evse().state == "C1"
        assert rig.power_allowed(), "power stays on while the EV may still follow the PWM stop"
        mark = rig.mark()
        await rig.advance(0.2)
        assert ("allow_power_on", False) in rig.commands_since(mark)
        assert not rig.power_allowed()


async def test_pwm_stop_with_a_compliant_ev_opens_when_it_goes_to_b(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        rig.evse().deauthorize("Remote")
        await rig.clock.settle()
        assert rig.board().port.pilot == PilotCommand.x1() and rig.power_allowed()
        await rig.advance(0.2)
        assert rig.evse().state == "B1" and not rig.power_allowed()


async def test_duty_raise_is_rate_limited_but_reduction_is_immediate(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        rig.evse().set_limit("test", 10)
        await rig.clock.settle()
        assert rig.board().port.pilot == PilotCommand.pwm(16.66)
        rig.evse().set_limit("test", None)
        await rig.advance(1.0)
        assert rig.board().port.pilot == PilotCommand.pwm(16.66)  # raise held back
        await rig.advance(4.1)
        assert rig.board().port.pilot == PilotCommand.pwm(53.33)


async def test_cable_rating_limits_the_current(tmp_path) -> None:
    async with Rig(config(tmp_path, board={"cable_rating_a": 20}), tmp_path) as rig:
        await rig.charging(profile="ac-3ph-32a")
        assert rig.evse().limiter.value == 20
        assert rig.board().port.pilot == PilotCommand.pwm(33.33)


async def test_socket_locks_before_power_and_unlocks_on_unplug(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        log = rig.commands_since(0)
        assert log.index(("set_lock", True)) < log.index(("allow_power_on", True))
        await rig.sim("sim.unplug", evse=1)
        assert ("set_lock", False) in rig.commands_since(0)


async def test_legacy_wakeup_pulses_f_once(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.sim("sim.ev", evse=1, action="pause")  # a sleeping EV: never closes S2 by itself
        await rig.advance(29.9)
        assert rig.board().port.pilot.mode.value == "PWM"
        await rig.advance(0.2)
        assert rig.board().port.pilot == PilotCommand.f()
        assert not rig.power_allowed()
        await rig.advance(4.0)
        assert rig.board().port.pilot.mode.value == "PWM"
        await rig.advance(60)
        pulses = [c for c in rig.commands_since(0) if c == ("set_pilot", "F")]
        assert len(pulses) == 1


# ---------------------------------------------------------------------------- faults
FAULT_TABLE = [
    # (sim fault, fault code latched, clears when)
    ("rcd", "RCDTripped", "reset"),
    ("diode", "DiodeFault", "unplug"),
    ("over-temperature", "OverTemperature", "flag"),
    ("emergency-stop", "EmergencyStop", "flag"),
    ("link-loss", "BoardLinkLost", "flag"),
    ("cp-short", "CPShorted", "flag"),
]


@pytest.mark.parametrize("fault, code, clears", FAULT_TABLE, ids=[row[0] for row in FAULT_TABLE])
async def test_fault_turns_power_off_at_once_and_latches(tmp_path, fault, code, clears) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        mark = rig.mark()
        await rig.sim("sim.fault", evse=1, fault=fault)
        assert code in rig.faults()
        assert not rig.power_allowed()
        if fault != "link-loss":  # a lost board does not take commands; its MCU opens on its own
            assert ("allow_power_on", False) in rig.commands_since(mark)
        await rig.advance(0.2)
        assert not rig.world.ports[1].contactor_closed  # the physical contactor, also with the link down
        assert rig.evse().connector_status.value == "Faulted"
        # The fault holds while its cause is there.
        await rig.advance(10)
        assert code in rig.faults() and not rig.power_allowed()
        await rig.sim("sim.fault", evse=1, fault=fault, active=False)
        await rig.advance(0.5)
        if clears == "flag":
            assert code not in rig.faults()
        elif clears == "reset":
            assert code in rig.faults(), "an RCD trip needs an operator reset"
            rig.evse().reset_faults()
            await rig.advance(0.5)
            assert code not in rig.faults()
        elif clears == "unplug":
            assert code in rig.faults()
            await rig.sim("sim.unplug", evse=1)
            await rig.advance(0.5)
            assert code not in rig.faults()
            assert rig.evse().connector_status.value == "Available"


async def test_fault_then_charge_again_after_f_for_300_ms(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="over-temperature")
        await rig.advance(0.1)
        await rig.sim("sim.fault", evse=1, fault="over-temperature", active=False)
        await rig.advance(0.1)
        assert rig.evse().state == "Faulted" and rig.board().port.pilot == PilotCommand.f()
        await rig.advance(0.2)
        assert rig.evse().state != "Faulted"
        await rig.advance(1.0)
        assert rig.evse().state == "C2" and rig.power_allowed()


async def test_welded_contactor_is_a_fault_that_survives_unplug(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="weld")
        await rig.sim("sim.ev", evse=1, action="pause")
        await rig.advance(0.5)
        assert rig.board().inputs.contactor_closed and not rig.power_allowed()
        await rig.advance(1.0)
        assert "ContactorWelded" in rig.faults()
        await rig.sim("sim.unplug", evse=1)
        await rig.advance(1.0)
        assert rig.evse().connector_status.value == "Faulted"
        rig.evse().reset_faults()
        await rig.advance(0.1)
        assert "ContactorWelded" in rig.faults(), "reset must not clear a weld that is still there"


async def test_contactor_that_does_not_close_is_a_fault(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.sim("sim.fault", evse=1, fault="contactor-stuck-open")
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(0.3)
        assert rig.power_allowed()
        await rig.advance(1.0)
        assert "ContactorFault" in rig.faults() and not rig.power_allowed()


async def test_lock_fault_never_allows_power(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.sim("sim.fault", evse=1, fault="lock")
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(3.0)
        assert "LockFault" in rig.faults()
        assert ("allow_power_on", True) not in rig.commands_since(0)
        await rig.advance(5.0)
        assert ("set_lock", False) in rig.commands_since(0), "unlock after F so the cable can be removed"


async def test_link_loss_faults_and_recovers_with_outputs_resent(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="link-loss")
        assert rig.evse().state == "Faulted" and not rig.power_allowed()
        assert not rig.world.ports[1].contactor_closed, "the board's MCU went safe on its own"
        mark = rig.mark()
        await rig.sim("sim.fault", evse=1, fault="link-loss", active=False)
        await rig.advance(0.5)
        assert "BoardLinkLost" not in rig.faults()
        assert any(name == "set_pilot" for name, _ in rig.commands_since(mark))
        await rig.advance(1.0)
        assert rig.evse().state == "C2" and rig.board().inputs.contactor_closed


async def test_exception_in_evse_task_turns_power_off(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        mark = rig.mark()

        def boom() -> None:
            raise RuntimeError("bug in a handler")

        rig.evse().post(boom)
        await rig.advance(0.01)
        assert ("allow_power_on", False) in rig.commands_since(mark)
        assert "InternalError" in rig.faults()
        assert rig.evse().connector_status.value == "Faulted"
        await rig.advance(1.0)
        assert not rig.board().inputs.contactor_closed
        # The task still runs: it sees the unplug, and an operator reset brings it back.
        await rig.sim("sim.unplug", evse=1)
        rig.evse().reset_faults()
        await rig.advance(1.0)
        assert rig.evse().connector_status.value == "Available"


async def test_exception_from_a_board_command_fails_safe(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        board = rig.board()
        original = board.set_lock

        async def broken_lock(locked: bool) -> None:
            raise OSError("serial write failed")

        board.set_lock = broken_lock
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(1.0)
        assert "InternalError" in rig.faults()
        assert ("allow_power_on", True) not in rig.commands_since(0)
        board.set_lock = original


async def test_two_evses_are_independent(tmp_path) -> None:
    async with Rig(config(tmp_path, evses=2), tmp_path) as rig:
        await rig.charging(1)
        await rig.sim("sim.fault", evse=2, fault="rcd")
        assert rig.evse(2).connector_status.value == "Faulted"
        assert rig.evse(1).state == "C2" and rig.power_allowed(1)


async def test_energy_is_metered_into_the_session(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging(profile="ac-3ph-16a")
        await rig.advance(3600)
        session = rig.evse().snapshot()["session"]
        # 16 A x 3 phases x 230 V for an hour (less the first second): ~11 kWh.
        assert session["energy_wh"] == pytest.approx(16 * 3 * 230, rel=0.01)
        assert rig.evse().charging_state.value == "Charging"


async def test_site_limit_is_shared_and_never_exceeded(tmp_path) -> None:
    cfg = config(tmp_path, evses=3, limits={"site_max_current_a": 40})
    async with Rig(cfg, tmp_path) as rig:
        await rig.charging(1)
        assert rig.evse(1).limiter.value == 32  # alone: its own rating caps it below the site's 40 A
        await rig.charging(2)
        assert rig.evse(1).limiter.value == rig.evse(2).limiter.value == 20
        await rig.charging(3)
        limits = [rig.evse(n).limiter.value for n in (1, 2, 3)]
        assert sum(limits) <= 40 and min(limits) >= 6
        await rig.advance(2)
        assert sum(rig.world.ports[n].draw_a() for n in (1, 2, 3)) <= 40 + 1e-6
        await rig.sim("sim.unplug", evse=3)
        await rig.advance(6)  # raises wait for the PWM change interval
        assert rig.evse(1).limiter.value == 20


async def test_site_limit_below_6a_per_ev_lets_the_first_ones_charge(tmp_path) -> None:
    cfg = config(tmp_path, evses=3, limits={"site_max_current_a": 13})
    async with Rig(cfg, tmp_path) as rig:
        await rig.charging(1)
        await rig.charging(2)
        await rig.sim("sim.plug", evse=3, profile="ac-3ph-16a")
        await rig.advance(1)
        assert rig.evse(3).state == "B1" and not rig.power_allowed(3)
        assert rig.evse(1).limiter.value == rig.evse(2).limiter.value == 6.5


async def test_ventilation_offered_charges_in_d(tmp_path) -> None:
    async with Rig(config(tmp_path, evse={"ventilation": True}), tmp_path) as rig:
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a-vent")
        await rig.advance(1.0)
        assert rig.evse().state == "D2" and rig.power_allowed()
        rig.evse().deauthorize("Remote")
        await rig.clock.settle()
        assert rig.evse().state == "D1" and rig.power_allowed(), "6 s grace after PWM stop, as in C"
        await rig.advance(0.3)
        assert rig.evse().state == "B1" and not rig.power_allowed()


async def test_local_token_authorizes_and_the_same_token_stops(tmp_path) -> None:
    cfg = config(tmp_path, authorization={"mode": "local", "tokens": ["CARD-1"]})
    async with Rig(cfg, tmp_path) as rig:
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(1.0)
        assert rig.evse().state == "B1" and rig.board().port.pilot == PilotCommand.x1()
        assert rig.evse().charging_state.value == "EVConnected"
        await rig.sim("sim.token", id_token="STRANGER")
        await rig.advance(1.0)
        assert rig.evse().state == "B1", "an unknown token changes nothing"
        await rig.sim("sim.token", id_token="CARD-1")
        await rig.advance(1.0)
        assert rig.evse().state == "C2" and rig.power_allowed()
        assert rig.evse().session.id_token == "CARD-1"
        await rig.sim("sim.token", id_token="CARD-1")
        await rig.advance(1.0)
        assert rig.evse().state == "B1" and not rig.power_allowed()


async def test_token_before_plug_in_waits_for_the_ev(tmp_path) -> None:
    cfg = config(tmp_path, authorization={"mode": "local", "tokens": ["CARD-1"]})
    async with Rig(cfg, tmp_path) as rig:
        await rig.sim("sim.token", id_token="CARD-1")
        await rig.advance(1.0)
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(1.0)
        assert rig.evse().state == "C2"


async def test_reserved_and_second_connector_statuses(tmp_path) -> None:
    cfg = config(tmp_path)
    data = cfg.dict(by_alias=True)
    data["evse"][0]["connector"].append({"id": 2, "type": "cType2", "lock": False})
    from station.config_model import StationConfig
    async with Rig(StationConfig.parse_obj(data), tmp_path) as rig:
        rig.evse().set_reserved(True)
        await rig.clock.settle()
        assert rig.evse().connector_statuses() == {1: rig.evse().connector_status.RESERVED,
                                                   2: rig.evse().connector_status.RESERVED}
        await rig.charging()
        statuses = {k: v.value for k, v in rig.evse().connector_statuses().items()}
        assert statuses == {1: "Occupied", 2: "Unavailable"}


async def test_ev_drawing_more_than_offered_is_a_fault_after_the_grace_time(tmp_path) -> None:
    async with Rig(config(tmp_path, timing={"pwm_min_change_interval_s": 0}), tmp_path) as rig:
        rig.evse().set_limit("test", 16)
        await rig.charging(profile="ac-3ph-32a")
        await rig.advance(10)
        assert rig.faults() == set(), "drawing what the duty offers is fine"
        await rig.sim("sim.fault", evse=1, fault="overdraw")  # 20 A at a 16 A duty
        await rig.advance(7.5)
        assert rig.power_allowed() and "EVOverCurrent" not in rig.faults(), "7 s grace"
        await rig.advance(1.5)
        assert "EVOverCurrent" in rig.faults() and not rig.power_allowed()
        await rig.sim("sim.fault", evse=1, fault="overdraw", active=False)
        await rig.sim("sim.unplug", evse=1)
        await rig.advance(1)
        assert rig.evse().connector_status.value == "Available"


async def test_a_failing_meter_is_a_fault_not_silence(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="meter-fail")
        await rig.advance(1.5)
        assert rig.faults() == set() and rig.power_allowed(), "one missed reading is not a fault yet"
        await rig.advance(2.0)
        assert "MeterFailure" in rig.faults() and not rig.power_allowed()
        await rig.sim("sim.fault", evse=1, fault="meter-fail", active=False)
        await rig.advance(2.0)
        assert "MeterFailure" not in rig.faults()
        await rig.advance(1.0)
        assert rig.evse().state == "C2" and rig.power_allowed()


async def test_a_long_link_loss_is_not_mistaken_for_a_weld(tmp_path) -> None:
    """While the link is down the board's inputs are stale (the contactor still reads closed): the
    feedback checks must wait for fresh inputs, not latch a weld that needs an operator."""
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        await rig.sim("sim.fault", evse=1, fault="link-loss")
        await rig.advance(5.0)  # far longer than contactor_feedback_timeout_s and lock_timeout_s
        assert rig.faults() == {"BoardLinkLost"}
        await rig.sim("sim.fault", evse=1, fault="link-loss", active=False)
        await rig.advance(1.5)
        assert rig.faults() == set()
        assert rig.evse().state == "C2" and rig.board().inputs.contactor_closed


async def test_unlock_connector_only_without_power_and_until_unplug(tmp_path) -> None:
    async with Rig(config(tmp_path), tmp_path) as rig:
        await rig.charging()
        refused = rig.evse().unlock_connector()
        await rig.clock.settle()
        assert refused.done() and refused.result() is False and rig.board().inputs.lock.value == "locked"
        rig.evse().deauthorize("Remote")
        await rig.advance(1.0)
        granted = rig.evse().unlock_connector()
        await rig.advance(0.1)
        assert granted.result() is True and rig.board().inputs.lock.value == "unlocked"
        await rig.advance(10)
        assert rig.board().inputs.lock.value == "unlocked", "stays open while the cable is still in"
        await rig.sim("sim.unplug", evse=1)
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await rig.advance(1.0)
        assert rig.board().inputs.lock.value == "locked" and rig.evse().state == "C2"


async def test_hlc_stop_waits_for_the_secc_but_not_for_long_and_never_on_a_fault(tmp_path) -> None:
    cfg = config(tmp_path, evse={"hlc": True}, connector={"lock": False}, board={"cable_rating_a": 32})

    async def hlc_charging(rig: Rig) -> None:
        await rig.sim("sim.plug", evse=1, profile="ac-3ph-16a-hlc")
        await rig.advance(0.5)
        assert rig.board().port.pilot == PilotCommand.pwm(5.0)
        await rig.sim("sim.ev", evse=1, action="hlc-start")
        await rig.advance(0.5)
        rig.evse().set_hlc_power_request(True)  # the SECC at PowerDelivery(Start)
        await rig.advance(0.5)
        assert rig.evse().state == "C2" and rig.power_allowed()

    async with Rig(cfg, tmp_path) as rig:
        await hlc_charging(rig)
        rig.evse().deauthorize("Remote")
        await rig.advance(2.0)
        assert rig.power_allowed(), "the SECC ramps down and ends the session first"
        rig.evse().set_hlc_power_request(False)
        await rig.clock.settle()
        assert not rig.power_allowed()
    async with Rig(cfg, tmp_path) as rig:
        await hlc_charging(rig)
        rig.evse().deauthorize("Remote")
        await rig.advance(5.9)
        assert rig.power_allowed()
        await rig.advance(0.2)
        assert not rig.power_allowed(), "a SECC that never releases the power path is overruled after 6 s"
    async with Rig(cfg, tmp_path) as rig:
        await hlc_charging(rig)
        await rig.sim("sim.fault", evse=1, fault="rcd")
        assert not rig.power_allowed(), "a fault never waits for the SECC"
