"""A station on the simulator with a hand-driven clock, for tests that assert IEC 61851 timing."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hal.clock import ManualClock
from station.config_model import StationConfig
from station.station import Station

BASE: dict[str, Any] = {
    "station": {"id": "TEST-1", "vendor": "Test", "model": "Sim"},
    "authorization": {"mode": "free"},
    "token_reader": {"driver": "sim"},
    "evse": [{
        "id": 1, "max_current_a": 32, "phases": 3,
        "board": {"driver": "sim", "cable_rating_a": 32},
        "meter": {"driver": "sim"},
        "connector": [{"id": 1, "type": "sType2", "lock": True}],
    }],
}


def config(tmp_path: Path, *, evse: dict[str, Any] | None = None, board: dict[str, Any] | None = None,
           connector: dict[str, Any] | None = None, timing: dict[str, Any] | None = None,
           evses: int = 1, **top: Any) -> StationConfig:
    data = copy.deepcopy(BASE)
    data["station"]["state_dir"] = str(tmp_path / "state")
    first = data["evse"][0]
    first.update(evse or {})
    first["board"].update(board or {})
    first["connector"][0].update(connector or {})
    for n in range(2, evses + 1):
        extra = copy.deepcopy(first)
        extra["id"] = n
        data["evse"].append(extra)
    if timing:
        data["iec61851"] = timing
    data.update(top)
    return StationConfig.parse_obj(data)


class Rig:
    def __init__(self, cfg: StationConfig, tmp_path: Path) -> None:
        self.clock = ManualClock()
        self.station = Station(cfg, clock=self.clock, control_socket=tmp_path / "control.sock")

    async def __aenter__(self) -> "Rig":
        await self.station.start()
        await self.clock.settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.station.stop()

    @property
    def world(self) -> Any:
        return self.station.shared["sim.world"]

    def evse(self, n: int = 1) -> Any:
        return self.station.evses[n]

    def board(self, n: int = 1) -> Any:
        return self.station.boards[n]

    async def sim(self, cmd: str, **args: Any) -> Any:
        result = await self.world.control_handlers()[cmd](args)
        await self.clock.settle()
        return result

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    def mark(self, n: int = 1) -> int:
        """Position in the board's command log, to look at what came after."""
        return len(self.board(n).command_log)

    def commands_since(self, mark: int, n: int = 1) -> list[tuple[str, Any]]:
        return [(name, value) for _, name, value in list(self.board(n).command_log)[mark:]]

    def power_allowed(self, n: int = 1) -> bool:
        return bool(self.evse(n).snapshot()["power_allowed"])

    def faults(self, n: int = 1) -> set[str]:
        return {f["code"] for f in self.evse(n).snapshot()["faults"]}

    async def charging(self, n: int = 1, profile: str = "ac-3ph-16a", **options: Any) -> None:
        """Plug an EV in and run until it charges."""
        await self.sim("sim.plug", evse=n, profile=profile, options=options or None)
        await self.advance(1.0)
        assert self.evse(n).state == "C2", self.evse(n).snapshot()
        assert self.board(n).inputs.contactor_closed
