"""Authorization over OCPP against the dev CSMS: Authorize for reader tokens, the cache (C10-C12) and the
local list (D01, D02, C13, C14) authorizing while offline, OfflineTxForUnknownIdEnabled, LocalPreAuthorize,
stop by a token of the same group (C09), master pass (C16), ClearCache."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ocpp.v201 import call

from tests.ocpp_support import DevCsms, OcppStation, eventually, ready
from tests.ocpp_tx_support import PROFILE, tx_config, tx_events


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


async def ask(cp, payload):  # noqa: ANN001, ANN201
    return await cp.call(payload, suppress=False)


def entry(token: str, status: str = "Accepted", **info: object) -> dict:
    return {"id_token": {"id_token": token, "type": "ISO14443"}, "id_token_info": {"status": status, **info}}


async def go_offline(csms: DevCsms, st: OcppStation) -> int:
    port = csms.port
    await csms.stop()
    await eventually(lambda: not st.svc.connected, what="link down")
    return port


async def test_authorize_accepts_and_rejects(tmp_path: Path, csms) -> None:
    csms.token_statuses["BAD"] = "Blocked"
    async with OcppStation(tx_config(tmp_path, csms.url, tokens=True), tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="BAD", evse=1)
        await cp.wait_for("Authorize")
        await asyncio.sleep(0.2)
        assert not st.station.evses[1].authorized
        await st.sim("sim.token", id_token="GOOD", evse=1)
        await eventually(lambda: st.station.evses[1].authorized, what="authorized")
        assert [a["id_token"]["id_token"] for a in cp.of("Authorize")] == ["BAD", "GOOD"]
        assert st.svc.authorization.cache.get("ISO14443:GOOD")["status"] == "Accepted"
        assert st.svc.authorization.cache.get("ISO14443:BAD")["status"] == "Blocked"
        # the TransactionEvent answers carry idTokenInfo too (cached again): let them arrive first
        await eventually(lambda: st.svc.queue.pending() == 0, what="transaction events answered")
        assert (await ask(cp, call.ClearCache())).status == "Accepted"
        assert st.svc.authorization.cache.get("ISO14443:GOOD") is None
        assert st.svc.authorization.cache.get("ISO14443:BAD") is None


async def test_cache_authorizes_offline_until_its_lifetime(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True, variables={"AuthCacheCtrlr.LifeTime": 2})
    async with OcppStation(cfg, tmp_path) as st:
        await ready(csms)
        await st.sim("sim.token", id_token="CACHED")  # cached Accepted (no cable: times out later)
        await eventually(lambda: st.svc.authorization.cache.get("ISO14443:CACHED") is not None, what="cached")
        st.station.evses[1].deauthorize("Local")
        port = await go_offline(csms, st)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CACHED", evse=1)
        await eventually(lambda: st.station.evses[1].authorized, what="authorized from the cache")
        assert st.svc.authorization.source == "cache"
        await st.sim("sim.unplug", evse=1)
        await asyncio.sleep(2.1)  # LifeTime over: the entry no longer authorizes
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="CACHED", evse=1)
        await asyncio.sleep(0.2)
        assert not st.station.evses[1].authorized
        back = await DevCsms(port=port, verbose=False).start()
        try:
            cp = await back.station("TEST-1")
            authorized = await cp.wait_for("TransactionEvent", lambda p: p["trigger_reason"] == "Authorized"
                                           and p.get("offline") is True)
            assert authorized[0]["id_token"]["id_token"] == "CACHED"
            await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended" and p.get("offline") is True)
        finally:
            await back.stop()


async def test_local_list_full_differential_offline_and_persisted(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        full = call.SendLocalList(version_number=1, update_type="Full",
                                  local_authorization_list=[entry("LL-1"), entry("LL-2")])
        assert (await ask(cp, full)).status == "Accepted"
        stale = call.SendLocalList(version_number=1, update_type="Differential",
                                   local_authorization_list=[entry("LL-3")])
        assert (await ask(cp, stale)).status == "VersionMismatch"
        remove = call.SendLocalList(version_number=2, update_type="Differential",
                                    local_authorization_list=[{"id_token": {"id_token": "LL-2", "type": "ISO14443"}}])
        assert (await ask(cp, remove)).status == "Accepted"
        assert (await ask(cp, call.GetLocalListVersion())).version_number == 2
        entries = await ask(cp, call.GetVariables(get_variable_data=[
            {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}]))
        assert entries.get_variable_result[0]["attribute_value"] == "1"
        await go_offline(csms, st)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="LL-2", evse=1)  # removed: unknown offline
        await asyncio.sleep(0.2)
        assert not st.station.evses[1].authorized
        await st.sim("sim.token", id_token="LL-1", evse=1)
        await eventually(lambda: st.station.evses[1].authorized, what="authorized from the local list")
        assert st.svc.authorization.source == "local list"
    back = await DevCsms(port=csms.port, verbose=False).start()
    try:
        async with OcppStation(cfg, tmp_path) as st:
            cp = await ready(back)
            assert (await ask(cp, call.GetLocalListVersion())).version_number == 2
            assert st.svc.authorization.local_list.get("ISO14443:LL-1") == {"status": "Accepted"}
    finally:
        await back.stop()


async def test_offline_unknown_token_and_local_pre_authorize(tmp_path: Path, csms) -> None:
    cfg = tx_config(tmp_path, csms.url, tokens=True, evses=2,
                    variables={"AuthCtrlr.OfflineTxForUnknownIdEnabled": True, "AuthCtrlr.LocalPreAuthorize": True})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        full = call.SendLocalList(version_number=5, update_type="Full", local_authorization_list=[entry("PRE")])
        assert (await ask(cp, full)).status == "Accepted"
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="PRE", evse=1)
        await eventually(lambda: st.station.evses[1].authorized, what="pre-authorized")
        assert cp.of("Authorize") == []  # LocalPreAuthorize: no round trip for an Accepted list entry
        await go_offline(csms, st)
        await st.sim("sim.plug", evse=2, profile=PROFILE)
        await st.sim("sim.token", id_token="NOBODY", evse=2)
        await eventually(lambda: st.station.evses[2].authorized, what="unknown token accepted offline")


async def test_group_stop_and_master_pass(tmp_path: Path, csms) -> None:
    csms.group_ids.update({"G-A": "FLEET", "G-B": "FLEET", "BOSS": "MASTER"})
    cfg = tx_config(tmp_path, csms.url, tokens=True, evses=2, variables={"AuthCtrlr.MasterPassGroupId": "MASTER"})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        await st.sim("sim.plug", evse=1, profile=PROFILE)
        await st.sim("sim.token", id_token="G-A", evse=1)
        await eventually(lambda: st.station.evses[1].authorized, what="authorized")
        await st.sim("sim.token", id_token="G-B", evse=1)  # same group: stops it (C09)
        await eventually(lambda: not st.station.evses[1].authorized, what="stopped by the group")
        await st.sim("sim.unplug", evse=1)
        await st.sim("sim.plug", evse=2, profile=PROFILE)
        await st.sim("sim.token", id_token="G-A", evse=2)
        await eventually(lambda: st.station.evses[2].authorized, what="authorized")
        await st.sim("sim.token", id_token="BOSS")
        await eventually(lambda: not st.station.evses[2].authorized, what="stopped by the master pass")
        await st.sim("sim.unplug", evse=2)
        await cp.wait_for("TransactionEvent", lambda p: p["event_type"] == "Ended", count=2)
        reasons = {e["evse"]["id"]: e["transaction_info"]["stopped_reason"] for e in tx_events(cp)
                   if e["event_type"] == "Ended"}
        assert reasons == {1: "Local", 2: "MasterPass"}


async def test_send_local_list_over_the_message_limits_is_refused_and_changes_nothing(tmp_path: Path, csms) -> None:
    from ocpp.exceptions import OCPPError

    cfg = tx_config(tmp_path, csms.url, tokens=True, variables={"LocalAuthListCtrlr.ItemsPerMessage": 2,
                                                                "LocalAuthListCtrlr.BytesPerMessage": 1024})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        assert (await ask(cp, call.SendLocalList(version_number=1, update_type="Full",
                                                 local_authorization_list=[entry("OK-1")]))).status == "Accepted"
        too_many = call.SendLocalList(version_number=2, update_type="Full",
                                      local_authorization_list=[entry(f"T-{n}") for n in range(3)])
        with pytest.raises(OCPPError) as refused:
            await ask(cp, too_many)
        assert "ItemsPerMessage 2" in refused.value.description
        message = {"format": "UTF8", "content": "x" * 500}  # two items, over 1024 bytes
        too_big = call.SendLocalList(version_number=3, update_type="Differential", local_authorization_list=[
            entry("B-1", personal_message=message), entry("B-2", personal_message=message)])
        with pytest.raises(OCPPError) as refused:
            await ask(cp, too_big)
        assert "BytesPerMessage 1024" in refused.value.description
        assert (await ask(cp, call.GetLocalListVersion())).version_number == 1
        assert [key for key in st.svc.authorization.local_list.entries if "OK-1" in key] and \
            len(st.svc.authorization.local_list.entries) == 1


async def test_local_list_past_its_entries_limit_fails_and_stays_as_it_was(tmp_path: Path, monkeypatch) -> None:
    from station.ocpp import local_list
    from station.ocpp.auth_store import AuthStore

    monkeypatch.setattr(local_list, "LOCAL_LIST_MAX_ENTRIES", 3)
    store = AuthStore(tmp_path / "auth.sqlite")
    try:
        lst = local_list.LocalList(store)
        assert await lst.update(1, "Full", [entry("A"), entry("B")]) == "Accepted"
        assert await lst.update(2, "Differential", [entry("C"), entry("D")]) == "Failed"  # 4 > 3
        assert await lst.update(2, "Differential", [entry("C"), {"id_token": entry("A")["id_token"]}]) == "Accepted"
        assert await lst.update(3, "Full", [entry(t) for t in "WXYZ"]) == "Failed"
        assert lst.version == 2 and len(lst.entries) == 2
        assert (await store.load())[1] == lst.entries  # what is on disk is what is in force
    finally:
        await store.close()
