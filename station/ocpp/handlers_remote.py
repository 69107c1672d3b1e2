"""CSMS -> station availability and remote-control calls: ChangeAvailability (G03), UnlockConnector (F05),
TriggerMessage (F06), DataTransfer (P01). Follow-up messages go out from `@after`, after the answer."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

if TYPE_CHECKING:
    from station.ocpp.service import OcppService

#: TriggerMessage extensions (issue 4 adds MeterValues / TransactionEvent): requested message ->
#: fn(evse_id or None, connector_id or None) that queues it (called after the Accepted answer went out).
TriggerFn = Callable[[int | None, int | None], None]


class RemoteHandlers:
    svc: "OcppService"
    _after_plans: dict[str, Any]

    @on(Action.change_availability)
    async def handle_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None,
                                         **_: Any) -> Any:
        target = (evse["id"], evse.get("connector_id") or 0) if evse else (0, 0)
        status = await self.svc.availability.change(target, operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on(Action.unlock_connector)
    async def handle_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        evse = self.svc.station.evses.get(evse_id)
        if evse is None or not any(c.id == connector_id for c in evse.config.connectors):
            return call_result.UnlockConnector(status="UnknownConnector")
        if evse.session is not None and evse.authorized:
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        # Awaiting the EVSE is bounded by its lock timeout; no outgoing CALL is awaited here.
        unlocked = await evse.unlock_connector()
        return call_result.UnlockConnector(status="Unlocked" if unlocked else "UnlockFailed")

    @on(Action.trigger_message)
    def handle_trigger_message(self, requested_message: str, call_unique_id: str,
                               evse: dict[str, Any] | None = None, **_: Any) -> Any:
        svc = self.svc
        evse_id = evse["id"] if evse else None
        connector_id = evse.get("connector_id") if evse else None
        if evse_id is not None and (evse_id not in svc.station.evses or (connector_id is not None and not any(
                c.id == connector_id for c in svc.station.evses[evse_id].config.connectors))):
            return call_result.TriggerMessage(status="Rejected")
        if requested_message == "BootNotification" and svc.boot.status == "Accepted":
            return call_result.TriggerMessage(status="Rejected")  # F06.FR.17
        if requested_message not in svc.triggers:
            return call_result.TriggerMessage(status="NotImplemented")
        self._after_plans[call_unique_id] = (requested_message, evse_id, connector_id)
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        plan = self._after_plans.pop(call_unique_id, None)
        if plan:
            message, evse_id, connector_id = plan
            self.svc.triggers[message](evse_id, connector_id)

    @on(Action.data_transfer)
    def handle_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None,
                             **_: Any) -> Any:
        handler = self.svc.data_transfer_vendors.get(vendor_id)
        if handler is None:
            return call_result.DataTransfer(status="UnknownVendorId")
        return handler(message_id, data)


def builtin_triggers(svc: "OcppService") -> dict[str, TriggerFn]:
    def boot(evse_id: int | None, connector_id: int | None) -> None:
        svc.boot.trigger()

    def heartbeat(evse_id: int | None, connector_id: int | None) -> None:
        svc.spawn(svc.boot.send_heartbeat(before_accept=True))

    def status(evse_id: int | None, connector_id: int | None) -> None:
        svc.status.send_all(evse_id, connector_id, before_accept=True)

    def firmware(evse_id: int | None, connector_id: int | None) -> None:
        svc.outbox.submit(call.FirmwareStatusNotification(status="Idle"), before_accept=True)

    def log_status(evse_id: int | None, connector_id: int | None) -> None:
        svc.outbox.submit(call.LogStatusNotification(status="Idle"), before_accept=True)

    return {"BootNotification": boot, "Heartbeat": heartbeat, "StatusNotification": status,
            "FirmwareStatusNotification": firmware, "LogStatusNotification": log_status}
