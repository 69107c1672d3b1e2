"""One python-can bus per (interface, channel), shared by every driver on that wire.

The interface is chosen from settings like python-can's own config: "socketcan" on a charger,
"virtual" in tests, anything python-can supports elsewhere. Received frames are delivered on
the event loop (python-can's Notifier watches the socket fd, or runs its reader thread and hands
frames over with call_soon_threadsafe), and each subscriber sees only the frames its filter
accepts. Sending never blocks the loop: a full transmit queue is a counted drop, not a wait.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import can
from pydantic.v1 import BaseModel, Extra, Field

from hal.driver import DriverContext
from hal.serial.counters import Counters

log = logging.getLogger(__name__)

FrameHandler = Callable[[can.Message], None]
FrameFilter = Callable[[can.Message], bool]

BUS_COUNTERS = ("frames_rx", "frames_tx", "tx_errors", "bus_errors")


class CanBusSettings(BaseModel):
    """The part of a CAN driver's settings that says which bus to use."""

    interface: str = Field("socketcan", min_length=1, description="python-can interface: socketcan, virtual, ...")
    channel: str = Field("can0", min_length=1, description="e.g. can0 (socketcan) or any name (virtual)")
    bitrate: int = Field(125000, gt=0, le=1_000_000, description="bit/s; socketcan takes it from `ip link`")

    class Config:
        extra = Extra.forbid


class CanBus:
    """A python-can bus on the event loop with filtered subscribers. Get it with `CanBus.of()`."""

    def __init__(self, interface: str, channel: str, bitrate: int) -> None:
        self.interface, self.channel, self.bitrate = interface, channel, bitrate
        self.counters = Counters(BUS_COUNTERS)
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._subscribers: list[tuple[FrameFilter, FrameHandler]] = []
        self._users = 0
        self._lock = asyncio.Lock()

    @staticmethod
    def of(context: DriverContext, settings: CanBusSettings) -> "CanBus":
        """The station-wide bus for these settings (created on first use, opened by `acquire`)."""
        key = f"can-bus:{settings.interface}:{settings.channel}"
        bus = context.resource(key, lambda: CanBus(settings.interface, settings.channel, settings.bitrate))
        if bus.bitrate != settings.bitrate:
            raise ValueError(f"CAN {settings.channel}: two drivers ask for different bitrates "
                             f"({bus.bitrate} and {settings.bitrate})")
        return bus

    @property
    def is_open(self) -> bool:
        return self._bus is not None

    async def acquire(self) -> None:
        """Open the bus for one more user (the first user opens it; raises can.CanError/OSError)."""
        async with self._lock:
            if self._bus is None:
                loop = asyncio.get_running_loop()
                bus = await loop.run_in_executor(None, self._open_blocking)
                self._bus = bus
                self._notifier = can.Notifier(bus, [self._dispatch], timeout=0.1, loop=loop)
                log.info("CAN %s/%s open at %d bit/s", self.interface, self.channel, self.bitrate)
            self._users += 1

    def _open_blocking(self) -> can.BusABC:
        kwargs: dict[str, Any] = {"interface": self.interface, "channel": self.channel, "bitrate": self.bitrate}
        return can.Bus(**kwargs)

    async def release(self) -> None:
        async with self._lock:
            self._users = max(0, self._users - 1)
            if self._users or self._bus is None:
                return
            bus, notifier = self._bus, self._notifier
            self._bus = self._notifier = None
            loop = asyncio.get_running_loop()
            if notifier is not None:
                await loop.run_in_executor(None, notifier.stop, 0.5)
            await loop.run_in_executor(None, bus.shutdown)

    def subscribe(self, accepts: FrameFilter, handler: FrameHandler) -> Callable[[], None]:
        """Deliver frames `accepts` says yes to; returns the unsubscribe function."""
        entry = (accepts, handler)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry) if entry in self._subscribers else None

    def send(self, arbitration_id: int, data: bytes, extended: bool = True) -> bool:
        """Queue one frame; False (counted) if the bus is closed or the controller refused it."""
        if self._bus is None:
            self.counters.inc("tx_errors")
            return False
        msg = can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended)
        try:
            self._bus.send(msg, timeout=0)
        except (can.CanError, OSError) as exc:
            self.counters.inc("tx_errors")
            log.debug("CAN %s: send failed: %s", self.channel, exc)
            return False
        self.counters.inc("frames_tx")
        return True

    def _dispatch(self, msg: can.Message) -> None:
        if msg.is_error_frame:
            self.counters.inc("bus_errors")
            return
        self.counters.inc("frames_rx")
        for accepts, handler in list(self._subscribers):
            try:
                if accepts(msg):
                    handler(msg)
            except Exception:  # noqa: BLE001 - one driver's bug must not starve the others
                log.exception("CAN %s: subscriber failed on frame %s", self.channel, msg)
