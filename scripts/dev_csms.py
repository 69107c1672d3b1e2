#!/usr/bin/env python3
"""A development CSMS on the `ocpp` package (OCPP 2.0.1 over websockets): accepts stations, logs what
they send, answers with sensible defaults. Also the CSMS the OCPP tests and the benchmark run against.

    python scripts/dev_csms.py                         # ws://127.0.0.1:9000, Basic auth password below
    station run --config profiles/sim-ac-2evse.toml    # the profile's [ocpp] table points here

Profile 2/3: --cert/--key (server certificate), --client-ca (require a client certificate: profile 3).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import http
import logging
import ssl
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger("csms")
DEV_PASSWORD = "dev-csms-password-0001"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CsmsChargePoint(ChargePoint):
    """The CSMS's view of one connected station: records every CALL it receives."""

    def __init__(self, station_id: str, connection: ServerConnection, csms: "DevCsms") -> None:
        super().__init__(station_id, connection, response_timeout=csms.response_timeout)
        self.csms = csms
        self.ws = connection
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Event()

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))
        self._changed.set()
        if self.csms.verbose:
            log.info("%s -> %s %s", self.id, action, _brief(action, payload))

    def of(self, action: str) -> list[dict[str, Any]]:
        return [p for a, p in self.received if a == action]

    async def wait_for(self, action: str, predicate: Callable[[dict[str, Any]], bool] = lambda p: True,
                       timeout: float = 5.0, count: int = 1) -> list[dict[str, Any]]:
        """Wait until `count` received `action` payloads satisfy `predicate`; returns them."""
        async def until() -> list[dict[str, Any]]:
            while True:
                found = [p for p in self.of(action) if predicate(p)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(until(), timeout)

    @on(Action.boot_notification)
    def on_boot_notification(self, **payload: Any) -> Any:
        self._record("BootNotification", payload)
        status = self.csms.boot_statuses.pop(0) if self.csms.boot_statuses else "Accepted"
        interval = self.csms.heartbeat_interval if status == "Accepted" else self.csms.boot_retry_interval
        return call_result.BootNotification(current_time=self.csms.current_time(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> Any:
        self._record("Heartbeat", payload)
        return call_result.Heartbeat(current_time=self.csms.current_time())

    @on(Action.status_notification)
    def on_status_notification(self, **payload: Any) -> Any:
        self._record("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.notify_report)
    def on_notify_report(self, **payload: Any) -> Any:
        self._record("NotifyReport", payload)
        return call_result.NotifyReport()

    @on(Action.transaction_event)
    def on_transaction_event(self, **payload: Any) -> Any:
        if self.csms.fail_transaction_events > 0:  # tests of MessageAttempts: a CSMS that cannot process it
            self.csms.fail_transaction_events -= 1
            self._record("TransactionEventFailed", payload)
            raise InternalError("dev CSMS told to fail this TransactionEvent")
        self._record("TransactionEvent", payload)
        self.csms.tx_log.append(payload)
        self.csms.apply_transaction_event(self.id, payload)
        token = payload.get("id_token")
        if not token:
            return call_result.TransactionEvent()
        status = self.csms.tx_token_statuses.get(token["id_token"], self.csms.token_status(token["id_token"]))
        return call_result.TransactionEvent(id_token_info=self.csms.id_token_info(token["id_token"], status))

    @on(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> Any:
        self._record("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.authorize)
    def on_authorize(self, **payload: Any) -> Any:
        self._record("Authorize", payload)
        token = payload["id_token"]["id_token"]
        return call_result.Authorize(id_token_info=self.csms.id_token_info(token, self.csms.token_status(token)))

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **payload: Any) -> Any:
        self._record("FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **payload: Any) -> Any:
        self._record("LogStatusNotification", payload)
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", payload)
        return call_result.SecurityEventNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, **payload: Any) -> Any:
        self._record("DataTransfer", payload)
        return call_result.DataTransfer(status="UnknownVendorId")


def _brief(action: str, payload: dict[str, Any]) -> str:
    if action == "StatusNotification":
        return f"EVSE {payload.get('evse_id')}/{payload.get('connector_id')} {payload.get('connector_status')}"
    if action == "BootNotification":
        station = payload.get("charging_station", {})
        return f"{station.get('vendor_name')} {station.get('model')} ({payload.get('reason')})"
    if action == "TransactionEvent":
        return f"{payload.get('event_type')} {payload.get('trigger_reason')} tx {payload.get('transaction_info')}"
    return str(payload)[:200]


@dataclass
class DevCsms:
    host: str = "127.0.0.1"
    port: int = 9000
    #: station id -> Basic auth password; None: no authentication asked.
    passwords: dict[str, str] | None = None
    default_password: str | None = DEV_PASSWORD
    ssl: ssl.SSLContext | None = None
    heartbeat_interval: int = 300
    boot_retry_interval: int = 1
    #: statuses for the next BootNotifications, in order (then Accepted).
    boot_statuses: list[str] = field(default_factory=list)
    response_timeout: float = 10.0
    verbose: bool = True
    clock_offset_s: float = 0.0
    #: Authorize / TransactionEvent idTokenInfo: token -> status (default Accepted), group ids.
    token_statuses: dict[str, str] = field(default_factory=dict)
    tx_token_statuses: dict[str, str] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)
    #: answer the next N TransactionEvents with a CALLERROR (InternalError)
    fail_transaction_events: int = 0
    #: every TransactionEvent received, over all connections (the wire view: re-sends included)
    tx_log: list[dict[str, Any]] = field(default_factory=list)
    #: the billing view: each (transactionId, seqNo) applied once; a re-send after a power cut is
    #: acknowledged again but not applied again (OCPP's seqNo is there for exactly this)
    ledger: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    resends: int = 0
    conflicting: list[dict[str, Any]] = field(default_factory=list)
    stations: dict[str, CsmsChargePoint] = field(default_factory=dict)
    connections: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    peer_certs: list[dict[str, Any]] = field(default_factory=list)
    _server: Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def apply_transaction_event(self, station_id: str, payload: dict[str, Any]) -> bool:
        """Apply a TransactionEvent to the ledger once; False for a re-send (same transactionId and seqNo)."""
        key = (payload["transaction_info"]["transaction_id"], payload["seq_no"])
        known = self.ledger.get(key)
        if known is None:
            self.ledger[key] = payload
            return True
        self.resends += 1
        if known != payload:
            self.conflicting.append(payload)
            log.error("%s: TransactionEvent %s seqNo %d re-sent with different content", station_id, *key)
        else:
            log.info("%s: TransactionEvent %s seqNo %d re-sent: acknowledged, not applied again", station_id, *key)
        return False

    def token_status(self, token: str) -> str:
        return self.token_statuses.get(token, "Accepted")

    def id_token_info(self, token: str, status: str) -> dict[str, Any]:
        info: dict[str, Any] = {"status": status}
        if token in self.group_ids:
            info["group_id_token"] = {"id_token": self.group_ids[token], "type": "Central"}
        return info

    def current_time(self) -> str:
        moment = datetime.now(timezone.utc).timestamp() + self.clock_offset_s
        return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _password_for(self, station_id: str) -> str | None:
        if self.passwords is not None and station_id in self.passwords:
            return self.passwords[station_id]
        return self.default_password

    def _check_auth(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        wanted = self._password_for(station_id)
        if wanted is None:
            return None
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{station_id}:{wanted}".encode()).decode()
        if header != expected:
            self.refused.append(station_id)
            log.warning("%s refused: bad or missing Basic auth", station_id)
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Basic auth required\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1] if ws.request else "?"
        if ws.subprotocol != "ocpp2.0.1":
            await ws.close(1002, "ocpp2.0.1 required")
            return
        ssl_object = ws.transport.get_extra_info("ssl_object") if ws.transport else None
        if ssl_object is not None:
            self.peer_certs.append(ssl_object.getpeercert() or {})
        cp = CsmsChargePoint(station_id, ws, self)
        self.stations[station_id] = cp
        self.connections.append(station_id)
        self._arrived.set()
        log.info("%s connected%s", station_id, " (TLS)" if ssl_object else "")
        try:
            await cp.start()
        except ConnectionClosed:
            log.info("%s disconnected", station_id)

    async def station(self, station_id: str, timeout: float = 5.0, connection: int = 1) -> CsmsChargePoint:
        """The station's connection once it has connected `connection` times."""
        async def until() -> CsmsChargePoint:
            while self.connections.count(station_id) < connection:
                self._arrived.clear()
                await self._arrived.wait()
            return self.stations[station_id]
        return await asyncio.wait_for(until(), timeout)

    async def start(self) -> "DevCsms":
        self._server = await serve(self._handle, self.host, self.port, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                                   ssl=self.ssl, process_request=self._check_auth, max_size=1 << 20)
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl else 'ws'}://{self.host}:{self.port}"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--password", default=DEV_PASSWORD, help="Basic auth password ('' = none asked)")
    parser.add_argument("--heartbeat", type=int, default=60, help="heartbeat interval given at boot (s)")
    parser.add_argument("--cert", help="server certificate (PEM): serve wss://")
    parser.add_argument("--key", help="server private key (PEM)")
    parser.add_argument("--frames", action="store_true", help="log every OCPP-J frame")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA (profile 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.frames:
        logging.getLogger("ocpp").setLevel(logging.WARNING)  # the package logs every frame at INFO
        logging.getLogger("websockets").setLevel(logging.WARNING)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
    csms = DevCsms(args.host, args.port, default_password=args.password or None, ssl=context,
                   heartbeat_interval=args.heartbeat)
    await csms.start()
    log.info("dev CSMS listening on %s (Basic auth %s)", csms.url, "on" if args.password else "off")
    try:
        await asyncio.Future()
    finally:
        await csms.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(0)
