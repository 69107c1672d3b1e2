"""A station: its EVSEs, their drivers, the token reader and the local control endpoint."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

from hal.board import Board
from hal.clock import Clock, LoopClock
from hal.driver import DriverContext
from hal.meter import Meter
from hal.token_reader import TokenPresented, TokenReader
from station import __version__, drivers, paths
from station.authorization import LocalAuthorizer, route_token
from station.config_model import StationConfig
from station.control import ControlError, ControlServer
from station.evse import Evse
from station.services import Service, build_services
from station.site_limit import SiteLimiter
from station.session import EvseEvent, describe

log = logging.getLogger("station")


class Station:
    def __init__(self, config: StationConfig, *, clock: Clock | None = None,
                 control_socket: Path | None = None) -> None:
        self.config = config
        self.clock = clock or LoopClock()
        self.state_dir = paths.state_dir(config.station.state_dir)
        self.control_socket = control_socket or paths.control_socket(config.control.socket, self.state_dir)
        self.shared: dict[str, Any] = {}  # resources drivers share (sim world, serial ports, CAN buses)
        self.authorizer = LocalAuthorizer(config.authorization)
        self.evses: dict[int, Evse] = {}
        self.boards: dict[int, Board] = {}
        self.meters: dict[int, Meter] = {}
        self.grid_meter: Meter | None = None  # [grid_meter]: every EVSE behind it (OCPP evseId 0)
        self.token_reader: TokenReader | None = None
        self.site_limiter: SiteLimiter | None = None
        self.control: ControlServer | None = None
        self.listeners: list[Callable[[EvseEvent], None]] = []
        #: Started after the EVSEs, stopped before them (OCPP client, SECCs): see station.services.
        self.services: list[Service] = []
        #: What a presented token does. Local rules until a service (OCPP) replaces it.
        self.token_handler: Callable[[TokenPresented], Awaitable[str]] = self._local_token
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    # ------------------------------------------------------------------ lifecycle
    def build(self) -> None:
        """Create drivers and EVSEs (no I/O yet)."""
        for cfg in self.config.evses:
            info = {"max_current_a": cfg.max_current_a, "phases": cfg.phases, "kind": cfg.kind,
                    "hlc": cfg.hlc, "ventilation": cfg.ventilation, "connector_type": cfg.connectors[0].type, "lock": cfg.connectors[0].lock}
            context = DriverContext(evse_id=cfg.id, clock=self.clock, shared=self.shared, evse_info=info)
            board: Board = drivers.build("board", cfg.board, context)
            meter: Meter | None = drivers.build("meter", cfg.meter, context) if cfg.meter else None
            evse = Evse(cfg, self.config.iec61851, board, self.clock, meter=meter,
                        auto_authorize=self.authorizer.free)
            # The board's own rating caps the EVSE (a config cannot offer more than the hardware).
            evse.limiter.set("board", board.capabilities.max_current_a)
            evse.listeners.append(self._on_evse_event)
            self.boards[cfg.id], self.evses[cfg.id] = board, evse
            if meter is not None:
                self.meters[cfg.id] = meter
        site = self.config.limits.site_max_current_a
        if site is not None:
            self.site_limiter = SiteLimiter(site, self.evses.values())
            for evse in self.evses.values():
                evse.listeners.append(self.site_limiter.on_event)
            self.site_limiter.apply()
        context = DriverContext(clock=self.clock, shared=self.shared)
        if self.config.grid_meter is not None:
            self.grid_meter = drivers.build("meter", self.config.grid_meter, context)
        self.token_reader = drivers.build("token_reader", self.config.token_reader, context)
        self.services = build_services(self)

    async def start(self) -> None:
        if not self.evses:
            self.build()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for evse_id, board in self.boards.items():
            await board.start()
        for meter in self._all_meters():
            await meter.start()
        assert self.token_reader is not None
        await self.token_reader.start()
        for evse_id, evse in self.evses.items():
            self._tasks[f"evse{evse_id}"] = asyncio.create_task(evse.run(), name=f"evse{evse_id}")
        self._tasks["tokens"] = asyncio.create_task(self._route_tokens(), name="tokens")
        self.control = ControlServer(self.control_socket, self._control_handlers())
        for resource in self.shared.values():
            handlers = getattr(resource, "control_handlers", None)
            if callable(handlers):
                self.control.add_handlers(handlers())
        await self.control.start()
        for service in self.services:
            await service.start()
        log.info("station %s up: %d EVSE(s), control socket %s, state %s", self.config.station.id,
                 len(self.evses), self.control_socket, self.state_dir)

    async def stop(self) -> None:
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("service %s did not stop cleanly", service)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        if self.control is not None:
            await self.control.stop()
        if self.token_reader is not None:
            await self.token_reader.stop()
        for meter in self._all_meters():
            await meter.stop()
        for board in self.boards.values():
            try:
                await board.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("board %s did not stop cleanly", board)

    def _all_meters(self) -> list[Meter]:
        return [*self.meters.values(), *([self.grid_meter] if self.grid_meter is not None else [])]

    def healthy(self) -> bool:
        """For the systemd watchdog: every EVSE task and the token router still running."""
        return bool(self._tasks) and all(not t.done() for t in self._tasks.values())

    # ------------------------------------------------------------------ events
    def _on_evse_event(self, event: EvseEvent) -> None:
        if self.control is not None and self.control.watched:
            self.control.publish(event.to_dict())
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001
                log.exception("station listener failed on %s", event.name)
        line = describe(event)
        if line is not None:
            logging.getLogger(f"evse{event.evse_id}").info("%s", line)

    async def _route_tokens(self) -> None:
        assert self.token_reader is not None
        async for token in self.token_reader.tokens():
            try:
                result = await self.token_handler(token)
            except Exception as exc:  # noqa: BLE001 - a bad token path must not stop the reader
                log.exception("token handling failed")
                result = f"error: {exc}"
            log.info("token %s (%s): %s", token.id_token, token.token_type, result)
            if self.control is not None:
                self.control.publish({"event": "TokenPresented", "id_token": token.id_token, "result": result})

    async def _local_token(self, token: TokenPresented) -> str:
        return route_token(token, self.evses.values(), self.authorizer)

    # ------------------------------------------------------------------ status and control
    def status(self) -> dict[str, Any]:
        info = self.config.station
        return {
            "station": {"id": info.id, "vendor": info.vendor, "model": info.model, "version": __version__,
                        "state_dir": str(self.state_dir), "healthy": self.healthy()},
            "evses": [self._evse_status(evse_id) for evse_id in sorted(self.evses)],
        }

    def _evse_status(self, evse_id: int) -> dict[str, Any]:
        snapshot = self.evses[evse_id].snapshot()
        counters = getattr(self.boards[evse_id], "counters", None)
        if counters:
            snapshot["board_counters"] = dict(counters)
        return snapshot

    def _evse(self, args: dict[str, Any]) -> Evse:
        evse_id = args.get("evse")
        if evse_id not in self.evses:
            raise ControlError(f"unknown EVSE {evse_id!r}; this station has {sorted(self.evses)}")
        return self.evses[evse_id]

    def _control_handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        async def status(args: dict[str, Any]) -> dict[str, Any]:
            return self.status()

        async def enable(args: dict[str, Any]) -> str:
            self._evse(args).set_enabled(bool(args.get("enabled", True)))
            return "ok"

        async def reset(args: dict[str, Any]) -> str:
            self._evse(args).reset_faults()
            return "ok"

        async def limit(args: dict[str, Any]) -> str:
            amps = args.get("amps")
            if amps is not None and (not isinstance(amps, (int, float)) or amps < 0):
                raise ControlError(f"amps must be a number >= 0 or null, got {amps!r}")
            self._evse(args).set_limit(str(args.get("source", "operator")), amps)
            return "ok"

        async def stop(args: dict[str, Any]) -> str:
            self._evse(args).deauthorize(str(args.get("reason", "Local")))
            return "ok"

        return {"status": status, "evse.enable": enable, "evse.reset": reset, "evse.limit": limit,
                "evse.stop": stop}
