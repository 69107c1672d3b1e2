"""Error and traffic counters of a serial link, surfaced by `station status`."""
from __future__ import annotations

from typing import Iterable


class Counters:
    """Named monotonic counters. Every name a driver may use is listed up front, so a status
    query shows zeros instead of missing keys."""

    def __init__(self, names: Iterable[str]) -> None:
        self._values: dict[str, int] = {name: 0 for name in names}

    def inc(self, name: str, n: int = 1) -> None:
        # An unlisted name is still counted: a counter must never raise on the receive path.
        self._values[name] = self._values.get(name, 0) + n

    def __getitem__(self, name: str) -> int:
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        return dict(self._values)


#: Counters every serial board keeps (the protocol modules add their own names).
LINK_COUNTERS = (
    "bytes_rx",
    "bytes_tx",
    "frames_rx",
    "frames_tx",
    "tx_dropped",  # a frame to send while the port was closed
    "timeouts",  # link declared lost after rx silence
    "link_losses",  # every up -> down transition, whatever the reason
    "port_errors",  # open failures, hang-ups, read/write errors
    "board_resets",  # the board told us it rebooted
)
