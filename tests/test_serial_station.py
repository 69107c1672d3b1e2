"""The EVSE state machine on the real serial drivers ("mcu-cobs", "openevse-rapi"), each against its board
simulator running as its own process behind a pty: the full AC session, and link loss failing safe."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from station.config_model import StationConfig
from station.station import Station
from tests.serial_sim_client import SimProcess


#: board family -> (simulator script, driver, connector, expected duty on the wire for 32 A)
FAMILIES = {
    "mcu-cobs": ("sim_mcu_board.py", {"type": "sType2", "lock": True}, ("duty", 5333)),
    "openevse-rapi": ("sim_rapi_board.py", {"type": "cType2", "lock": False}, ("capacity", 32)),
}


def station_config(tmp_path: Path, driver: str, port: str) -> StationConfig:
    _, connector, _ = FAMILIES[driver]
    return StationConfig.parse_obj({
        "station": {"id": "SERIAL-1", "vendor": "Test", "model": "Serial", "state_dir": str(tmp_path)},
        "authorization": {"mode": "free"},
        "evse": [{
            "id": 1, "max_current_a": 32, "phases": 3 if driver == "mcu-cobs" else 1,
            "board": {"driver": driver, "port": port, "link_timeout_s": 1.0, "keepalive_interval_s": 0.2},
            "connector": [{"id": 1, **connector}],
        }],
    })


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=sorted(FAMILIES))
async def serial_station(request, tmp_path: Path):
    sim = await SimProcess.start(FAMILIES[request.param][0])
    sim.wire_duty = FAMILIES[request.param][2]
    station = Station(station_config(tmp_path, request.param, sim.pty), control_socket=tmp_path / "c.sock")
    await station.start()
    try:
        yield sim, station, station.evses[1]
    finally:
        await station.stop()
        await sim.close()


async def test_full_ac_session_through_the_serial_board(serial_station) -> None:
    sim, station, evse = serial_station
    await until(lambda: evse.board.inputs.link_up and evse.state == "A", what="link up, state A")

    await sim.cmd("ev", state="B")  # plug in
    await until(lambda: evse.state == "B2", what="B2")
    key, value = sim.wire_duty
    status = await sim.wait_status(lambda s: s[key] == value)  # 32 A offered on the wire
    assert status.get("contactor", status.get("relay")) is False

    await sim.cmd("ev", state="C")  # the EV requests charge
    await sim.wait_status(lambda s: s.get("contactor", s.get("relay")) is True)
    await until(lambda: evse.state == "C2" and evse.board.inputs.contactor_closed, what="C2, contactor closed")
    assert evse.connector_status.value == "Occupied"

    await sim.cmd("ev", state="B")  # the EV stops
    t0 = time.monotonic()
    await sim.wait_status(lambda s: s.get("contactor", s.get("relay")) is False)
    assert time.monotonic() - t0 < 1.0
    await until(lambda: evse.state == "B2", what="back in B2")

    await sim.cmd("ev", state="A")  # unplug
    await until(lambda: evse.state == "A" and evse.connector_status.value == "Available", what="A, Available")
    assert evse.faults.active() == []


async def test_link_loss_fails_safe_and_recovers(serial_station) -> None:
    sim, station, evse = serial_station
    await until(lambda: evse.board.inputs.link_up and evse.state == "A", what="link up")
    await sim.cmd("ev", state="B")
    await until(lambda: evse.state == "B2", what="B2")
    await sim.cmd("ev", state="C")
    await sim.wait_status(lambda s: s.get("contactor", s.get("relay")) is True)

    await sim.cmd("mute", on=True)  # the board goes silent
    await until(lambda: evse.connector_status.value == "Faulted", timeout=3.0, what="Faulted")
    assert "BoardLinkLost" in {f.code for f in evse.faults.active()}
    assert not evse.snapshot()["power_allowed"]

    await sim.cmd("mute", on=False)
    # Recovery, not its speed, is asserted here (the bound on loss is above): generous for a loaded CI box.
    await until(lambda: evse.state == "C2" and evse.board.inputs.contactor_closed, timeout=20.0,
                what="charging again after the link returned")
    assert "BoardLinkLost" not in {f.code for f in evse.faults.active()}


async def test_bay_sensor_over_mcu_cobs(tmp_path: Path) -> None:
    """The optional BayState message (caps bit 5) reaches the EVSE as BayOccupied / BayFreed events."""
    sim = await SimProcess.start("sim_mcu_board.py", "--bay-sensor")
    station = Station(station_config(tmp_path, "mcu-cobs", sim.pty), control_socket=tmp_path / "c.sock")
    events: list[str] = []
    station.listeners.append(lambda e: events.append(e.name) if e.name.startswith("Bay") else None)
    await station.start()
    try:
        evse = station.evses[1]
        await until(lambda: evse.board.inputs.link_up and evse.board.capabilities.has_bay_sensor, what="link up")
        await sim.cmd("bay", occupied=True)
        await until(lambda: evse.snapshot()["bay_occupied"] is True, what="bay occupied")
        await sim.cmd("bay", occupied=False)
        await until(lambda: events[-1:] == ["BayFreed"], what="bay free")
        assert events == ["BayOccupied", "BayFreed"]
    finally:
        await station.stop()
        await sim.close()
