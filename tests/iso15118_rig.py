"""A station on the simulator with one HLC EVSE whose PLC interface is one end of a veth pair, and
the simulated EV's communication controller (scripts/sim_hlc_ev.py) in a network namespace on the
other end. Real time, real sockets, the package's real EVCC and SECC."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hal.sim.ev import profile as ev_profile
from station.config_model import StationConfig
from station.session import EvseEvent
from station.station import Station
from station.sim_ev_process import EvProcess
from station.simnet import Wire

ALL_PROTOCOLS = ["DIN_SPEC_70121", "ISO_15118_2", "ISO_15118_20_DC"]


def station_config(tmp_path: Path, wire: Wire, kind: str = "dc", **iso: Any) -> StationConfig:
    iso15118: dict[str, Any] = {
        "plc_modem": {"driver": "sim", "interface": wire.host_if},
        "protocols": ALL_PROTOCOLS if kind == "dc" else ["ISO_15118_2"],
        "slac": {"init_timeout_s": 20.0},
        **iso,
    }
    if kind == "dc":
        iso15118.setdefault("power_supply", {"driver": "sim"})
        iso15118.setdefault("isolation_monitor", {"driver": "sim"})
    evse = {
        "id": 1, "kind": kind, "hlc": True, "max_current_a": 32, "phases": 3,
        "board": {"driver": "sim", **({"tethered": True} if kind == "dc" else {"cable_rating_a": 32})},
        "meter": {"driver": "sim"},
        "connector": [{"id": 1, "type": "cCCS2" if kind == "dc" else "sType2"}],
        "iso15118": iso15118,
    }
    return StationConfig.parse_obj({
        "station": {"id": "HLC-1", "vendor": "Test", "model": "Sim", "state_dir": str(tmp_path / "state")},
        "authorization": {"mode": "free"},
        "evse": [evse],
    })


class HlcRig:
    def __init__(self, config: StationConfig, wire: Wire, tmp_path: Path, ev: tuple[str, ...] = ()) -> None:
        """`ev`: protocol and EV options; the EV process (and its JVM) then starts with the station."""
        self.wire = wire
        self.station = Station(config, control_socket=tmp_path / "c.sock")
        self.events: list[EvseEvent] = []
        self.ev: EvProcess | None = None
        self.ev_args = ev

    async def __aenter__(self) -> "HlcRig":
        if self.ev_args:
            self.ev = await self._ev_process(*self.ev_args)
        try:
            await self.station.start()
        except BaseException:
            if self.ev is not None:
                await self.ev.close()
            raise
        self.evse.listeners.append(self.events.append)
        return self

    async def _ev_process(self, protocol: str, *ev_args: str) -> EvProcess:
        return await EvProcess(self.wire, "--protocol", protocol, "--patience", "3", "--loop-period", "0.2", *ev_args).start()

    async def __aexit__(self, *exc: object) -> None:
        if self.ev is not None:
            await self.ev.close()
        await self.station.stop()

    @property
    def evse(self) -> Any:
        return self.station.evses[1]

    @property
    def port(self) -> Any:
        return self.station.shared["sim.world"].port(1)

    @property
    def hlc(self) -> Any:
        [service] = [s for s in self.station.services if type(s).__name__ == "Iso15118Service"]
        return service.evses[1]

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    async def until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.evse.snapshot()}")
            await asyncio.sleep(0.02)

    async def session(self, protocol: str = "", profile: str = "dc-ccs", *ev_args: str) -> EvProcess:
        """Start the EV process (unless started with the rig), plug the EV in, let it SLAC; returns once
        matched (the EV's S2 then closes)."""
        if self.ev is None:
            self.ev = await self._ev_process(protocol, *ev_args)
        await self.ev.wait_for("ready", 60)
        self.port.plug(ev_profile(profile))
        await self.until(lambda: self.evse.state == "B2", 5, "5 % PWM")
        self.ev.go()
        await self.ev.wait_for("matched", 10)
        self.port.ev_action("hlc-start")  # the EV's HLC layer asks for state C
        return self.ev
