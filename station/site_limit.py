"""Share a site (grid connection) current limit among the EVSEs.

Each EVSE with an EV gets an equal share; when the shares would fall below 6 A, the EVs that came
first keep charging and the rest wait (a share below 6 A charges nobody). Idle EVSEs hold the
share a newcomer would get, so the sum never exceeds the site limit, even at the instant of a
plug-in. It feeds the `site` source of each EVSE's CurrentLimiter, like any other limit.
"""
from __future__ import annotations

from math import floor
from typing import Iterable

from station.evse import Evse
from hal.iec61851 import MIN_CURRENT_A
from station.session import EVConnected, EVDisconnected, EvseEvent


class SiteLimiter:
    def __init__(self, site_max_current_a: float, evses: Iterable[Evse]) -> None:
        self.site = site_max_current_a
        self.evses = list(evses)
        self._order: list[int] = []  # EVSE ids with an EV, first come first

    def on_event(self, event: EvseEvent) -> None:
        if isinstance(event, EVConnected) and event.evse_id not in self._order:
            self._order.append(event.evse_id)
        elif isinstance(event, EVDisconnected) and event.evse_id in self._order:
            self._order.remove(event.evse_id)
        else:
            return
        self.apply()

    def shares(self) -> dict[int, float]:
        slots = max(1, floor(self.site / MIN_CURRENT_A))
        charging = self._order[:slots]
        share = self.site / max(1, len(charging))
        newcomer = self.site / (len(charging) + 1) if len(charging) < slots else 0.0
        result = {}
        for evse in self.evses:
            if evse.id in charging:
                result[evse.id] = share
            elif evse.id in self._order:
                result[evse.id] = 0.0  # waits for a free slot
            else:
                result[evse.id] = newcomer
        return result

    def apply(self) -> None:
        shares = self.shares()
        for evse in self.evses:
            evse.set_limit("site", shares[evse.id])
