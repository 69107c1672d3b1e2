"""How every OCPP store opens its SQLite file: WAL with synchronous=FULL, so a commit that returned is on
disk and a power cut at any instant loses nothing acknowledged; private to the service user (0600)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def open_durable(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    os.chmod(path, 0o600)  # stores may hold secrets (BasicAuthPassword) and tokens
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
