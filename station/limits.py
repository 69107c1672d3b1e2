"""The one place an EVSE's current limit comes from.

Each contributor (EVSE rating, board capability, cable PP rating, site limit, OCPP smart charging,
...) sets its own named source; the effective limit is the minimum. Later issues add sources,
they never write the PWM themselves.
"""
from __future__ import annotations

from typing import Callable


class CurrentLimiter:
    def __init__(self, rating_a: float, on_change: Callable[[], None] | None = None) -> None:
        self._sources: dict[str, float] = {"evse_rating": float(rating_a)}
        self._on_change = on_change

    def set(self, source: str, amps: float | None) -> None:
        """Set (or with None, remove) one source's limit in amps per phase."""
        before = self.value
        if amps is None:
            self._sources.pop(source, None)
        else:
            if amps != amps or amps < 0:  # NaN or negative: a bug upstream, clamp to safe
                amps = 0.0
            self._sources[source] = float(amps)
        if self.value != before and self._on_change is not None:
            self._on_change()

    @property
    def value(self) -> float:
        return min(self._sources.values())

    @property
    def sources(self) -> dict[str, float]:
        return dict(self._sources)