"""The durable queue in front of the outbox (E04, E07 durability): transaction messages are committed to
`QueueStore` before they are sent, go out one at a time in commit order after every reconnect, and are
removed only once the CSMS answered. A CALLERROR or timeout is retried per
`OCPPCommCtrlr.MessageAttempts/MessageAttemptInterval` (instance TransactionEvent): the n-th retry waits
n * MessageAttemptInterval; after the last attempt the message is dropped, logged and reported (control
event `OcppMessageDropped`, counter `dropped`). Messages behind a retried one wait: order is what billing
needs.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ocpp.v201 import call

from station.ocpp.outbox import Offline
from station.ocpp.queue_store import QueueStore, StoredMessage

if TYPE_CHECKING:
    from station.ocpp.service import OcppService

log = logging.getLogger("station.ocpp.queue")

ResultFn = Callable[[Any], None]


@dataclass
class Queued:
    message: StoredMessage
    durable: "asyncio.Future[None]"
    on_result: ResultFn | None = None


def payload_dict(payload: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(payload).items() if v is not None}


def transaction_of(message: StoredMessage) -> str | None:
    if message.action != "TransactionEvent":
        return None
    return str(message.payload["transaction_info"]["transaction_id"])


class DurableQueue:
    """Only the head of the queue (`window` messages) is held in memory: a station offline for days
    keeps its backlog on disk, not in its 512 MB; the rest is paged in from SQLite in order."""

    window = 500

    def __init__(self, svc: "OcppService") -> None:
        self.svc = svc
        self.store = QueueStore(svc.station.state_dir / "ocpp_queue.sqlite")
        self._items: deque[Queued] = deque()
        self._on_disk = 0  # messages only in SQLite (all after the in-memory ones)
        self._last_in_memory = 0  # highest seq ever placed in memory
        self._results: dict[int, ResultFn] = {}  # answer callbacks of messages on disk
        self._tx_counts: Counter[str] = Counter()  # queued TransactionEvents per transaction
        self._wake = asyncio.Event()
        self.delivered = 0
        self.dropped = 0
        self.retried = 0

    async def load(self) -> dict[str, dict[str, Any]]:
        """Messages left from the last run go first; returns the open transactions' stored states."""
        loaded = await self.store.load(self.window)
        self._place(loaded.messages)
        self._on_disk = loaded.total - len(loaded.messages)
        self._tx_counts.update(loaded.tx_counts)
        if loaded.total:
            log.info("%d queued message(s) from before the restart", loaded.total)
        self._wake.set()
        return loaded.txs

    def _place(self, messages: list[StoredMessage]) -> None:
        loop = asyncio.get_running_loop()
        for message in messages:
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            self._items.append(Queued(message, done, self._results.pop(message.seq, None)))
            self._last_in_memory = message.seq

    def offline(self) -> bool:
        """Whether an event happening now happens offline (E04: sent later with offline=true)."""
        return not (self.svc.connected and self.svc.outbox.accepted)

    def enqueue(self, payload: Any, *, tx: tuple[str, dict[str, Any] | None] | None = None,
                on_result: ResultFn | None = None) -> Queued:
        """Commit `payload` (with the transaction state it advances) and send it when its turn comes."""
        action = type(payload).__name__
        data = payload_dict(payload)
        seq, committed = self.store.append(action, data, tx=tx)
        item = Queued(StoredMessage(seq, action, data), asyncio.wrap_future(committed), on_result)
        tx_id = transaction_of(item.message)
        if tx_id is not None:
            self._tx_counts[tx_id] += 1
        if self._on_disk or len(self._items) >= self.window:
            self._on_disk += 1  # paged in when its turn comes
            if on_result is not None:
                self._results[seq] = on_result
        else:
            self._items.append(item)
            self._last_in_memory = seq
        self._wake.set()
        return item

    def save_tx(self, tx_id: str, state: dict[str, Any] | None) -> "asyncio.Future[None]":
        """Transaction state change with no message (committed in order with the messages)."""
        _, committed = self.store.append(None, None, tx=(tx_id, state))
        return asyncio.wrap_future(committed)

    def queued_transaction_events(self, transaction_id: str | None = None) -> bool:
        if transaction_id is None:
            return any(self._tx_counts.values())
        return self._tx_counts.get(transaction_id, 0) > 0

    def pending(self) -> int:
        return len(self._items) + self._on_disk

    def in_memory(self) -> int:
        return len(self._items)

    def _done_with(self, message: StoredMessage) -> None:
        tx_id = transaction_of(message)
        if tx_id is not None:
            self._tx_counts[tx_id] -= 1
            if self._tx_counts[tx_id] <= 0:
                del self._tx_counts[tx_id]

    def _attempts(self) -> int:
        return max(1, self.svc.dm.int_value("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent", default=3))

    def _interval_s(self) -> float:
        return float(self.svc.dm.int_value("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent",
                                           default=60))

    async def run(self) -> None:
        while True:
            if not self._items and self._on_disk:
                # FIFO on the store's thread: every append counted in _on_disk so far is committed first.
                page = await self.store.page(self._last_in_memory, self.window)
                self._on_disk -= len(page)
                self._place(page)
                continue
            if not self._items:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._items[0]
            message = item.message
            try:
                await item.durable
            except Exception:  # noqa: BLE001 - disk error: the message was never accepted
                log.exception("could not store %s; not sent", message.action)
                self._items.popleft()
                self._done_with(message)
                continue
            try:
                payload = getattr(call, message.action)(**message.payload)
            except Exception as exc:  # noqa: BLE001 - a stored row this version cannot rebuild
                message.attempts = max(message.attempts, self._attempts())
                await self._drop(message, exc)
                continue
            try:
                result = await self.svc.outbox.submit(payload, keep_offline=True)
            except Offline:
                await asyncio.sleep(0.05)  # the outbox is stopping
                continue
            except Exception as exc:  # noqa: BLE001 - CALLERROR or MessageTimeout
                message.attempts += 1
                if message.attempts >= self._attempts():
                    await self._drop(message, exc)
                    continue
                self.retried += 1
                await self.store.attempted(message.seq, message.attempts)
                log.warning("%s #%d failed (%s), attempt %d: retry in %.0f s", message.action, message.seq,
                            exc or type(exc).__name__, message.attempts, self._interval_s() * message.attempts)
                await asyncio.sleep(self._interval_s() * message.attempts)
                continue
            # Not awaited: the delete is committed in order on the store's thread while the next message
            # goes out. A power cut before it commits re-sends this message once (same bytes, same seqNo:
            # the CSMS recognises the duplicate), which a delete awaited here could not avoid either.
            self.store.remove_soon(message.seq)
            self._items.popleft()
            self._done_with(message)
            self.delivered += 1
            if item.on_result is not None:
                try:
                    item.on_result(result)
                except Exception:  # noqa: BLE001
                    log.exception("handling the answer to %s failed", message.action)

    async def _drop(self, message: StoredMessage, exc: BaseException) -> None:
        await self.store.remove(message.seq)
        self._items.popleft()
        self._done_with(message)
        self.dropped += 1
        log.error("%s #%d dropped after %d attempt(s): %s %.300s", message.action, message.seq,
                  message.attempts, exc or type(exc).__name__, message.payload)
        control = self.svc.station.control
        if control is not None:
            control.publish({"event": "OcppMessageDropped", "action": message.action, "attempts": message.attempts,
                             "error": str(exc) or type(exc).__name__})

    async def close(self) -> None:
        await self.store.close()
