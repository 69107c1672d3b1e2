"""systemd service notifications (sd_notify) without libsystemd.

The protocol is one datagram of newline-separated `KEY=VALUE` fields sent to the AF_UNIX socket
named in $NOTIFY_SOCKET (a leading '@' means the Linux abstract namespace). Outside systemd the
variable is unset and every call here is a cheap no-op that returns False, so the runtime can call
them unconditionally.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Callable

from hal.clock import Clock

log = logging.getLogger(__name__)


def _socket_address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if addr.startswith("@"):
        return "\0" + addr[1:]
    if addr.startswith("/"):
        return addr
    # Unset, empty, or a transport we don't speak (systemd also allows "vsock:CID:PORT").
    return None


def notify(*fields: str) -> bool:
    """Send `fields` (each "KEY=VALUE") as one datagram. True if systemd got it.

    Never blocks and never raises for a missing or unreachable socket; raises ValueError for a
    malformed field, which is a bug in the caller.
    """
    for field in fields:
        key, sep, _ = field.partition("=")
        if not sep or not key or "\n" in field:
            raise ValueError(f"sd_notify field must be KEY=VALUE on one line, got {field!r}")
    addr = _socket_address()
    if addr is None or not fields:
        return False
    payload = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(payload, addr)
    except OSError as exc:
        # Socket gone (manager restarting), queue full, or permission: nothing we can fix here.
        log.debug("sd_notify %s failed: %s", fields[0], exc)
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def ready(status: str | None = None) -> bool:
    """Tell systemd start-up finished (Type=notify units are "activating" until this)."""
    fields = ["READY=1"]
    if status:
        fields.append("STATUS=" + _one_line(status))
    return notify(*fields)


def status(text: str) -> bool:
    """Free-form status line shown by `systemctl status station`."""
    return notify("STATUS=" + _one_line(text))


def stopping() -> bool:
    """Tell systemd a clean shutdown has begun (so a slow stop isn't mistaken for a hang)."""
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec=), or None if no watchdog applies to us."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    # Set for the main process only; a child that inherited the environment must not ping.
    if pid and pid != str(os.getpid()):
        return None
    return usec / 2 / 1_000_000


async def run_watchdog(
    is_healthy: Callable[[], bool],
    interval: float | None = None,
    *,
    clock: Clock | None = None,
) -> None:
    """Ping WATCHDOG=1 every `interval` seconds while `is_healthy()` is true; run until cancelled.

    The pings come from the event loop itself, so a blocked loop stops them too; `is_healthy`
    covers what a running loop can't show (an EVSE task that died). Once pings stop, systemd
    kills and restarts the service after WatchdogSec. Returns at once when there is no watchdog
    (interval None and no WATCHDOG_USEC for this process).
    """
    if interval is None:
        interval = watchdog_interval()
        if interval is None:
            return
    if interval <= 0:
        raise ValueError(f"watchdog interval must be positive, got {interval}")
    sleep = clock.sleep if clock is not None else asyncio.sleep
    pinging = True
    while True:
        try:
            healthy = bool(is_healthy())
        except Exception:
            log.exception("watchdog health check raised; treating as unhealthy")
            healthy = False
        if healthy:
            if not pinging:
                log.warning("station healthy again; resuming watchdog pings")
                pinging = True
            watchdog_ping()
        elif pinging:
            log.error("station unhealthy; stopping watchdog pings so systemd restarts the service")
            pinging = False
        await sleep(interval)
