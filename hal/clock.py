"""Time source for drivers and state machines.

Everything that waits or times out goes through a Clock so tests can drive time by hand
(ManualClock) instead of sleeping, and timing assertions stay exact on a noisy machine.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Callable


class TimerHandle(ABC):
    @abstractmethod
    def cancel(self) -> None: ...


class Clock(ABC):
    """Monotonic seconds, wall time, and callbacks scheduled on the event loop."""

    @abstractmethod
    def monotonic(self) -> float: ...

    @abstractmethod
    def wall(self) -> datetime: ...

    @abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_later(delay, wake)
        try:
            await fut
        finally:
            handle.cancel()


class _LoopTimer(TimerHandle):
    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()


class LoopClock(Clock):
    """The real clock: asyncio's loop time and the system wall clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return _LoopTimer(asyncio.get_running_loop().call_later(max(0.0, delay), callback))

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


class _ManualTimer(TimerHandle):
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock(Clock):
    """A clock that only moves when told to: `await clock.advance(1.5)`.

    Due callbacks run in deadline order; after each one the event loop gets a few turns so
    tasks woken by it (queues, futures) settle before time moves on.
    """

    def __init__(self, start_wall: datetime | None = None) -> None:
        self._now = 0.0
        self._wall0 = start_wall or datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._heap: list[tuple[float, int, _ManualTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall0 + timedelta(seconds=self._now)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer()
        heapq.heappush(self._heap, (self._now + max(0.0, delay), next(self._seq), timer, callback))
        return timer

    async def settle(self, turns: int = 20) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self._now + seconds
        await self.settle()
        while self._heap and self._heap[0][0] <= target:
            deadline, _, timer, callback = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, deadline)
            callback()
            await self.settle()
        self._now = target
        await self.settle()
