"""SimMeter: reads energy, power, voltage and current off the simulated port of its EVSE (as [grid_meter],
with no EVSE: the sum over every simulated port, the grid connection they all sit behind); with `sign = true`
it also signs transaction readings as OCMF with its own P-256 key, like a metrology-certified meter, so a
CSMS's signed-data path (and TxStartPoint DataSigned) can be exercised without one."""
from __future__ import annotations

import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic.v1 import BaseModel, Extra

from hal.driver import DriverContext
from hal.meter import Meter, MeterError, MeterReading, SignedMeterValue
from hal.sim.world import SimWorld

#: OCMF reading types (TX) per OCPP reading context.
OCMF_TX = {"Transaction.Begin": "B", "Transaction.End": "E"}


class SimMeter(Meter):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Start with a failed meter (also injectable at run time: `station sim fault N meter-fail`).
        fail: bool = False
        #: Sign transaction readings (OCMF, ECDSA-secp256r1-SHA256, a key made at start-up).
        sign: bool = False

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.world = SimWorld.of(context)
        # The board usually creates the port; if the meter is built first it creates it for the board.
        self.port = self.world.ensure_port(context.evse_id) if context.evse_id is not None else None
        if self.settings.fail and self.port is not None:
            self.port.faults.add("meter-fail")
        self._key = ec.generate_private_key(ec.SECP256R1()) if self.settings.sign else None
        self._pages = 0

    @property
    def can_sign(self) -> bool:
        return self._key is not None

    @property
    def public_key_hex(self) -> str:
        assert self._key is not None
        return self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).hex()

    async def signed_reading(self, context: str) -> SignedMeterValue | None:
        if self._key is None:
            return None
        reading = await self.read()
        self._pages += 1
        moment = reading.timestamp.strftime("%Y-%m-%dT%H:%M:%S,%f")[:-3] + reading.timestamp.strftime("%z") + " S"
        payload = json.dumps({
            "FV": "1.0", "GI": "station sim meter", "GS": f"SIM-{self.port.evse_id if self.port else 0}", "GV": "1",
            "PG": f"T{self._pages}", "IS": False,
            "RD": [{"TM": moment, "TX": OCMF_TX.get(context, "C"), "RV": round(reading.energy_import_wh / 1000, 4),
                    "RI": "1-b:1.8.0", "RU": "kWh", "RT": "AC", "ST": "G"}]}, separators=(",", ":"))
        signature = self._key.sign(payload.encode(), ec.ECDSA(hashes.SHA256()))
        text = f'OCMF|{payload}|{{"SA":"ECDSA-secp256r1-SHA256","SD":"{signature.hex().upper()}"}}'
        return SignedMeterValue(signed_meter_data=text, public_key=self.public_key_hex)

    async def read(self) -> MeterReading:
        port = self.port
        if port is None:
            return self._grid_reading()
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

    def _grid_reading(self) -> MeterReading:
        if self.settings.fail:
            raise MeterError("simulated grid meter does not answer (fail = true)")
        ports = [self.world.ports[i] for i in sorted(self.world.ports)]
        for port in ports:
            port.integrate()
        currents = [0.0, 0.0, 0.0]
        for port in ports:  # a 1-phase EVSE sits on L1
            for i, amps in enumerate(port.phase_currents()[:3]):
                currents[i] += amps
        voltage = ports[0].settings.supply_voltage_v if ports else 230.0
        return MeterReading(
            timestamp=self.context.clock.wall(),
            energy_import_wh=sum(p.meter_wh for p in ports),
            power_w=sum(p.power_w() for p in ports),
            voltage_v=(voltage,) * 3,
            current_a=tuple(currents),
            frequency_hz=50.0,
        )
