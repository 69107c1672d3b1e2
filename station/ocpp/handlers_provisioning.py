"""CSMS -> station provisioning calls (block B): Get/SetVariables, GetBaseReport, GetReport, Reset.

Handlers answer from local state only and never await an outgoing CALL: follow-up messages
(NotifyReport, the reset itself) are queued from the `@after` hooks, once the answer has gone out.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from station.ocpp import dm_report
from station.ocpp.rpc import RpcError

if TYPE_CHECKING:
    from station.ocpp.service import OcppService


def limits_check(service: "OcppService", instance: str | None, list_key: str,  # type: ignore[no-untyped-def]
                 component: str = "DeviceDataCtrlr", action: str | None = None):
    """B05/B06/B08 (DeviceDataCtrlr) and D01 (LocalAuthListCtrlr): too many items ->
    OccurrenceConstraintViolation, too many bytes -> FormatViolation; nothing of the request is applied."""
    name = action or instance

    def check(payload: dict[str, Any], size: int) -> RpcError | None:
        items = service.dm.int_value(component, "ItemsPerMessage", instance, default=50)
        max_bytes = service.dm.int_value(component, "BytesPerMessage", instance, default=65536)
        if size > max_bytes:
            return RpcError("FormatViolation", f"{name} request of {size} bytes exceeds {component}."
                                               f"BytesPerMessage {max_bytes}")
        if len(payload.get(list_key) or ()) > items:
            return RpcError("OccurrenceConstraintViolation", f"{name} request has more than {component}."
                                                              f"ItemsPerMessage {items} items")
        return None
    return check


class ProvisioningHandlers:
    svc: "OcppService"
    _after_plans: dict[str, Any]

    @on(Action.get_variables)
    def handle_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return call_result.GetVariables(get_variable_result=self.svc.dm.get_variables(get_variable_data))

    @on(Action.set_variables)
    async def handle_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return call_result.SetVariables(set_variable_result=await self.svc.dm.set_variables(set_variable_data))

    @on(Action.get_base_report)
    def handle_get_base_report(self, request_id: int, report_base: str, call_unique_id: str, **_: Any) -> Any:
        self._after_plans[call_unique_id] = (request_id, dm_report.base_report(self.svc.dm, report_base))
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    def after_get_base_report(self, call_unique_id: str, **_: Any) -> None:
        plan = self._after_plans.pop(call_unique_id, None)
        if plan:
            self.svc.send_report(*plan)

    @on(Action.get_report)
    def handle_get_report(self, request_id: int, call_unique_id: str, component_variable: list[dict[str, Any]]
                          | None = None, component_criteria: list[str] | None = None, **_: Any) -> Any:
        data = dm_report.criteria_report(self.svc.dm, component_variable, component_criteria)
        if not data:
            return call_result.GetReport(status="EmptyResultSet")
        self._after_plans[call_unique_id] = (request_id, data)
        return call_result.GetReport(status="Accepted")

    @after(Action.get_report)
    def after_get_report(self, call_unique_id: str, **_: Any) -> None:
        plan = self._after_plans.pop(call_unique_id, None)
        if plan:
            self.svc.send_report(*plan)

    @on(Action.reset)
    def handle_reset(self, type: str, call_unique_id: str, evse_id: int | None = None, **_: Any) -> Any:
        status = self.svc.availability.reset(type, evse_id)
        if status == "Accepted":
            self._after_plans[call_unique_id] = (type, evse_id)
        return call_result.Reset(status=status)

    @after(Action.reset)
    async def after_reset(self, call_unique_id: str, **_: Any) -> None:
        plan = self._after_plans.pop(call_unique_id, None)
        if plan:
            await self.svc.availability.perform_reset(*plan)


def notify_report_parts(request_id: int, data: list[dict[str, Any]], per_message: int,
                        generated_at: str) -> list[Any]:
    parts = dm_report.split(data, per_message)
    return [call.NotifyReport(request_id=request_id, generated_at=generated_at, seq_no=n, tbc=n < len(parts) - 1,
                              report_data=part or None) for n, part in enumerate(parts)]
