"""Durable storage for messages the CSMS bills from: the outgoing queue and the open transactions.

`<state_dir>/ocpp_queue.sqlite`, WAL, synchronous=FULL. A message and the transaction state it advances
(seqNo, trigger points reached) are committed in one SQLite transaction, so after a power cut the queue
and the transaction agree: nothing acknowledged is lost and no seqNo is used twice. All SQLite work runs
on one worker thread, in submission order (the order messages must reach the CSMS), never on the loop.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.ocpp.sqlite_durable import open_durable


@dataclass
class StoredMessage:
    seq: int
    action: str
    payload: dict[str, Any]
    attempts: int = 0


@dataclass
class Loaded:
    messages: list[StoredMessage]
    txs: dict[str, dict[str, Any]]
    total: int = 0
    max_seq: int = 0
    tx_counts: dict[str, int] = field(default_factory=dict)


class QueueStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-queue")
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1

    # ----------------------------------------------------------------- blocking parts (worker thread)
    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_durable(self.path)
            db.execute("CREATE TABLE IF NOT EXISTS message (seq INTEGER PRIMARY KEY, action TEXT NOT NULL, "
                       "payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)")
            db.execute("CREATE TABLE IF NOT EXISTS tx (tx_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db = db
        return self._db

    def _load(self, limit: int) -> "Loaded":
        db = self._open()
        loaded = Loaded(self._page(0, limit),
                        {tx_id: json.loads(state) for tx_id, state in db.execute("SELECT tx_id, state FROM tx")})
        loaded.total, loaded.max_seq = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM message").fetchone()
        loaded.tx_counts = dict(db.execute(
            "SELECT json_extract(payload, '$.transaction_info.transaction_id'), count(*) FROM message "
            "WHERE action = 'TransactionEvent' GROUP BY 1"))
        return loaded

    def _page(self, after_seq: int, limit: int) -> list[StoredMessage]:
        rows = self._open().execute("SELECT seq, action, payload, attempts FROM message WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after_seq, limit))
        return [StoredMessage(seq, action, json.loads(payload), attempts) for seq, action, payload, attempts in rows]

    def _append(self, seq: int, action: str | None, payload: str | None, tx: tuple[str, str | None] | None,
                kv: tuple[str, str] | None) -> None:
        db = self._open()
        with db:
            db.execute("BEGIN")
            if action is not None:
                db.execute("INSERT INTO message (seq, action, payload) VALUES (?, ?, ?)", (seq, action, payload))
            if tx is not None:
                tx_id, state = tx
                if state is None:
                    db.execute("DELETE FROM tx WHERE tx_id = ?", (tx_id,))
                else:
                    db.execute("INSERT OR REPLACE INTO tx (tx_id, state) VALUES (?, ?)", (tx_id, state))
            if kv is not None:
                db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", kv)

    def _remove(self, seq: int) -> None:
        with self._open() as db:
            db.execute("DELETE FROM message WHERE seq = ?", (seq,))

    def _attempted(self, seq: int, attempts: int) -> None:
        with self._open() as db:
            db.execute("UPDATE message SET attempts = ? WHERE seq = ?", (attempts, seq))

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ----------------------------------------------------------------- API (event loop)
    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self, limit: int) -> "Loaded":
        """The first `limit` queued messages, the open transactions, counts."""
        loaded = await self._run(self._load, limit)
        self._next_seq = loaded.max_seq + 1
        return loaded

    async def page(self, after_seq: int, limit: int) -> list[StoredMessage]:
        """The next messages after `after_seq`; every append made before this call is included."""
        return await self._run(self._page, after_seq, limit)

    def append(self, action: str | None, payload: dict[str, Any] | None, *,
               tx: tuple[str, dict[str, Any] | None] | None = None,
               kv: tuple[str, str] | None = None) -> tuple[int, "Future[None]"]:
        """Queue the commit of a message (and/or a transaction state change) now, in call order, without
        waiting: returns the message's sequence number and a concurrent future done once it is durable.
        `tx` = (transaction id, its new state, or None once it ended)."""
        seq = self._next_seq
        if action is not None:
            self._next_seq += 1
        tx_row = None if tx is None else (tx[0], None if tx[1] is None else json.dumps(tx[1]))
        text = None if payload is None else json.dumps(payload, separators=(",", ":"))
        return seq, self._executor.submit(self._append, seq, action, text, tx_row, kv)

    async def remove(self, seq: int) -> None:
        await self._run(self._remove, seq)

    def remove_soon(self, seq: int) -> "Future[None]":
        return self._executor.submit(self._remove, seq)

    async def attempted(self, seq: int, attempts: int) -> None:
        await self._run(self._attempted, seq, attempts)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    def file_sizes(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.exists()}

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.exists())
