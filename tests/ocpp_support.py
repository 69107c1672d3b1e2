"""Shared pieces of the OCPP tests: the dev CSMS (scripts/dev_csms.py, on the `ocpp` package) on a free
loopback port, and a simulated station (real clock) whose `[ocpp]` table points at it."""
from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any, Callable

from station.config_model import StationConfig
from station.ocpp.service import OcppService
from station.station import Station
from tests import rig

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("dev_csms", REPO / "scripts" / "dev_csms.py")
assert _spec and _spec.loader
dev_csms = importlib.util.module_from_spec(_spec)
sys.modules["dev_csms"] = dev_csms
_spec.loader.exec_module(dev_csms)
DevCsms = dev_csms.DevCsms
PASSWORD = dev_csms.DEV_PASSWORD

#: Fast timers so reconnects and retries happen within a test.
FAST = {"OCPPCommCtrlr.RetryBackOffWaitMinimum": 0, "OCPPCommCtrlr.RetryBackOffRandomRange": 0,
        "OCPPCommCtrlr.MessageTimeout.Default": 5}


def station_config(tmp_path: Path, csms_url: str, *, evses: int = 1, variables: dict[str, Any] | None = None,
                   **ocpp: Any) -> StationConfig:
    table: dict[str, Any] = {"csms_url": csms_url, "security_profile": 1, "basic_auth_password": PASSWORD,
                             "variables": {**FAST, **(variables or {})}}
    table.update(ocpp)
    if "basic_auth_password" in table and table["basic_auth_password"] is None:
        del table["basic_auth_password"]
    return rig.config(tmp_path, evses=evses, ocpp=table)


class OcppStation:
    """A Station on the simulator with the OCPP service, as an async context manager."""

    def __init__(self, cfg: StationConfig, tmp_path: Path) -> None:
        self.station = Station(cfg, control_socket=tmp_path / "control.sock")

    async def __aenter__(self) -> "OcppStation":
        await self.station.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.station.stop()

    @property
    def svc(self) -> OcppService:
        return next(s for s in self.station.services if isinstance(s, OcppService))

    async def sim(self, cmd: str, **args: Any) -> Any:
        return await self.station.shared["sim.world"].control_handlers()[cmd](args)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class RawCsms:
    """A bare websocket CSMS for frame-level tests: answers the station's own CALLs (boot Accepted,
    empty results otherwise) and lets a test send raw frames and read the station's replies."""

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.replies: asyncio.Queue[Any] = asyncio.Queue()
        self.calls: list[list[Any]] = []
        self.ws: Any = None
        self._server: Any = None
        self._connected = asyncio.Event()
        self.port = 0

    async def start(self) -> "RawCsms":
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                   max_size=1 << 22)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, ws: Any) -> None:
        import json as _json

        from websockets.exceptions import ConnectionClosed

        self.ws = ws
        self._connected.set()
        try:
            async for raw in ws:
                frame = _json.loads(raw)
                if frame[0] == 2:
                    self.calls.append(frame)
                    if self.answer:
                        await ws.send(_json.dumps([3, frame[1], _result(frame[2])]))
                else:
                    self.replies.put_nowait(frame)
        except ConnectionClosed:
            pass

    async def connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, raw: str | bytes) -> None:
        await self.ws.send(raw)

    async def reply(self, timeout: float = 3.0) -> Any:
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def request(self, unique_id: str, action: str, payload: Any, timeout: float = 3.0) -> Any:
        import json as _json

        await self.send(_json.dumps([2, unique_id, action, payload]))
        while True:
            frame = await self.reply(timeout)
            if frame[1] == unique_id:
                return frame


def _result(action: str) -> dict[str, Any]:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    if action == "BootNotification":
        return {"currentTime": now, "interval": 300, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": now}
    return {}


async def ready(csms: Any, station_id: str = "TEST-1", connection: int = 1) -> Any:
    """The CSMS's view of a freshly booted station, once its boot is Accepted (statuses follow it)."""
    cp = await csms.station(station_id, connection=connection)
    await cp.wait_for("StatusNotification")
    return cp
