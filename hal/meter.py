"""The meter contract: energy, power, voltage and current per phase, optional signed (OCMF) data."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from pydantic.v1 import BaseModel

from hal.driver import DriverContext


@dataclass(frozen=True)
class SignedMeterValue:
    """Signed data exactly as the meter produced it (OCPP SignedMeterValueType); never re-encoded."""

    signed_meter_data: str
    signing_method: str = "ECDSA-secp256r1-SHA256"
    encoding_method: str = "OCMF"
    public_key: str = ""


@dataclass(frozen=True)
class MeterReading:
    timestamp: datetime
    energy_import_wh: float
    power_w: float
    voltage_v: tuple[float, ...] = ()  # per phase, L1..L3 (DC meters: one value)
    current_a: tuple[float, ...] = ()  # per phase
    energy_export_wh: float | None = None
    frequency_hz: float | None = None
    signed: SignedMeterValue | None = None
    extra: dict[str, float] = field(default_factory=dict)


class MeterError(Exception):
    """The meter did not answer, answered garbage, or repeats a stale value."""


class Meter(ABC):
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        self.settings = settings
        self.context = context

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @abstractmethod
    async def read(self) -> MeterReading:
        """A fresh reading; raises MeterError when none can be had."""

    @property
    def can_sign(self) -> bool:
        """Whether signed_reading() gives signed values (the station only waits for them then)."""
        return False

    async def signed_reading(self, context: str) -> SignedMeterValue | None:
        """Signed reading for a transaction boundary (context: 'Transaction.Begin', 'Transaction.End',
        ...). Meters that cannot sign return None."""
        return None
