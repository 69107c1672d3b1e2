"""Isolation monitor (IMD) contract, used by the DC cable check. Filled by the DC issues."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


@dataclass(frozen=True)
class IsolationReading:
    resistance_ohm: float
    voltage_v: float
    fault: bool  # below the configured alarm threshold (IEC 61851-23: 100 ohm/V, typically 100 kOhm)


class IsolationMonitor(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context

    @abstractmethod
    async def self_test(self) -> bool: ...

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def read(self) -> IsolationReading: ...
