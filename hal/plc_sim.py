"""Simulated PLC modem: the raw MME link on a real interface (a veth pair in tests), with no modem
behind it. The simulated EV (hal/sim/slac_ev.py) plays the EV and its modem; the key this side
would program is kept (and shown to the simulator) instead of being sent to a modem."""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra, Field

from hal.driver import DriverContext
from hal.plc_raw import HomePlugModem


class SimPlcModem(HomePlugModem):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Interface the simulated EV is reached on (one end of a veth pair).
        interface: str = Field(min_length=1, max_length=15, regex=r"^[A-Za-z0-9_.:-]+$")

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.keys_set = 0

    async def set_nmk(self, nmk: bytes, nid: bytes) -> None:
        self.nmk, self.nid = nmk, nid
        self.keys_set += 1
