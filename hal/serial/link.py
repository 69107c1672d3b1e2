"""What both serial board drivers share: the port, link supervision and input bookkeeping.

Link supervision: every valid frame from the board counts as a sign of life. After
`link_timeout_s` without one the link is declared lost (LinkChanged(False, reason)). While the
link is down the board's reports are still tracked, silently; the link comes back once frames
return *and* the board reports a safe state (the protocol decides what that means), and then
LinkChanged(True) is followed by every input, so a consumer can rebuild its view from events.
While the link is up an input is emitted only when it really changes.

Timing goes through `context.clock`, so tests drive the link timeout with a ManualClock; the
port's bytes are real I/O.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, ClassVar

import serial
from pydantic.v1 import BaseModel, Extra, Field, validator

from hal.board import (
    BayChanged,
    Board,
    BoardInputs,
    ContactorChanged,
    CPChanged,
    ErrorsChanged,
    LinkChanged,
    LockChanged,
    PPChanged,
    TelemetryUpdated,
)
from hal.clock import TimerHandle
from hal.driver import DriverContext
from hal.serial.counters import LINK_COUNTERS, Counters
from hal.serial.transport import SerialTransport

log = logging.getLogger(__name__)

#: Input field of BoardInputs -> the event that reports it.
INPUT_EVENTS: dict[str, Any] = {
    "cp": CPChanged,
    "pp_rating_a": PPChanged,
    "contactor_closed": ContactorChanged,
    "errors": ErrorsChanged,
    "lock": LockChanged,
    "telemetry": TelemetryUpdated,
    "bay_occupied": BayChanged,
}


class SerialSettings(BaseModel):
    port: str = Field(..., min_length=1, description="serial device or pyserial URL, e.g. /dev/ttyAMA0")
    baudrate: int = Field(115200, gt=0)
    link_timeout_s: float = Field(5.0, gt=0, description="rx silence after which the link is lost")
    keepalive_interval_s: float = Field(1.0, gt=0, description="host keep-alive / poll period")
    reconnect_interval_s: float = Field(1.0, gt=0, description="retry period for a port that is gone")

    class Config:
        extra = Extra.forbid

    @validator("keepalive_interval_s")
    def _keepalive_below_timeout(cls, v: float, values: dict[str, Any]) -> float:  # noqa: N805
        timeout = values.get("link_timeout_s")
        if timeout is not None and v >= timeout:
            raise ValueError(f"must be shorter than link_timeout_s ({timeout})")
        return v


class SerialBoard(Board):
    """Base of the serial board drivers. Subclasses implement the protocol hooks below."""

    PROTOCOL_COUNTERS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: BaseModel, context: DriverContext) -> None:
        super().__init__(settings, context)
        self.settings: SerialSettings = settings  # type: ignore[assignment]
        self._counters = Counters(LINK_COUNTERS + self.PROTOCOL_COUNTERS + ("internal_errors",))
        self._remote = BoardInputs()  # what the board last reported (link_up unused)
        self._transport: SerialTransport | None = None
        self._running = False
        self._last_rx = 0.0
        self._watchdog: TimerHandle | None = None
        self._keepalive: TimerHandle | None = None
        self._reconnect: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open_failures = 0

    # --- protocol hooks ----------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        """Bytes from the port (any split). Must call `_frame_ok` for each valid frame."""
        raise NotImplementedError

    def _on_port_open(self) -> None:
        """The port (re)opened: say hello, ask for the board's state."""

    def _send_keepalive(self) -> None:
        """Periodic host keep-alive / poll."""

    def _on_link_up(self) -> None:
        """The link just came up (inputs already re-emitted): re-send commanded state."""

    def _on_link_down(self, reason: str) -> None:
        """The link just went down: forget permissions that must be granted again."""

    def _send_safe(self) -> None:
        """Best effort before closing: power not allowed, pilot F."""

    # --- public extras -------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """Traffic and error counters of this link (for `station status`)."""
        return self._counters.snapshot()

    @property
    def link_up(self) -> bool:
        return self._inputs.link_up

    def feed(self, data: bytes) -> None:
        """The receive path: what the port delivers. Never raises."""
        self._counters.inc("bytes_rx", len(data))
        try:
            self._receive(data)
        except Exception:  # noqa: BLE001 - a driver bug must not kill the port reader
            self._counters.inc("internal_errors")
            log.exception("serial board %s: error handling received bytes", self.settings.port)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._transport = SerialTransport(self.settings.port, self.settings.baudrate, self.feed, self._on_port_lost)
        await self._open_port()
        self._schedule_keepalive()

    async def stop(self) -> None:
        if not self._running:
            return
        transport = self._transport
        if transport is not None and transport.is_open:
            self._send_safe()
            await transport.drain()
        self._running = False
        for timer in (self._watchdog, self._keepalive, self._reconnect):
            if timer is not None:
                timer.cancel()
        self._watchdog = self._keepalive = self._reconnect = None
        for task in list(self._tasks):
            task.cancel()
        self._link_down("board driver stopped")
        if transport is not None:
            await transport.close()

    async def _open_port(self) -> None:
        assert self._transport is not None
        try:
            await self._transport.open()
        except (OSError, ValueError, serial.SerialException) as exc:
            self._counters.inc("port_errors")
            self._open_failures += 1
            if self._open_failures == 1 or self._open_failures % 60 == 0:  # not every second
                log.warning("serial board: cannot open %s: %s (retrying every %g s; %d failures)",
                            self.settings.port, exc, self.settings.reconnect_interval_s, self._open_failures)
            self._schedule_reconnect()
            return
        self._open_failures = 0
        if not self._running:  # stopped while opening
            await self._transport.close()
            return
        log.info("serial board: %s open at %d baud", self.settings.port, self.settings.baudrate)
        self._last_rx = self.context.clock.monotonic()
        self._arm_watchdog(self.settings.link_timeout_s)
        self._on_port_open()

    def _on_port_lost(self, reason: str) -> None:
        self._counters.inc("port_errors")
        self._link_down(f"serial port lost: {reason}")
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._running and self._reconnect is None:
            self._reconnect = self.context.clock.call_later(self.settings.reconnect_interval_s, self._reconnect_due)

    def _reconnect_due(self) -> None:
        self._reconnect = None
        if self._running and self._transport is not None and not self._transport.is_open:
            self._spawn(self._open_port())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending -------------------------------------------------------------------------

    def _write(self, data: bytes) -> bool:
        if self._transport is not None and self._transport.write(data):
            self._counters.inc("frames_tx")
            self._counters.inc("bytes_tx", len(data))
            return True
        self._counters.inc("tx_dropped")
        return False

    def _schedule_keepalive(self) -> None:
        self._keepalive = self.context.clock.call_later(self.settings.keepalive_interval_s, self._keepalive_due)

    def _keepalive_due(self) -> None:
        self._keepalive = None
        if not self._running:
            return
        if self._transport is not None and self._transport.is_open:
            self._send_keepalive()
        self._schedule_keepalive()

    # --- link supervision ----------------------------------------------------------------

    def _frame_ok(self) -> None:
        self._counters.inc("frames_rx")
        self._last_rx = self.context.clock.monotonic()
        if self._running and self._watchdog is None:
            self._arm_watchdog(self.settings.link_timeout_s)

    def _arm_watchdog(self, delay: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = self.context.clock.call_later(delay, self._watchdog_due)

    def _watchdog_due(self) -> None:
        # One timer at a time, re-armed for the remaining time, instead of one per frame.
        self._watchdog = None
        if not self._running:
            return
        silent = self.context.clock.monotonic() - self._last_rx
        remaining = self.settings.link_timeout_s - silent
        if remaining > 1e-6:
            self._arm_watchdog(remaining)
            return
        if self.link_up:
            self._counters.inc("timeouts")
            self._link_down(f"no valid frame from the board for {silent:.1f} s")

    def _link_up(self) -> None:
        if self.link_up:
            return
        log.info("serial board %s: link up", self.settings.port)
        self._emit(LinkChanged(True, t_ns=time.perf_counter_ns()))
        for name, event in INPUT_EVENTS.items():
            if name == "bay_occupied" and not self.capabilities.has_bay_sensor:
                continue  # an input this board does not have
            self._emit(event(getattr(self._remote, name), t_ns=time.perf_counter_ns()))
        self._on_link_up()

    def _link_down(self, reason: str) -> None:
        if not self.link_up:
            return
        log.warning("serial board %s: link down: %s", self.settings.port, reason)
        self._counters.inc("link_losses")
        self._emit(LinkChanged(False, reason, t_ns=time.perf_counter_ns()))
        self._on_link_down(reason)

    def _set_remote(self, **changes: Any) -> None:
        """Record what the board reported; while the link is up emit each real change."""
        old = self._remote
        self._remote = replace(old, **changes)
        if not self.link_up:
            return
        for name, value in changes.items():
            if getattr(old, name) != value:
                self._emit(INPUT_EVENTS[name](value, t_ns=time.perf_counter_ns()))
