"""TransactionEvent Started / Updated / Ended from the EVSE's events (E01-E08, E14), against the dev CSMS
over loopback websockets: trigger and stopped reasons, continuous seqNo, TxStart/StopPoint variants, two
EVSEs at once, idTokenInfo rejection stopping the energy, EVConnectionTimeOut, GetTransactionStatus."""
from __future__ import annotations

from pathlib import Path
import pytest
from ocpp.v201 import call

from tests.ocpp_support import DevCsms, OcppStation, eventually, ready
from tests.ocpp_tx_support import PROFILE, check_sequence, tx_config, tx_events

@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


async def charging(st: OcppStation, evse_id: int = 1) -> None:
    await eventually(lambda: st.station.evses[evse_id].charging_state.value == "Charging", what="charging")


async def test_plug_charge_unplug(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await charging(st)
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        events = tx_events(cp)
        check_sequence(events)
        assert events[0]["trigger_reason"] == "CablePluggedIn"
        assert events[0]["meter_value"][0]["sampled_value"][0]["context"] == "Transaction.Begin"
        assert [e["trigger_reason"] for e in events[1:]].count("Authorized") == 1
        authorized = next(e for e in events if e["trigger_reason"] == "Authorized")
        assert authorized["id_token"] == {"id_token": "", "type": "NoAuthorization"}
        assert any(e["transaction_info"].get("charging_state") == "Charging" for e in events)
        ended = events[-1]
        assert ended["trigger_reason"] == "EVCommunicationLost"
        assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
        assert ended["meter_value"][0]["sampled_value"][0]["measurand"] == "Energy.Active.Import.Register"
        assert not any(e.get("offline") for e in events)


async def test_token_stop_then_unplug_with_stop_point_ev_connected(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"TxCtrlr.TxStopPoint": "EVConnected"}, tokens=True)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CARD-1", evse=1)
        await charging(st)
        await st.sim("sim.token", id_token="CARD-1", evse=1)  # the same card stops it
        await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "StopAuthorized")
        await eventually(lambda: not st.station.evses[1].snapshot()["power_allowed"], what="power off")
        assert not any(e["event_type"] == "Ended" for e in tx_events(cp))  # the cable is still in
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        events = tx_events(cp)
        check_sequence(events)
        assert events[0]["transaction_info"]["charging_state"] == "EVConnected"  # plugged, no token yet
        assert events[-1]["transaction_info"]["stopped_reason"] == "Local"
        assert events[-1]["transaction_info"]["charging_state"] == "Idle"
        assert cp.of("Authorize")[0]["id_token"] == {"id_token": "CARD-1", "type": "ISO14443"}


async def test_two_evses_charge_at_once(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url, evses=2), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.plug", evse=2, profile=PROFILE)
        await charging(st, 1)
        await charging(st, 2)
        await st.sim("sim.unplug", evse=2)
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended", count=2)
        one, two = tx_events(cp, 1), tx_events(cp, 2)
        check_sequence(one)
        check_sequence(two)
        assert one[0]["transaction_info"]["transaction_id"] != two[0]["transaction_info"]["transaction_id"]


async def test_invalid_id_token_info_stops_the_energy(tmp_path: Path, csms) -> None:
    csms.tx_token_statuses["CARD-X"] = "Invalid"  # Authorize says Accepted, the transaction answer does not
    async with OcppStation(tx_config(tmp_path, csms.url, tokens=True), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CARD-X", evse=1)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert ended["trigger_reason"] == "Deauthorized"
        assert ended["transaction_info"]["stopped_reason"] == "DeAuthorized"
        assert not st.station.evses[1].authorized
        assert not st.station.evses[1].snapshot()["power_allowed"]
        check_sequence(tx_events(cp))


async def test_ev_connection_timeout(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"TxCtrlr.EVConnectionTimeOut": 1}, tokens=True)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.token", id_token="CARD-3")  # token first, no cable follows
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "Authorized"
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended", timeout=5))[0]
        assert ended["trigger_reason"] == "EVConnectTimeout"
        assert ended["transaction_info"]["stopped_reason"] == "Timeout"


async def test_periodic_meter_values_and_transaction_status(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={
        "SampledDataCtrlr.TxUpdatedInterval": 1,
        "SampledDataCtrlr.TxUpdatedMeasurands": "Energy.Active.Import.Register,Power.Active.Import,Current.Import,"
                                                "Voltage,Current.Offered"})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await charging(st)
        periodic = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "MeterValuePeriodic",
                                      timeout=4))[0]
        samples = periodic["meter_value"][0]["sampled_value"]
        assert {s["context"] for s in samples} == {"Sample.Periodic"}
        assert {s.get("phase") for s in samples if s["measurand"] == "Current.Import"} == {"L1", "L2", "L3"}
        assert {s.get("phase") for s in samples if s["measurand"] == "Voltage"} == {"L1-N", "L2-N", "L3-N"}
        assert [s["value"] for s in samples if s["measurand"] == "Current.Offered"] == [32.0]  # EVSE and cable: 32 A
        tx_id = periodic["transaction_info"]["transaction_id"]
        status = await cp.call(call.GetTransactionStatus(transaction_id=tx_id), suppress=False)
        assert status.ongoing_indicator is True
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
        status = await cp.call(call.GetTransactionStatus(transaction_id=tx_id), suppress=False)
        assert status.ongoing_indicator is False and status.messages_in_queue is False
        check_sequence(tx_events(cp))


async def test_invalid_id_without_stop_caps_the_energy(tmp_path: Path, csms) -> None:
    csms.tx_token_statuses["CARD-Y"] = "Invalid"
    cfg = tx_config(tmp_path, csms.url, tokens=True, variables={"TxCtrlr.StopTxOnInvalidId": False,
                                                                "TxCtrlr.MaxEnergyOnInvalidId": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CARD-Y", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p.get("id_token", {}).get("id_token") == "CARD-Y")
        await eventually(lambda: st.station.evses[1].charging_state.value == "SuspendedEVSE", what="energy stopped")
        assert st.station.evses[1].authorized  # the transaction goes on
        assert not any(e["event_type"] == "Ended" for e in tx_events(cp))
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        check_sequence(tx_events(cp))


async def test_trigger_then_immediate_reset_ends_with_reset_command(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url, evses=2), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await charging(st)
        result = await cp.call(call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1}),
                               suppress=False)
        assert result.status == "Accepted"
        triggered = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "Trigger"))[0]
        assert triggered["event_type"] == "Updated"
        assert triggered["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"
        assert (await cp.call(call.Reset(type="Immediate", evse_id=1), suppress=False)).status == "Accepted"
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert ended["trigger_reason"] == "ResetCommand"
        assert ended["transaction_info"]["stopped_reason"] == "ImmediateReset"
        check_sequence(tx_events(cp))
