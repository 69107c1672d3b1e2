"""The WebSocket link to the CSMS: connect with subprotocol ocpp2.0.1, reconnect with back-off.

Knows nothing of OCPP messages: the service hands it a session coroutine that runs while the link is up.
Back-off (OCPP 2.0.1 A.. / OCPPCommCtrlr): RetryBackOffWaitMinimum, doubled RetryBackOffRepeatTimes
times, plus a random 0..RetryBackOffRandomRange; back to the minimum after a successful connection.
"""
from __future__ import annotations

import asyncio
import logging
import random
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

log = logging.getLogger("station.ocpp.link")
SUBPROTOCOL = Subprotocol("ocpp2.0.1")


@dataclass
class BackOff:
    wait_minimum: Callable[[], float]
    random_range: Callable[[], float]
    repeat_times: Callable[[], int]

    def delay(self, attempt: int) -> float:
        doubled = self.wait_minimum() * (2 ** min(attempt, self.repeat_times()))
        return doubled + random.uniform(0, self.random_range())


class LinkRefused(RuntimeError):
    """The server answered but the link cannot be used (e.g. no ocpp2.0.1 subprotocol)."""


@dataclass
class LinkSettings:
    url: str
    tls: ssl.SSLContext | None
    headers: Callable[[], dict[str, str]]
    ping_interval_s: Callable[[], float]
    max_size: int
    open_timeout_s: float = 10.0


class Link:
    def __init__(self, settings: LinkSettings, backoff: BackOff) -> None:
        self.settings = settings
        self.backoff = backoff
        self.connected = False
        self.attempts = 0
        self.connections = 0
        self.last_error: str | None = None
        self._ws: ClientConnection | None = None

    async def open(self) -> ClientConnection:
        s = self.settings
        ping = s.ping_interval_s()
        ws = await connect(
            s.url, subprotocols=[SUBPROTOCOL], additional_headers=s.headers(), ssl=s.tls,
            ping_interval=ping if ping > 0 else None, ping_timeout=ping if ping > 0 else None,
            max_size=s.max_size, open_timeout=s.open_timeout_s, close_timeout=2, user_agent_header=None,
        )
        if ws.subprotocol != SUBPROTOCOL:
            await ws.close(1002, "ocpp2.0.1 subprotocol required")
            raise LinkRefused(f"CSMS did not agree to {SUBPROTOCOL} (got {ws.subprotocol!r})")
        return ws

    async def run(self, session: Callable[[ClientConnection], Awaitable[None]],
                  on_down: Callable[[], None]) -> None:
        """Keep the link up until cancelled; `session(ws)` runs while it is."""
        failures = 0
        while True:
            try:
                self.attempts += 1
                ws = await self.open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - refused, unreachable, TLS, anything: retry, never die
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self.backoff.delay(failures)
                failures += 1
                log.warning("cannot reach CSMS at %s (%s); retry in %.1f s", self.settings.url, self.last_error,
                            delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.connected, self._ws = True, ws
            self.connections += 1
            log.info("connected to %s", self.settings.url)
            try:
                await session(ws)
            except ConnectionClosed as exc:
                self.last_error = f"closed: {exc}"
                log.warning("CSMS link closed (%s)", exc)
            except Exception as exc:  # noqa: BLE001 - a bug in a session must not end reconnecting
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("OCPP session failed; reconnecting")
            finally:
                self.connected, self._ws = False, None
                on_down()
                await ws.close()
            await asyncio.sleep(self.backoff.delay(0))

    async def drop(self, reason: str) -> None:
        """Close the current link (e.g. new credentials); `run` reconnects."""
        if self._ws is not None:
            log.info("closing CSMS link: %s", reason)
            await self._ws.close(1000, reason[:120])
