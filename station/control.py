"""The local control endpoint: JSON lines over a Unix socket (`station status`, `station sim ...`).

Request: one JSON object per line, {"cmd": "...", ...args, "id": any}. Reply: one line,
{"ok": true, "result": ..., "id": ...} or {"ok": false, "error": "text", "id": ...}.
"watch" replies ok, then streams {"event": {...}} lines of everything passed to publish().
Bad requests get an error reply; the connection and the server go on. See docs/control-endpoint.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import enum
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

LINE_LIMIT = 64 * 1024
#: Events buffered per watcher before new ones are dropped (publish never waits for a reader).
WATCH_QUEUE_LEN = 1000
SOCKET_MODE = 0o660
#: sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
RESERVED = ("watch",)


class ControlError(Exception):
    """A request that cannot be served; the text goes to the client as is."""


def to_json(value: Any) -> Any:
    """json.dumps default: enums, flags, dataclasses, paths, times and sets as plain JSON."""
    if isinstance(value, enum.Flag):
        return [f.name for f in type(value) if f and f in value]  # e.g. ErrorFlag: list of set flags
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(obj: Any) -> bytes:
    return (json.dumps(obj, default=to_json, separators=(",", ":")) + "\n").encode()


@dataclasses.dataclass(eq=False)
class _Watcher:
    queue: asyncio.Queue[bytes]
    dropped: int = 0


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler] | None = None) -> None:
        self.path = Path(path)
        self._handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._watchers: set[_Watcher] = set()
        #: Events dropped across all watchers because they did not keep up.
        self.dropped_events = 0
        if handlers:
            self.add_handlers(handlers)

    def add_handlers(self, handlers: dict[str, Handler]) -> None:
        for name in handlers:
            if name in RESERVED or name in self._handlers:
                raise ValueError(f"control command {name!r} is already registered")
        self._handlers.update(handlers)

    @property
    def commands(self) -> list[str]:
        return sorted([*self._handlers, *RESERVED])

    # --- lifecycle ---
    async def start(self) -> None:
        path = self.path
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise ControlError(f"control socket path too long ({len(os.fsencode(path))} bytes, max {MAX_SOCKET_PATH}): {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._remove_stale(path)
        self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=LINE_LIMIT)
        os.chmod(path, SOCKET_MODE)
        log.info("control endpoint listening on %s", path)

    async def _remove_stale(self, path: Path) -> None:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{path} exists and is not a socket; not replacing it")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout=1.0)
        except (ConnectionRefusedError, FileNotFoundError, asyncio.TimeoutError):
            path.unlink(missing_ok=True)  # left behind by a station that did not stop cleanly
            return
        except PermissionError:
            raise ControlError(f"{path} exists and belongs to someone else (permission denied)") from None
        writer.close()
        raise ControlError(f"another station is already listening on {path}")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()

    # --- events ---
    @property
    def watched(self) -> bool:
        """Whether anyone is watching: publishers skip building events nobody reads."""
        return bool(self._watchers)

    def publish(self, event: dict[str, Any]) -> None:
        """Send an event to every watcher (call on the event loop). Never waits: a watcher whose
        queue is full loses the event and is told how many it lost."""
        if not self._watchers:
            return
        try:
            line = encode({"event": event})
        except (TypeError, ValueError):
            log.exception("control: event not JSON-serializable, not published: %r", event)
            return
        for watcher in self._watchers:
            try:
                watcher.queue.put_nowait(line)
            except asyncio.QueueFull:
                watcher.dropped += 1
                self.dropped_events += 1

    # --- connections ---
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # asyncio's LimitOverrunError surfaces as ValueError from readline
                    writer.write(encode({"ok": False, "error": f"request line longer than {LINE_LIMIT} bytes", "id": None}))
                    await writer.drain()
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                reply, watch = await self._handle(line)
                writer.write(reply)
                await writer.drain()
                if watch:
                    await self._stream(reader, writer)
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        except asyncio.CancelledError:
            pass  # server stopping
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, line: bytes) -> tuple[bytes, bool]:
        """The reply line for one request, and whether the connection now becomes a watch stream."""
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return encode({"ok": False, "error": f"malformed JSON: {exc}", "id": None}), False
        if not isinstance(request, dict):
            return encode({"ok": False, "error": f"request must be a JSON object, got {type(request).__name__}", "id": None}), False
        rid = request.get("id")
        cmd = request.get("cmd")
        if not isinstance(cmd, str):
            return encode({"ok": False, "error": 'request needs "cmd" (a string)', "id": rid}), False
        if cmd == "watch":
            return encode({"ok": True, "result": {"watching": True}, "id": rid}), True
        handler = self._handlers.get(cmd)
        if handler is None:
            error = f"unknown command {cmd!r}; available: {', '.join(self.commands)}"
            return encode({"ok": False, "error": error, "id": rid}), False
        args = {k: v for k, v in request.items() if k not in ("cmd", "id")}
        try:
            result = await handler(args)
            return encode({"ok": True, "result": result, "id": rid}), False
        except (ControlError, ValueError) as exc:
            return encode({"ok": False, "error": str(exc) or type(exc).__name__, "id": rid}), False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a handler must not take the endpoint down
            log.exception("control command %r failed", cmd)
            return encode({"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "id": rid}), False

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        watcher = _Watcher(asyncio.Queue(maxsize=WATCH_QUEUE_LEN))
        self._watchers.add(watcher)
        eof = asyncio.create_task(self._until_eof(reader))
        get: asyncio.Task[bytes] | None = None
        try:
            while True:
                get = asyncio.create_task(watcher.queue.get())
                done, _ = await asyncio.wait({get, eof}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    break
                if watcher.dropped:
                    notice = {"event": "WatchDropped", "dropped": watcher.dropped}
                    watcher.dropped = 0
                    writer.write(encode({"event": notice}))
                writer.write(get.result())
                await writer.drain()
        finally:
            self._watchers.discard(watcher)
            for task in (get, eof):
                if task is not None:
                    task.cancel()

    @staticmethod
    async def _until_eof(reader: asyncio.StreamReader) -> None:
        """A watch connection carries nothing more from the client; its EOF ends the stream."""
        with contextlib.suppress(ConnectionError, ValueError):
            while await reader.read(4096):
                pass
