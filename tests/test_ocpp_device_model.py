"""Device model over OCPP: GetVariables/SetVariables statuses, persistence and config seeds, reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call

from tests.ocpp_support import DevCsms, OcppStation, ready, station_config


@pytest.fixture
async def csms():
    server = await DevCsms(port=0, verbose=False).start()
    yield server
    await server.stop()


def item(component: str, variable: str, *, evse: dict[str, int] | None = None, instance: str | None = None,
         **extra: Any) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component, **({"evse": evse} if evse else {})}
    var: dict[str, Any] = {"name": variable, **({"instance": instance} if instance else {})}
    return {"component": comp, "variable": var, **extra}


async def get(cp, *items: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: ANN001
    return (await cp.call(call.GetVariables(get_variable_data=list(items)), suppress=False)).get_variable_result


async def set_(cp, *items: dict[str, Any]) -> list[str]:  # noqa: ANN001
    result = await cp.call(call.SetVariables(set_variable_data=list(items)), suppress=False)
    return [r["attribute_status"] for r in result.set_variable_result]


async def test_get_variables_every_status(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url, evses=2), tmp_path):
        cp = await ready(csms)
        results = await get(cp,
                            item("OCPPCommCtrlr", "OfflineThreshold"),
                            item("NoSuchCtrlr", "X"),
                            item("OCPPCommCtrlr", "NoSuchVariable"),
                            item("OCPPCommCtrlr", "OfflineThreshold", attribute_type="Target"),
                            item("SecurityCtrlr", "BasicAuthPassword"),
                            item("EVSE", "SupplyPhases", evse={"id": 2}),
                            item("EVSE", "SupplyPhases", evse={"id": 3}),
                            item("Connector", "ConnectorType", evse={"id": 1, "connector_id": 1}),
                            item("DeviceDataCtrlr", "ItemsPerMessage", instance="GetVariables"),
                            item("EVSE", "Power", evse={"id": 1}, attribute_type="MaxSet"),
                            item("EVSE", "AvailabilityState", evse={"id": 1}),
                            item("EVSE", "Power", evse={"id": 1}))
        statuses = [r["attribute_status"] for r in results]
        assert statuses == ["Accepted", "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType",
                            "Rejected", "Accepted", "UnknownComponent", "Accepted", "Accepted", "Accepted",
                            "Accepted", "Accepted"]
        assert results[0]["attribute_value"] == "600"
        assert "attribute_value" not in results[4]  # write-only: the password is never read back
        assert results[5]["attribute_value"] == "3" and results[7]["attribute_value"] == "sType2"
        assert results[9]["attribute_value"] == str(32 * 3 * 230.0)
        assert results[10]["attribute_value"] == "Available"
        assert float(results[11]["attribute_value"]) == 0.0  # live: no EV, no power


async def test_set_variables_every_status_and_persistence(tmp_path: Path, csms) -> None:
    cfg = station_config(tmp_path, csms.url)
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        statuses = await set_(cp,
                              item("OCPPCommCtrlr", "OfflineThreshold", attribute_value="123"),
                              item("OCPPCommCtrlr", "OfflineThreshold", attribute_value="-5"),
                              item("OCPPCommCtrlr", "OfflineThreshold", attribute_value="abc"),
                              item("SecurityCtrlr", "Identity", attribute_value="X"),
                              item("OCPPCommCtrlr", "NetworkConfigurationPriority", attribute_value="0"),
                              item("NoSuch", "X", attribute_value="1"),
                              item("TxCtrlr", "Nope", attribute_value="1"),
                              item("TxCtrlr", "TxStopPoint", attribute_value="EVConnected,Bogus"),
                              item("TxCtrlr", "TxStopPoint", attribute_value="EVConnected"),
                              item("AuthCtrlr", "LocalPreAuthorize", attribute_value="true"),
                              item("OCPPCommCtrlr", "OfflineThreshold", attribute_value="1", attribute_type="MaxSet"))
        assert statuses == ["Accepted", "Rejected", "Rejected", "Rejected", "RebootRequired", "UnknownComponent",
                            "UnknownVariable", "Rejected", "Accepted", "Accepted", "NotSupportedAttributeType"]
        assert st.svc.dm.value("OCPPCommCtrlr", "OfflineThreshold") == "123"
    async with OcppStation(cfg, tmp_path) as st:  # a restart keeps what the CSMS set
        cp = await ready(csms, connection=2)
        values = [r["attribute_value"] for r in await get(cp, item("OCPPCommCtrlr", "OfflineThreshold"),
                                                          item("TxCtrlr", "TxStopPoint"),
                                                          item("AuthCtrlr", "LocalPreAuthorize"))]
        assert values == ["123", "EVConnected", "true"]


async def test_config_seeds_and_csms_values(tmp_path: Path, csms) -> None:
    seeded = station_config(tmp_path, csms.url, variables={"OCPPCommCtrlr.OfflineThreshold": 900})
    async with OcppStation(seeded, tmp_path) as st:
        assert st.svc.dm.value("OCPPCommCtrlr", "OfflineThreshold") == "900"
        cp = await ready(csms)
        assert await set_(cp, item("OCPPCommCtrlr", "OfflineThreshold", attribute_value="45")) == ["Accepted"]
    async with OcppStation(seeded, tmp_path) as st:  # same seed: the CSMS value stays
        assert st.svc.dm.value("OCPPCommCtrlr", "OfflineThreshold") == "45"
    reseeded = station_config(tmp_path, csms.url, variables={"OCPPCommCtrlr.OfflineThreshold": 1200})
    async with OcppStation(reseeded, tmp_path) as st:  # the engineer changed the seed: it wins
        assert st.svc.dm.value("OCPPCommCtrlr", "OfflineThreshold") == "1200"


def test_bad_seed_is_a_config_error(tmp_path: Path) -> None:
    from pydantic.v1 import ValidationError

    with pytest.raises(ValidationError, match="NoSuch.Variable"):
        station_config(tmp_path, "ws://x:1", variables={"NoSuch.Variable": 1})
    with pytest.raises(ValidationError, match="outside"):
        station_config(tmp_path, "ws://x:1", variables={"OCPPCommCtrlr.HeartbeatInterval": 0})


async def test_base_reports_in_parts(tmp_path: Path, csms) -> None:
    cfg = station_config(tmp_path, csms.url, evses=2, variables={"DeviceDataCtrlr.ItemsPerMessage.GetReport": 10})
    async with OcppStation(cfg, tmp_path) as st:
        cp = await ready(csms)
        total = len(st.svc.dm.variables)
        result = await cp.call(call.GetBaseReport(request_id=7, report_base="FullInventory"), suppress=False)
        assert result.status == "Accepted"
        parts = await cp.wait_for("NotifyReport", lambda p: p["request_id"] == 7, count=-(-total // 10))
        assert [p["seq_no"] for p in parts] == list(range(len(parts)))
        assert [p["tbc"] for p in parts] == [True] * (len(parts) - 1) + [False]
        reported = [d for p in parts for d in p["report_data"]]
        assert len(reported) == total and all(len(p["report_data"]) <= 10 for p in parts)
        hb = next(d for d in reported if d["variable"]["name"] == "HeartbeatInterval")
        assert hb["variable_attribute"][0]["mutability"] == "ReadWrite"
        assert hb["variable_characteristics"]["data_type"] == "integer"
        password = next(d for d in reported if d["variable"]["name"] == "BasicAuthPassword")
        assert "value" not in password["variable_attribute"][0]

        await cp.call(call.GetBaseReport(request_id=8, report_base="ConfigurationInventory"), suppress=False)
        parts = await cp.wait_for("NotifyReport", lambda p: p["request_id"] == 8 and not p["tbc"])
        config_parts = [p for p in cp.of("NotifyReport") if p["request_id"] == 8]
        assert all(a["mutability"] != "ReadOnly" for p in config_parts for d in p["report_data"]
                   for a in d["variable_attribute"])

        await cp.call(call.GetBaseReport(request_id=9, report_base="SummaryInventory"), suppress=False)
        await cp.wait_for("NotifyReport", lambda p: p["request_id"] == 9 and not p["tbc"])
        summary = [d for p in cp.of("NotifyReport") if p["request_id"] == 9 for d in p["report_data"]]
        assert {d["variable"]["name"] for d in summary} == {"AvailabilityState", "Available", "Problem"}


async def test_get_report_with_criteria(tmp_path: Path, csms) -> None:
    async with OcppStation(station_config(tmp_path, csms.url, evses=2), tmp_path):
        cp = await ready(csms)
        result = await cp.call(call.GetReport(request_id=3, component_variable=[
            {"component": {"name": "EVSE", "evse": {"id": 2}}}]), suppress=False)
        assert result.status == "Accepted"
        part = (await cp.wait_for("NotifyReport", lambda p: p["request_id"] == 3))[0]
        assert {d["component"]["evse"]["id"] for d in part["report_data"]} == {2}
        assert {d["variable"]["name"] for d in part["report_data"]} >= {"AvailabilityState", "Power", "SupplyPhases"}
        empty = await cp.call(call.GetReport(request_id=4, component_criteria=["Problem"]), suppress=False)
        assert empty.status == "EmptyResultSet"  # no component has a problem
        some = await cp.call(call.GetReport(request_id=5, component_criteria=["Available"], component_variable=[
            {"component": {"name": "Connector"}, "variable": {"name": "ConnectorType"}}]), suppress=False)
        assert some.status == "Accepted"
        part = (await cp.wait_for("NotifyReport", lambda p: p["request_id"] == 5))[0]
        assert len(part["report_data"]) == 2
