"""Outgoing CALLs: one queue, one CALL in flight, MessageTimeout per CALL (OCPP-J: one CALL per direction).

Everything the station sends goes through `submit`, which returns a future and never waits for the
answer itself, so handlers and event listeners can submit without blocking the connection. Issue 4
(transactions) uses the same API; `keep_offline` messages wait for the next connection, the others
fail with `Offline` at once when the link is down or drops before they are answered.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ocpp.v201 import ChargePoint

log = logging.getLogger("station.ocpp.outbox")


class Offline(ConnectionError):
    """The CALL could not be delivered: no connection to the CSMS."""


@dataclass
class Outgoing:
    payload: Any
    future: asyncio.Future[Any]
    #: May go out before BootNotification is Accepted (the boot itself, triggered messages).
    before_accept: bool = False
    keep_offline: bool = False
    action: str = field(init=False)

    def __post_init__(self) -> None:
        self.action = type(self.payload).__name__


class Outbox:
    def __init__(self, timeout_s: Callable[[], float]) -> None:
        self._timeout_s = timeout_s
        self._queue: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self._cp: ChargePoint | None = None
        self.accepted = False  # BootNotification Accepted: ordinary messages may go
        self.sent = 0
        self._inflight: asyncio.Task[Any] | None = None

    # ----------------------------------------------------------------- API
    def submit(self, payload: Any, *, before_accept: bool = False, keep_offline: bool = False) -> asyncio.Future[Any]:
        """Queue a `ocpp.v201.call.X` payload; the future resolves to its `call_result.X`, or raises
        OCPPError (CALLERROR), asyncio.TimeoutError (MessageTimeout) or Offline."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._cp is None and not keep_offline:
            future.set_exception(Offline(f"{type(payload).__name__}: not connected"))
            future.exception()  # mark retrieved: fire-and-forget callers need not look
            return future
        self._queue.append(Outgoing(payload, future, before_accept, keep_offline))
        self._wake.set()
        return future

    async def call(self, payload: Any, **options: Any) -> Any:
        """Submit and await the answer. Not inside a CSMS CALL handler: the answer could never arrive
        before the handler's own answer went out (OCPP-J deadlock); use `submit` there."""
        from station.ocpp.rpc import answering

        if answering() is not None:
            raise RuntimeError(f"awaiting {type(payload).__name__} inside the handler of CALL {answering()}: "
                               "use outbox.submit() and do not await it")
        return await self.submit(payload, **options)

    def pending(self) -> int:
        return len(self._queue)

    def busy(self) -> bool:
        """Something is queued that could go now, or a CALL is in flight."""
        return self._inflight is not None or any(self.accepted or i.before_accept for i in self._queue)

    # ----------------------------------------------------------------- connection lifecycle
    def attach(self, cp: ChargePoint) -> None:
        self._cp = cp
        self._wake.set()

    def detach(self) -> None:
        """Link lost: fail what cannot wait, keep the rest in order."""
        self._cp = None
        self.accepted = False
        if self._inflight is not None:
            self._inflight.cancel()  # its answer can no longer come
        kept: deque[Outgoing] = deque()
        for item in self._queue:
            if item.keep_offline:
                kept.append(item)
            elif not item.future.done():
                item.future.set_exception(Offline(f"{item.action}: connection lost"))
                item.future.exception()
        self._queue = kept

    def set_accepted(self, accepted: bool) -> None:
        self.accepted = accepted
        self._wake.set()

    # ----------------------------------------------------------------- the worker
    def _next(self) -> Outgoing | None:
        if self._cp is None:
            return None
        for item in self._queue:
            if item.future.cancelled():
                continue
            if self.accepted or item.before_accept:
                self._queue.remove(item)
                return item
        return None

    async def run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            cp = self._cp
            assert cp is not None
            cp._response_timeout = self._timeout_s()
            self._inflight = asyncio.create_task(cp.call(item.payload, suppress=False))
            try:
                await asyncio.wait({self._inflight})
            except asyncio.CancelledError:
                self._inflight.cancel()
                if not item.future.done():
                    item.future.set_exception(Offline(f"{item.action}: stopped"))
                    item.future.exception()
                raise
            task, self._inflight = self._inflight, None
            if task.cancelled() or task.exception() is not None:
                exc = Offline(f"{item.action}: connection lost") if task.cancelled() else task.exception()
                if task.cancelled() and item.keep_offline:
                    self._queue.appendleft(item)  # the link dropped mid-call: send again next time
                    continue
                if not item.future.done():
                    item.future.set_exception(exc)  # type: ignore[arg-type]
                    item.future.exception()
                log.warning("%s failed: %.300s", item.action, exc or type(exc).__name__)
                continue
            self.sent += 1
            if not item.future.done():
                item.future.set_result(task.result())
