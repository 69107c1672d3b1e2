"""SimPowerSupply: DC power modules feeding the simulated port of its EVSE.

Output follows the setpoint at once (the EV's battery takes the current asked for); the port
turns it into energy on the meter when the contactor is closed. Fault `power-supply-fail`
(`station sim fault N power-supply-fail`) makes every command raise, as a module that stops
answering on its CAN bus would.
"""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra, Field

from hal.driver import DriverContext
from hal.power_supply import PowerSupply, PowerSupplyCapabilities, PowerSupplyStatus
from hal.sim.world import SimWorld


class PowerSupplyError(RuntimeError):
    pass


class SimPowerSupply(PowerSupply):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        max_voltage_v: float = Field(default=920.0, gt=0, le=1500)
        min_voltage_v: float = Field(default=150.0, ge=0, le=1500)
        max_current_a: float = Field(default=200.0, gt=0, le=1000)
        min_current_a: float = Field(default=0.0, ge=0, le=1000)
        max_power_w: float = Field(default=50_000.0, gt=0, le=1_000_000)

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        evse_id = context.evse_id if context.evse_id is not None else 1
        self.port = SimWorld.of(context).ensure_port(evse_id)
        s = self.settings
        self._caps = PowerSupplyCapabilities(s.max_voltage_v, s.min_voltage_v, s.max_current_a, s.min_current_a,
                                             s.max_power_w)
        self._on = False
        self._voltage = 0.0
        self._current = 0.0

    def _check(self) -> None:
        if "power-supply-fail" in self.port.faults:
            raise PowerSupplyError(f"simulated power supply of EVSE {self.port.evse_id} does not answer")

    @property
    def capabilities(self) -> PowerSupplyCapabilities:
        return self._caps

    async def start(self) -> None:
        self._push()

    async def stop(self) -> None:
        self._on = False
        self._push()

    async def set_output(self, voltage_v: float, current_a: float) -> None:
        self._check()
        caps = self._caps
        self._voltage = max(0.0, min(voltage_v, caps.max_voltage_v))
        limit = min(caps.max_current_a, caps.max_power_w / self._voltage) if self._voltage > 0 else caps.max_current_a
        self._current = max(0.0, min(current_a, limit))
        self._push()

    async def set_on(self, on: bool) -> None:
        if on:
            self._check()
        self._on = on
        if not on:
            self._current = 0.0
        self._push()

    async def status(self) -> PowerSupplyStatus:
        self._check()
        return PowerSupplyStatus(self._on, self._voltage if self._on else 0.0, self._current if self._on else 0.0)

    def _push(self) -> None:
        self.port.set_dc_output(self._on, self._voltage, self._current)
