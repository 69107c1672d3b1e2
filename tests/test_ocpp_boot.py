"""Boot (B01-B03), heartbeat, clock and the OCPP-J subprotocol/Basic auth of security profile 1, against
the dev CSMS over a real websocket on loopback."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ocpp.v201 import call

from station import control_client
from station.ocpp.security import basic_auth
from tests.ocpp_support import DevCsms, OcppStation, eventually, station_config


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False, heartbeat_interval=300).start()
    yield server
    await server.stop()


async def test_boot_accepted_then_status_of_every_connector(tmp_path: Path, csms) -> None:
    cfg = station_config(tmp_path, csms.url, evses=2, variables={"OCPPCommCtrlr.WebSocketPingInterval": 7})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await csms.station("TEST-1")
        boot = (await cp.wait_for("BootNotification"))[0]
        assert boot["reason"] == "PowerUp"
        assert boot["charging_station"] == {"model": "Sim", "vendor_name": "Test", "firmware_version": boot[
            "charging_station"]["firmware_version"]}
        statuses = await cp.wait_for("StatusNotification", count=2)
        assert {(s["evse_id"], s["connector_id"], s["connector_status"]) for s in statuses} == {
            (1, 1, "Available"), (2, 1, "Available")}
        assert st.svc.boot.status == "Accepted"
        assert cp.ws.subprotocol == "ocpp2.0.1"
        assert cp.ws.request.headers["Authorization"].startswith("Basic ")
        assert st.svc.link._ws.ping_interval == 7
        status = await control_client.call(st.station.control_socket, "ocpp.status")
        assert status["connected"] and status["boot"] == "Accepted" and status["counters"]["calls"] == 0


async def test_csms_without_the_ocpp201_subprotocol_is_refused(tmp_path: Path) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws) -> None:  # noqa: ANN001
        await ws.wait_closed()

    server = await serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with OcppStation(station_config(tmp_path, f"ws://127.0.0.1:{port}"), tmp_path) as st:
            await eventually(lambda: st.svc.link.attempts >= 2, what="retries")
            assert not st.svc.connected and st.svc.boot.boots_sent == 0
    finally:
        server.close()
        await server.wait_closed()


async def ask(cp, payload):  # noqa: ANN001, ANN201 - CSMS -> station CALL, CALLERROR raised
    return await cp.call(payload, suppress=False)


async def test_pending_allows_configuration_only(tmp_path: Path) -> None:
    from ocpp.exceptions import SecurityError

    csms = await DevCsms(port=0, verbose=False, boot_statuses=["Pending"], boot_retry_interval=3).start()
    try:
        async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
            cp = await csms.station("TEST-1")
            await eventually(lambda: st.svc.boot.status == "Pending", what="Pending")
            result = await ask(cp, call.GetVariables(get_variable_data=[
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]))
            assert result.get_variable_result[0]["attribute_value"] == "TEST-1"
            with pytest.raises(SecurityError):
                await ask(cp, call.ChangeAvailability(operational_status="Inoperative"))
            assert st.station.evses[1].enabled
            started = await ask(cp, call.RequestStartTransaction(id_token={"id_token": "A", "type": "Local"},
                                                                 remote_start_id=1))
            assert started.status == "Rejected"
            assert not cp.of("StatusNotification")  # nothing but the boot goes out while Pending
            await cp.wait_for("BootNotification", count=2, timeout=6)  # retried after `interval`
            await eventually(lambda: st.svc.boot.status == "Accepted", what="Accepted")
            await cp.wait_for("StatusNotification")
    finally:
        await csms.stop()


async def test_rejected_only_trigger_boot_is_accepted(tmp_path: Path) -> None:
    from ocpp.exceptions import SecurityError

    csms = await DevCsms(port=0, verbose=False, boot_statuses=["Rejected"], boot_retry_interval=120).start()
    try:
        async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
            cp = await csms.station("TEST-1")
            await eventually(lambda: st.svc.boot.status == "Rejected", what="Rejected")
            with pytest.raises(SecurityError):
                await ask(cp, call.GetVariables(get_variable_data=[
                    {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]))
            with pytest.raises(SecurityError):
                await ask(cp, call.TriggerMessage(requested_message="Heartbeat"))
            result = await ask(cp, call.TriggerMessage(requested_message="BootNotification"))
            assert result.status == "Accepted"
            await cp.wait_for("BootNotification", count=2, timeout=3)  # long before the 120 s interval
            await eventually(lambda: st.svc.boot.status == "Accepted", what="Accepted")
            result = await ask(cp, call.TriggerMessage(requested_message="BootNotification"))
            assert result.status == "Rejected"  # already accepted (F06.FR.17)
    finally:
        await csms.stop()


async def test_heartbeat_interval_and_clock_from_the_csms(tmp_path: Path) -> None:
    csms = await DevCsms(port=0, verbose=False, heartbeat_interval=1, clock_offset_s=7200).start()
    try:
        async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
            cp = await csms.station("TEST-1")
            await cp.wait_for("Heartbeat", count=2, timeout=4)
            assert st.svc.dm.value("OCPPCommCtrlr", "HeartbeatInterval") == "1"
            skew = (st.svc.time.now() - datetime.now(timezone.utc)).total_seconds()
            assert 7190 < skew < 7210
            status = (await cp.wait_for("StatusNotification"))[0]
            assert status["timestamp"].startswith(st.svc.time.now().strftime("%Y-%m-%dT%H"))
    finally:
        await csms.stop()


async def test_set_heartbeat_interval_restarts_the_heartbeat(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path):
        cp = await csms.station("TEST-1")
        await cp.wait_for("StatusNotification")
        assert not cp.of("Heartbeat")
        result = await ask(cp, call.SetVariables(set_variable_data=[{
            "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
            "attribute_value": "1"}]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        await cp.wait_for("Heartbeat", timeout=3)


async def test_wrong_password_is_refused_and_retried(tmp_path: Path) -> None:
    csms = await DevCsms(port=0, verbose=False, default_password="another-password-123").start()
    try:
        async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
            await eventually(lambda: len(csms.refused) >= 2, what="retries")
            assert not csms.connections and not st.svc.connected
            assert "401" in (st.svc.link.last_error or "")
    finally:
        await csms.stop()


async def test_new_basic_auth_password_reconnects_with_it(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path):
        cp = await csms.station("TEST-1")
        await cp.wait_for("StatusNotification")
        new = "a-brand-new-password-42"
        result = await ask(cp, call.SetVariables(set_variable_data=[{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
            "attribute_value": new}]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        csms.default_password = new
        cp2 = await csms.station("TEST-1", connection=2)
        assert cp2.ws.request.headers["Authorization"] == basic_auth("TEST-1", new)
        assert not cp2.of("BootNotification")  # same boot content: not repeated after a reconnect
        # the new password survives a restart
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path):
        cp3 = await csms.station("TEST-1", connection=3)
        assert cp3.ws.request.headers["Authorization"] == basic_auth("TEST-1", new)


async def test_reconnect_reports_changes_or_everything_after_offline_threshold(tmp_path: Path) -> None:
    csms = await DevCsms(port=0, verbose=False).start()
    port = csms.port
    cfg = station_config(tmp_path, csms.url, evses=2, variables={"OCPPCommCtrlr.OfflineThreshold": 60})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await csms.station("TEST-1")
        await cp.wait_for("StatusNotification", count=2)
        # Received is not acknowledged: a status whose answer is lost in the outage is sent again.
        await eventually(lambda: len(st.svc.status.reported) == 2, what="both statuses acknowledged")
        # short outage, one connector changes while offline: only that one is reported
        await csms.stop()
        await eventually(lambda: not st.svc.connected, what="offline")
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].connector_status.value == "Occupied", what="occupied")
        csms = await DevCsms(port=port, verbose=False).start()
        cp = await csms.station("TEST-1")
        await cp.wait_for("StatusNotification")
        await asyncio.sleep(0.3)
        assert [(s["evse_id"], s["connector_status"]) for s in cp.of("StatusNotification")] == [(1, "Occupied")]
        assert not cp.of("BootNotification")
        # outage longer than OfflineThreshold: every connector is reported
        result = await ask(cp, call.SetVariables(set_variable_data=[{
            "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"},
            "attribute_value": "1"}]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        await csms.stop()
        await eventually(lambda: not st.svc.connected, what="offline")
        await asyncio.sleep(1.2)
        csms = await DevCsms(port=port, verbose=False).start()
        cp = await csms.station("TEST-1")
        statuses = await cp.wait_for("StatusNotification", count=2)
        assert {(s["evse_id"], s["connector_status"]) for s in statuses} == {(1, "Occupied"), (2, "Available")}
    await csms.stop()


async def test_station_charges_while_the_csms_is_unreachable(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, "ws://127.0.0.1:9", variables={"OCPPCommCtrlr.RetryBackOffWaitMinimum": 1})
    async with OcppStation(cfg, tmp_path) as st:
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", timeout=8, what="charging")
        assert not st.svc.connected and st.svc.link.attempts >= 1
