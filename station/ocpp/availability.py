"""Operative/Inoperative state of the station, its EVSEs and connectors (G03 ChangeAvailability) and
resets (B11/B12), applied through Evse.set_enabled / deauthorize / reset_faults.

The operative state survives restarts (persisted before the CSMS hears Accepted). A change to
Inoperative while a session runs is Scheduled and applied when that session ends; so is an OnIdle reset.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from station.session import EvseEvent

if TYPE_CHECKING:
    from station.evse import Evse
    from station.ocpp.dm_store import DeviceModelStore

log = logging.getLogger("station.ocpp.availability")
Target = tuple[int, int]  # (evse id, connector id); (0, 0) = station, (n, 0) = EVSE n


class Availability:
    def __init__(self, evses: dict[int, "Evse"], store: "DeviceModelStore",
                 restart: Callable[[str], Awaitable[None]]) -> None:
        self.evses = evses
        self.store = store
        self._restart = restart
        self.inoperative: set[Target] = set()
        self.scheduled: dict[Target, bool] = {}  # target -> operative, waiting for idle
        self.reset_scheduled: dict[int, str] = {}  # 0 = station, else EVSE id -> reset type

    # ----------------------------------------------------------------- state
    def load(self, state: dict[str, str]) -> None:
        for key, value in state.items():
            if key.startswith("avail:") and value == "Inoperative":
                evse, connector = key[6:].split(".")
                self.inoperative.add((int(evse), int(connector)))
        for evse_id in self.evses:
            self._apply(evse_id)

    def exists(self, target: Target) -> bool:
        evse, connector = target
        if evse == 0:
            return connector == 0
        if evse not in self.evses:
            return False
        return connector == 0 or any(c.id == connector for c in self.evses[evse].config.connectors)

    def operative(self, target: Target) -> bool:
        return target not in self.inoperative

    def enabled(self, evse_id: int) -> bool:
        """One control pilot per EVSE: any inoperative level above or at it disables the whole EVSE."""
        return not any(t in self.inoperative for t in self._levels(evse_id))

    def _levels(self, evse_id: int) -> list[Target]:
        connectors = [(evse_id, c.id) for c in self.evses[evse_id].config.connectors]
        return [(0, 0), (evse_id, 0), *connectors]

    def view(self, evse: int, connector: int) -> str:
        """AvailabilityState for the device model."""
        if evse == 0:
            return "Unavailable" if (0, 0) in self.inoperative else "Available"
        statuses = self.evses[evse].connector_statuses()
        if connector == 0:
            return self.evses[evse].connector_status.value
        return statuses[connector].value

    def busy(self, evse_id: int) -> bool:
        return self.evses[evse_id].session is not None

    def affected(self, target: Target) -> list[int]:
        return sorted(self.evses) if target[0] == 0 else [target[0]]

    # ----------------------------------------------------------------- ChangeAvailability
    async def change(self, target: Target, operative: bool) -> str:
        if not self.exists(target):
            return "Rejected"
        self.scheduled.pop(target, None)
        if operative == self.operative(target):
            return "Accepted"
        if not operative and any(self.busy(e) for e in self.affected(target)):
            self.scheduled[target] = operative
            log.info("availability of %s: Inoperative scheduled after the running session", target)
            return "Scheduled"
        await self._set(target, operative)
        return "Accepted"

    async def _set(self, target: Target, operative: bool) -> None:
        await self.store.save_state({f"avail:{target[0]}.{target[1]}": None if operative else "Inoperative"})
        (self.inoperative.discard if operative else self.inoperative.add)(target)
        for evse_id in self.affected(target):
            self._apply(evse_id)

    def _apply(self, evse_id: int) -> None:
        enabled = self.enabled(evse_id)
        if self.evses[evse_id].enabled != enabled:
            self.evses[evse_id].set_enabled(enabled)

    # ----------------------------------------------------------------- Reset
    def reset(self, kind: str, evse_id: int | None) -> str:
        target = 0 if evse_id is None else evse_id
        if target and target not in self.evses:
            return "Rejected"
        busy = any(self.busy(e) for e in (sorted(self.evses) if target == 0 else [target]))
        if kind == "OnIdle" and busy:
            self.reset_scheduled[target] = kind
            return "Scheduled"
        return "Accepted"

    async def perform_reset(self, kind: str, evse_id: int | None) -> None:
        """After the Reset answer went out: end sessions, clear faults, and for the station restart OCPP."""
        target = 0 if evse_id is None else evse_id
        if kind == "OnIdle" and any(self.busy(e) for e in self.affected((target, 0))):
            return  # scheduled; on_event runs it when the sessions end
        self.reset_scheduled.pop(target, None)
        for e in self.affected((target, 0)):
            if self.busy(e):
                self.evses[e].deauthorize("ImmediateReset")
            self.evses[e].reset_faults()
        if target == 0:
            await self._restart("RemoteReset")

    # ----------------------------------------------------------------- session ends
    async def on_idle_check(self, event: EvseEvent) -> None:
        """Apply scheduled changes whose sessions have ended."""
        for target, operative in list(self.scheduled.items()):
            if not any(self.busy(e) for e in self.affected(target)):
                del self.scheduled[target]
                await self._set(target, operative)
        for target, kind in list(self.reset_scheduled.items()):
            if not any(self.busy(e) for e in self.affected((target, 0))):
                await self.perform_reset("Immediate", None if target == 0 else target)
