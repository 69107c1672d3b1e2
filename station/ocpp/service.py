"""The OCPP 2.0.1 client as a station service: wires link, RPC layer, boot, device model, availability
and status reporting together. Started by station.services when the config has an `[ocpp]` table.

For other services (issue 4: transactions, authorization, meter values) the API is:
  `svc.outbox.submit(call.X(...), keep_offline=...)` -> future of call_result.X (never awaited inside a
  handler), `svc.call(...)` (awaitable shortcut), `svc.triggers[name] = fn(evse_id, connector_id)`,
  `svc.data_transfer_vendors[vendor] = fn(message_id, data) -> call_result.DataTransfer`,
  `svc.time.iso()` (station time as the CSMS set it), `svc.dm` (device model), `svc.boot.status`,
  `svc.connected`, and `svc.cp` for registering further `@on` handlers on a subclass.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine

from ocpp.exceptions import OCPPError
from ocpp.v201 import call_result
from websockets.asyncio.client import ClientConnection

from station.ocpp import security
from station.ocpp.aligned_data import AlignedData
from station.ocpp.authorization import Authorization
from station.ocpp.availability import Availability
from station.ocpp.boot import PENDING_ALLOWED, Boot, StationTime
from station.ocpp.config import OcppConfig
from station.ocpp.device_model import ComponentRef
from station.ocpp.dm_build import build_device_model, config_seeds
from station.ocpp.dm_catalog import VarDef
from station.ocpp.dm_store import DeviceModelStore
from station.ocpp.handlers_provisioning import ProvisioningHandlers, limits_check, notify_report_parts
from station.ocpp.handlers_remote import RemoteHandlers, builtin_triggers
from station.ocpp.handlers_auth import AuthHandlers
from station.ocpp.handlers_tx import TransactionHandlers
from station.ocpp.local_list import LOCAL_LIST_MAX_ENTRIES
from station.ocpp.message_queue import DurableQueue
from station.ocpp.outbox import Outbox
from station.ocpp.rpc import RobustChargePoint, RpcError
from station.ocpp.status import StatusReporter
from station.ocpp.transactions import Transactions
from station.ocpp.transport import BackOff, Link, LinkSettings
from station.session import ConnectorStatusChanged, EVDisconnected, EvseEvent

if TYPE_CHECKING:
    from station.station import Station

log = logging.getLogger("station.ocpp")


class StationChargePoint(TransactionHandlers, AuthHandlers, ProvisioningHandlers, RemoteHandlers, RobustChargePoint):
    def __init__(self, svc: "OcppService", connection: ClientConnection) -> None:
        assert svc.config is not None
        self.svc = svc
        self._after_plans: dict[str, Any] = {}
        super().__init__(svc.station.config.station.id, connection, max_frame_bytes=svc.config.max_frame_bytes)
        self.gate = svc.gate
        self.prechecks = {
            "GetVariables": limits_check(svc, "GetVariables", "getVariableData"),
            "SetVariables": limits_check(svc, "SetVariables", "setVariableData"),
            "GetReport": limits_check(svc, "GetReport", "componentVariable"),
            "SendLocalList": limits_check(svc, None, "localAuthorizationList", "LocalAuthListCtrlr", "SendLocalList"),
        }


class OcppService:
    def __init__(self, station: "Station") -> None:
        assert station.config.ocpp is not None
        self.station = station
        self.config: OcppConfig = station.config.ocpp
        self.store = DeviceModelStore(station.state_dir / "ocpp.sqlite")
        self.time = StationTime()
        self.availability = Availability(station.evses, self.store, self.restart)
        self.dm = build_device_model(station.config, self.config, self.store, availability=self.availability.view,
                                     problem=lambda e: bool(station.evses[e].faults.active()),
                                     power_w=self._power_w,
                                     clock_iso=self.time.iso)
        self.outbox = Outbox(lambda: float(self.dm.int_value("OCPPCommCtrlr", "MessageTimeout", "Default", 30)))
        self.boot = Boot(station.config, self.dm, self.outbox, self.time, self._on_accepted)
        self.status = StatusReporter(station.evses, self.outbox, self.time.iso,
                                     lambda: self.dm.int_value("OCPPCommCtrlr", "OfflineThreshold", default=600))
        self.triggers: dict[str, Callable[[int | None, int | None], Any]] = builtin_triggers(self)
        self.data_transfer_vendors: dict[str, Callable[[str | None, Any], Any]] = {}
        # Issue 4: durable queue (transaction messages), transactions from the EVSE events.
        self.queue = DurableQueue(self)
        self.transactions = Transactions(self)
        self.authorization = Authorization(self)
        self.dm.add(ComponentRef("LocalAuthListCtrlr"),
                    VarDef("LocalAuthListCtrlr", "Entries", "integer", mutability="ReadOnly",
                           max_limit=float(LOCAL_LIST_MAX_ENTRIES)),
                    live={"Actual": lambda: str(len(self.authorization.local_list.entries))})
        self.triggers["TransactionEvent"] = self.transactions.trigger
        self.aligned = AlignedData(self)
        self.status.durable = self.queue_if_queue_all
        self.triggers["MeterValues"] = self.aligned.trigger
        self.cp: StationChargePoint | None = None
        self.link: Link | None = None
        self._seeds: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def _power_w(self, evse_id: int) -> float:
        reading = self.station.evses[evse_id].last_reading
        return reading.power_w if reading is not None else 0.0

    @property
    def connected(self) -> bool:
        return self.cp is not None

    async def call(self, payload: Any, **options: Any) -> Any:
        return await self.outbox.call(payload, **options)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("OCPP task failed", exc_info=task.exception())

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        password = await asyncio.to_thread(security.read_password, self.config)
        context = await asyncio.to_thread(security.ssl_context, self.config)
        self._seeds = config_seeds(self.config, password)
        self.availability.load(await self.dm.load(self._seeds))
        self.dm.watch("OCPPCommCtrlr.HeartbeatInterval", self.boot.heartbeat_interval_changed)
        self.dm.watch("SecurityCtrlr.BasicAuthPassword", self._password_changed)
        self.station.listeners.append(self._on_event)
        self.transactions.recover(await self.queue.load())
        await self.authorization.load()
        self.station.token_handler = self.authorization.token_presented
        self._apply_ev_connection_timeout(self.dm.value("TxCtrlr", "EVConnectionTimeOut") or "60")
        self.dm.watch("TxCtrlr.EVConnectionTimeOut", self._apply_ev_connection_timeout)
        dm = self.dm
        self.link = Link(
            LinkSettings(url=security.endpoint(self.config.csms_url, self.station.config.station.id), tls=context,
                         headers=self._headers,
                         ping_interval_s=lambda: dm.int_value("OCPPCommCtrlr", "WebSocketPingInterval", default=30),
                         max_size=max(4 * self.config.max_frame_bytes, 1 << 20)),
            BackOff(lambda: dm.int_value("OCPPCommCtrlr", "RetryBackOffWaitMinimum", default=3),
                    lambda: dm.int_value("OCPPCommCtrlr", "RetryBackOffRandomRange", default=10),
                    lambda: dm.int_value("OCPPCommCtrlr", "RetryBackOffRepeatTimes", default=3)))
        self.spawn(self.outbox.run())
        self.spawn(self.queue.run())
        self.spawn(self.aligned.run())
        self.spawn(self.link.run(self._session, self._link_down))
        if self.station.control is not None:
            self.station.control.add_handlers({"ocpp.status": self._control_status})
        log.info("OCPP client for %s (security profile %d)", self.link.settings.url, self.config.security_profile)

    async def stop(self, drain_s: float = 1.0) -> None:
        # The EVSEs stop after this service: their transactions end here (Reboot), not as a PowerLoss later.
        try:
            await self.transactions.end_for_shutdown()
        except Exception:  # noqa: BLE001 - a failed Ended stays open in the store: PowerLoss at the restart
            log.exception("ending the open transactions at stop failed")
        if self._on_event in self.station.listeners:
            self.station.listeners.remove(self._on_event)
        # Let what is already queued (the last status changes, the Ended events) reach the CSMS, briefly.
        deadline = asyncio.get_running_loop().time() + drain_s
        while self.connected and (self.outbox.busy() or self.queue.pending()) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queue.close()
        await self.authorization.close()
        await self.store.close()

    def _headers(self) -> dict[str, str]:
        if self.config.security_profile == 3:
            return {}
        password = self.dm.value("SecurityCtrlr", "BasicAuthPassword")
        if not password:
            return {}
        return {"Authorization": security.basic_auth(self.station.config.station.id, password)}

    async def _session(self, ws: ClientConnection) -> None:
        cp = StationChargePoint(self, ws)
        self.cp = cp
        self.outbox.attach(cp)
        boot = self.spawn(self.boot.run())
        try:
            await cp.start()
        finally:
            boot.cancel()

    def queue_if_queue_all(self, payload: Any) -> "asyncio.Future[Any] | None":
        """OCPPCommCtrlr.QueueAllMessages: other messages go through the durable queue too. With payload
        None: only whether that is on (a ready future)."""
        if not self.dm.bool_value("OCPPCommCtrlr", "QueueAllMessages", default=False):
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if payload is None:
            future.set_result(None)
            return future
        self.queue.enqueue(payload, on_result=future.set_result)
        return future

    def _apply_ev_connection_timeout(self, value: str) -> None:
        # The Evse reads this attribute when a token arrives before the cable (its own config value
        # otherwise): TxCtrlr.EVConnectionTimeOut governs it under OCPP.
        for evse in self.station.evses.values():
            evse.ev_connection_timeout_s = float(value)

    def _password_changed(self, _value: str) -> None:
        def reconnect() -> None:
            self.spawn(self._drop("BasicAuthPassword changed: reconnecting with it"))  # A01: after the answer
        if self.cp is not None:
            self.cp.after_answer(reconnect)
        else:
            reconnect()

    def _link_down(self) -> None:
        self.cp = None
        self.outbox.detach()
        self.status.link_down()

    async def _drop(self, reason: str) -> None:
        if self.link is not None:
            await self.link.drop(reason)

    async def restart(self, reason: str) -> None:
        """Station reset: values that needed a reboot take effect, the link reconnects and boots again."""
        await self.dm.load(self._seeds)
        self.boot.restart(reason)
        await self._drop(f"reset ({reason})")

    # ----------------------------------------------------------------- events and rules
    def _on_accepted(self, first: bool) -> None:
        self.status.after_accept(first)

    def _on_event(self, event: EvseEvent) -> None:
        self.status.on_event(event)
        self.transactions.on_event(event)
        if (self.availability.scheduled or self.availability.reset_scheduled) and isinstance(
                event, (EVDisconnected, ConnectorStatusChanged)):
            self.spawn(self.availability.on_idle_check(event))

    def gate(self, action: str, payload: dict[str, Any]) -> Any:
        """B02/B03: what the CSMS may do before the boot is Accepted."""
        status = self.boot.status
        if status == "Accepted":
            return None
        if status == "Pending":
            if action == "RequestStartTransaction":
                return call_result.RequestStartTransaction(status="Rejected")
            if action == "RequestStopTransaction":
                return call_result.RequestStopTransaction(status="Rejected")
            if action in PENDING_ALLOWED:
                return None
        elif action == "TriggerMessage" and payload.get("requestedMessage") == "BootNotification":
            return None
        return RpcError("SecurityError", f"{action} not allowed while the boot is {status or 'unanswered'}")

    def send_report(self, request_id: int, data: list[dict[str, Any]]) -> list[Awaitable[Any]]:
        per_message = self.dm.int_value("DeviceDataCtrlr", "ItemsPerMessage", "GetReport", default=50)
        return [self.outbox.submit(part, before_accept=True)
                for part in notify_report_parts(request_id, data, per_message, self.time.iso())]

    async def _control_status(self, args: dict[str, Any]) -> dict[str, Any]:
        link = self.link
        return {"connected": self.connected, "boot": self.boot.status, "queued": self.outbox.pending(),
                "sent": self.outbox.sent, "durable_queued": self.queue.pending(),
                "durable_delivered": self.queue.delivered, "durable_dropped": self.queue.dropped, "url": link.settings.url if link else None,
                "last_error": link.last_error if link else None,
                "counters": dict(self.cp.counters) if self.cp else None}


__all__ = ["OcppService", "OCPPError"]
