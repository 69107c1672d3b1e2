"""Running the station as a service: logging, signals, sd_notify READY/STATUS/WATCHDOG."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter

from station import sdnotify
from station.config_model import StationConfig
from station.station import Station

log = logging.getLogger("station")


def summary(station: Station) -> str:
    counts = Counter(evse.connector_status.value for evse in station.evses.values())
    return f"{len(station.evses)} EVSE(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


async def serve(config: StationConfig) -> int:
    """Run until SIGTERM/SIGINT. Returns the process exit code."""
    station = Station(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await station.start()
    sdnotify.ready(summary(station))
    watchdog = asyncio.create_task(sdnotify.run_watchdog(station.healthy))
    last = ""
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except asyncio.TimeoutError:
                pass
            text = summary(station)
            if text != last:
                sdnotify.status(text)
                last = text
            if not station.healthy():
                log.critical("a station task died; exiting so systemd restarts the service")
                return 1
    finally:
        sdnotify.stopping()
        watchdog.cancel()
        await station.stop()
        log.info("station stopped")
    return 0
