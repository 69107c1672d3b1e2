"""StatusNotification (G01/B01) for every connector status change the EVSEs publish, and after a
(re)connection: all connectors after boot or after an outage longer than OfflineThreshold, else
only those whose status changed while the link was down."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from ocpp.v201 import call

from station.session import ConnectorStatusChanged, EvseEvent

if TYPE_CHECKING:
    from station.evse import Evse
    from station.ocpp.outbox import Outbox

log = logging.getLogger("station.ocpp.status")


class StatusReporter:
    def __init__(self, evses: dict[int, "Evse"], outbox: "Outbox", now_iso: Callable[[], str],
                 offline_threshold_s: Callable[[], int]) -> None:
        self.evses = evses
        self.outbox = outbox
        self.now_iso = now_iso
        self.offline_threshold_s = offline_threshold_s
        self.reported: dict[tuple[int, int], str] = {}  # what the CSMS last acknowledged
        self.offline_since: float | None = time.monotonic()
        self.sent = 0
        #: QueueAllMessages (issue 4): payload -> durable-queue future, or None when not set. Status
        #: changes then queue while offline and go out in order after the reconnect.
        self.durable: Callable[[Any], "asyncio.Future[Any] | None"] | None = None

    def current(self) -> dict[tuple[int, int], str]:
        return {(e, c): s.value for e, evse in self.evses.items() for c, s in evse.connector_statuses().items()}

    def on_event(self, event: EvseEvent) -> None:
        if isinstance(event, ConnectorStatusChanged) and (self.outbox.accepted or self._queue_all()):
            self.send(event.evse_id, event.connector_id, event.status)

    def _queue_all(self) -> bool:
        return self.durable is not None and self.durable(None) is not None

    def send(self, evse_id: int, connector_id: int, status: str, *, before_accept: bool = False) -> None:
        payload = call.StatusNotification(timestamp=self.now_iso(), connector_status=status, evse_id=evse_id,
                                          connector_id=connector_id)
        self.sent += 1
        durable = self.durable(payload) if self.durable is not None and not before_accept else None
        if durable is not None:
            durable.add_done_callback(lambda f: self.reported.__setitem__((evse_id, connector_id), status))
            return
        future = self.outbox.submit(payload, before_accept=before_accept)

        def done(f: "object") -> None:
            if not future.cancelled() and future.exception() is None:
                self.reported[(evse_id, connector_id)] = status
        future.add_done_callback(done)

    def send_all(self, evse_id: int | None = None, connector_id: int | None = None, *,
                 before_accept: bool = False) -> int:
        count = 0
        for (e, c), status in sorted(self.current().items()):
            if (evse_id is None or e == evse_id) and (connector_id is None or c == connector_id):
                self.send(e, c, status, before_accept=before_accept)
                count += 1
        return count

    def link_down(self) -> None:
        if self.offline_since is None:
            self.offline_since = time.monotonic()

    def after_accept(self, first_boot: bool) -> None:
        offline_for = time.monotonic() - self.offline_since if self.offline_since is not None else 0.0
        self.offline_since = None
        if first_boot or offline_for > self.offline_threshold_s():
            log.info("reporting every connector (%s)", "boot" if first_boot else f"offline {offline_for:.0f} s")
            self.send_all()
            return
        if self._queue_all():
            return  # the changes made offline are in the durable queue, in order
        for key, status in sorted(self.current().items()):
            if self.reported.get(key) != status:
                self.send(*key, status)
