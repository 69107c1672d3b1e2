"""Availability and remote control over OCPP: StatusNotification on EVSE changes, ChangeAvailability,
Reset, UnlockConnector, TriggerMessage, DataTransfer."""
from __future__ import annotations

from pathlib import Path

import pytest
from ocpp.v201 import call

from tests.ocpp_support import DevCsms, OcppStation, eventually, ready, station_config


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


async def ask(cp, payload):  # noqa: ANN001, ANN201
    return await cp.call(payload, suppress=False)


def statuses(cp, evse_id: int = 1) -> list[str]:  # noqa: ANN001
    return [s["connector_status"] for s in cp.of("StatusNotification") if s["evse_id"] == evse_id]


async def test_status_notification_on_every_connector_change(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await cp.wait_for("StatusNotification", lambda s: s["connector_status"] == "Occupied")
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("StatusNotification", count=3)
        assert statuses(cp) == ["Available", "Occupied", "Available"]


async def test_change_availability_evse_persists_and_reverts(tmp_path: Path, csms) -> None:
    cfg = station_config(tmp_path, csms.url, evses=2)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        result = await ask(cp, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2}))
        assert result.status == "Accepted"
        await cp.wait_for("StatusNotification", lambda s: s["evse_id"] == 2 and s["connector_status"] == "Unavailable")
        assert not st.station.evses[2].enabled and st.station.evses[1].enabled
        assert (await ask(cp, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 9}))).status \
            == "Rejected"
        assert (await ask(cp, call.ChangeAvailability(operational_status="Inoperative",
                                                      evse={"id": 1, "connector_id": 4}))).status == "Rejected"
        # connector level: the connector shares its EVSE's control pilot, so the EVSE goes Unavailable
        assert (await ask(cp, call.ChangeAvailability(operational_status="Inoperative",
                                                      evse={"id": 1, "connector_id": 1}))).status == "Accepted"
        await cp.wait_for("StatusNotification", lambda s: s["evse_id"] == 1 and s["connector_status"] == "Unavailable")
        assert (await ask(cp, call.ChangeAvailability(operational_status="Operative",
                                                      evse={"id": 1, "connector_id": 1}))).status == "Accepted"
        await eventually(lambda: st.station.evses[1].enabled, what="EVSE 1 enabled again")
    async with OcppStation(cfg, tmp_path) as st:  # Inoperative survives a restart
        cp = await ready(csms, connection=2)
        await eventually(lambda: not st.station.evses[2].enabled, what="EVSE 2 disabled after restart")
        result = await ask(cp, call.ChangeAvailability(operational_status="Operative", evse={"id": 2}))
        assert result.status == "Accepted"
        await eventually(lambda: st.station.evses[2].connector_status.value == "Available", what="available")


async def test_change_availability_scheduled_while_a_session_runs(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        result = await ask(cp, call.ChangeAvailability(operational_status="Inoperative"))
        assert result.status == "Scheduled"
        assert st.station.evses[1].enabled and st.station.evses[1].charging_state.value == "Charging"
        await st.sim("sim.unplug", evse=1)
        await eventually(lambda: not st.station.evses[1].enabled, what="disabled after the session")
        await cp.wait_for("StatusNotification", lambda s: s["connector_status"] == "Unavailable")
        # connector level, back to Operative
        result = await ask(cp, call.ChangeAvailability(operational_status="Operative"))
        assert result.status == "Accepted"
        await eventually(lambda: st.station.evses[1].enabled, what="enabled")


async def test_reset_station_immediate_boots_again(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        assert (await ask(cp, call.Reset(type="Immediate", evse_id=7))).status == "Rejected"
        assert (await ask(cp, call.Reset(type="Immediate"))).status == "Accepted"
        cp2 = await csms.station("TEST-1", connection=2)
        boot = (await cp2.wait_for("BootNotification"))[0]
        assert boot["reason"] == "RemoteReset"
        await cp2.wait_for("StatusNotification")
        assert st.svc.boot.status == "Accepted"


async def test_reset_on_idle_is_scheduled_until_the_session_ends(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url, evses=2), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        assert (await ask(cp, call.Reset(type="OnIdle"))).status == "Scheduled"
        assert (await ask(cp, call.Reset(type="OnIdle", evse_id=2))).status == "Accepted"  # EVSE 2 is idle
        await st.sim("sim.unplug", evse=1)
        cp2 = await csms.station("TEST-1", connection=2)
        assert (await cp2.wait_for("BootNotification"))[0]["reason"] == "RemoteReset"


async def test_reset_immediate_evse_ends_its_session(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        assert (await ask(cp, call.Reset(type="Immediate", evse_id=1))).status == "Accepted"
        await eventually(lambda: not st.station.evses[1].authorized, what="session stopped")
        assert csms.connections.count("TEST-1") == 1  # an EVSE reset does not restart the OCPP link


async def test_unlock_connector(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        assert (await ask(cp, call.UnlockConnector(evse_id=1, connector_id=2))).status == "UnknownConnector"
        assert (await ask(cp, call.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"
        await st.sim("sim.plug", evse=1, profile="ac-3ph-16a")
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        assert (await ask(cp, call.UnlockConnector(evse_id=1, connector_id=1))).status \
            == "OngoingAuthorizedTransaction"
        # A cable left in without a session (authorization ended): the lock really opens.
        st.station.evses[1].deauthorize("Remote")
        await eventually(lambda: not st.station.evses[1].snapshot()["power_allowed"], what="power off")
        assert st.station.evses[1].board.inputs.lock.value == "locked"
        assert (await ask(cp, call.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"
        assert st.station.evses[1].board.inputs.lock.value == "unlocked"


async def test_trigger_message_for_every_message_the_station_sends(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url, evses=2), tmp_path):
        cp = await ready(csms)
        await cp.wait_for("StatusNotification", count=2)
        assert (await ask(cp, call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
        await cp.wait_for("Heartbeat")
        result = await ask(cp, call.TriggerMessage(requested_message="StatusNotification",
                                                   evse={"id": 2, "connector_id": 1}))
        assert result.status == "Accepted"
        await cp.wait_for("StatusNotification", count=3)
        assert cp.of("StatusNotification")[-1]["evse_id"] == 2
        for message in ("FirmwareStatusNotification", "LogStatusNotification"):
            assert (await ask(cp, call.TriggerMessage(requested_message=message))).status == "Accepted"
            assert (await cp.wait_for(message))[0]["status"] == "Idle"
        # MeterValues / TransactionEvent: issue 4 registers them (tests/test_ocpp_meter_values.py)
        assert (await ask(cp, call.TriggerMessage(requested_message="SignChargingStationCertificate"))).status \
            == "NotImplemented"
        assert (await ask(cp, call.TriggerMessage(requested_message="StatusNotification",
                                                  evse={"id": 5}))).status == "Rejected"


async def test_data_transfer_unknown_vendor(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url), tmp_path):
        cp = await ready(csms)
        result = await ask(cp, call.DataTransfer(vendor_id="com.example", message_id="x", data={"a": 1}))
        assert result.status == "UnknownVendorId"
