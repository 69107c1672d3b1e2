"""Fuzz the station's OCPP-J layer with malformed and schema-violating frames over a real websocket:
each one gets exactly one CALLERROR (or, for a CALLRESULT/CALLERROR frame, the spec's silence), and the
connection, the EVSEs and the device model stay as they were."""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ocpp_support import OcppStation, RawCsms, eventually, station_config

ERROR_CODES = {"FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported", "NotImplemented",
               "NotSupported", "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
               "RpcFrameworkError", "SecurityError", "TypeConstraintViolation"}
#: Valid requests that would change the station; every fuzz case breaks them (required key gone, unknown
#: key added, or a value of the wrong type), so none may take effect.
TEMPLATES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "ChangeAvailability": ({"operationalStatus": "Inoperative", "evse": {"id": 1}}, ["operationalStatus"]),
    "Reset": ({"type": "Immediate"}, ["type"]),
    "SetVariables": ({"setVariableData": [{"component": {"name": "OCPPCommCtrlr"},
                                           "variable": {"name": "HeartbeatInterval"}, "attributeValue": "7"}]},
                     ["setVariableData"]),
    "UnlockConnector": ({"evseId": 1, "connectorId": 1}, ["evseId", "connectorId"]),
    "TriggerMessage": ({"requestedMessage": "StatusNotification"}, ["requestedMessage"]),
    "GetBaseReport": ({"requestId": 1, "reportBase": "FullInventory"}, ["requestId", "reportBase"]),
}
_ids = itertools.count()

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)


def wrong_type(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, str):
        return st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.booleans())
    if isinstance(value, int):
        return st.one_of(st.text(max_size=5), st.none(), st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)))
    if isinstance(value, list):
        return st.one_of(st.text(max_size=5), st.integers(), st.dictionaries(st.text(max_size=3), st.integers()))
    return st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=2))


@st.composite
def broken_call(draw: st.DrawFn) -> str:
    action = draw(st.sampled_from(sorted(TEMPLATES)))
    payload, required = json.loads(json.dumps(TEMPLATES[action][0])), TEMPLATES[action][1]
    how = draw(st.sampled_from(["drop", "extra", "retype"]))
    key = draw(st.sampled_from(required))
    if how == "drop":
        del payload[key]
    elif how == "extra":
        payload[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in payload))] = draw(json_value)
    else:
        payload[key] = draw(wrong_type(payload[key]))
    return json.dumps([2, f"fz{next(_ids)}", action, payload])


@st.composite
def odd_frame(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from([2, 3, 4, 5, 0, -1, "2", None, 2.5, True]))
    rest = draw(st.lists(json_value, max_size=5))
    return json.dumps([kind, *rest])


frames = st.one_of(
    broken_call(),
    odd_frame(),
    st.text(max_size=120),  # mostly not JSON
    json_value.map(json.dumps),  # JSON, rarely an array of the right shape
    st.binary(max_size=60),
)


def silent_expected(frame: str | bytes) -> bool:
    """OCPP-J: a CALLRESULT or CALLERROR frame is never answered, however broken."""
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, list) and bool(data) and type(data[0]) is int and data[0] in (3, 4)


class Harness:
    """The station and a raw CSMS on an event loop in a thread, so hypothesis drives examples synchronously."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tmp_path = tmp_path

    def run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self.raw = await RawCsms().start()
        self.st = OcppStation(station_config(self.tmp_path, self.raw.url, evses=2), self.tmp_path)
        await self.st.__aenter__()
        await self.raw.connected()
        await eventually(lambda: self.st.svc.boot.status == "Accepted", what="boot")
        self.ws = self.raw.ws

    async def stop(self) -> None:
        await self.st.__aexit__()
        await self.raw.stop()

    async def exchange(self, frame: str | bytes) -> list[Any]:
        """Send `frame`, then a probe CALL; return the replies that came before the probe's answer."""
        probe = f"probe{next(_ids)}"
        cp = self.st.svc.cp
        seen = cp.counters["frames"]
        await self.raw.send(frame)
        # OCPP-J: a CSMS waits for the answer before its next CALL; CALLs run concurrently in the station.
        for _ in range(5000):
            if cp.counters["frames"] > seen and not cp._in_progress:
                break
            await asyncio.sleep(0.001)
        await self.raw.send(json.dumps([2, probe, "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}]))
        before = []
        while True:
            reply = await self.raw.reply(timeout=5)
            if reply[1] == probe:
                assert reply[0] == 3, reply
                return before
            before.append(reply)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("fuzz"))
    h.run(h.start())
    yield h
    h.run(h.stop())
    h.loop.call_soon_threadsafe(h.loop.stop)
    h.thread.join(5)


def snapshot(h: Harness) -> Any:
    svc = h.st.svc
    evses = {i: (e.enabled, e.connector_status.value, e.state) for i, e in h.st.station.evses.items()}
    return evses, svc.dm.value("OCPPCommCtrlr", "HeartbeatInterval"), svc.availability.inoperative.copy()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(frame=frames)
def test_every_malformed_frame_gets_a_callerror_or_silence(harness: Harness, frame: str | bytes) -> None:
    before = snapshot(harness)
    replies = harness.run(harness.exchange(frame))
    if silent_expected(frame):
        assert replies == [], (frame, replies)
    else:
        assert len(replies) == 1, (frame, replies)
        reply = replies[0]
        assert reply[0] == 4 and len(reply) == 5, (frame, reply)
        assert reply[2] in ERROR_CODES and isinstance(reply[3], str) and len(reply[3]) <= 255
        assert isinstance(reply[4], dict) and isinstance(reply[1], str) and len(reply[1]) <= 36
    assert harness.raw.ws is harness.ws and harness.st.svc.connected  # the same connection
    assert snapshot(harness) == before
