"""Persistence for the authorization cache and the local authorization list (C10-C14): SQLite under the
state dir (`ocpp_auth.sqlite`, WAL, synchronous=FULL), one worker thread, never on the event loop. A
SendLocalList is committed before it is answered Accepted; cache writes are committed in order."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from station.ocpp.sqlite_durable import open_durable

Entry = dict[str, Any]


class AuthStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-auth")
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_durable(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS cache (token TEXT PRIMARY KEY, entry TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS local_list (token TEXT PRIMARY KEY, info TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db = db
        return self._db

    def _load(self) -> tuple[dict[str, Entry], dict[str, Entry], int]:
        db = self._open()
        cache = {k: json.loads(v) for k, v in db.execute("SELECT token, entry FROM cache")}
        local = {k: json.loads(v) for k, v in db.execute("SELECT token, info FROM local_list")}
        row = db.execute("SELECT value FROM kv WHERE key = 'list_version'").fetchone()
        return cache, local, int(row[0]) if row else 0

    def _cache(self, put: dict[str, Entry], delete: list[str], clear: bool) -> None:
        with self._open() as db:
            if clear:
                db.execute("DELETE FROM cache")
            for token in delete:
                db.execute("DELETE FROM cache WHERE token = ?", (token,))
            for token, entry in put.items():
                db.execute("INSERT OR REPLACE INTO cache (token, entry) VALUES (?, ?)", (token, json.dumps(entry)))

    def _list(self, version: int, full: bool, put: dict[str, Entry], delete: list[str]) -> None:
        with self._open() as db:
            if full:
                db.execute("DELETE FROM local_list")
            for token in delete:
                db.execute("DELETE FROM local_list WHERE token = ?", (token,))
            for token, info in put.items():
                db.execute("INSERT OR REPLACE INTO local_list (token, info) VALUES (?, ?)", (token, json.dumps(info)))
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('list_version', ?)", (str(version),))

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self) -> tuple[dict[str, Entry], dict[str, Entry], int]:
        return await self._run(self._load)

    def cache_soon(self, put: dict[str, Entry] | None = None, delete: list[str] | None = None,
                   clear: bool = False) -> None:
        self._executor.submit(self._cache, put or {}, delete or [], clear)

    async def write_list(self, version: int, full: bool, put: dict[str, Entry], delete: list[str]) -> None:
        await self._run(self._list, version, full, put, delete)

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        await self._run(close)
        self._executor.shutdown(wait=True)
