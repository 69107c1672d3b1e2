"""HomePlug Green PHY modem on an Ethernet interface (e.g. a QCA7000 on SPI as eth1), over a raw
AF_PACKET socket. The key is set with CM_SET_KEY.REQ to the modem's local management address and
confirmed by its CM_SET_KEY.CNF within `set_key_timeout_s` (no fixed multi-second wait)."""
from __future__ import annotations

from pydantic.v1 import BaseModel, Extra, Field, validator

from hal.driver import DriverContext
from hal.plc import MmeLink, PlcModem
from hal.plc_homeplug import CM_SET_KEY, CNF, REQ, RawLink, interface_mac, parse_set_key_cnf, set_key_req

#: Qualcomm Atheros modems answer management messages sent to this "local" address.
QCA_LOCAL_MAC = "00:b0:52:00:00:01"


def parse_mac(value: str) -> bytes:
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{value!r} is not a MAC address like 00:b0:52:00:00:01")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{value!r} is not a MAC address like 00:b0:52:00:00:01") from None


class HomePlugModem(PlcModem):
    class Settings(BaseModel):
        class Config:
            extra = Extra.forbid

        #: Ethernet interface of the PLC modem (the SECC's IPv6 link runs on it too).
        interface: str = Field(min_length=1, max_length=15, regex=r"^[A-Za-z0-9_.:-]+$")
        #: Where CM_SET_KEY.REQ goes: the modem's management address.
        modem_mac: str = QCA_LOCAL_MAC
        set_key_timeout_s: float = Field(default=2.0, gt=0, le=60)

        @validator("modem_mac")
        def _mac(cls, value: str) -> str:
            parse_mac(value)
            return value

    settings: Settings

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self._link = RawLink(self.settings.interface)
        self.nmk: bytes | None = None
        self.nid: bytes | None = None

    @property
    def interface(self) -> str:
        return self.settings.interface

    @property
    def mac(self) -> bytes:
        return self._link.mac or interface_mac(self.interface)

    @property
    def link(self) -> MmeLink:
        return self._link

    async def start(self) -> None:
        self._link.open()

    async def stop(self) -> None:
        self._link.close()

    async def set_nmk(self, nmk: bytes, nid: bytes) -> None:
        self._link.send(parse_mac(self.settings.modem_mac), CM_SET_KEY | REQ, set_key_req(nid, nmk))
        reply = await self._link.expect(CM_SET_KEY | CNF, self.settings.set_key_timeout_s)
        if reply is None:
            raise TimeoutError(f"PLC modem on {self.interface} did not confirm CM_SET_KEY within "
                               f"{self.settings.set_key_timeout_s} s")
        result = parse_set_key_cnf(reply.payload)
        if result != 0:
            raise OSError(f"PLC modem on {self.interface} refused the key (CM_SET_KEY.CNF result {result})")
        self.nmk, self.nid = nmk, nid
