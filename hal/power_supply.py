"""DC power-supply contract (power modules behind the DC contactors).

Filled by the DC/CAN issue; the SECC drives it through this interface only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


@dataclass(frozen=True)
class PowerSupplyCapabilities:
    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    min_current_a: float
    max_power_w: float
    bidirectional: bool = False


@dataclass(frozen=True)
class PowerSupplyStatus:
    on: bool
    voltage_v: float
    current_a: float
    faults: tuple[str, ...] = ()


class PowerSupply(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @property
    @abstractmethod
    def capabilities(self) -> PowerSupplyCapabilities: ...

    @abstractmethod
    async def set_output(self, voltage_v: float, current_a: float) -> None: ...

    @abstractmethod
    async def set_on(self, on: bool) -> None:
        """Off ramps current down before returning, so contactors can open without load."""

    @abstractmethod
    async def status(self) -> PowerSupplyStatus: ...
