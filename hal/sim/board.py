"""SimBoard: the Board contract over a simulated port (see hal/sim/port.py for the physics)."""
from __future__ import annotations

import collections
import time
from typing import Any, Optional

from pydantic.v1 import BaseModel, Extra, Field, validator

from hal.board import Board, BoardCapabilities, PilotCommand
from hal.driver import DriverContext
from hal.iec61851 import CABLE_RATINGS_A
from hal.sim.world import SimWorld

COMMAND_LOG_LEN = 1000


class SimBoard(Board):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Rating of the cable the simulated driver plugs in (PP coding); None for a tethered cable.
        cable_rating_a: Optional[float] = 32.0
        #: Cable fixed to the station: no PP (TOML has no null, so this is how a config says so).
        #: Left out: tethered when the EVSE's connector type is a cable ("c..." such as cType2, cCCS2).
        tethered: Optional[bool] = None
        #: Time from "may close" to contactor feedback "closed".
        contactor_delay_s: float = Field(default=0.05, ge=0, le=5)
        supply_voltage_v: float = Field(default=230.0, gt=0, le=1000)
        #: A parking bay sensor (`station sim bay N occupied|free`; plugging in occupies the bay).
        bay_sensor: bool = False

        @validator("cable_rating_a")
        def _known_rating(cls, value: Optional[float]) -> Optional[float]:
            if value is not None and value not in CABLE_RATINGS_A:
                allowed = ", ".join(f"{r:g}" for r in CABLE_RATINGS_A)
                raise ValueError(f"cable_rating_a must be one of {allowed} (a tethered cable: tethered = true)")
            return value

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        evse_id = context.evse_id if context.evse_id is not None else 1
        world = SimWorld.of(context)
        port = world.ensure_port(evse_id)
        if port.sink is not None:
            raise ValueError(f"EVSE {evse_id} already has a simulated board")
        info = context.evse_info
        tethered = self.settings.tethered
        if tethered is None:
            tethered = str(info.get("connector_type", "")).startswith("c")
        cable = None if tethered else self.settings.cable_rating_a
        self._caps = BoardCapabilities(
            max_current_a=float(info.get("max_current_a", 32.0)),
            phases=int(info.get("phases", 3)),
            supports_ventilation=bool(info.get("ventilation", False)),
            has_pp=cable is not None,
            has_bay_sensor=self.settings.bay_sensor,
        )
        port.settings.bay_sensor = self.settings.bay_sensor
        port.settings.cable_rating_a = cable
        port.settings.contactor_delay_s = self.settings.contactor_delay_s
        port.settings.supply_voltage_v = self.settings.supply_voltage_v
        port.settings.phases = self._caps.phases
        port.sink = self._emit
        self.world = world
        self.port = port
        #: (perf_counter_ns, command, value) for every command received, newest last.
        self.command_log: collections.deque[tuple[int, str, Any]] = collections.deque(maxlen=COMMAND_LOG_LEN)

    def _log(self, command: str, value: Any = None) -> None:
        self.command_log.append((time.perf_counter_ns(), command, value))

    @property
    def capabilities(self) -> BoardCapabilities:
        return self._caps

    async def start(self) -> None:
        self._log("start")
        self.port.start(self._emit)

    async def stop(self) -> None:
        self._log("stop")
        self.port.stop()

    async def set_pilot(self, command: PilotCommand) -> None:
        self._log("set_pilot", str(command))
        self.port.set_pilot(command)

    async def allow_power_on(self, allowed: bool) -> None:
        self._log("allow_power_on", allowed)
        self.port.allow_power_on(allowed)

    async def set_lock(self, locked: bool) -> None:
        self._log("set_lock", locked)
        self.port.set_lock(locked)

    async def rcd_self_test(self) -> None:
        self._log("rcd_self_test")
        self.port.rcd_self_test()

    async def rcd_reset(self) -> None:
        self._log("rcd_reset")
        self.port.rcd_reset()
