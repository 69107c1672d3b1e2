"""The robust OCPP-J layer: malformed frames, NotImplemented/NotSupported, date-times, duplicates,
oversize frames, request limits, the outgoing queue and MessageTimeout. Frames go over a real websocket."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v201 import call, call_result

from station.ocpp import service as service_module
from station.ocpp.datetime_check import bad_datetimes, valid_datetime
from tests.ocpp_support import OcppStation, RawCsms, eventually, station_config

GETVAR = {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}


@pytest.fixture
async def raw():
    server = await RawCsms().start()
    yield server
    await server.stop()


@pytest.fixture
async def booted(tmp_path: Path, raw: RawCsms):
    async with OcppStation(station_config(tmp_path, raw.url, max_frame_bytes=4096, variables={
            "DeviceDataCtrlr.ItemsPerMessage.GetVariables": 5, "DeviceDataCtrlr.BytesPerMessage.SetVariables": 1024}), tmp_path) as st:
        await raw.connected()
        await eventually(lambda: st.svc.boot.status == "Accepted", what="boot")
        yield st, raw


@pytest.mark.parametrize("frame, expected_id, code", [
    ("not json", "-1", "RpcFrameworkError"),
    ('{"a": 1}', "-1", "RpcFrameworkError"),
    ("[]", "-1", "RpcFrameworkError"),
    ('[7, "m1", "Heartbeat", {}]', "m1", "MessageTypeNotSupported"),
    ('["2", "m2", "Heartbeat", {}]', "m2", "MessageTypeNotSupported"),
    ('[2, "m3", "GetVariables"]', "m3", "RpcFrameworkError"),
    ('[2, "m4", "GetVariables", []]', "m4", "FormatViolation"),
    ('[2, 17, "GetVariables", {}]', "-1", "RpcFrameworkError"),
    (json.dumps([2, "x" * 37, "GetVariables", GETVAR]), "-1", "RpcFrameworkError"),
    ('[2, "m5", "NoSuchAction", {}]', "m5", "NotImplemented"),
    ('[2, "m6", "ReserveNow", {}]', "m6", "NotSupported"),
    ('[2, "m7", "GetVariables", {"getVariableData": "x"}]', "m7", "TypeConstraintViolation"),
])
async def test_malformed_call_gets_the_spec_callerror(booted, frame: str, expected_id: str, code: str) -> None:
    st, raw = booted
    await raw.send(frame)
    reply = await raw.reply()
    assert reply[0] == 4 and reply[1] == expected_id and reply[2] == code, reply
    assert isinstance(reply[3], str) and len(reply[3]) <= 255 and isinstance(reply[4], dict)
    # the connection still works
    assert (await raw.request("ok", "GetVariables", GETVAR))[0] == 3


@pytest.mark.parametrize("frame", ['[3, "nobody-asked", {}]', '[4, "x", "GenericError", "", {}]', "[3]",
                                   '[4, 5]', '[3, "y", []]'])
async def test_responses_nobody_asked_for_get_silence(booted, frame: str) -> None:
    st, raw = booted
    await raw.send(frame)
    reply = await raw.request("probe", "GetVariables", GETVAR)
    assert reply[1] == "probe" and raw.replies.empty()


async def test_oversize_frame_refused_cleanly(booted) -> None:
    st, raw = booted
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "y" * 5000}])
    await raw.send(big)
    reply = await raw.reply()
    assert reply[:3] == [4, "big1", "FormatViolation"]
    assert st.svc.connected and (await raw.request("after", "GetVariables", GETVAR))[0] == 3


async def test_items_and_bytes_per_message_limits(booted) -> None:
    st, raw = booted
    item = GETVAR["getVariableData"][0]
    assert (await raw.request("five", "GetVariables", {"getVariableData": [item] * 5}))[0] == 3
    reply = await raw.request("six", "GetVariables", {"getVariableData": [item] * 6})
    assert reply[2] == "OccurrenceConstraintViolation"
    entry = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"}, "attributeValue": "o" * 50}
    assert (await raw.request("small", "SetVariables", {"setVariableData": [entry] * 5}))[0] == 3
    reply = await raw.request("large", "SetVariables", {"setVariableData": [entry] * 10})
    assert reply[2] == "FormatViolation" and "BytesPerMessage" in reply[3]


async def test_duplicate_message_id_not_executed_twice(booted, monkeypatch) -> None:
    st, raw = booted
    runs = 0
    original = st.svc.dm.set_variables

    async def counting(items: list[dict[str, Any]]) -> Any:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.2)  # still in progress when the repeat arrives
        return await original(items)

    monkeypatch.setattr(st.svc.dm, "set_variables", counting)
    frame = json.dumps([2, "dup", "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}, "attributeValue": "61"}]}])
    await raw.send(frame)
    await raw.send(frame)  # while the first is in progress: ignored
    first = await raw.reply()
    await raw.send(frame)  # after it was answered: the same answer again, not a second execution
    second = await raw.reply()
    assert first == second and first[0] == 3 and runs == 1
    assert raw.replies.empty()


def test_datetime_validation_rules() -> None:
    assert valid_datetime("2024-05-01T10:00:00Z") and valid_datetime("2024-05-01T10:00:00.123+02:00")
    for bad in ("2024-13-01T10:00:00Z", "2024-02-30T00:00:00Z", "yesterday", "2024-05-01 10:00:00", 5, None,
                "2024-05-01T10:00:00"):
        assert not valid_datetime(bad), bad
    payload = {"id": 1, "expiryDateTime": "soon", "idToken": {"idToken": "a", "type": "Local"}}
    assert bad_datetimes("ReserveNow", payload) == ["expiryDateTime"]


async def test_bad_datetime_in_a_handled_call_is_a_format_violation(tmp_path: Path, raw: RawCsms,
                                                                    monkeypatch) -> None:
    executed = []

    class WithReservations(service_module.StationChargePoint):
        @on("ReserveNow")
        def handle_reserve_now(self, **kwargs: Any) -> Any:
            executed.append(kwargs)
            return call_result.ReserveNow(status="Accepted")

    monkeypatch.setattr(service_module, "StationChargePoint", WithReservations)
    async with OcppStation(station_config(tmp_path, raw.url), tmp_path) as st:
        await raw.connected()
        await eventually(lambda: st.svc.boot.status == "Accepted")
        base = {"id": 1, "idToken": {"idToken": "a", "type": "Local"}}
        reply = await raw.request("r1", "ReserveNow", {**base, "expiryDateTime": "2024-02-30T00:00:00Z"})
        assert reply[2] == "FormatViolation" and "expiryDateTime" in reply[3] and not executed
        reply = await raw.request("r2", "ReserveNow", {**base, "expiryDateTime": "2030-02-28T00:00:00Z"})
        assert reply[0] == 3 and len(executed) == 1


async def test_triggered_message_follows_the_answer_no_deadlock(booted) -> None:
    st, raw = booted
    before = len(raw.calls)
    reply = await raw.request("t1", "TriggerMessage", {"requestedMessage": "StatusNotification"})
    assert reply == [3, "t1", {"status": "Accepted"}]
    await eventually(lambda: any(c[2] == "StatusNotification" for c in raw.calls[before:]), what="status")


async def test_awaiting_a_call_inside_a_handler_is_refused_not_deadlocked(tmp_path: Path, raw: RawCsms,
                                                                          monkeypatch) -> None:
    class Careless(service_module.StationChargePoint):
        @on("ReserveNow")
        async def handle_reserve_now(self, **kwargs: Any) -> Any:
            await self.svc.call(call.Heartbeat())  # would wait for an answer that cannot come first
            return call_result.ReserveNow(status="Accepted")

    monkeypatch.setattr(service_module, "StationChargePoint", Careless)
    async with OcppStation(station_config(tmp_path, raw.url), tmp_path) as st:
        await raw.connected()
        await eventually(lambda: st.svc.boot.status == "Accepted")
        reply = await raw.request("c1", "ReserveNow", {"id": 1, "expiryDateTime": "2030-01-01T00:00:00Z",
                                                       "idToken": {"idToken": "a", "type": "Local"}}, timeout=2)
        assert reply[:3] == [4, "c1", "InternalError"]  # at once, not after MessageTimeout
        assert not any(c[2] == "Heartbeat" for c in raw.calls)


async def test_outgoing_calls_one_in_flight_with_message_timeout(tmp_path: Path) -> None:
    raw = await RawCsms(answer=False).start()
    try:
        cfg = station_config(tmp_path, raw.url, variables={"OCPPCommCtrlr.MessageTimeout.Default": 1})
        async with OcppStation(cfg, tmp_path) as st:
            await raw.connected()
            await eventually(lambda: len(raw.calls) == 1, what="boot")
            st.svc.outbox.set_accepted(True)
            first = st.svc.outbox.submit(call.Heartbeat())
            second = st.svc.outbox.submit(call.Heartbeat())
            await asyncio.sleep(0.5)
            assert [c[2] for c in raw.calls] == ["BootNotification"]  # the boot is still in flight
            with pytest.raises(asyncio.TimeoutError):  # MessageTimeout (1 s), not our 4 s
                await asyncio.wait_for(asyncio.shield(first), 4)
            await eventually(lambda: len(raw.calls) >= 3, what="second heartbeat")
            assert [c[2] for c in raw.calls] == ["BootNotification", "Heartbeat", "Heartbeat"]
            assert not second.done()
            await raw.ws.send(json.dumps([3, raw.calls[2][1], {"currentTime": "2030-01-01T00:00:00Z"}]))
            result = await asyncio.wait_for(second, 2)
            assert result.current_time == "2030-01-01T00:00:00Z"
    finally:
        await raw.stop()
