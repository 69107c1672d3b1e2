"""Device-model persistence: CSMS-set values and the config seeds they were set against (SQLite, WAL).

Every write commits with synchronous=FULL before the caller answers the CSMS, so a power cut loses no
value the station acknowledged. All SQLite work runs on one worker thread, never on the event loop.
"""
from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from station.ocpp.sqlite_durable import open_durable


class DeviceModelStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-dm")
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_durable(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS dm_value (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS dm_seed (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db = db
        return self._db

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ----------------------------------------------------------------- blocking parts (worker thread)
    def _load(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        db = self._open()
        return (dict(db.execute("SELECT key, value FROM dm_value")),
                dict(db.execute("SELECT key, value FROM dm_seed")),
                dict(db.execute("SELECT key, value FROM kv")))

    def _write(self, table: str, rows: dict[str, str | None]) -> None:
        db = self._open()
        with db:
            db.execute("BEGIN")
            for key, value in rows.items():
                if value is None:
                    db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
                else:
                    db.execute(f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)", (key, value))

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ----------------------------------------------------------------- async API
    async def load(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """(CSMS-set values, seeds they were set against, other station state)."""
        return await self._run(self._load)

    async def save_values(self, rows: dict[str, str | None]) -> None:
        await self._run(self._write, "dm_value", rows)

    async def save_seeds(self, rows: dict[str, str | None]) -> None:
        await self._run(self._write, "dm_seed", rows)

    async def save_state(self, rows: dict[str, str | None]) -> None:
        await self._run(self._write, "kv", rows)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=False)
