"""TransactionEvent Started / Updated / Ended (OCPP 2.0.1 E01-E08) from the EVSE's events.

Which EVSE conditions start and stop a transaction is `TxCtrlr.TxStartPoint` / `TxStopPoint` (tx_points.py).
Every event is committed to the durable queue together with the transaction's new state (next seqNo, points
reached), so seqNo is continuous per transaction across outages and power cuts. After a power cut the
station cannot know whether the EV still charged, so an open transaction is ended at start with
stoppedReason PowerLoss (E07; triggerReason AbnormalCondition), its last sent meter reading as the end value.
A clean stop of the process ends open transactions at once with stoppedReason Reboot instead.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ocpp.v201 import call

from station.ocpp import tx_points as points
from station.ocpp.meter_values import measurands, meter_value
from station.session import (Authorized, ChargingStateChanged, Deauthorized, EVDisconnected, EvseEvent,
                             FaultRaised, MeterUpdated)

if TYPE_CHECKING:
    from station.evse import Evse
    from station.ocpp.service import OcppService

log = logging.getLogger("station.ocpp.tx")

SIGNED_TIMEOUT_S = 10.0  # how long a transaction boundary waits for the meter's signed value
SHUTDOWN_SIGNED_TIMEOUT_S = 2.0  # the same at a clean stop (systemd's stop timeout is not ours to spend)
INVALID_ID_LIMIT = "ocpp-invalid-id"  # Evse.set_limit source while MaxEnergyOnInvalidId caps the energy
#: Bound on the TxEndedInterval samples one Ended event carries (the oldest go first).
MAX_ENDED_SAMPLES = 96
TOKEN_TYPES = {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"}


def id_token(token: str | None, token_type: str | None) -> dict[str, Any]:
    kind = token_type if token_type in TOKEN_TYPES else ("NoAuthorization" if token is None else "Local")
    return {"id_token": token or "", "type": kind}


def with_signed(meter: list[dict[str, Any]] | None, signed: Any, context: str, timestamp: str,
                tx: dict[str, Any]) -> list[dict[str, Any]]:
    """Attach the meter's signed value (SignedMeterValueType, unchanged) to the energy register sample."""
    block = {"signed_meter_data": signed.signed_meter_data, "signing_method": signed.signing_method,
             "encoding_method": signed.encoding_method, "public_key": signed.public_key}
    values = list(meter or [])
    for value in reversed(values):
        for sample in value["sampled_value"]:
            if sample["measurand"] == "Energy.Active.Import.Register" and sample["context"] == context:
                sample["signed_meter_value"] = block
                return values
    values.append({"timestamp": timestamp, "sampled_value": [{
        "value": tx.get("last_wh") or 0.0, "measurand": "Energy.Active.Import.Register", "context": context,
        "unit_of_measure": {"unit": "Wh"}, "signed_meter_value": block}]})
    return values


class TxTracker:
    """One EVSE: the conditions that hold now and its open transaction (persisted state dict or None)."""

    def __init__(self, owner: "Transactions", evse: "Evse") -> None:
        self.owner = owner
        self.svc = owner.svc
        self.evse = evse
        self.holds: set[str] = set()
        self.tx: dict[str, Any] | None = None
        self.stop_cause: tuple[str, str] | None = None
        self.remote_start_id: int | None = None
        self._periodic: asyncio.Task[Any] | None = None
        self.energy_cap_wh: float | None = None  # MaxEnergyOnInvalidId in force
        self.bay_sensor = evse.board.capabilities.has_bay_sensor
        self.signed_begin: Any = None  # the meter's signed start value of this session (DataSigned)

    # ----------------------------------------------------------------- events
    def on_event(self, event: EvseEvent) -> None:
        if isinstance(event, Deauthorized):
            self.stop_cause = points.DEAUTHORIZED.get(event.reason, ("StopAuthorized", "Local"))
        elif isinstance(event, FaultRaised) and self.tx is not None:
            self.stop_cause = ("AbnormalCondition", "Other")
        if type(event) in points.GAINED or type(event) in points.LOST:
            self._conditions(event, points.after(self.holds, event, bay_sensor=self.bay_sensor))
        if isinstance(event, MeterUpdated) and self.energy_cap_wh is not None:
            self._check_energy_cap()
        if isinstance(event, ChargingStateChanged) and self.tx is not None and event.state != self.tx.get("state"):
            self._updated("ChargingStateChanged", charging_state=event.state)

    def _conditions(self, event: EvseEvent | None, now: set[str]) -> None:
        """The start and stop points that now hold (tx_points.after) decide the transaction."""
        dm = self.svc.dm
        gained, lost = now - self.holds, self.holds - now
        self.holds = now
        if "PowerPathClosed" in lost:
            self.signed_begin = None
        if self.tx is not None and lost:
            ends = bool(lost & points.parse(dm.value("TxCtrlr", "TxStopPoint")) & set(self.tx["reached"])) or (
                "EVConnected" in lost and dm.bool_value("TxCtrlr", "StopTxOnEVSideDisconnect", default=True))
            assert event is not None  # only an EVSE event ends conditions
            trigger, reason = points.ending(event, self.stop_cause)
            if ends:
                self._ended(trigger, reason)
            elif isinstance(event, (Deauthorized, EVDisconnected)):  # the transaction outlives the cause
                self._updated(trigger)
        if gained and self.tx is None:
            if gained & points.parse(dm.value("TxCtrlr", "TxStartPoint")):
                if event is None:
                    trigger = points.SIGNED_TRIGGER
                elif isinstance(event, Authorized):
                    trigger = self._auth_trigger()
                else:
                    trigger = points.START_TRIGGER[type(event)]
                self._start(trigger)
        elif gained and self.tx is not None:
            self.tx["reached"] = sorted(set(self.tx["reached"]) | gained)
            if "Authorized" in gained and not self.tx["token_sent"]:
                self._updated(self._auth_trigger(), with_token=True)
            elif "EVConnected" in gained:
                self._updated("CablePluggedIn")
            elif "DataSigned" in gained:
                self._send("Updated", points.SIGNED_TRIGGER, measurands_key="TxStartedMeasurands",
                           context="Transaction.Begin", signed=self.signed_begin)
        if "PowerPathClosed" in gained:
            meter = self.signing_meter()
            if meter is not None:
                self.svc.spawn(self._begin_signed(meter, self._session_id()))

    def _auth_trigger(self) -> str:
        return "RemoteStart" if self.remote_start_id is not None else "Authorized"

    # ----------------------------------------------------------------- messages
    def _start(self, trigger: str) -> None:
        self.stop_cause = None
        session = self.evse.session
        self.tx = {"tx_id": uuid.uuid4().hex, "evse_id": self.evse.id, "seq": 0, "token_sent": False,
                   "reached": sorted(self.holds & set(points.ALL)), "session": session.id if session else None,
                   "last_wh": None}
        self._send("Started", trigger, with_token="Authorized" in self.holds,
                   charging_state=self.evse.charging_state.value, measurands_key="TxStartedMeasurands",
                   context="Transaction.Begin", signed=self.signed_begin)
        interval = self.svc.dm.int_value("SampledDataCtrlr", "TxUpdatedInterval", default=0)
        ended_interval = self.svc.dm.int_value("SampledDataCtrlr", "TxEndedInterval", default=0)
        if interval > 0 or ended_interval > 0:
            self._periodic = self.svc.spawn(self._sample_periodically(interval, ended_interval))

    def _updated(self, trigger: str, *, with_token: bool = False, charging_state: str | None = None,
                 context: str | None = None) -> None:
        self._send("Updated", trigger, with_token=with_token, charging_state=charging_state,
                   measurands_key="TxUpdatedMeasurands" if context else None, context=context)

    def updated_with(self, trigger: str, source: tuple[str, str], context: str) -> None:
        """An Updated carrying another controller's measurands (clock-aligned data)."""
        self._send("Updated", trigger, measurands_key=source[1], context=context, controller=source[0])

    def _ended(self, trigger: str, reason: str) -> "asyncio.Task[Any] | None":
        """Send the Ended event; with a signing meter, the task that sends it once the signed end value came."""
        meter = self.signing_meter()
        if meter is None:
            self._send("Ended", trigger, stopped_reason=reason, charging_state=self.evse.charging_state.value,
                       measurands_key="TxEndedMeasurands", context="Transaction.End")
            return None
        # A meter that signs on request: the Ended event waits (bounded) for the signed end value. The
        # transaction is closed here already; a power cut meanwhile ends it with PowerLoss at the restart.
        tx, state = self.tx, self.evse.charging_state.value
        self._close()
        return self.svc.spawn(self._end_signed(meter, tx, trigger, reason, state))

    def _session_id(self) -> str | None:
        session = self.evse.session
        return session.id if session else None

    def signing_meter(self) -> Any:
        """The EVSE's meter when it signs readings and SampledDataCtrlr.SignReadings asks for them."""
        meter = self.svc.station.meters.get(self.evse.id)
        if meter is None or not meter.can_sign:
            return None
        return meter if self.svc.dm.bool_value("SampledDataCtrlr", "SignReadings", default=True) else None

    async def _signed(self, meter: Any, context: str) -> Any:
        try:
            return await asyncio.wait_for(meter.signed_reading(context), SIGNED_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - no signed value: the event goes without it
            log.warning("EVSE %d: no signed meter value for %s (%s)", self.evse.id, context, exc or type(exc).__name__)
            return None

    async def _end_signed(self, meter: Any, tx: Any, trigger: str, reason: str, state: str) -> None:
        signed = None
        try:
            signed = await self._signed(meter, "Transaction.End")
        finally:  # also when the station stops meanwhile: the Ended goes without the signed value
            self._send("Ended", trigger, stopped_reason=reason, charging_state=state,
                       measurands_key="TxEndedMeasurands", context="Transaction.End", tx=tx, signed=signed)

    async def _begin_signed(self, meter: Any, session_id: str | None) -> None:
        """DataSigned: the meter's signed start value; it starts the transaction (TxStartPoint DataSigned)
        or goes out as Updated (SignedDataReceived) in the open one."""
        signed = await self._signed(meter, "Transaction.Begin")
        if signed is None or self._session_id() != session_id or "PowerPathClosed" not in self.holds:
            return  # no value, or the session ended meanwhile
        self.signed_begin = signed
        self._conditions(None, points.after(self.holds, None, signed=True, bay_sensor=self.bay_sensor))

    def _send(self, event_type: str, trigger: str, *, with_token: bool = False, charging_state: str | None = None,
              stopped_reason: str | None = None, measurands_key: str | None = None,
              context: str | None = None, controller: str = "SampledDataCtrlr", tx: Any = None,
              signed: Any = None) -> None:
        tx = tx if tx is not None else self.tx
        assert tx is not None
        info: dict[str, Any] = {"transaction_id": tx["tx_id"]}
        if charging_state:
            info["charging_state"] = charging_state
            tx["state"] = charging_state
        if stopped_reason:
            info["stopped_reason"] = stopped_reason
        if trigger == "RemoteStart" and self.remote_start_id is not None:
            info["remote_start_id"] = self.remote_start_id
        token = None
        session = self.evse.session
        if with_token and session is not None and session.authorized_at is not None:
            token = id_token(session.id_token, session.token_type)
            tx["token_sent"] = True
        meter = None
        if measurands_key and self.svc.dm.bool_value(controller, "Enabled", default=True):
            meter = self._meter(controller, measurands_key, context or "Sample.Periodic", tx)
        if signed is not None:
            meter = with_signed(meter, signed, context or "Transaction.Begin", self.svc.time.iso(), tx)
        if stopped_reason is not None and tx.get("ended_values"):
            meter = tx["ended_values"] + (meter or [])  # TxEndedInterval samples, then the end value
        payload = call.TransactionEvent(
            event_type=event_type, timestamp=self.svc.time.iso(), trigger_reason=trigger, seq_no=tx["seq"],
            transaction_info=info, offline=True if self.owner.queue.offline() else None,
            evse={"id": self.evse.id, "connector_id": 1}, id_token=token, meter_value=meter)
        tx["seq"] += 1
        ended = event_type == "Ended"
        self.owner.queue.enqueue(payload, tx=(tx["tx_id"], None if ended else dict(tx)),
                                 on_result=self._answered if token else None)
        if ended and tx is self.tx:
            self._close()

    def _meter(self, controller: str, key: str, context: str, tx: Any = None) -> list[dict[str, Any]] | None:
        reading = self.evse.last_reading
        if reading is None:
            return None
        value = meter_value(reading, measurands(self.svc.dm.value(controller, key)), context,
                            self.svc.time.iso(), offered_a=self.evse.limiter.value)
        if value is None:
            return None
        tx = tx if tx is not None else self.tx
        assert tx is not None
        tx["last_wh"] = reading.energy_import_wh
        return [value]

    def keep_for_end(self, controller: str, key: str, context: str) -> None:
        """A sample for the Ended event (TxEndedInterval), kept in the transaction state."""
        if self.tx is None:
            return
        sample = self._meter(controller, key, context)
        if sample:
            self.tx.setdefault("ended_values", []).extend(sample)
            del self.tx["ended_values"][:-MAX_ENDED_SAMPLES]

    def _close(self) -> None:
        if self.energy_cap_wh is not None:
            self.energy_cap_wh = None
            self.evse.set_limit(INVALID_ID_LIMIT, None)
        self.tx = None
        self.remote_start_id = None
        self.stop_cause = None
        if self._periodic is not None:
            self._periodic.cancel()
            self._periodic = None

    async def _sample_periodically(self, interval_s: int, ended_interval_s: int) -> None:
        """TxUpdatedInterval: an Updated per interval. TxEndedInterval: samples kept for the Ended event
        (in the transaction state, so they are persisted with the next message)."""
        tx = self.tx
        loop = asyncio.get_running_loop()
        next_update = loop.time() + interval_s if interval_s > 0 else None
        next_ended = loop.time() + ended_interval_s if ended_interval_s > 0 else None
        while self.tx is tx and tx is not None:
            due = min(t for t in (next_update, next_ended) if t is not None)
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self.tx is not tx:
                return
            now = loop.time()
            if next_ended is not None and now >= next_ended:
                next_ended += ended_interval_s
                self.keep_for_end("SampledDataCtrlr", "TxEndedMeasurands", "Sample.Periodic")
            if next_update is not None and now >= next_update:
                next_update += interval_s
                self._updated("MeterValuePeriodic", context="Sample.Periodic")

    def _answered(self, result: Any) -> None:
        """E05/C: idTokenInfo in the answer; a token the CSMS does not accept stops the energy."""
        info = getattr(result, "id_token_info", None) or {}
        status = info.get("status", "Accepted")
        session = self.evse.session
        if session is not None and session.id_token is not None and info:
            self.svc.authorization.remember(session.id_token, session.token_type or "Local", dict(info))
        if status == "Accepted" or self.tx is None:
            return
        if self.svc.dm.bool_value("TxCtrlr", "StopTxOnInvalidId", default=True):
            log.warning("EVSE %d: CSMS answered idToken %s: stopping the transaction", self.evse.id, status)
            self.evse.deauthorize("DeAuthorized")
            return
        # E05: the transaction goes on, the energy stops (SuspendedEVSE) once MaxEnergyOnInvalidId is used.
        allowance = self.svc.dm.int_value("TxCtrlr", "MaxEnergyOnInvalidId", default=0)
        session = self.evse.session
        self.energy_cap_wh = (session.energy_wh if session else 0.0) + allowance
        log.warning("EVSE %d: idToken %s: energy capped at %d Wh more", self.evse.id, status, allowance)
        self._check_energy_cap()

    def _check_energy_cap(self) -> None:
        session = self.evse.session
        if self.energy_cap_wh is not None and session is not None and session.energy_wh >= self.energy_cap_wh:
            self.evse.set_limit(INVALID_ID_LIMIT, 0.0)

    # ----------------------------------------------------------------- shutdown, power loss
    async def end_for_shutdown(self) -> None:
        """A clean stop of the station (systemctl stop/restart, reboot): the EVSE's power goes off with the
        process, so the open transaction ends now, stoppedReason Reboot, committed before the process
        exits (delivered now if the link is up, else after the restart). Not PowerLoss: nothing was lost."""
        if self.tx is None:
            return
        log.info("EVSE %d: station stopping: transaction %s ends (Reboot)", self.evse.id, self.tx["tx_id"])
        ending = self._ended("AbnormalCondition", "Reboot")
        if ending is not None and not (await asyncio.wait({ending}, timeout=SHUTDOWN_SIGNED_TIMEOUT_S))[0]:
            ending.cancel()  # _end_signed's finally sends the Ended without the signed value
            await asyncio.gather(ending, return_exceptions=True)

    def end_after_power_loss(self, state: dict[str, Any]) -> None:
        self.tx = state
        meter = None
        if state.get("last_wh") is not None:
            meter = [{"timestamp": self.svc.time.iso(), "sampled_value": [{
                "value": state["last_wh"], "measurand": "Energy.Active.Import.Register", "context": "Transaction.End",
                "unit_of_measure": {"unit": "Wh"}}]}]
        meter = (state.get("ended_values") or []) + (meter or []) or None
        payload = call.TransactionEvent(
            event_type="Ended", timestamp=self.svc.time.iso(), trigger_reason="AbnormalCondition",
            seq_no=state["seq"], transaction_info={"transaction_id": state["tx_id"], "stopped_reason": "PowerLoss"},
            offline=True if self.owner.queue.offline() else None, evse={"id": self.evse.id, "connector_id": 1},
            meter_value=meter)
        log.warning("EVSE %d: transaction %s ended after a power loss (seqNo %d)", self.evse.id, state["tx_id"],
                    state["seq"])
        self.owner.queue.enqueue(payload, tx=(state["tx_id"], None))
        self._close()


class Transactions:
    def __init__(self, svc: "OcppService") -> None:
        self.svc = svc
        self.queue = svc.queue
        self.trackers = {evse_id: TxTracker(self, evse) for evse_id, evse in svc.station.evses.items()}

    def recover(self, states: dict[str, dict[str, Any]]) -> None:
        for tx_id, state in states.items():
            tracker = self.trackers.get(state.get("evse_id", -1))
            if tracker is None:
                log.error("stored transaction %s for unknown EVSE %s: dropped", tx_id, state.get("evse_id"))
                self.queue.save_tx(tx_id, None)
                continue
            try:
                tracker.end_after_power_loss(state)
            except Exception:  # noqa: BLE001 - an unreadable row must not keep the station from starting
                log.exception("stored transaction %s unreadable: dropped", tx_id)
                self.queue.save_tx(tx_id, None)

    async def end_for_shutdown(self) -> None:
        await asyncio.gather(*(t.end_for_shutdown() for t in self.trackers.values()))

    def on_event(self, event: EvseEvent) -> None:
        tracker = self.trackers.get(event.evse_id)
        if tracker is not None:
            tracker.on_event(event)

    def by_id(self, transaction_id: str) -> TxTracker | None:
        return next((t for t in self.trackers.values() if t.tx is not None and t.tx["tx_id"] == transaction_id),
                    None)

    def trigger(self, evse_id: int | None, connector_id: int | None) -> None:
        """TriggerMessage(TransactionEvent): an Updated with triggerReason Trigger per open transaction."""
        for tracker in self.trackers.values():
            if tracker.tx is not None and (evse_id is None or tracker.evse.id == evse_id):
                tracker._updated("Trigger", charging_state=tracker.evse.charging_state.value,
                                 context="Trigger")
