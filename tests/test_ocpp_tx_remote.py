"""RequestStartTransaction / RequestStopTransaction (F01-F03) against the dev CSMS: remote first and
cable first, AuthorizeRemoteStart on and off, rejected while the EVSE is unavailable, remote stop."""
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


async def ask(cp, payload):  # noqa: ANN001, ANN201
    return await cp.call(payload, suppress=False)


TOKEN = {"id_token": "REMOTE-1", "type": "Central"}


async def test_remote_first_then_remote_stop(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url, tokens=True), tmp_path) as st:
        cp = await ready(csms)
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=7, evse_id=1))
        assert result.status == "Accepted" and result.transaction_id is None
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert cp.of("Authorize")[0]["id_token"] == TOKEN  # AuthorizeRemoteStart (default true)
        assert started["trigger_reason"] == "RemoteStart"
        assert started["transaction_info"]["remote_start_id"] == 7
        assert started["id_token"] == TOKEN
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        tx_id = started["transaction_info"]["transaction_id"]
        assert (await ask(cp, call.RequestStopTransaction(transaction_id="no-such-tx"))).status == "Rejected"
        assert (await ask(cp, call.RequestStopTransaction(transaction_id=tx_id))).status == "Accepted"
        ended = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended"))[0]
        assert ended["trigger_reason"] == "RemoteStop"
        assert ended["transaction_info"]["stopped_reason"] == "Remote"
        await eventually(lambda: not st.station.evses[1].snapshot()["power_allowed"], what="power off")
        check_sequence(tx_events(cp))


async def test_cable_first_without_authorize_remote_start(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True, variables={"AuthCtrlr.AuthorizeRemoteStart": False})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        started = (await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Started"))[0]
        assert started["trigger_reason"] == "CablePluggedIn"
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=8, evse_id=1))
        assert result.status == "Accepted"
        assert result.transaction_id == started["transaction_info"]["transaction_id"]
        update = (await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "RemoteStart"))[0]
        assert update["transaction_info"]["remote_start_id"] == 8 and update["id_token"] == TOKEN
        await eventually(lambda: st.station.evses[1].charging_state.value == "Charging", what="charging")
        assert cp.of("Authorize") == []


async def test_rejected_when_unavailable_or_already_authorized(tmp_path: Path, csms) -> None:
    async with OcppStation(tx_config(tmp_path, csms.url, tokens=True, evses=2), tmp_path) as st:
        cp = await ready(csms)
        assert (await ask(cp, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))).status \
            == "Accepted"
        await eventually(lambda: not st.station.evses[1].enabled, what="EVSE 1 disabled")
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=9, evse_id=1))
        assert result.status == "Rejected"
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=10, evse_id=2))
        assert result.status == "Accepted"
        await eventually(lambda: st.station.evses[2].authorized, what="EVSE 2 authorized")
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=11, evse_id=2))
        assert result.status == "Rejected"


async def test_remote_start_rejected_by_authorize(tmp_path: Path, csms) -> None:
    csms.token_statuses["REMOTE-1"] = "Blocked"
    async with OcppStation(tx_config(tmp_path, csms.url, tokens=True), tmp_path) as st:
        cp = await ready(csms)
        result = await ask(cp, call.RequestStartTransaction(id_token=TOKEN, remote_start_id=12, evse_id=1))
        assert result.status == "Accepted"  # F01.FR.xx: answered before the Authorize
        await cp.wait_for("Authorize")
        await eventually(lambda: st.svc.transactions.trackers[1].remote_start_id is None, what="remote start dropped")
        assert not st.station.evses[1].authorized
        assert tx_events(cp) == []
