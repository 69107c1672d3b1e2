"""Client side of the control endpoint: one request per connection, or a watch stream."""
from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from station.control import ControlError, encode

#: Replies (a full status, sim.state) may be far longer than a request line.
REPLY_LIMIT = 16 * 1024 * 1024


class StationUnreachable(ControlError):
    """Nothing answers on the socket (station not running, wrong path, no permission)."""


async def _connect(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(str(path), limit=REPLY_LIMIT)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        raise StationUnreachable(
            f"no station is listening on {path} (is it running? use --socket or --config)"
        ) from None
    except PermissionError:
        raise StationUnreachable(
            f"permission denied on {path} (run as the station's user or a member of its group)"
        ) from None


async def _read_reply(reader: asyncio.StreamReader, path: Path) -> dict[str, Any]:
    try:
        line = await reader.readline()
    except (ValueError, ConnectionError) as exc:
        raise ControlError(f"bad reply from {path}: {exc}") from None
    if not line:
        raise ControlError(f"the station at {path} closed the connection without a reply")
    try:
        reply = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"unreadable reply from {path}: {exc}") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ControlError(f"unexpected reply from {path}: {line[:200]!r}")
    return reply


async def call(path: Path, cmd: str, **args: Any) -> Any:
    """Send one command and return its result; ControlError carries the station's error text."""
    path = Path(path)
    reader, writer = await _connect(path)
    try:
        writer.write(encode({"cmd": cmd, **args}))
        await writer.drain()
        reply = await _read_reply(reader, path)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if not reply["ok"]:
        raise ControlError(str(reply.get("error") or "unknown error"))
    return reply.get("result")


class WatchStream:
    """Events the station publishes, as they come, until it closes the connection (or `close()`).

    Iterate with `async for`; call `connect()` first to be sure no event published after that
    point is missed (e.g. before asking for a status snapshot). When this client fell behind, an
    event {"event": "WatchDropped", "dropped": N} says how many events were lost."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closed = False

    async def connect(self) -> None:
        if self._reader is not None or self._closed:
            return
        reader, writer = await _connect(self.path)
        self._writer = writer
        try:
            writer.write(encode({"cmd": "watch"}))
            await writer.drain()
            reply = await _read_reply(reader, self.path)
        except BaseException:
            await self.close()
            raise
        if not reply["ok"]:
            await self.close()
            raise ControlError(str(reply.get("error") or "unknown error"))
        self._reader = reader

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None

    def __aiter__(self) -> "WatchStream":
        return self

    async def __anext__(self) -> dict[str, Any]:
        await self.connect()
        while self._reader is not None and not self._closed:
            try:
                line = await self._reader.readline()
            except (ConnectionError, ValueError):
                line = b""
            if not line:
                break
            try:
                message = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                await self.close()
                raise ControlError(f"unreadable event from {self.path}: {exc}") from None
            if isinstance(message, dict) and isinstance(message.get("event"), dict):
                return message["event"]
        await self.close()
        raise StopAsyncIteration

    async def __aenter__(self) -> "WatchStream":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def watch(path: Path) -> WatchStream:
    """`async for event in watch(path)`: the station's events until it closes the connection."""
    return WatchStream(path)
