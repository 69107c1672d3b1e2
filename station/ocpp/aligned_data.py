"""Clock-aligned meter values (J01, AlignedDataCtrlr): every `Interval` seconds on the clock (aligned to
midnight UTC, station time), each EVSE's reading of `AlignedDataCtrlr.Measurands` goes out with context
Sample.Clock: inside a transaction as TransactionEvent Updated (triggerReason MeterValueClock, durable, in
seqNo order), outside one as MeterValues. A [grid_meter] goes out as MeterValues with evseId 0 (the main
meter). Also TriggerMessage(MeterValues) (context Trigger)."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Callable

from ocpp.v201 import call

from station.ocpp.meter_values import measurands, meter_value

if TYPE_CHECKING:
    from station.ocpp.service import OcppService

log = logging.getLogger("station.ocpp.meter")

GRID_READ_TIMEOUT_S = 5.0


def seconds_to_boundary(now_s: float, interval_s: int) -> float:
    """Seconds until the next multiple of `interval_s` since midnight UTC."""
    into_day = now_s % 86400
    return interval_s - (into_day % interval_s) or float(interval_s)


class AlignedData:
    def __init__(self, svc: "OcppService") -> None:
        self.svc = svc
        self.sent = 0

    def _interval(self, name: str) -> int:
        dm = self.svc.dm
        if not dm.bool_value("AlignedDataCtrlr", "Enabled", default=True):
            return 0
        return dm.int_value("AlignedDataCtrlr", name, default=900 if name == "Interval" else 0)

    async def run(self) -> None:
        await asyncio.gather(self._every("Interval", lambda: self.sample("Sample.Clock")),
                             self._every("TxEndedInterval", self.sample_for_ended))

    async def _every(self, name: str, action: "Callable[[], object]") -> None:
        while True:
            interval = self._interval(name)
            if interval <= 0:
                await asyncio.sleep(1.0)  # watch for the CSMS enabling it
                continue
            await asyncio.sleep(seconds_to_boundary(self.svc.time.now().timestamp(), interval))
            if self._interval(name) == interval:
                action()

    def sample_for_ended(self) -> None:
        """AlignedDataCtrlr.TxEndedInterval: clock-aligned samples kept for each open transaction's Ended."""
        for tracker in self.svc.transactions.trackers.values():
            if tracker.tx is not None:
                tracker.keep_for_end("AlignedDataCtrlr", "TxEndedMeasurands", "Sample.Clock")

    def sample(self, context: str, evse_id: int | None = None) -> int:
        svc = self.svc
        wanted = measurands(svc.dm.value("AlignedDataCtrlr", "Measurands"))
        count = 0
        for tracker in svc.transactions.trackers.values():
            evse = tracker.evse
            if evse_id is not None and evse.id != evse_id:
                continue
            if tracker.tx is not None and context == "Sample.Clock":
                tracker.updated_with("MeterValueClock", ("AlignedDataCtrlr", "Measurands"), context)
                count += 1
                continue
            reading = evse.last_reading
            value = (meter_value(reading, wanted, context, svc.time.iso(), offered_a=evse.limiter.value)
                     if reading is not None else None)
            if value is None:
                continue
            count += self._submit(call.MeterValues(evse_id=evse.id, meter_value=[value]), context)
        if svc.station.grid_meter is not None and evse_id is None:
            svc.spawn(self._grid_sample(wanted, context))
        self.sent += count
        return count

    def _submit(self, message: call.MeterValues, context: str) -> int:
        svc = self.svc
        if context == "Trigger":
            svc.outbox.submit(message, before_accept=True)
        elif svc.queue_if_queue_all(message) is None:  # QueueAllMessages: durable, else only online
            if not svc.connected:
                return 0
            svc.outbox.submit(message)
        return 1

    async def _grid_sample(self, wanted: list[str], context: str) -> None:
        """The grid meter is read here (no EVSE polls it); a failed read skips this interval."""
        meter = self.svc.station.grid_meter
        assert meter is not None
        try:
            reading = await asyncio.wait_for(meter.read(), GRID_READ_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a meter fault must not stop the other values
            log.warning("grid meter: no reading for %s (%s)", context, exc or type(exc).__name__)
            return
        value = meter_value(reading, wanted, context, self.svc.time.iso())
        if value is not None:
            self.sent += self._submit(call.MeterValues(evse_id=0, meter_value=[value]), context)

    def trigger(self, evse_id: int | None, connector_id: int | None) -> None:
        self.sample("Trigger", evse_id)
