"""Authorization over OCPP (C01, C09, C10-C16): who may charge and who may stop.

Tokens from the station's reader arrive at `token_presented` (installed as `station.token_handler`):
  * the token that authorized a running session stops it (no CSMS round trip); a token of the same
    GroupId stops it too (C09), a token of `AuthCtrlr.MasterPassGroupId` stops every session it can see
    (C16, stoppedReason MasterPass); a master-pass token never starts a session;
  * otherwise `authorize` decides: the local list (when enabled) or the cache answers at once when
    `LocalPreAuthorize` is set and the entry is Accepted; else Authorize goes to the CSMS and its
    idTokenInfo is cached; offline, `LocalAuthorizeOffline` lets the list / cache decide, and
    `OfflineTxForUnknownIdEnabled` accepts tokens neither knows;
  * an accepted token authorizes the EVSE it was read at, else the EV waiting for authorization, else the
    next plug-in.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.v201 import call

from station.ocpp.auth_cache import AuthCache, token_key
from station.ocpp.auth_store import AuthStore
from station.ocpp.local_list import LocalList

if TYPE_CHECKING:
    from hal.token_reader import TokenPresented
    from station.evse import Evse
    from station.ocpp.service import OcppService

log = logging.getLogger("station.ocpp.auth")

Info = dict[str, Any]


def group_of(info: Info | None) -> str | None:
    group = (info or {}).get("group_id_token")
    return group.get("id_token") if isinstance(group, dict) else None


class Authorization:
    def __init__(self, svc: "OcppService") -> None:
        self.svc = svc
        dm = svc.dm
        self.store = AuthStore(svc.station.state_dir / "ocpp_auth.sqlite")
        self.cache = AuthCache(self.store, lambda: dm.int_value("AuthCacheCtrlr", "LifeTime", default=86400),
                               lambda: dm.int_value("AuthCacheCtrlr", "MaxEntries", default=1000))
        self.local_list = LocalList(self.store)
        self.groups: dict[int, str | None] = {}  # EVSE -> GroupId of the token that authorized it
        self.source: str = ""  # where the last decision came from (logs, tests)

    async def load(self) -> None:
        self.cache.entries, self.local_list.entries, self.local_list.version = await self.store.load()

    async def close(self) -> None:
        await self.store.close()

    # ----------------------------------------------------------------- decisions
    def known(self, key: str) -> tuple[Info | None, str]:
        dm = self.svc.dm
        if dm.bool_value("LocalAuthListCtrlr", "Enabled", default=True):
            info = self.local_list.get(key)
            if info is not None:
                return info, "local list"
        if dm.bool_value("AuthCacheCtrlr", "Enabled", default=True):
            info = self.cache.get(key)
            if info is not None:
                return info, "cache"
        return None, ""

    def remember(self, id_token: str, token_type: str, info: Info) -> None:
        """C10: idTokenInfo from a CSMS answer goes into the cache (not for tokens on the local list)."""
        key = token_key(id_token, token_type)
        if self.svc.dm.bool_value("AuthCacheCtrlr", "Enabled", default=True) and self.local_list.get(key) is None:
            self.cache.put(key, info)

    async def authorize(self, id_token: str, token_type: str) -> Info:
        """idTokenInfo for the token (status Accepted / Invalid / Blocked / Expired / Unknown ...)."""
        dm = self.svc.dm
        if not dm.bool_value("AuthCtrlr", "Enabled", default=True):
            self.source = "disabled"
            return {"status": "Accepted"}
        key = token_key(id_token, token_type)
        local, where = self.known(key)
        online = not self.svc.queue.offline()
        if online and local is not None and local.get("status") == "Accepted" and dm.bool_value(
                "AuthCtrlr", "LocalPreAuthorize", default=False):
            self.source = where
            return local
        if online:
            from station.ocpp.transactions import id_token as token_dict
            try:
                # submit, not svc.call: a remote start runs this in a task spawned from the @after hook,
                # which inherits the handler's context (the answer has gone out: no deadlock).
                result = await self.svc.outbox.submit(call.Authorize(id_token=token_dict(id_token, token_type)))
                info = dict(result.id_token_info or {"status": "Invalid"})
                self.remember(id_token, token_type, info)
                self.source = "csms"
                return info
            except Exception as exc:  # noqa: BLE001 - timeout, link lost, CALLERROR: offline rules
                log.warning("Authorize for %s failed (%s): offline rules apply", id_token, exc or type(exc).__name__)
        if local is not None and dm.bool_value("AuthCtrlr", "LocalAuthorizeOffline", default=True):
            self.source = where
            return local
        if local is None and dm.bool_value("AuthCtrlr", "OfflineTxForUnknownIdEnabled", default=False):
            self.source = "offline unknown"
            return {"status": "Accepted"}
        self.source = "offline"
        return {"status": "Unknown" if local is None else local.get("status", "Invalid")}

    # ----------------------------------------------------------------- the token reader
    async def token_presented(self, token: "TokenPresented") -> str:
        evses = [e for e in self.svc.station.evses.values() if token.evse_id in (None, e.id)]
        running = [e for e in evses if e.authorized and e.session is not None]
        for evse in running:  # the token that started a session stops it (C01: no Authorize needed)
            if evse.session is not None and evse.session.id_token == token.id_token:
                evse.deauthorize("StopAuthorized")
                return f"stop on EVSE {evse.id}"
        info = await self.authorize(token.id_token, token.token_type)
        group = group_of(info)
        master = self.svc.dm.value("AuthCtrlr", "MasterPassGroupId")
        if master and group == master:
            for evse in running:
                evse.deauthorize("MasterPass")
            return f"master pass: stopped {len(running)} session(s)"
        if running and group is not None and info.get("status") == "Accepted":
            for evse in running:
                if self.groups.get(evse.id) == group:  # C09: same GroupId stops it
                    evse.deauthorize("StopAuthorized")
                    return f"stop on EVSE {evse.id} (group {group})"
        if info.get("status") != "Accepted":
            log.warning("token %s not authorized: %s (%s)", token.id_token, info.get("status"), self.source)
            return f"rejected ({info.get('status')})"
        target = self._target(evses)
        if target is None:
            return "no EVSE available"
        self.groups[target.id] = group
        target.authorize(token.id_token, token.token_type)
        return f"authorized EVSE {target.id} ({self.source})"

    @staticmethod
    def _target(evses: list["Evse"]) -> "Evse | None":
        waiting = [e for e in evses if e.ev_present and not e.authorized and e.enabled]
        idle = [e for e in evses if not e.ev_present and e.session is None and e.enabled]
        return (waiting or idle or [None])[0]
