"""PLC modem (HomePlug Green PHY) contract for SLAC / ISO 15118-3. Filled by the ISO 15118 issue."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


class PlcModem(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context

    @property
    @abstractmethod
    def interface(self) -> str:
        """Network interface the modem bridges to (e.g. eth1)."""

    @property
    @abstractmethod
    def mac(self) -> bytes: ...

    @abstractmethod
    async def set_nmk(self, nmk: bytes, nid: bytes) -> None:
        """Program the network membership key after SLAC matching (CM_SET_KEY)."""
