"""Services that run beside the EVSEs (OCPP client, ISO 15118 SECCs), built from the config.

A service gets the Station and uses only its public surface: `station.evses` (Evse commands and
`listeners`), `station.listeners`, `station.token_handler`, `station.control.add_handlers`,
`station.state_dir`, `station.config`. Each is imported only when configured: the OCPP and
ISO 15118 packages cost start-up time a station without them should not pay.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from station.station import Station


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_services(station: "Station") -> list[Service]:
    services: list[Service] = []
    if station.config.ocpp:
        from station.ocpp.service import OcppService

        services.append(OcppService(station))
    if any(cfg.iso15118 is not None for cfg in station.config.evses):
        from station.iso15118.service import build as iso15118_services

        services += iso15118_services(station)
    return services
