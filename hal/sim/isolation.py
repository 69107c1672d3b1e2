"""SimIsolationMonitor: an IMD that reads a healthy insulation resistance, or a fault when the
port has `isolation-fault` injected (`station sim fault N isolation-fault`)."""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra, Field

from hal.driver import DriverContext
from hal.isolation import IsolationMonitor, IsolationReading
from hal.sim.world import SimWorld

FAULT_RESISTANCE_OHM = 20_000.0


class SimIsolationMonitor(IsolationMonitor):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Insulation resistance read while no fault is injected.
        resistance_ohm: float = Field(default=5_000_000.0, gt=0)
        #: Alarm threshold (IEC 61851-23: 100 ohm/V; 100 kOhm for a 1000 V system).
        alarm_ohm: float = Field(default=100_000.0, gt=0)

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        evse_id = context.evse_id if context.evse_id is not None else 1
        self.port = SimWorld.of(context).ensure_port(evse_id)
        self.running = False

    async def self_test(self) -> bool:
        return True

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def read(self) -> IsolationReading:
        port = self.port
        ohm = FAULT_RESISTANCE_OHM if "isolation-fault" in port.faults else self.settings.resistance_ohm
        return IsolationReading(ohm, port.dc_voltage_v(), ohm < self.settings.alarm_ohm)
