"""PLC modem (HomePlug Green PHY) contract for SLAC / ISO 15118-3.

The host talks to its modem and, through it, to the EV with HomePlug management messages (MMEs)
on the modem's Ethernet interface. A modem driver gives SLAC that MME link and programs the
network membership key (NMK) SLAC hands out. Opening the link needs CAP_NET_RAW, so a driver
opens it in `start()`, which only the ISO 15118 service calls.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

from pydantic.v1 import BaseModel

from hal.driver import DriverContext
from hal.plc_homeplug import Mme


class MmeLink(Protocol):
    """Send and receive MMEs on the modem's interface (see hal.plc_homeplug.RawLink)."""

    mac: bytes

    def send(self, dst: bytes, mmtype: int, payload: bytes) -> None: ...

    async def receive(self, timeout: float) -> Mme | None: ...

    async def expect(self, mmtype: int, timeout: float) -> Mme | None: ...

    def flush(self) -> None: ...


class PlcModem(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context

    @property
    @abstractmethod
    def interface(self) -> str:
        """Network interface the modem bridges to (e.g. eth1); the SECC's IPv6 link runs on it."""

    @property
    @abstractmethod
    def mac(self) -> bytes:
        """The host's MAC on that interface (the EVSE's address in SLAC)."""

    @property
    @abstractmethod
    def link(self) -> MmeLink:
        """The MME link; valid between start() and stop()."""

    @abstractmethod
    async def start(self) -> None:
        """Open the link (needs CAP_NET_RAW). OSError says why it could not."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def set_nmk(self, nmk: bytes, nid: bytes) -> None:
        """Program the network membership key (CM_SET_KEY). Raises TimeoutError or OSError."""
