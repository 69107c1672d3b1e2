"""The local authorization list (D01, D02, C13, C14): SendLocalList Full / Differential, version number,
persisted before the answer."""
from __future__ import annotations

from typing import Any

from station.ocpp.auth_cache import token_key
from station.ocpp.auth_store import AuthStore, Entry

#: LocalAuthListCtrlr.Entries maxLimit: a list that would grow past it is refused (Failed), unchanged.
LOCAL_LIST_MAX_ENTRIES = 50000


class LocalList:
    def __init__(self, store: AuthStore) -> None:
        self.store = store
        self.version = 0
        self.entries: dict[str, Entry] = {}  # token key -> idTokenInfo

    def get(self, key: str) -> dict[str, Any] | None:
        info = self.entries.get(key)
        return dict(info) if info is not None else None

    async def update(self, version: int, update_type: str, items: list[dict[str, Any]]) -> str:
        """SendLocalList: Accepted / Failed / VersionMismatch (D01.FR.18/19)."""
        full = update_type == "Full"
        if version <= 0 or (not full and version <= self.version):
            return "VersionMismatch"
        put: dict[str, Entry] = {}
        delete: list[str] = []
        for item in items:
            key = token_key(item["id_token"]["id_token"], item["id_token"]["type"])
            if key in put or key in delete:
                return "Failed"  # the same token twice in one message
            info = item.get("id_token_info")
            if info is not None:
                put[key] = info
            elif full:
                return "Failed"  # D01.FR.06: a full list needs idTokenInfo for every entry
            else:
                delete.append(key)
        kept = 0 if full else len(set(self.entries) - set(delete) - set(put))
        if kept + len(put) > LOCAL_LIST_MAX_ENTRIES:
            return "Failed"
        await self.store.write_list(version, full, put, delete)
        if full:
            self.entries = {}
        for key in delete:
            self.entries.pop(key, None)
        self.entries.update(put)
        self.version = version
        return "Accepted"
