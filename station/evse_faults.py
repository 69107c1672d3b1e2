"""Latching of an EVSE's faults: raised by conditions or events, cleared by each kind's policy."""
from __future__ import annotations

from typing import Callable

from hal.clock import Clock
from station.faults import Clears, Fault, FaultKind


class FaultLatch:
    def __init__(self, clock: Clock, on_raised: Callable[[Fault], None],
                 on_cleared: Callable[[Fault], None]) -> None:
        self._clock = clock
        self._on_raised = on_raised
        self._on_cleared = on_cleared
        self._active: dict[FaultKind, Fault] = {}
        self._conditions: set[FaultKind] = set()

    def raise_(self, kind: FaultKind, detail: str = "") -> None:
        if kind not in self._active:
            fault = Fault(kind, self._clock.wall(), detail)
            self._active[kind] = fault
            self._on_raised(fault)

    def set_condition(self, kind: FaultKind, present: bool, detail: str = "") -> None:
        """A condition the board reports continuously (error flag, CP reading, link)."""
        if present:
            self._conditions.add(kind)
            self.raise_(kind, detail)
            return
        self._conditions.discard(kind)
        if kind.clears in (Clears.FLAG, Clears.LINK):
            self._clear(kind)

    def clear_on_unplug(self) -> None:
        for kind in [k for k in self._active if k.clears is Clears.UNPLUG and k not in self._conditions]:
            self._clear(kind)

    def reset_manual(self, condition_gone: Callable[[FaultKind], bool]) -> None:
        for kind in [k for k in self._active if k.clears is Clears.MANUAL]:
            if kind not in self._conditions and condition_gone(kind):
                self._clear(kind)

    def _clear(self, kind: FaultKind) -> None:
        fault = self._active.pop(kind, None)
        if fault is not None:
            self._on_cleared(fault)

    def latched_except(self, *kinds: FaultKind) -> bool:
        return any(k not in kinds for k in self._active)

    def active(self) -> list[Fault]:
        return list(self._active.values())

    def __contains__(self, kind: FaultKind) -> bool:
        return kind in self._active
