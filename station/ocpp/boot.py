"""BootNotification (B01-B03), heartbeat (G02) and the station clock as the CSMS sets it.

Until the CSMS answers Accepted nothing but BootNotification (and what the CSMS triggers) goes out.
Pending/Rejected: the boot is repeated after the `interval` the CSMS gave. A reconnect after an
Accepted boot does not repeat the boot (its content did not change). The clock: we do not set the
system clock; `now()` is the wall clock plus the offset the CSMS's currentTime implies.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ocpp.v201 import call

from station import __version__
from station.config_model import StationConfig
from station.ocpp.datetime_check import valid_datetime
from station.ocpp.device_model import DeviceModel
from station.ocpp.outbox import Outbox

log = logging.getLogger("station.ocpp.boot")
DEFAULT_RETRY_S = 30.0  # when the CSMS sends interval 0 with Pending/Rejected

#: CSMS calls executed while the boot is Pending (B02); the rest get SecurityError.
PENDING_ALLOWED = frozenset({
    "GetVariables", "SetVariables", "GetBaseReport", "GetReport", "TriggerMessage", "SetNetworkProfile",
    "Reset", "DataTransfer", "CertificateSigned", "InstallCertificate", "DeleteCertificate",
    "GetInstalledCertificateIds",
})


class StationTime:
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.set_by_csms = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def iso(self) -> str:
        return self.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def adopt(self, current_time: str | None) -> None:
        if not current_time or not valid_datetime(current_time):
            return
        csms = datetime.fromisoformat(current_time.replace("Z", "+00:00")[:32])
        if csms.tzinfo is None:
            csms = csms.replace(tzinfo=timezone.utc)
        self.offset = csms - datetime.now(timezone.utc)
        self.set_by_csms = True


class Boot:
    def __init__(self, config: StationConfig, dm: DeviceModel, outbox: Outbox, time: StationTime,
                 on_accepted: Callable[[bool], None]) -> None:
        self.config = config
        self.dm = dm
        self.outbox = outbox
        self.time = time
        self.on_accepted = on_accepted  # called with first=True after the first Accepted of this run
        self.status: str | None = None  # None (not yet answered), Pending, Accepted, Rejected
        self.reason = "PowerUp"
        self.accepted_once = False
        self.boots_sent = 0
        self._retry_now = asyncio.Event()
        self._heartbeat_changed = asyncio.Event()

    def payload(self) -> Any:
        info = self.config.station
        station: dict[str, Any] = {"model": info.model, "vendor_name": info.vendor, "firmware_version": __version__}
        if info.serial_number:
            station["serial_number"] = info.serial_number
        return call.BootNotification(charging_station=station, reason=self.reason)

    def trigger(self) -> None:
        """TriggerMessage(BootNotification) while Pending/Rejected: boot again now."""
        self._retry_now.set()

    def heartbeat_interval_changed(self, _value: str) -> None:
        self._heartbeat_changed.set()

    def restart(self, reason: str) -> None:
        self.reason, self.status, self.accepted_once = reason, None, False

    # ----------------------------------------------------------------- per connection
    async def run(self) -> None:
        """Runs while a link is up: boot until Accepted, then heartbeat."""
        if self.accepted_once:
            self.outbox.set_accepted(True)
            self.on_accepted(False)
        else:
            await self._boot_until_accepted()
        await self._heartbeat()

    async def _boot_until_accepted(self) -> None:
        while True:
            self._retry_now.clear()
            self.boots_sent += 1
            try:
                result = await self.outbox.submit(self.payload(), before_accept=True)
            except Exception as exc:  # noqa: BLE001 - CALLERROR / timeout: try again after the back-off
                log.warning("BootNotification failed: %s", exc or type(exc).__name__)
                await self._wait(DEFAULT_RETRY_S)
                continue
            self.time.adopt(result.current_time)
            self.status = str(result.status)
            log.info("BootNotification: %s (interval %s s)", self.status, result.interval)
            if self.status == "Accepted":
                if result.interval and result.interval > 0:
                    self._set_heartbeat_interval(result.interval)
                self.accepted_once = True
                self.outbox.set_accepted(True)
                self.on_accepted(True)
                return
            await self._wait(float(result.interval) if result.interval and result.interval > 0 else DEFAULT_RETRY_S)

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._retry_now.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _set_heartbeat_interval(self, seconds: int) -> None:
        variable = self.dm.find("OCPPCommCtrlr", "HeartbeatInterval")
        if variable is not None:
            variable.values["Actual"] = str(seconds)  # the CSMS's boot answer; re-sent on every boot

    async def _heartbeat(self) -> None:
        while True:
            self._heartbeat_changed.clear()
            interval = max(1, self.dm.int_value("OCPPCommCtrlr", "HeartbeatInterval", default=300))
            try:
                await asyncio.wait_for(self._heartbeat_changed.wait(), timeout=interval)
                continue  # new interval: start counting again
            except asyncio.TimeoutError:
                pass
            await self.send_heartbeat()

    async def send_heartbeat(self, before_accept: bool = False) -> None:
        try:
            result = await self.outbox.submit(call.Heartbeat(), before_accept=before_accept)
        except Exception as exc:  # noqa: BLE001 - the link code handles a dead link
            log.warning("Heartbeat failed: %s", exc or type(exc).__name__)
            return
        self.time.adopt(result.current_time)
