"""CSMS -> station transaction calls: RequestStartTransaction / RequestStopTransaction (F01-F03) and
GetTransactionStatus (E14). Answers come from local state; the Authorize a remote start may need
(AuthCtrlr.AuthorizeRemoteStart) goes out after the answer, never awaited inside the handler."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

if TYPE_CHECKING:
    from station.evse import Evse
    from station.ocpp.service import OcppService

log = logging.getLogger("station.ocpp.tx")


class TransactionHandlers:
    svc: "OcppService"
    _after_plans: dict[str, Any]

    @on(Action.get_transaction_status)
    def handle_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        queue = self.svc.queue
        queued = queue.queued_transaction_events(transaction_id)
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=queued)
        ongoing = self.svc.transactions.by_id(transaction_id) is not None
        return call_result.GetTransactionStatus(messages_in_queue=queued, ongoing_indicator=ongoing)

    @on(Action.request_stop_transaction)
    def handle_request_stop_transaction(self, transaction_id: str, **_: Any) -> Any:
        tracker = self.svc.transactions.by_id(transaction_id)
        if tracker is None:
            return call_result.RequestStopTransaction(status="Rejected")
        tracker.evse.deauthorize("Remote")
        return call_result.RequestStopTransaction(status="Accepted")

    @on(Action.request_start_transaction)
    def handle_request_start_transaction(self, id_token: dict[str, Any], remote_start_id: int,
                                         call_unique_id: str, evse_id: int | None = None, **_: Any) -> Any:
        svc = self.svc
        evse = self._remote_start_target(evse_id)
        if evse is None:
            return call_result.RequestStartTransaction(status="Rejected")
        tracker = svc.transactions.trackers[evse.id]
        tracker.remote_start_id = remote_start_id
        self._after_plans[call_unique_id] = (evse, id_token)
        tx_id = tracker.tx["tx_id"] if tracker.tx is not None else None  # cable first: the running one
        return call_result.RequestStartTransaction(status="Accepted", transaction_id=tx_id)

    def _remote_start_target(self, evse_id: int | None) -> "Evse | None":
        evses = self.svc.station.evses
        candidates = [evses[evse_id]] if evse_id in evses else ([] if evse_id is not None else list(evses.values()))
        for evse in candidates:
            if evse.enabled and not evse.faults.active() and not evse.authorized:
                return evse
        return None

    @after(Action.request_start_transaction)
    def after_request_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        plan = self._after_plans.pop(call_unique_id, None)
        if plan is None:
            return
        evse, token = plan
        if self.svc.dm.bool_value("AuthCtrlr", "AuthorizeRemoteStart", default=True):
            self.svc.spawn(_authorize_then_start(self.svc, evse, token))
        else:
            evse.authorize(token["id_token"], token["type"])


async def _authorize_then_start(svc: "OcppService", evse: "Evse", token: dict[str, Any]) -> None:
    status = (await svc.authorization.authorize(token["id_token"], token["type"])).get("status")
    if status == "Accepted":
        evse.authorize(token["id_token"], token["type"])
    else:
        log.warning("remote start for %s not authorized (%s)", token["id_token"], status)
        svc.transactions.trackers[evse.id].remote_start_id = None

