"""SimMeter: reads energy, power, voltage and current off the simulated port of its EVSE."""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra

from hal.driver import DriverContext
from hal.meter import Meter, MeterError, MeterReading
from hal.sim.world import SimWorld


class SimMeter(Meter):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Start with a failed meter (also injectable at run time: `station sim fault N meter-fail`).
        fail: bool = False

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        evse_id = context.evse_id if context.evse_id is not None else 1
        # The board usually creates the port; if the meter is built first it creates it for the board.
        self.port = SimWorld.of(context).ensure_port(evse_id)
        if self.settings.fail:
            self.port.faults.add("meter-fail")

    async def read(self) -> MeterReading:
        port = self.port
        if "meter-fail" in port.faults:
            raise MeterError(f"simulated meter of EVSE {port.evse_id} does not answer (fault meter-fail)")
        port.integrate()
        voltage = port.settings.supply_voltage_v
        return MeterReading(
            timestamp=self.context.clock.wall(),
            energy_import_wh=port.meter_wh,
            power_w=port.power_w(),
            voltage_v=tuple(voltage for _ in range(port.settings.phases)),
            current_a=port.phase_currents(),
            frequency_hz=50.0,
        )
