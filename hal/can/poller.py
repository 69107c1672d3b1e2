"""The cyclic sender: one callback every `interval_s` on the driver's clock.

CAN power modules switch themselves off after ~10 s without controller frames, and a CAN
control-pilot board wants its charge-control frame periodically; both use this. The period is
kept on a fixed grid (next = previous + interval), so a slow callback does not stretch it, and
a callback that raises is logged and counted without stopping the cycle.
"""
from __future__ import annotations

import logging
from typing import Callable

from hal.clock import Clock, TimerHandle

log = logging.getLogger(__name__)


class CyclicPoller:
    def __init__(self, clock: Clock, interval_s: float, tick: Callable[[], None]) -> None:
        self._clock, self.interval_s, self._tick = clock, interval_s, tick
        self._timer: TimerHandle | None = None
        self._next = 0.0
        self.ticks = 0
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self, immediately: bool = True) -> None:
        if self._timer is not None:
            return
        self._next = self._clock.monotonic() + (0.0 if immediately else self.interval_s)
        self._timer = self._clock.call_later(self._next - self._clock.monotonic(), self._due)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self.ticks += 1
        try:
            self._tick()
        except Exception:  # noqa: BLE001 - the cycle must go on: modules switch off without it
            self.errors += 1
            log.exception("cyclic CAN poll failed")
        if self._timer is None:  # stopped from inside the tick
            return
        now = self._clock.monotonic()
        self._next += self.interval_s
        if self._next < now:  # fell behind (loaded machine): skip, do not burst
            self._next = now + self.interval_s
        self._timer = self._clock.call_later(self._next - now, self._due)
