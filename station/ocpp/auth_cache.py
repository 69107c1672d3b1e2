"""The authorization cache (C10-C12): idTokenInfo from every Authorize and TransactionEvent answer,
kept until its cacheExpiryDateTime or `AuthCacheCtrlr.LifeTime` after it was stored; least recently
used entries go first when `AuthCacheCtrlr.MaxEntries` is reached. Tokens on the local list are not
cached (C14: the list wins). Wall-clock times: the cache outlives restarts."""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

from station.ocpp.auth_store import AuthStore, Entry


def token_key(id_token: str, token_type: str) -> str:
    return f"{token_type}:{id_token}"


def _expiry(info: dict[str, Any], lifetime_s: int, now: float) -> float:
    stamp = info.get("cache_expiry_date_time")
    if stamp:
        try:
            return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + lifetime_s


class AuthCache:
    def __init__(self, store: AuthStore, lifetime_s: Callable[[], int], max_entries: Callable[[], int],
                 now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lifetime_s = lifetime_s
        self.max_entries = max_entries
        self.now = now
        self.entries: dict[str, Entry] = {}  # key -> {"info": ..., "expires": t, "used": t}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        now = self.now()
        if entry["expires"] <= now:  # C10.FR.xx: an expired entry is treated as unknown (and removed)
            del self.entries[key]
            self.store.cache_soon(delete=[key])
            return None
        entry["used"] = now
        return dict(entry["info"])

    def put(self, key: str, info: dict[str, Any]) -> None:
        now = self.now()
        entry = {"info": info, "expires": _expiry(info, self.lifetime_s(), now), "used": now}
        self.entries[key] = entry
        evicted: list[str] = []
        while len(self.entries) > max(1, self.max_entries()):
            oldest = min(self.entries, key=lambda k: self.entries[k]["used"])
            del self.entries[oldest]
            evicted.append(oldest)
        self.store.cache_soon(put={key: entry} if key in self.entries else None, delete=evicted)

    def drop(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.store.cache_soon(delete=[key])

    def clear(self) -> None:
        self.entries.clear()
        self.store.cache_soon(clear=True)
