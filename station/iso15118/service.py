"""The ISO 15118 service: per EVSE with an `[evse.iso15118]` table, SLAC on plug-in and the
iso15118 package's SECC on the PLC interface, bridged to the EVSE by StationEvseController.

Flow per plug-in (EVConnected while the EVSE offers HLC, i.e. emits 5 %):
SLAC match (station/slac) -> the EV's SDP and V2G session run against the SECC that listens on the
interface all the time -> unplug (EVDisconnected) ends everything: SLAC cancelled, the session's
TCP stream closed, power modules off, contactors open, a new NMK for the next EV.
HLC failure (no match, no session after the match) on an AC EVSE -> Evse.fall_back_to_basic: the EV
charges with the PWM current. A DC EVSE cannot charge without HLC and keeps waiting at 5 %.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from hal.driver import DriverContext
from station import drivers
from station.iso15118.config import Iso15118Config
from station.session import Deauthorized, EVConnected, EVDisconnected, EvseEvent, FaultRaised
from station.slac import MatchResult, SlacMatcher, SlacTimers

if TYPE_CHECKING:
    from station.evse import Evse
    from station.station import Station

SECC_RESTART_S = 2.0
WATCHDOG_S = 0.25


def build(station: "Station") -> list[Any]:
    """One service for all EVSEs that have an [evse.iso15118] table (none: nothing to run)."""
    hlc = [cfg for cfg in station.config.evses if cfg.iso15118 is not None]
    return [Iso15118Service(station)] if hlc else []


class Iso15118Service:
    def __init__(self, station: "Station") -> None:
        self.station = station
        self.log = logging.getLogger("station.iso15118")
        self.evses: dict[int, EvseHlc] = {}
        pki = {str(c.iso15118.tls.pki_path) for c in station.config.evses if c.iso15118 is not None}
        if len(pki) > 1:
            raise ValueError(f"evse[*].iso15118.tls.pki_path must be the same for every EVSE (one SECC "
                             f"process-wide setting in the iso15118 package), got {sorted(pki)}")
        for cfg in station.config.evses:
            if cfg.iso15118 is None:
                continue
            if not cfg.hlc:
                raise ValueError(f"EVSE {cfg.id}: [evse.iso15118] needs hlc = true (the EVSE must emit 5 %)")
            self.evses[cfg.id] = EvseHlc(station, station.evses[cfg.id], cfg.iso15118)
        self.codec: Any = None

    async def start(self) -> None:
        from station.iso15118 import package
        from station.iso15118.codec import TimedCodec, shared_codec

        first = next(iter(self.evses.values())).cfg
        package.load(first.log_level)
        # JVM start and warm-up take seconds: off the event loop, before any EV can be matched.
        self.codec = TimedCodec(await asyncio.to_thread(shared_codec, first.exi_codec, first.jvm_heap_mb))
        for hlc in self.evses.values():
            await hlc.start(self.codec)
        if self.station.control is not None:
            self.station.control.add_handlers({"iso15118.status": self._status})

    async def _status(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """`iso15118.status` on the control socket: SLAC and session state per HLC EVSE."""
        return [hlc.status() for hlc in self.evses.values()]

    async def stop(self) -> None:
        for hlc in self.evses.values():
            await hlc.stop()
        await cancel_package_tasks()


async def cancel_package_tasks() -> None:
    """The package's handlers start tasks (UDP server, TCP server, sessions) through asyncio.wait,
    which does not cancel them when the handler is cancelled: end them so no socket outlives us."""
    import iso15118

    package_dir = os.path.dirname(os.path.abspath(iso15118.__file__)) + os.sep
    current = asyncio.current_task()
    leftovers = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if task is not current and code is not None and code.co_filename.startswith(package_dir):
            task.cancel()
            leftovers.append(task)
    await asyncio.gather(*leftovers, return_exceptions=True)


class EvseHlc:
    """SLAC + SECC for one EVSE."""

    def __init__(self, station: "Station", evse: "Evse", cfg: Iso15118Config) -> None:
        self.station = station
        self.evse = evse
        self.cfg = cfg
        self.log = logging.getLogger(f"evse{evse.id}.hlc")
        info = {"kind": evse.config.kind, "hlc": True}
        context = DriverContext(evse_id=evse.id, clock=station.clock, shared=station.shared, evse_info=info)
        self.modem: Any = drivers.build("plc_modem", cfg.plc_modem, context)  # type: ignore[arg-type]
        self.power_supply: Any = (drivers.build("power_supply", cfg.power_supply, context)  # type: ignore[arg-type]
                                  if cfg.power_supply else None)
        self.isolation_monitor: Any = (drivers.build("isolation_monitor", cfg.isolation_monitor, context)  # type: ignore[arg-type]
                                       if cfg.isolation_monitor else None)
        s = cfg.slac
        self.matcher = SlacMatcher(self.modem, SlacTimers(
            init_timeout_s=s.init_timeout_s, match_sequence_s=s.match_sequence_s, match_response_s=s.match_response_s,
            mnbc_s=s.mnbc_s, match_session_s=s.match_session_s, max_attempts=s.max_attempts,
            atten_char_retries=s.atten_char_retries), name=f"evse{evse.id}")
        self.controller: Any = None
        self.handler: Any = None
        self.link_error: str | None = None
        self.slac_result: MatchResult | None = None
        self.slac_state = "idle"
        self._slac_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()  # fire-and-forget power-offs, kept referenced

    # ------------------------------------------------------------------ lifecycle
    async def start(self, codec: Any) -> None:
        from station.iso15118.controller import StationEvseController

        self.controller = StationEvseController(
            self.evse, self.cfg, station_id=self.station.config.station.id, power_supply=self.power_supply,
            isolation_monitor=self.isolation_monitor)
        if self.power_supply is not None:
            await self.power_supply.start()
        try:
            await self.modem.start()  # the only place that needs CAP_NET_RAW
        except OSError as exc:
            self.link_error = f"PLC interface {self.modem.interface}: {exc}"
            self.log.error("SLAC unavailable (%s); HLC plug-ins fall back to basic charging", self.link_error)
        self.evse.listeners.append(self._on_event)
        self._tasks = [asyncio.create_task(self._run_secc(codec), name=f"evse{self.evse.id}-secc"),
                       asyncio.create_task(self._watchdog(), name=f"evse{self.evse.id}-hlc-watchdog")]
        if self.evse.ev_present and self.evse.hlc:
            self._start_slac()

    async def stop(self) -> None:
        if self._on_event in self.evse.listeners:
            self.evse.listeners.remove(self._on_event)
        for task in [*self._tasks, self._slac_task]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [*self._tasks, self._slac_task] if t is not None], return_exceptions=True)
        if self.controller is not None:
            await self.controller.end_power("service stopping")
        await self.modem.stop()
        if self.power_supply is not None:
            await self.power_supply.stop()

    # ------------------------------------------------------------------ EVSE events
    def _on_event(self, event: EvseEvent) -> None:
        if isinstance(event, EVConnected):
            if self.evse.hlc:
                self._start_slac()
        elif isinstance(event, EVDisconnected):
            self._unplugged()
        elif isinstance(event, Deauthorized):
            # The EVSE withdraws power at once on deauthorize; ramp the modules down with it and tell
            # the EV (StopCharging / EVSE_Shutdown / Terminate in its next status).
            self.controller.request_stop(f"deauthorized: {event.reason}")
            self._spawn(self.controller.end_power(f"deauthorized: {event.reason}"))
        elif isinstance(event, FaultRaised):
            self.controller.request_stop(f"fault {event.fault.get('code')}")
            self._spawn(self.controller.end_power(f"fault {event.fault.get('code')}"))

    def _start_slac(self) -> None:
        if self._slac_task is not None and not self._slac_task.done():
            return
        self.controller.reset()
        self._slac_task = asyncio.create_task(self._slac(), name=f"evse{self.evse.id}-slac")

    def _unplugged(self) -> None:
        if self._slac_task is not None:
            self._slac_task.cancel()
            self._slac_task = None
        self.slac_state = "idle"
        self.matcher.nmk = b""  # the next EV gets a new logical network
        self._close_session()
        self._spawn(self.controller.end_power("EV unplugged"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _close_session(self) -> None:
        """End the V2G session as if the EV had closed TCP: the package then runs its normal stop
        (session_ended, UDP/SDP resumed). Its own close_session() looks the session up under the
        wrong key in 0.31.2, so we feed EOF to every session's stream ourselves."""
        handler = self.handler
        if handler is None:
            return
        for session, _task in list(getattr(handler, "comm_sessions", {}).values()):
            try:
                session.reader.feed_eof()
            except Exception as exc:  # noqa: BLE001 - already closing
                self.log.debug("could not close V2G session: %s", exc)

    def _publish(self, data: dict[str, Any]) -> None:
        control = self.station.control
        if control is not None:
            control.publish({"evse_id": self.evse.id, **data})

    # ------------------------------------------------------------------ SLAC
    async def _slac(self) -> None:
        if self.link_error is not None:
            self._fail(self.link_error)
            return
        try:
            while True:
                self.slac_state = "matching"
                result = await self.matcher.match()
                self.slac_result = result
                if not result.matched:
                    self._fail(f"SLAC: {result.reason}")
                    if self.evse.config.kind != "dc":
                        return
                    continue  # DC has no fallback: keep listening for the EV to try again
                self.slac_state = "matched"
                self.log.info("SLAC matched EV %s in %.2f s (%d attempt(s), attenuation %.0f dB)",
                              result.ev_mac.hex(":"), result.duration_s, result.attempts, result.attenuation_db or 0)
                self._publish({"event": "SlacMatched", "ev_mac": result.ev_mac.hex(":"),
                               "duration_s": round(result.duration_s, 3)})
                await self._serve_matched(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - SLAC trouble must not leave the EVSE at 5 % forever
            self.log.exception("SLAC failed")
            self._fail(f"SLAC error: {exc!r}")

    async def _serve_matched(self, result: MatchResult) -> None:
        """While plugged in after a match: answer a repeated CM_SLAC_MATCH.REQ (our CNF got lost),
        watch that the V2G session starts, and re-match if the EV starts SLAC again."""
        from hal.plc_homeplug import CM_SLAC_MATCH, CM_SLAC_PARM, REQ, parse_slac_match_req

        link = self.modem.link
        deadline = time.monotonic() + self.cfg.session_start_timeout_s
        while True:
            mme = await link.receive(0.5)
            if mme is not None and mme.mmtype == CM_SLAC_MATCH | REQ and mme.src == result.ev_mac:
                if parse_slac_match_req(mme.payload).run_id == result.run_id:
                    self.matcher.answer_match(result.ev_mac, result.run_id)
            elif mme is not None and mme.mmtype == CM_SLAC_PARM | REQ:
                self.log.info("EV restarted SLAC")
                self.matcher.requeue = mme
                return
            if deadline and time.monotonic() > deadline:
                if not self.controller.session_active:
                    self._fail(f"no V2G session within {self.cfg.session_start_timeout_s:g} s after the SLAC match")
                    if self.evse.config.kind != "dc":
                        await asyncio.Event().wait()  # basic charging now; wait for unplug (cancel)
                deadline = 0.0

    def _fail(self, reason: str) -> None:
        self.slac_state = "failed"
        self._publish({"event": "HlcFailed", "reason": reason})
        if self.evse.config.kind == "dc":
            self.log.error("%s; a DC EVSE cannot charge without HLC, waiting for the EV to retry", reason)
        else:
            self.evse.fall_back_to_basic(reason, step_ef_s=self.cfg.slac.fallback_step_ef_s)

    # ------------------------------------------------------------------ SECC
    async def _run_secc(self, codec: Any) -> None:
        """Run the package's SECCHandler on the PLC interface; restart it if it dies, with power off."""
        from iso15118.secc import SECCHandler

        from station.iso15118.secc_config import secc_config

        while True:
            self.handler = SECCHandler(exi_codec=codec, evse_controller=self.controller,
                                       config=secc_config(self.cfg, self.modem.interface))
            try:
                await self.controller.set_status_starting()
                await self.handler.start(self.modem.interface)
                self.log.error("SECC on %s stopped", self.modem.interface)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - restarted below, power off first
                self.log.error("SECC on %s failed: %r; restarting in %.0f s", self.modem.interface, exc, SECC_RESTART_S)
            await self.controller.end_power("SECC stopped")
            await asyncio.sleep(SECC_RESTART_S)

    async def _watchdog(self) -> None:
        """Power flows only while the EV keeps talking: silence beyond ev_silence_timeout_s cuts it."""
        while True:
            await asyncio.sleep(WATCHDOG_S)
            c = self.controller
            if c is None or not self.evse.hlc_power_request:
                continue
            silent = time.monotonic() - c.last_request
            if silent > self.cfg.ev_silence_timeout_s:
                self.log.error("EV silent for %.1f s with power on: cutting power and closing the session", silent)
                c.request_stop("EV communication timeout")
                await c.end_power("EV communication timeout")
                self._close_session()

    def status(self) -> dict[str, Any]:
        c = self.controller
        return {"evse": self.evse.id, "interface": self.modem.interface, "slac": self.slac_state,
                "link_error": self.link_error, "protocol_state": c.protocol_state if c else None,
                "session_active": bool(c and c.session_active), "stop_reason": c.stop_reason if c else None}
