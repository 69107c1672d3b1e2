"""What every driver gets from the station when it is built."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from hal.clock import Clock, LoopClock

T = TypeVar("T")


@dataclass
class DriverContext:
    """Per-driver context: which EVSE it serves, the clock, and resources shared by a station's
    drivers (e.g. one simulator world, one serial port serving two channels)."""

    evse_id: int | None = None
    clock: Clock = field(default_factory=LoopClock)
    shared: dict[str, Any] = field(default_factory=dict)
    #: Static facts from the station config a driver may need (phases, rated current, connector type).
    evse_info: dict[str, Any] = field(default_factory=dict)

    def resource(self, key: str, factory: Callable[[], T]) -> T:
        """The station-wide object under `key`, created on first use."""
        if key not in self.shared:
            self.shared[key] = factory()
        return self.shared[key]
