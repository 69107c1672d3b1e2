"""TxStartPoint / TxStopPoint variants (E01, E06) against the dev CSMS over loopback websockets:
PowerPathClosed as the logical AND of EVConnected and Authorized (a pause keeps the transaction),
DataSigned from a signing meter (OCMF signed with the sim meter's P-256 key, checked here), SignReadings,
and a clean stop of the station ending the open transaction with Reboot instead of a PowerLoss later."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v201 import call

from tests.ocpp_support import DevCsms, OcppStation, eventually, ready
from tests.ocpp_tx_support import PROFILE, check_sequence, tx_config, tx_events


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


def charging_state(st: OcppStation, evse_id: int = 1) -> str:
    return st.station.evses[evse_id].charging_state.value


def signed_samples(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for v in event.get("meter_value") or [] for s in v["sampled_value"] if "signed_meter_value" in s]


def verify_ocmf(signed: dict[str, Any]) -> dict[str, Any]:
    """Check the OCMF signature with the public key sent beside it; returns the OCMF payload."""
    _, payload, signature = signed["signed_meter_data"].split("|")
    key = serialization.load_der_public_key(bytes.fromhex(signed["public_key"]))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(bytes.fromhex(json.loads(signature)["SD"]), payload.encode(), ec.ECDSA(hashes.SHA256()))  # raises
    return json.loads(payload)


async def test_power_path_closed_starts_when_authorized_and_connected_and_survives_a_pause(
        tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True, variables={"TxCtrlr.TxStartPoint": "PowerPathClosed",
                                                                "TxCtrlr.TxStopPoint": "PowerPathClosed"})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.token", id_token="CARD-P")  # token first: Authorized, no transaction yet
        await eventually(lambda: st.station.evses[1].authorized, what="authorized")
        assert not tx_events(cp)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "CablePluggedIn"  # the event that completed the preconditions
        assert started["id_token"]["id_token"] == "CARD-P"
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
        await st.sim("sim.ev", evse=1, action="pause")  # the EV opens S2: the contactor opens
        await eventually(lambda: charging_state(st) == "SuspendedEV", what="suspended by the EV")
        await cp.wait_for("TransactionEvent", lambda p: p["transaction_info"].get("charging_state") == "SuspendedEV")
        assert not any(e["event_type"] == "Ended" for e in tx_events(cp))  # a pause is not the end
        await st.sim("sim.ev", evse=1, action="resume")
        await eventually(lambda: charging_state(st) == "Charging", what="charging again")
        tx_id = started["transaction_info"]["transaction_id"]
        assert (await cp.call(call.RequestStopTransaction(transaction_id=tx_id), suppress=False)).status == "Accepted"
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == ("RemoteStop", "Remote")
        check_sequence(tx_events(cp))


async def test_power_path_closed_cable_first_then_token_ends_at_deauthorization(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"TxCtrlr.TxStartPoint": "PowerPathClosed",
                                                   "TxCtrlr.TxStopPoint": "Authorized"}, tokens=True)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CARD-2", evse=1)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "Authorized"
        assert started["id_token"]["id_token"] == "CARD-2"
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
        await st.sim("sim.token", id_token="CARD-2", evse=1)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == ("StopAuthorized", "Local")
        check_sequence(tx_events(cp))


async def test_data_signed_start_and_stop_with_a_signing_meter(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True, meter={"sign": True},
                    variables={"TxCtrlr.TxStartPoint": "DataSigned", "TxCtrlr.TxStopPoint": "DataSigned",
                               "AlignedDataCtrlr.Interval": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].snapshot()["state"].startswith("B"), what="EV in B")
        assert not tx_events(cp)  # connected, not authorized: nothing signed yet, no transaction
        await st.sim("sim.token", id_token="CARD-S", evse=1)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "SignedDataReceived"
        assert started["id_token"]["id_token"] == "CARD-S"
        [begin] = signed_samples(started)
        assert begin["context"] == "Transaction.Begin"
        assert verify_ocmf(begin["signed_meter_value"])["RD"][0]["TX"] == "B"
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
        await eventually(lambda: st.station.evses[1].session.energy_wh > 0, what="energy")
        await st.sim("sim.token", id_token="CARD-S", evse=1)  # stop: the signed session ends
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == ("StopAuthorized", "Local")
        [end] = signed_samples(ended)
        assert end["context"] == "Transaction.End"
        payload = verify_ocmf(end["signed_meter_value"])
        assert payload["RD"][0]["TX"] == "E"
        assert payload["RD"][0]["RV"] > verify_ocmf(begin["signed_meter_value"])["RD"][0]["RV"]
        check_sequence(tx_events(cp))


async def test_sign_readings_false_sends_no_signed_values(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, meter={"sign": True},
                    variables={"SampledDataCtrlr.SignReadings": False, "AlignedDataCtrlr.Interval": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended")
        events = tx_events(cp)
        check_sequence(events)
        assert not any(signed_samples(e) for e in events)
        assert not any(e["trigger_reason"] == "SignedDataReceived" for e in events)


async def test_signed_start_value_goes_out_as_updated_in_an_open_transaction(tmp_path: Path, csms) -> None:
    """Default points (EVConnected, Authorized): the transaction started at the plug; the signed start
    value, taken once the session is authorized, follows as Updated SignedDataReceived."""
    cfg = tx_config(tmp_path, csms.url, meter={"sign": True}, variables={"AlignedDataCtrlr.Interval": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        signed = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "SignedDataReceived"))[0]
        assert signed["event_type"] == "Updated"
        verify_ocmf(signed_samples(signed)[0]["signed_meter_value"])


async def test_clean_stop_ends_the_transaction_with_reboot(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
    # the station stopped (as systemctl stop does): the Ended went out before the process ended
    ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
    assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == ("AbnormalCondition", "Reboot")
    assert ended["meter_value"][0]["sampled_value"][0]["context"] == "Transaction.End"
    check_sequence(tx_events(cp))
    async with OcppStation(cfg, tmp_path) as st:  # the restart: nothing left to end with PowerLoss
        await csms.station("TEST-1", connection=2)
        await eventually(lambda: st.svc.queue.pending() == 0, what="queue empty")
    assert len([e for e in csms.tx_log if e["event_type"] == "Ended"]) == 1


async def test_parking_bay_sensor_starts_and_ends_the_transaction(tmp_path: Path, csms) -> None:
    """A board with a bay sensor: the transaction runs from the car parking (EVDetected) to the car leaving
    (EVDeparted), across plug-in, charging and unplug (StopTxOnEVSideDisconnect false)."""
    cfg = tx_config(tmp_path, csms.url, board={"bay_sensor": True},
                    variables={"TxCtrlr.TxStartPoint": "ParkingBayOccupancy",
                               "TxCtrlr.TxStopPoint": "ParkingBayOccupancy",
                               "TxCtrlr.StopTxOnEVSideDisconnect": False, "AlignedDataCtrlr.Interval": 0})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.bay", evse=1, occupied=True)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "EVDetected"
        assert st.station.evses[1].snapshot()["bay_occupied"] is True
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "CablePluggedIn")
        await eventually(lambda: charging_state(st) == "Charging", what="charging")
        with pytest.raises(ValueError, match="cannot leave the bay"):
            await st.sim("sim.bay", evse=1, occupied=False)  # the cable is still in
        await st.sim("sim.unplug", evse=1)
        await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "EVCommunicationLost")
        await eventually(lambda: charging_state(st) == "Idle", what="idle")
        assert not any(e["event_type"] == "Ended" for e in tx_events(cp))  # the car is still in the bay
        await st.sim("sim.bay", evse=1, occupied=False)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == ("EVDeparted",
                                                                                          "EVDisconnected")
        check_sequence(tx_events(cp))


async def test_parking_bay_without_a_sensor_is_the_ev_at_the_connector(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, variables={"TxCtrlr.TxStartPoint": "ParkingBayOccupancy",
                                                   "TxCtrlr.TxStopPoint": "ParkingBayOccupancy"})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        with pytest.raises(ValueError, match="no bay sensor"):
            await st.sim("sim.bay", evse=1, occupied=True)
        assert st.station.evses[1].snapshot()["bay_occupied"] is None
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "CablePluggedIn"
        await st.sim("sim.unplug", evse=1)
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
        check_sequence(tx_events(cp))
