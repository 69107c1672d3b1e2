"""CSMS -> station authorization calls: ClearCache (C11), SendLocalList (D01), GetLocalListVersion (D02)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

if TYPE_CHECKING:
    from station.ocpp.service import OcppService


class AuthHandlers:
    svc: "OcppService"

    @on(Action.clear_cache)
    def handle_clear_cache(self, **_: Any) -> Any:
        if not self.svc.dm.bool_value("AuthCacheCtrlr", "Enabled", default=True):
            return call_result.ClearCache(status="Rejected")
        self.svc.authorization.cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on(Action.send_local_list)
    async def handle_send_local_list(self, version_number: int, update_type: str,
                                     local_authorization_list: list[dict[str, Any]] | None = None, **_: Any) -> Any:
        if not self.svc.dm.bool_value("LocalAuthListCtrlr", "Enabled", default=True):
            return call_result.SendLocalList(status="Failed")
        # Awaits only the SQLite commit (the list is durable before it is answered), never a CALL.
        status = await self.svc.authorization.local_list.update(version_number, update_type,
                                                                local_authorization_list or [])
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def handle_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(version_number=self.svc.authorization.local_list.version)
