"""Services that run beside the EVSEs (OCPP client, ISO 15118 SECCs), built from the config.

A service gets the Station and uses only its public surface: `station.evses` (Evse commands and
`listeners`), `station.listeners`, `station.token_handler`, `station.control.add_handlers`,
`station.state_dir`, `station.config`. Each later issue adds its builder here, one line.
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
        from station.ocpp.service import OcppService  # imported only when configured: ~0.3 s of CPU

        services.append(OcppService(station))
    return services
