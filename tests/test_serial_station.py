"""The EVSE state machine on a real serial driver ("mcu-cobs") against the MCU simulator running as its own
process behind a pty: the full AC session, and link loss failing safe on both sides."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from station.config_model import StationConfig
from station.station import Station
from tests.serial_sim_client import SimProcess


def station_config(tmp_path: Path, port: str) -> StationConfig:
    return StationConfig.parse_obj({
        "station": {"id": "SERIAL-1", "vendor": "Test", "model": "Serial", "state_dir": str(tmp_path)},
        "authorization": {"mode": "free"},
        "evse": [{
            "id": 1, "max_current_a": 32, "phases": 3,
            "board": {"driver": "mcu-cobs", "port": port, "link_timeout_s": 1.0, "keepalive_interval_s": 0.2},
            "connector": [{"id": 1, "type": "sType2", "lock": True}],
        }],
    })


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def serial_station(tmp_path: Path):
    sim = await SimProcess.start("sim_mcu_board.py")
    station = Station(station_config(tmp_path, sim.pty), control_socket=tmp_path / "c.sock")
    await station.start()
    try:
        yield sim, station, station.evses[1]
    finally:
        await station.stop()
        await sim.close()


async def test_full_ac_session_through_the_serial_board(serial_station) -> None:
    sim, station, evse = serial_station
    await until(lambda: evse.board.inputs.link_up and evse.board.inputs.cp.value == "A", what="link up, CP A")

    await sim.cmd("ev", state="B")  # plug in
    await until(lambda: evse.state == "B2", what="B2")
    status = await sim.wait_status(lambda s: s["duty"] == 5333)  # 32 A on the wire, in 0.01 %
    assert status["contactor"] is False

    await sim.cmd("ev", state="C")  # the EV requests charge
    await sim.wait_status(lambda s: s["contactor"] is True)
    await until(lambda: evse.state == "C2" and evse.board.inputs.contactor_closed, what="C2, contactor closed")
    assert evse.connector_status.value == "Occupied"

    await sim.cmd("ev", state="B")  # the EV stops
    t0 = time.monotonic()
    await sim.wait_status(lambda s: s["contactor"] is False)
    assert time.monotonic() - t0 < 1.0
    await until(lambda: evse.state == "B2", what="back in B2")

    await sim.cmd("ev", state="A")  # unplug
    await until(lambda: evse.state == "A" and evse.connector_status.value == "Available", what="A, Available")
    assert evse.faults.active() == []


async def test_link_loss_fails_safe_and_recovers(serial_station) -> None:
    sim, station, evse = serial_station
    await until(lambda: evse.board.inputs.link_up, what="link up")
    await sim.cmd("ev", state="C")
    await sim.wait_status(lambda s: s["contactor"] is True)

    await sim.cmd("mute", on=True)  # the board goes silent
    await until(lambda: evse.connector_status.value == "Faulted", timeout=3.0, what="Faulted")
    assert "BoardLinkLost" in {f.code for f in evse.faults.active()}
    assert not evse.snapshot()["power_allowed"]

    await sim.cmd("mute", on=False)
    await until(lambda: evse.state == "C2" and evse.board.inputs.contactor_closed, timeout=5.0,
                what="charging again after the link returned")
    assert "BoardLinkLost" not in {f.code for f in evse.faults.active()}
