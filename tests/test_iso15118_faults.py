"""What ends an ISO 15118 session badly ends it safely: unplug mid-session, an EV that stops talking,
an exception under the SECC (power modules failing), and SLAC failing (AC falls back to PWM charging).
Each time the contactors open, the power modules are off and the EVSE recovers to Available."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from hal.sim.ev import profile
from station import simnet as netns
from tests.iso15118_rig import HlcRig, station_config

#: A DIN session with 500 CurrentDemand cycles: it will not end on its own during a test.
LONG_DIN = ("din", "--loops", "500")

pytestmark = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))


@pytest.fixture
async def wire() -> AsyncIterator[netns.Wire]:
    with netns.ev_namespace() as w:
        yield w


async def charging(rig: HlcRig) -> None:
    """The rig's LONG_DIN session well into its CurrentDemand loop."""
    await rig.session()
    await rig.until(lambda: rig.evse.energy_transfer and rig.evse.session.energy_wh > 0.05, 60, "energy flowing")
    assert rig.port.dc_output[0] and rig.evse.board.inputs.contactor_closed


async def power_is_off(rig: HlcRig, within_s: float) -> None:
    await rig.until(lambda: not rig.evse.board.inputs.contactor_closed, within_s, "contactor open")
    await rig.until(lambda: not rig.port.dc_output[0], within_s, "power modules off")


async def recovers(rig: HlcRig) -> None:
    if rig.port.ev is not None:
        rig.port.unplug()
    await rig.until(lambda: rig.evse.connector_status.value == "Available", 3, "Available")
    await rig.until(lambda: not rig.hlc.controller.session_active, 10, "V2G session closed")
    assert not rig.evse.snapshot()["faults"]
    assert not rig.hlc.controller.hlc_charging or not rig.evse.hlc_power_request


async def test_unplug_mid_session(wire: netns.Wire, tmp_path: Path) -> None:
    async with HlcRig(station_config(tmp_path, wire), wire, tmp_path, LONG_DIN) as rig:
        await charging(rig)
        rig.port.unplug()
        await power_is_off(rig, 0.5)
        await recovers(rig)
        [unplugged] = [e for e in rig.events if e.name == "EVDisconnected"]
        assert unplugged.energy_wh > 0  # type: ignore[attr-defined]


async def test_ev_stops_talking(wire: netns.Wire, tmp_path: Path) -> None:
    cfg = station_config(tmp_path, wire, ev_silence_timeout_s=1.0)
    async with HlcRig(cfg, wire, tmp_path, LONG_DIN) as rig:
        await charging(rig)
        assert rig.ev is not None
        rig.ev.freeze()  # SIGSTOP: the EV's controller hangs mid-loop
        await power_is_off(rig, 2.5)
        assert rig.hlc.controller.stop_reason == "EV communication timeout"
        await rig.ev.close()
        await recovers(rig)


async def test_power_module_failure_under_the_secc(wire: netns.Wire, tmp_path: Path) -> None:
    async with HlcRig(station_config(tmp_path, wire), wire, tmp_path, LONG_DIN) as rig:
        await charging(rig)
        rig.port.set_fault("power-supply-fail", True)  # the next CurrentDemand's charging command raises
        await power_is_off(rig, 1.0)
        await rig.until(lambda: not rig.hlc.controller.session_active, 10, "the package ended the session")
        rig.port.set_fault("power-supply-fail", False)
        await recovers(rig)
        assert not any(t.done() for t in rig.hlc._tasks), "the SECC keeps serving the next EV"


async def test_ac_falls_back_to_pwm_when_slac_fails(tmp_path: Path) -> None:
    with netns.veth_pair() as wire:  # nobody answers SLAC on the other end
        cfg = station_config(tmp_path, wire, kind="ac", slac={"init_timeout_s": 1.0, "fallback_step_ef_s": 1.0})
        async with HlcRig(cfg, wire, tmp_path) as rig:
            board = rig.station.boards[1]
            mark = len(board.command_log)
            rig.port.plug(profile("ac-3ph-16a-hlc"))
            await rig.until(lambda: rig.evse.state == "B2" and rig.evse.hlc, 3, "5 % PWM")
            await rig.until(lambda: not rig.evse.hlc, 3, "fallback to basic charging")
            await rig.until(lambda: rig.evse.state == "C2" and rig.evse.board.inputs.contactor_closed, 5,
                            "basic charging")
            assert rig.hlc.slac_state == "failed"
            [status] = await rig.station.control._handlers["iso15118.status"]({})
            assert status["slac"] == "failed" and status["interface"] == wire.host_if
            assert rig.port.pilot.duty_pct > 10  # PWM current offer, no longer 5 %
            # ISO 15118-3 [V2G3-M06-05]: 5 % -> F (T_step_EF) -> nominal duty.
            pilots = [value for _, name, value in list(board.command_log)[mark:] if name == "set_pilot"]
            five = pilots.index("PWM 5.00%")
            assert pilots[five + 1] == "F" and pilots[five + 2].startswith("PWM"), pilots
            await asyncio.sleep(1.2)
            assert rig.port.draw_a() == 16.0
            rig.port.unplug()
            await rig.until(lambda: rig.evse.connector_status.value == "Available", 3, "Available")
            assert rig.evse.hlc  # offered again to the next EV


async def test_station_stop_request_mid_session(wire: netns.Wire, tmp_path: Path) -> None:
    """OCPP RequestStopTransaction / `station evse.stop` deauthorize the EVSE: power off at once, and
    the EV is told to stop in the next status (DIN: EVSE_Shutdown + StopCharging)."""
    async with HlcRig(station_config(tmp_path, wire), wire, tmp_path, LONG_DIN) as rig:
        await charging(rig)
        at_open: list[tuple[Any, ...]] = []  # the power modules' output when the contactor opened
        rig.evse.listeners.append(lambda e: at_open.append(rig.port.dc_output) if e.name == "PowerPathOpened" else None)
        rig.evse.deauthorize("Remote")
        await power_is_off(rig, 0.5)
        # A normal stop: the modules ramp down first, so the DC contactors never open under load.
        assert at_open and at_open[0][0] is False, at_open
        assert rig.hlc.controller.stop_reason == "deauthorized: Remote"
        status = await rig.hlc.controller.get_dc_evse_status()
        assert (status.evse_status_code.value, status.evse_notification.value) == ("EVSE_Shutdown", "StopCharging")
        assert not rig.hlc.controller.ready_to_charge()
        await recovers(rig)
